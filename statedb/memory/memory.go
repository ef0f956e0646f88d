package memory

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// errClosed is returned by every method of a closed Store.
var errClosed = errors.New("memory: store closed")

// Option configures a Store.
type Option func(*Store)

// WithClock makes the Store read the time from now instead of time.Now, for
// tests that move a fake clock. now is called with the Store's lock held,
// so it must not call the Store; it may be called from any goroutine.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// Store is a statedb.Store held in process memory: one namespace per
// Store. It is safe for concurrent use; all methods take one lock, and
// readers share it.
type Store struct {
	now func() time.Time

	mu     sync.RWMutex
	closed bool
	parts  map[statedb.Partition]*partition
}

var _ statedb.Store = (*Store)(nil)

// New returns an empty Store.
func New(opts ...Option) *Store {
	s := &Store{now: time.Now, parts: map[statedb.Partition]*partition{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// partition is the state of one partition. Times are Unix nanoseconds;
// an expiry of 0 means never.
type partition struct {
	epoch   int64 // 0: never acquired
	offset  int64
	meta    []byte
	entries map[string]entry
	ids     map[string]int64 // id → expiry
	timers  map[string]int64 // key → due
	// expiries holds one record per write with a TTL, earliest first, so a
	// commit drops what has expired without scanning. A record whose key
	// was rewritten since no longer matches and is discarded.
	expiries expiryHeap
}

type entry struct {
	value   []byte
	expires int64
}

func live(expires, now int64) bool { return expires == 0 || now < expires }

// part returns p's state, creating it if create is set; nil otherwise.
func (s *Store) part(p statedb.Partition, create bool) *partition {
	ps := s.parts[p]
	if ps == nil && create {
		ps = &partition{offset: statedb.NoOffset, entries: map[string]entry{},
			ids: map[string]int64{}, timers: map[string]int64{}}
		s.parts[p] = ps
	}
	return ps
}

// check reports a canceled ctx or a closed store, naming the operation.
func (s *Store) check(ctx context.Context, op string, p statedb.Partition) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s %v: %w", op, p, err)
	}
	if s.closed {
		return fmt.Errorf("memory: %s %v: %w", op, p, errClosed)
	}
	return nil
}

// Acquire bumps p's epoch and returns it with p's offset watermark and
// metadata.
func (s *Store) Acquire(ctx context.Context, p statedb.Partition) (statedb.Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "acquire", p); err != nil {
		return statedb.Claim{}, err
	}
	ps := s.part(p, true)
	ps.epoch++
	return statedb.Claim{Epoch: ps.epoch, Offset: ps.offset, Meta: clone(ps.meta)}, nil
}

// Load returns copies of the live values of keys in p.
func (s *Store) Load(ctx context.Context, p statedb.Partition, keys []string) (map[string][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, "load", p); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	ps := s.part(p, false)
	if ps == nil {
		return out, nil
	}
	now := s.now().UnixNano()
	for _, k := range keys {
		if e, ok := ps.entries[k]; ok && live(e.expires, now) {
			out[k] = clone(e.value)
			if out[k] == nil {
				out[k] = []byte{}
			}
		}
	}
	return out, nil
}

// Seen reports which of ids are recorded and not expired for p; the map
// holds only the seen ones.
func (s *Store) Seen(ctx context.Context, p statedb.Partition, ids []string) (map[string]bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, "seen", p); err != nil {
		return nil, err
	}
	out := make(map[string]bool)
	ps := s.part(p, false)
	if ps == nil {
		return out, nil
	}
	now := s.now().UnixNano()
	for _, id := range ids {
		if exp, ok := ps.ids[id]; ok && live(exp, now) {
			out[id] = true
		}
	}
	return out, nil
}

// Due returns up to limit timers of p under prefix with Due <= until,
// earliest first (ties by key). It scans p's timers: O(timers) per call.
func (s *Store) Due(ctx context.Context, p statedb.Partition, prefix string, until int64, limit int) ([]statedb.Timer, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, "due", p); err != nil {
		return nil, err
	}
	ps := s.part(p, false)
	if ps == nil || limit <= 0 {
		return nil, nil
	}
	var out []statedb.Timer
	for k, d := range ps.timers {
		if d <= until && strings.HasPrefix(k, prefix) {
			out = append(out, statedb.Timer{Key: k, Due: d})
		}
	}
	slices.SortFunc(out, func(a, b statedb.Timer) int {
		if a.Due != b.Due {
			if a.Due < b.Due {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Commit applies c if c.Epoch is p's current epoch, else returns an error
// wrapping statedb.ErrFenced and changes nothing. Deletes apply before
// Puts and ClearTimers before SetTimers. Values are copied.
func (s *Store) Commit(ctx context.Context, c *statedb.Commit) error {
	if c == nil {
		return errors.New("memory: commit: nil *statedb.Commit")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "commit", c.Partition); err != nil {
		return err
	}
	ps := s.part(c.Partition, false)
	if ps == nil || ps.epoch == 0 || c.Epoch != ps.epoch {
		var cur int64
		if ps != nil {
			cur = ps.epoch
		}
		return fmt.Errorf("memory: commit %v with epoch %d, current epoch %d: %w", c.Partition, c.Epoch, cur, statedb.ErrFenced)
	}
	now := s.now().UnixNano()
	ps.expire(now)
	for _, k := range c.Deletes {
		delete(ps.entries, k)
	}
	for _, e := range c.Puts {
		var exp int64
		if e.TTL > 0 {
			exp = now + int64(e.TTL)
			heap.Push(&ps.expiries, expiry{at: exp, key: e.Key})
		}
		ps.entries[e.Key] = entry{value: clone(e.Value), expires: exp}
	}
	var idExp int64
	if c.IDTTL > 0 {
		idExp = now + int64(c.IDTTL)
	}
	for _, id := range c.IDs {
		ps.ids[id] = idExp
		if idExp != 0 {
			heap.Push(&ps.expiries, expiry{at: idExp, key: id, id: true})
		}
	}
	for _, k := range c.ClearTimers {
		delete(ps.timers, k)
	}
	for _, t := range c.SetTimers {
		ps.timers[t.Key] = t.Due
	}
	ps.offset = c.Offset
	ps.meta = clone(c.Meta)
	if len(ps.meta) == 0 {
		ps.meta = nil
	}
	return nil
}

// expire drops the entries and IDs whose TTL has passed.
func (ps *partition) expire(now int64) {
	for len(ps.expiries) > 0 && ps.expiries[0].at <= now {
		x := heap.Pop(&ps.expiries).(expiry)
		if x.id {
			if ps.ids[x.key] == x.at {
				delete(ps.ids, x.key)
			}
		} else if e, ok := ps.entries[x.key]; ok && e.expires == x.at {
			delete(ps.entries, x.key)
		}
	}
}

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: ping: %w", err)
	}
	if s.closed {
		return fmt.Errorf("memory: ping: %w", errClosed)
	}
	return nil
}

// Close drops the store's contents; later calls fail. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.parts = nil
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

type expiry struct {
	at  int64
	key string
	id  bool // an event ID, else a state entry
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
