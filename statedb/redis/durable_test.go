package redis_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/statedbtest"
)

// TestConformanceKillRestart runs the whole suite against a private
// redis-server with AOF (appendfsync always); the reopen subtests close the
// client, SIGKILL the server, start it again over the same files and
// connect a new client.
func TestConformanceKillRestart(t *testing.T) {
	srv := startServer(t, aofAlways...)
	o := newOpener(t, srv.addr, uniquePrefix)
	statedbtest.Run(t, func(t *testing.T) statedb.Store { return o.owned(t, o.prefix(t)) },
		statedbtest.WithReopen(func(t *testing.T, old statedb.Store) statedb.Store {
			prefix := old.(interface{ KeyPrefix() string }).KeyPrefix()
			_ = old.Close()
			srv.restart(t)
			return o.owned(t, prefix)
		}))
}

// model is what a partition must hold after the commits so far.
type model struct {
	offset int64
	meta   []byte
	values map[string][]byte
	ids    []string
	timers map[string]int64
}

// TestKillRestartLosesNothing commits random flushes to a private
// redis-server and SIGKILLs it right after some commits return; after each
// restart a new owner must find exactly what was committed. With
// appendonly off (the control) the same check must notice the loss, which
// proves it can fail.
func TestKillRestartLosesNothing(t *testing.T) {
	tests := []struct {
		name        string
		persistence []string
		wantLoss    bool
	}{
		{"appendfsync always", aofAlways, false},
		// A process kill leaves the written AOF in the kernel's page cache:
		// everysec loses nothing here; it can lose the last second only if
		// the machine itself goes down.
		{"appendfsync everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, false},
		{"control: no persistence", []string{"--appendonly", "no"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, tt.persistence...)
			o := newOpener(t, srv.addr, uniquePrefix)
			prefix := o.prefix(t)
			st := o.owned(t, prefix)
			p := statedb.Partition{Topic: "orders", Partition: 7}
			m := model{offset: statedb.NoOffset, values: map[string][]byte{}, timers: map[string]int64{}}
			rng := rand.New(rand.NewPCG(7, 7))
			claim := acquireT(t, st, p)
			for round := range 12 {
				c := randomCommit(rng, p, claim.Epoch, int64(round*100), &m)
				if err := st.Commit(t.Context(), c); err != nil {
					t.Fatalf("round %d: Commit: %v", round, err)
				}
				if round%3 != 2 {
					continue
				}
				_ = st.Close()
				srv.restart(t)
				st = o.owned(t, prefix)
				claim = acquireT(t, st, p)
				lost := diff(t, st, p, claim, &m)
				if tt.wantLoss {
					if len(lost) == 0 {
						t.Fatalf("round %d: without persistence the restart lost nothing: the check cannot see a loss", round)
					}
					return
				}
				if len(lost) > 0 {
					t.Fatalf("round %d: after SIGKILL and restart: %v", round, lost)
				}
			}
			if tt.wantLoss {
				t.Fatal("no restart happened")
			}
		})
	}
}

func acquireT(t *testing.T, st statedb.Store, p statedb.Partition) statedb.Claim {
	t.Helper()
	c, err := st.Acquire(t.Context(), p)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return c
}

// randomCommit builds a flush of puts (some with TTL), deletes, IDs and
// timer changes and applies it to m.
func randomCommit(rng *rand.Rand, p statedb.Partition, epoch, offset int64, m *model) *statedb.Commit {
	c := &statedb.Commit{Partition: p, Epoch: epoch, Offset: offset, Meta: fmt.Appendf(nil, "meta-%d", offset), IDTTL: time.Hour}
	for range 50 {
		k := fmt.Sprintf("k%d", rng.IntN(200))
		if rng.IntN(5) == 0 {
			c.Deletes = append(c.Deletes, k)
			continue
		}
		v := make([]byte, rng.IntN(300))
		for i := range v {
			v[i] = byte(rng.Uint32())
		}
		c.Puts = append(c.Puts, statedb.Entry{Key: k, Value: v, TTL: time.Duration(rng.IntN(2)) * time.Hour})
	}
	for i := range 30 {
		c.IDs = append(c.IDs, fmt.Sprintf("evt-%d-%d", offset, i))
	}
	for range 5 {
		k := fmt.Sprintf("w%d", rng.IntN(20))
		if rng.IntN(3) == 0 {
			c.ClearTimers = append(c.ClearTimers, k)
		} else {
			c.SetTimers = append(c.SetTimers, statedb.Timer{Key: k, Due: 1_700_000_000_000 + rng.Int64N(1e6)})
		}
	}
	// Apply to the model as the contract says: deletes, then puts; clears,
	// then sets.
	for _, k := range c.Deletes {
		delete(m.values, k)
	}
	for _, e := range c.Puts {
		m.values[e.Key] = e.Value
	}
	m.ids = append(m.ids, c.IDs...)
	for _, k := range c.ClearTimers {
		delete(m.timers, k)
	}
	for _, tm := range c.SetTimers {
		m.timers[tm.Key] = tm.Due
	}
	m.offset, m.meta = c.Offset, c.Meta
	return c
}

// diff returns how the store's partition p (and the claim on it) differ
// from m.
func diff(t *testing.T, st statedb.Store, p statedb.Partition, c statedb.Claim, m *model) []error {
	t.Helper()
	var errs []error
	if c.Offset != m.offset || !bytes.Equal(c.Meta, m.meta) {
		errs = append(errs, fmt.Errorf("claim offset %d meta %q, want %d %q", c.Offset, c.Meta, m.offset, m.meta))
	}
	var keys []string
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	got, err := st.Load(t.Context(), p, keys)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, k := range keys {
		w, wok := m.values[k]
		g, gok := got[k]
		if wok != gok || !bytes.Equal(w, g) {
			errs = append(errs, fmt.Errorf("key %s: present %v (%d bytes), want present %v (%d bytes)", k, gok, len(g), wok, len(w)))
		}
	}
	seen, err := st.Seen(t.Context(), p, m.ids)
	if err != nil {
		t.Fatalf("Seen: %v", err)
	}
	for _, id := range m.ids {
		if !seen[id] {
			errs = append(errs, fmt.Errorf("id %s not seen", id))
		}
	}
	due, err := st.Due(t.Context(), p, "", 1<<62, 1000)
	if err != nil {
		t.Fatalf("Due: %v", err)
	}
	var want []statedb.Timer
	for k, d := range m.timers {
		want = append(want, statedb.Timer{Key: k, Due: d})
	}
	slices.SortFunc(want, func(a, b statedb.Timer) int {
		if a.Due != b.Due {
			return int(a.Due - b.Due)
		}
		if a.Key < b.Key {
			return -1
		}
		return 1
	})
	if !slices.Equal(due, want) {
		errs = append(errs, fmt.Errorf("timers %v, want %v", due, want))
	}
	return errs
}
