package redis_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/statedb"
)

// TestIDMemory measures what one recorded event ID costs in Redis memory,
// on a private server (so that nothing else moves used_memory), for the
// figure in the package documentation: 100,000 IDs of 36 bytes (a UUID's
// text) in the partition's sorted set. It also measures the alternative of
// one string key per ID with a PX TTL, which the design rejected.
func TestIDMemory(t *testing.T) {
	srv := startServer(t, "--appendonly", "no")
	o := newOpener(t, srv.addr, uniquePrefix)
	st := o.store(t)
	ctx := t.Context()
	p := statedb.Partition{Topic: "orders", Partition: 0}
	c := acquireT(t, st, p)
	const n, batch = 100_000, 1000
	id := func(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) } // 36 bytes

	before := usedMemory(t, o.client)
	for b := 0; b < n; b += batch {
		cm := &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: int64(b), IDTTL: time.Hour}
		for i := b; i < b+batch; i++ {
			cm.IDs = append(cm.IDs, id(i))
		}
		if err := st.Commit(ctx, cm); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	after := usedMemory(t, o.client)
	usage, err := o.client.MemoryUsage(ctx, st.KeyPrefix()+"{orders:0}:ids", 0).Result()
	if err != nil {
		t.Fatalf("MEMORY USAGE: %v", err)
	}
	zsetPerID := float64(usage) / n
	t.Logf("sorted set of %d IDs of 36 bytes: MEMORY USAGE %d bytes = %.1f bytes/ID; used_memory grew %.1f bytes/ID",
		n, usage, zsetPerID, float64(after-before)/n)

	// The alternative: one string key per ID, expiring by itself.
	before = usedMemory(t, o.client)
	for b := 0; b < n; b += batch {
		pipe := o.client.Pipeline()
		for i := b; i < b+batch; i++ {
			pipe.Set(ctx, "alt{orders:0}:id:"+id(i), "", time.Hour)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("SET: %v", err)
		}
	}
	after = usedMemory(t, o.client)
	t.Logf("one string key per ID (SET PX): used_memory grew %.1f bytes/ID", float64(after-before)/n)

	if zsetPerID > 200 {
		t.Errorf("an ID costs %.1f bytes in the sorted set, want <= 200 (the documented figure is stale)", zsetPerID)
	}
}

func usedMemory(t *testing.T, c *goredis.Client) int64 {
	t.Helper()
	info, err := c.Info(t.Context(), "memory").Result()
	if err != nil {
		t.Fatalf("INFO memory: %v", err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO memory: used_memory %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}
