package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/statedb"
	redisstore "github.com/eddy-streams/eddy/statedb/redis"
)

// BenchmarkLayout is the experiment of issue 19, part 4: would a layout
// with fewer keys (one hash per partition holding every state value)
// lower Redis's CPU per committed state? Each op is one flush of bench
// scenario d in its steady state, per partition: 750 state puts over a
// live keyspace of 1,667 window states, of which 160 are new windows
// (each with a timer) and 160 windows closed (deleted, timer cleared),
// values of 24 bytes, as d's count-and-sum states. The server is private
// (appendonly yes, appendfsync everysec, as make services runs it) and
// its CPU is read from INFO before and after: server-µs/put is what the
// worker's commit costs Redis, over every command of the commit.
//
//	keys  the store's layout: one string key per state (the commit script)
//	lean  the same keys, from a script that takes no TTL per put and
//	      writes every put with MSET (it cannot write TTLs); the store's
//	      script does the same when no put has a TTL, so keys and lean
//	      now differ only in how the keys are passed
//	hash  every state a field of one hash per partition, the lean script
//	      otherwise (HSET/HDEL for MSET/DEL)
//
// The hash layout loses what the store promises per key: a TTL per state
// (field expiry needs Redis 7.4's HPEXPIRE) and state spread over a
// Cluster's nodes beyond one partition per slot (unchanged: a partition
// is one slot either way).
//
// One run (2 cores, 3 counts each, interleaved): keys 1.23 µs/put before
// the script's no-TTL mode and 1.14 after (-7%), lean 1.07-1.12, hash
// 0.85 (-25% from keys) for 4% less memory. The hash layout is not
// adopted: it would give up per-state TTLs (retention), which Redis 7.0
// cannot set on hash fields, for a quarter of Redis's CPU per put.
func BenchmarkLayout(b *testing.B) {
	srv := startServer(b, "--appendonly", "yes", "--appendfsync", "everysec")
	for _, layout := range []string{"keys", "lean", "hash"} {
		b.Run(layout, func(b *testing.B) {
			client := goredis.NewClient(&goredis.Options{Addr: srv.addr})
			defer func() { _ = client.Close() }()
			if err := client.FlushAll(b.Context()).Err(); err != nil {
				b.Fatal(err)
			}
			commit := layoutCommitter(b, layout, client)
			w := newFlushes()
			for range 20 { // fill the live keyspace
				if err := commit(b.Context(), w.next()); err != nil {
					b.Fatal(err)
				}
			}
			cpu0 := serverCPU(b, client)
			b.ResetTimer()
			for b.Loop() {
				if err := commit(b.Context(), w.next()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			used := serverCPU(b, client) - cpu0
			b.ReportMetric(used*1e6/float64(b.N*flushPuts), "server-µs/put")
			b.ReportMetric(serverInfo(b, client, "memory", "used_memory")/1e6, "server-MB")
		})
	}
}

const (
	flushPuts  = 750
	flushNew   = 160
	liveStates = 1667
)

// flushes makes the commits of one partition's steady state.
type flushes struct {
	epoch, offset int64
	live          []string // oldest first
	seq           int
	rng           *rand.Rand
	value         []byte
}

func newFlushes() *flushes {
	return &flushes{epoch: 1, rng: rand.New(rand.NewPCG(1, 2)), value: make([]byte, 24)}
}

func (f *flushes) next() *statedb.Commit {
	f.offset += 1000
	cm := &statedb.Commit{Partition: statedb.Partition{Topic: "bench", Partition: 0},
		Epoch: f.epoch, Offset: f.offset}
	if len(f.live) >= liveStates {
		for _, k := range f.live[:flushNew] {
			cm.Deletes = append(cm.Deletes, k)
			cm.ClearTimers = append(cm.ClearTimers, k)
		}
		f.live = append(f.live[:0], f.live[flushNew:]...)
	}
	put := make(map[string]bool, flushPuts)
	for range flushNew {
		k := "agg:user-" + strconv.Itoa(f.seq) + ":" + strconv.Itoa(1700000000000+f.seq*60)
		f.seq++
		f.live = append(f.live, k)
		put[k] = true
		cm.SetTimers = append(cm.SetTimers, statedb.Timer{Key: k, Due: int64(1700000060000 + f.seq)})
	}
	for len(put) < min(flushPuts, len(f.live)) {
		put[f.live[f.rng.IntN(len(f.live))]] = true
	}
	for k := range put {
		f.value[0]++
		cm.Puts = append(cm.Puts, statedb.Entry{Key: k, Value: append([]byte(nil), f.value...)})
	}
	return cm
}

// layoutCommitter returns the commit of one layout.
func layoutCommitter(b *testing.B, layout string, client *goredis.Client) func(context.Context, *statedb.Commit) error {
	switch layout {
	case "keys":
		st, err := redisstore.NewFromClient(client, "eddy:")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Acquire(b.Context(), statedb.Partition{Topic: "bench", Partition: 0}); err != nil {
			b.Fatal(err)
		}
		return st.Commit
	case "hash", "lean":
		script := goredis.NewScript(hashCommitSrc)
		if layout == "lean" {
			src := strings.NewReplacer("'HDEL', KEYS[2], ", "'DEL', ", "'HSET', KEYS[2], ", "'MSET', ").Replace(hashCommitSrc)
			script = goredis.NewScript(src)
		}
		base := "eddy:{bench:0}"
		if err := client.HSet(b.Context(), base+":meta", "epoch", 1).Err(); err != nil {
			b.Fatal(err)
		}
		state := "" // hash fields are the bare keys
		if layout == "lean" {
			state = base + ":s:" // as the store names them
		}
		return func(ctx context.Context, cm *statedb.Commit) error {
			args := []any{cm.Epoch, cm.Offset, len(cm.Deletes), len(cm.Puts), len(cm.ClearTimers), len(cm.SetTimers)}
			for _, k := range cm.Deletes {
				args = append(args, state+k)
			}
			for _, e := range cm.Puts {
				args = append(args, state+e.Key, e.Value)
			}
			for _, k := range cm.ClearTimers {
				args = append(args, k)
			}
			for _, t := range cm.SetTimers {
				args = append(args, t.Key, t.Due)
			}
			res, err := script.Run(ctx, client, []string{base + ":meta", base + ":h", base + ":timers"}, args...).Int64Slice()
			if err != nil {
				return err
			}
			if res[0] != 1 {
				return fmt.Errorf("fenced: %v", res)
			}
			return nil
		}
	}
	b.Fatalf("layout %q", layout)
	return nil
}

// hashCommitSrc is commitSrc with every state a field of KEYS[2] (no
// TTLs, no IDs): the epoch check, the offset, deletes, puts in chunks of
// 256, timer clears and sets.
const hashCommitSrc = `
local cur = redis.call('HGET', KEYS[1], 'epoch')
if not cur or cur ~= ARGV[1] then
  return {0, tonumber(cur or '0')}
end
redis.call('HSET', KEYS[1], 'offset', ARGV[2])
local nd, np, nc, ns = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local CHUNK = 256
local a = 7
while nd > 0 do
  local n = math.min(nd, CHUNK)
  redis.call('HDEL', KEYS[2], unpack(ARGV, a, a + n - 1))
  a = a + n
  nd = nd - n
end
while np > 0 do
  local n = math.min(np, CHUNK)
  redis.call('HSET', KEYS[2], unpack(ARGV, a, a + 2 * n - 1))
  a = a + 2 * n
  np = np - n
end
while nc > 0 do
  local n = math.min(nc, CHUNK)
  redis.call('ZREM', KEYS[3], unpack(ARGV, a, a + n - 1))
  a = a + n
  nc = nc - n
end
if ns > 0 then
  local z, nz = {}, 0
  for j = 1, ns do
    z[nz + 1] = ARGV[a + 1]
    z[nz + 2] = ARGV[a]
    nz = nz + 2
    a = a + 2
    if nz >= 2 * CHUNK or j == ns then
      redis.call('ZADD', KEYS[3], unpack(z, 1, nz))
      nz = 0
    end
  end
end
return {1}
`

// serverCPU is the server's user and system CPU in seconds, from INFO.
func serverCPU(b *testing.B, client *goredis.Client) float64 {
	return serverInfo(b, client, "cpu", "used_cpu_sys", "used_cpu_user")
}

// serverInfo is the sum of the named numeric fields of an INFO section.
func serverInfo(b *testing.B, client *goredis.Client, section string, fields ...string) float64 {
	info, err := client.Info(b.Context(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	found := 0
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && slices.Contains(fields, k) {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO %s: %s: %v", section, line, err)
			}
			sum += f
			found++
		}
	}
	if found != len(fields) {
		b.Fatalf("INFO %s: found %d of %v", section, found, fields)
	}
	return sum
}
