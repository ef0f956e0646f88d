package processor

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// commitCache writes the cache's dirty state to its store as its owner at
// epoch and marks it committed.
func commitCache(t *testing.T, c *cache, epoch, offset int64) {
	t.Helper()
	if err := c.store.Commit(context.Background(), c.commit(epoch, offset, nil)); err != nil {
		t.Fatal(err)
	}
	c.committed()
}

func TestCacheForgetsCommittedDeletes(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	part := statedb.Partition{Topic: "in"}
	claim, err := store.Acquire(ctx, part)
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(store, part, 100)
	for _, k := range []string{"gone", "back", "kept"} {
		c.put(k, []byte("v-"+k), 0)
	}
	commitCache(t, c, claim.Epoch, 1)

	c.del("gone")
	c.del("back")
	c.put("back", []byte("again"), 0) // deleted, then put again in the same batch
	commitCache(t, c, claim.Epoch, 2)

	if _, _, known := c.get("gone"); known {
		t.Error("a committed delete is still cached")
	}
	for k, want := range map[string]string{"back": "again", "kept": "v-kept"} {
		if v, ok, known := c.get(k); !known || !ok || string(v) != want {
			t.Errorf("%s: cached %q (present %v, known %v), want %q", k, v, ok, known, want)
		}
	}
	// Read again, the forgotten key comes from the store: absent.
	loads := c.loads
	if err := c.load(ctx, []string{"gone", "kept"}); err != nil {
		t.Fatal(err)
	}
	if c.loads != loads+1 {
		t.Errorf("%d loads, want 1 (only the forgotten key)", c.loads-loads)
	}
	if _, ok, known := c.get("gone"); !known || ok {
		t.Errorf("after a load, gone is present %v, known %v; want known absent", ok, known)
	}
}

// failingLoad fails every Load.
type failingLoad struct {
	statedb.Store
	keys []string
}

func (s *failingLoad) Load(_ context.Context, _ statedb.Partition, keys []string) (map[string][]byte, error) {
	s.keys = append(s.keys[:0], keys...)
	return nil, errors.New("connection refused")
}

func TestCacheLoad(t *testing.T) {
	ctx := context.Background()
	part := statedb.Partition{Topic: "in"}
	t.Run("asks once per missing key", func(t *testing.T) {
		store := memory.New()
		claim, _ := store.Acquire(ctx, part)
		if err := store.Commit(ctx, &statedb.Commit{Partition: part, Epoch: claim.Epoch, Offset: 0,
			Puts: []statedb.Entry{{Key: "a", Value: []byte("1")}}}); err != nil {
			t.Fatal(err)
		}
		fs := &failingLoad{Store: store}
		c := newCache(store, part, 100)
		c.put("cached", []byte("x"), 0)
		if err := c.load(ctx, []string{"a", "b", "a", "cached", "b"}); err != nil {
			t.Fatal(err)
		}
		if v, ok, _ := c.get("a"); !ok || string(v) != "1" {
			t.Errorf("a = %q, %v; want 1", v, ok)
		}
		if _, ok, known := c.get("b"); ok || !known {
			t.Errorf("b: present %v, known %v; want known absent", ok, known)
		}
		c.store = fs
		if err := c.load(ctx, []string{"c", "c", "a", "d"}); err == nil {
			t.Fatal("load through a failing store succeeded")
		}
		if len(fs.keys) != 2 || fs.keys[0] != "c" || fs.keys[1] != "d" {
			t.Errorf("asked the store for %q, want [c d]", fs.keys)
		}
	})
	t.Run("a failed load leaves nothing cached", func(t *testing.T) {
		c := newCache(&failingLoad{Store: memory.New()}, part, 100)
		if err := c.load(ctx, []string{"x", "y"}); err == nil {
			t.Fatal("load succeeded")
		}
		for _, k := range []string{"x", "y"} {
			if _, _, known := c.get(k); known {
				t.Errorf("%s is cached after a failed load", k)
			}
		}
	})
}

// callCounter counts the calls that reach a store.
type callCounter struct {
	statedb.Store
	n atomic.Int64
}

func (s *callCounter) Acquire(ctx context.Context, p statedb.Partition) (statedb.Claim, error) {
	s.n.Add(1)
	return s.Store.Acquire(ctx, p)
}

func (s *callCounter) Load(ctx context.Context, p statedb.Partition, keys []string) (map[string][]byte, error) {
	s.n.Add(1)
	return s.Store.Load(ctx, p, keys)
}

func (s *callCounter) Seen(ctx context.Context, p statedb.Partition, ids []string) (map[string]bool, error) {
	s.n.Add(1)
	return s.Store.Seen(ctx, p, ids)
}

func (s *callCounter) Due(ctx context.Context, p statedb.Partition, prefix string, until int64, limit int) ([]statedb.Timer, error) {
	s.n.Add(1)
	return s.Store.Due(ctx, p, prefix, until, limit)
}

func (s *callCounter) Commit(ctx context.Context, c *statedb.Commit) error {
	s.n.Add(1)
	return s.Store.Commit(ctx, c)
}

// Stats.StoreCalls counts the calls that reach the store: a state load
// whose keys are all cached is not one.
func TestStoreCallsCountRoundTrips(t *testing.T) {
	store := &callCounter{Store: memory.New()}
	tk := newBenchTask(t, benchAggregateYAML, store)
	src := newBenchSource()
	ctx := context.Background()
	for range 150 { // 150,000 events: windows close, keys repeat
		if err := tk.process(ctx, src.batch(benchBatch)); err != nil {
			t.Fatal(err)
		}
		if err := tk.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := tk.w.Stats().StoreCalls, uint64(store.n.Load()); got != want {
		t.Errorf("Stats.StoreCalls = %d, the store saw %d calls", got, want)
	}
}
