package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/statedb"
)

// Store is a statedb.Store in Redis. It is safe for concurrent use: it
// holds no mutable state of its own besides go-redis's connection pool and
// script hashes, and every method is one command or one script call.
type Store struct {
	client  goredis.UniversalClient
	prefix  string
	owns    bool // Close closes client
	acquire *goredis.Script
	commit  *goredis.Script
	seen    *goredis.Script
	due     *goredis.Script
}

var _ statedb.Store = (*Store)(nil)

func newStore(client goredis.UniversalClient, prefix string, owns bool) *Store {
	return &Store{
		client:  client,
		prefix:  prefix,
		owns:    owns,
		acquire: goredis.NewScript(acquireSrc),
		commit:  goredis.NewScript(commitSrc),
		seen:    goredis.NewScript(seenSrc),
		due:     goredis.NewScript(dueSrc),
	}
}

// load pings Redis and loads the scripts, so that the first calls are one
// EVALSHA each. After a Redis restart (or failover) the script cache is
// empty again; each script then costs one extra EVAL on its next call.
func (s *Store) load(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	for _, sc := range []*goredis.Script{s.acquire, s.commit, s.seen, s.due} {
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			return fmt.Errorf("script load: %w", err)
		}
	}
	return nil
}

// KeyPrefix returns the store's namespace: every key it writes starts
// with it.
func (s *Store) KeyPrefix() string { return s.prefix }

// Acquire bumps p's epoch (HINCRBY in one script) and returns it with p's
// offset watermark and metadata.
func (s *Store) Acquire(ctx context.Context, p statedb.Partition) (statedb.Claim, error) {
	k := s.keys(p)
	res, err := s.acquire.Run(ctx, s.client, []string{k.meta}).Slice()
	if err != nil {
		return statedb.Claim{}, fmt.Errorf("redis: acquire %v: %w", p, err)
	}
	if len(res) != 3 {
		return statedb.Claim{}, fmt.Errorf("redis: acquire %v: script returned %d values, want 3", p, len(res))
	}
	c := statedb.Claim{Offset: statedb.NoOffset}
	var ok bool
	if c.Epoch, ok = res[0].(int64); !ok {
		return statedb.Claim{}, fmt.Errorf("redis: acquire %v: epoch %v (%T) is not an integer", p, res[0], res[0])
	}
	if off, ok := res[1].(string); ok {
		if c.Offset, err = strconv.ParseInt(off, 10, 64); err != nil {
			return statedb.Claim{}, fmt.Errorf("redis: acquire %v: field offset of %s: %w", p, k.meta, err)
		}
	}
	if m, ok := res[2].(string); ok && m != "" {
		c.Meta = []byte(m)
	}
	return c, nil
}

// Load returns the live values of keys in p with one MGET (one slot, so
// valid on Cluster). Redis expires keys itself: an expired key is never
// returned.
func (s *Store) Load(ctx context.Context, p statedb.Partition, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("redis: load %v: %w", p, err)
		}
		return out, nil
	}
	k := s.keys(p)
	rkeys := make([]string, len(keys))
	for i, key := range keys {
		rkeys[i] = k.state(key)
	}
	vals, err := s.client.MGet(ctx, rkeys...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: load %v (%d keys): %w", p, len(keys), err)
	}
	if len(vals) != len(keys) {
		return nil, fmt.Errorf("redis: load %v: MGET returned %d values for %d keys", p, len(vals), len(keys))
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[keys[i]] = []byte(str)
		}
	}
	return out, nil
}

// Seen reports which of ids are recorded and not expired for p, by the
// server's clock, in one script call. The map holds only the seen ones.
func (s *Store) Seen(ctx context.Context, p statedb.Partition, ids []string) (map[string]bool, error) {
	out := make(map[string]bool)
	if len(ids) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("redis: seen %v: %w", p, err)
		}
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	res, err := s.seen.Run(ctx, s.client, []string{s.keys(p).ids}, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("redis: seen %v (%d ids): %w", p, len(ids), err)
	}
	if len(res) != len(ids) {
		return nil, fmt.Errorf("redis: seen %v: script returned %d values for %d ids", p, len(res), len(ids))
	}
	for i, r := range res {
		if r == 1 {
			out[ids[i]] = true
		}
	}
	return out, nil
}

// Due returns up to limit timers of p under prefix with Due <= until,
// earliest first (equal Due: by key, byte-wise): with no prefix one ZRANGE
// ... BYSCORE LIMIT; with one, one script call that pages through the
// partition's timers in due order and keeps those under prefix (see
// dueSrc for its cost).
func (s *Store) Due(ctx context.Context, p statedb.Partition, prefix string, until int64, limit int) ([]statedb.Timer, error) {
	if limit <= 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("redis: due %v: %w", p, err)
		}
		return nil, nil
	}
	if prefix != "" {
		return s.dueUnder(ctx, p, prefix, until, limit)
	}
	zs, err := s.client.ZRangeArgsWithScores(ctx, goredis.ZRangeArgs{
		Key: s.keys(p).timers, Start: "-inf", Stop: strconv.FormatInt(until, 10),
		ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: due %v: %w", p, err)
	}
	out := make([]statedb.Timer, len(zs))
	for i, z := range zs {
		key, _ := z.Member.(string)
		out[i] = statedb.Timer{Key: key, Due: int64(z.Score)}
	}
	return out, nil
}

// Commit applies c with one script call (EVALSHA; EVAL if Redis lost the
// script) that checks the epoch first and writes nothing when it is not
// current, returning an error wrapping statedb.ErrFenced. See the package
// documentation for why the script is atomic and runs on Redis Cluster.
//
// go-redis retries a call that failed on the network. Replaying a commit
// is harmless: it writes the same values. A retry can, however, report
// ErrFenced for a commit whose first attempt was applied just before
// another owner acquired the partition; the new owner then sees that
// commit, and the fenced owner stops as it must.
func (s *Store) Commit(ctx context.Context, c *statedb.Commit) error {
	if c == nil {
		return errors.New("redis: commit: nil *statedb.Commit")
	}
	p := c.Partition
	if c.Epoch < 1 {
		// No Acquire ever returns it: the partition cannot be current at
		// this epoch. Checked here too so that no script runs.
		return fmt.Errorf("redis: commit %v with epoch %d: %w", p, c.Epoch, statedb.ErrFenced)
	}
	k := s.keys(p)
	keys := make([]string, 0, 3+len(c.Deletes)+len(c.Puts))
	keys = append(keys, k.meta, k.ids, k.timers)
	for _, d := range c.Deletes {
		keys = append(keys, k.state(d))
	}
	for _, e := range c.Puts {
		keys = append(keys, k.state(e.Key))
	}
	ttls := "0" // no put has a TTL: the script takes values alone
	for _, e := range c.Puts {
		if millis(e.TTL) > 0 {
			ttls = "1"
			break
		}
	}
	args := make([]any, 0, 10+2*len(c.Puts)+len(c.IDs)+len(c.ClearTimers)+2*len(c.SetTimers))
	args = append(args,
		strconv.FormatInt(c.Epoch, 10), strconv.FormatInt(c.Offset, 10), c.Meta,
		len(c.Deletes), len(c.Puts), len(c.IDs), millis(c.IDTTL), len(c.ClearTimers), len(c.SetTimers), ttls)
	for _, e := range c.Puts {
		v := e.Value
		if v == nil {
			v = []byte{}
		}
		if ttls == "0" {
			args = append(args, v)
		} else {
			args = append(args, v, millis(e.TTL))
		}
	}
	for _, id := range c.IDs {
		args = append(args, id)
	}
	for _, t := range c.ClearTimers {
		args = append(args, t)
	}
	for _, t := range c.SetTimers {
		args = append(args, t.Key, strconv.FormatInt(t.Due, 10))
	}
	res, err := s.commit.Run(ctx, s.client, keys, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("redis: commit %v (epoch %d, offset %d): %w", p, c.Epoch, c.Offset, err)
	}
	if len(res) == 0 {
		return fmt.Errorf("redis: commit %v: script returned nothing", p)
	}
	if res[0] != 1 {
		var cur int64
		if len(res) > 1 {
			cur = res[1]
		}
		return fmt.Errorf("redis: commit %v with epoch %d, current epoch %d: %w", p, c.Epoch, cur, statedb.ErrFenced)
	}
	return nil
}

// millis converts a TTL to whole milliseconds for PX and ID expiries,
// rounding up so that a positive TTL never becomes 0 (no expiry).
// Non-positive TTLs are 0.
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	if d > time.Duration(math.MaxInt64-int64(time.Millisecond)) {
		return int64(d / time.Millisecond)
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Close closes the connection pool if the store made it (New); a store
// from NewFromClient leaves the caller's client open.
func (s *Store) Close() error {
	if !s.owns {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// dueChunk is how many timers the due script reads per ZRANGE.
const dueChunk = 512

func (s *Store) dueUnder(ctx context.Context, p statedb.Partition, prefix string, until int64, limit int) ([]statedb.Timer, error) {
	res, err := s.due.Run(ctx, s.client, []string{s.keys(p).timers},
		prefix, strconv.FormatInt(until, 10), limit, dueChunk).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: due %v under %q: %w", p, prefix, err)
	}
	if len(res)%2 != 0 {
		return nil, fmt.Errorf("redis: due %v: script returned %d values, want pairs", p, len(res))
	}
	out := make([]statedb.Timer, len(res)/2)
	for i := range out {
		f, err := strconv.ParseFloat(res[2*i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("redis: due %v: timer %q: score %q: %w", p, res[2*i], res[2*i+1], err)
		}
		out[i] = statedb.Timer{Key: res[2*i], Due: int64(f)}
	}
	return out, nil
}
