package redis_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/statedb"
)

// TestCommitWhenRedisIsFull fills a private redis-server that has a small
// maxmemory and noeviction, until commits fail. The failing commit must
// fail whole (not fenced, nothing of it visible), the last good one must be
// intact, and the store must work again once memory is freed.
func TestCommitWhenRedisIsFull(t *testing.T) {
	srv := startServer(t, "--appendonly", "no", "--maxmemory", "4mb")
	o := newOpener(t, srv.addr, uniquePrefix)
	st := o.store(t)
	ctx := t.Context()
	p := statedb.Partition{Topic: "orders", Partition: 0}
	c := acquireT(t, st, p)
	value := []byte(strings.Repeat("x", 1000))
	var failed *statedb.Commit
	var lastOK int64 = statedb.NoOffset
	for i := range 10_000 {
		cm := &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: int64(i), Meta: fmt.Appendf(nil, "m%d", i),
			// Deletes first: the script's first write is then one Redis
			// allows under OOM, the hard case for all-or-nothing.
			Deletes: []string{fmt.Sprint("never-", i)},
			Puts: []statedb.Entry{
				{Key: fmt.Sprint("a", i), Value: value},
				{Key: fmt.Sprint("b", i), Value: value},
			},
			IDs: []string{fmt.Sprint("id", i)}}
		err := st.Commit(ctx, cm)
		if err == nil {
			lastOK = cm.Offset
			continue
		}
		if errors.Is(err, statedb.ErrFenced) {
			t.Fatalf("commit %d: %v, want an out-of-memory error", i, err)
		}
		if !strings.Contains(err.Error(), "OOM") {
			t.Fatalf("commit %d: %v, want an OOM error", i, err)
		}
		failed = cm
		break
	}
	if failed == nil {
		t.Fatal("10,000 commits of 2 KB fit in maxmemory 4mb: the test did not reach OOM")
	}
	t.Logf("Redis refused commit %d: memory full", failed.Offset)
	got, err := st.Load(ctx, p, []string{failed.Puts[0].Key, failed.Puts[1].Key, fmt.Sprint("a", lastOK)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(got) != 1 || got[fmt.Sprint("a", lastOK)] == nil {
		t.Errorf("after the refused commit Load found %d of its keys and the last good one %v", len(got)-1, got[fmt.Sprint("a", lastOK)] != nil)
	}
	sn, err := st.Seen(ctx, p, failed.IDs)
	if err != nil {
		t.Fatalf("Seen: %v", err)
	}
	if sn[failed.IDs[0]] {
		t.Errorf("the refused commit's ID is recorded")
	}
	// Acquire's HINCRBY is refused too while memory is full.
	if _, err := st.Acquire(ctx, p); err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Errorf("Acquire while memory is full: %v, want an OOM error", err)
	}
	// Raise the limit, as an operator would, and check the claim finds
	// the last good commit.
	if err := o.client.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatalf("CONFIG SET maxmemory: %v", err)
	}
	next := acquireT(t, st, p)
	if next.Offset != lastOK || string(next.Meta) != fmt.Sprint("m", lastOK) {
		t.Errorf("claim after the refused commit: offset %d meta %q, want %d %q", next.Offset, next.Meta, lastOK, fmt.Sprint("m", lastOK))
	}
	if err := st.Commit(ctx, &statedb.Commit{Partition: p, Epoch: next.Epoch, Offset: lastOK + 1}); err != nil {
		t.Errorf("commit once memory is available: %v", err)
	}
}
