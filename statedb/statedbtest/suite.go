package statedbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// Option configures Run and Bench.
type Option func(*config)

type config struct {
	reopen     func(t *testing.T, old statedb.Store) statedb.Store
	advance    func(d time.Duration)
	roundTrips func() int64
}

// WithReopen gives Run a way to reopen a store between commits, to prove
// that nothing committed is lost. reopen receives the store in use and
// returns the one to continue with: the same instance for an in-process
// backend; a fresh client after closing the old one (and, if the test
// controls the server, after killing and restarting it) for a networked one.
// reopen owns the old store: it closes it if it returns another one, and
// registers the cleanup of the new one. Without this option the reopen
// subtests run against the same instance.
func WithReopen(reopen func(t *testing.T, old statedb.Store) statedb.Store) Option {
	return func(c *config) { c.reopen = reopen }
}

// WithClock tells Run that the backend's clock is fake and is moved forward
// by advance. The TTL subtests then call advance instead of sleeping and
// check expiry to the millisecond. advance must move the clock of every
// store newStore returns, and be safe for concurrent use.
func WithClock(advance func(d time.Duration)) Option {
	return func(c *config) { c.advance = advance }
}

// WithRoundTrips gives Run and Bench a counter of the network round trips
// the backend made (for example a go-redis hook counting commands and
// pipelines). Run then checks that Acquire, Load, Seen, Due, Commit and Ping
// each cost exactly one round trip once warm, and Bench reports
// roundtrips/op. The counter must be safe for concurrent use and count the
// round trips of every store newStore returns.
func WithRoundTrips(counter func() int64) Option {
	return func(c *config) { c.roundTrips = counter }
}

func buildConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Run checks the statedb.Store contract against one backend, as subtests
// whose names read as the contract.
//
// newStore must return a store over a fresh, empty namespace that no other
// call of newStore shares, and register its Close (and the removal of its
// data, if any) with t.Cleanup. Subtests run one after the other; a few of
// them use the store from several goroutines at once. With the default
// options Run takes a few seconds, most of it waiting for 1.5 s TTLs to
// expire on the backend's own clock.
func Run(t *testing.T, newStore func(t *testing.T) statedb.Store, opts ...Option) {
	s := &suite{cfg: buildConfig(opts), newStore: newStore}
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Acquire", s.acquireCases()},
		{"Commit", s.commitCases()},
		{"Load", s.loadCases()},
		{"Keys", s.keyCases()},
		{"TTL", s.ttlCases()},
		{"Timers", s.timerCases()},
		{"Isolation", s.isolationCases()},
		{"Concurrency", s.concurrencyCases()},
		{"Reopen", s.reopenCases()},
		{"RoundTrips", s.roundTripCases()},
		{"Inspect", s.inspectCases(t)}, // only for stores that implement statedb.Inspector
	}
	for _, g := range groups {
		if len(g.cases) == 0 {
			continue // an optional group whose option was not given
		}
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, c.run)
			}
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T)
}

type suite struct {
	cfg      config
	newStore func(t *testing.T) statedb.Store
}

// reopen returns the store to continue with after a restart of old.
func (s *suite) reopen(t *testing.T, old statedb.Store) statedb.Store {
	t.Helper()
	if s.cfg.reopen == nil {
		return old
	}
	st := s.cfg.reopen(t, old)
	if st == nil {
		t.Fatal("reopen returned a nil store")
	}
	return st
}

// part names partition p of topic.
func part(topic string, p int32) statedb.Partition {
	return statedb.Partition{Topic: topic, Partition: p}
}

// ctx is the context of a test's calls; it ends with the test.
func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func acquire(t *testing.T, st statedb.Store, p statedb.Partition) statedb.Claim {
	t.Helper()
	c, err := st.Acquire(ctx(t), p)
	if err != nil {
		t.Fatalf("Acquire(%v): %v", p, err)
	}
	return c
}

func commit(t *testing.T, st statedb.Store, c *statedb.Commit) {
	t.Helper()
	if err := st.Commit(ctx(t), c); err != nil {
		t.Fatalf("Commit(%v, epoch %d, offset %d): %v", c.Partition, c.Epoch, c.Offset, err)
	}
}

func load(t *testing.T, st statedb.Store, p statedb.Partition, keys ...string) map[string][]byte {
	t.Helper()
	m, err := st.Load(ctx(t), p, keys)
	if err != nil {
		t.Fatalf("Load(%v, %d keys): %v", p, len(keys), err)
	}
	if m == nil && len(keys) > 0 {
		t.Fatalf("Load(%v, %d keys) returned a nil map", p, len(keys))
	}
	return m
}

func seen(t *testing.T, st statedb.Store, p statedb.Partition, ids ...string) map[string]bool {
	t.Helper()
	m, err := st.Seen(ctx(t), p, ids)
	if err != nil {
		t.Fatalf("Seen(%v, %d ids): %v", p, len(ids), err)
	}
	return m
}

func due(t *testing.T, st statedb.Store, p statedb.Partition, until int64, limit int) []statedb.Timer {
	t.Helper()
	return dueUnder(t, st, p, "", until, limit)
}

func dueUnder(t *testing.T, st statedb.Store, p statedb.Partition, prefix string, until int64, limit int) []statedb.Timer {
	t.Helper()
	ts, err := st.Due(ctx(t), p, prefix, until, limit)
	if err != nil {
		t.Fatalf("Due(%v, prefix %q, until %d, limit %d): %v", p, prefix, until, limit, err)
	}
	return ts
}

func wantDueUnder(t *testing.T, st statedb.Store, p statedb.Partition, prefix string, until int64, limit int, want []statedb.Timer) {
	t.Helper()
	got := dueUnder(t, st, p, prefix, until, limit)
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("Due(%v, prefix %q, until %d, limit %d) = %v, want %v", p, prefix, until, limit, got, want)
	}
}

// wantLoad checks that Load of keys returns exactly want: the keys in want
// with byte-exact values, and no other key.
func wantLoad(t *testing.T, st statedb.Store, p statedb.Partition, keys []string, want map[string][]byte) {
	t.Helper()
	got := load(t, st, p, keys...)
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case wok && !gok:
			t.Errorf("Load(%v): key %q missing, want %s", p, k, show(w))
		case !wok && gok:
			t.Errorf("Load(%v): key %q = %s, want absent", p, k, show(g))
		case wok && !bytes.Equal(g, w):
			t.Errorf("Load(%v): key %q = %s, want %s", p, k, show(g), show(w))
		}
	}
	for k := range got {
		if !slices.Contains(keys, k) {
			t.Errorf("Load(%v): returned key %q that was not asked for", p, k)
		}
	}
}

// wantSeen checks that Seen reports exactly the ids in yes and none in no.
func wantSeen(t *testing.T, st statedb.Store, p statedb.Partition, yes, no []string) {
	t.Helper()
	got := seen(t, st, p, append(slices.Clone(yes), no...)...)
	for _, id := range yes {
		if !got[id] {
			t.Errorf("Seen(%v): id %q not seen, want seen", p, id)
		}
	}
	for _, id := range no {
		if got[id] {
			t.Errorf("Seen(%v): id %q seen, want not seen", p, id)
		}
	}
}

// wantDue checks that Due returns exactly want, in order.
func wantDue(t *testing.T, st statedb.Store, p statedb.Partition, until int64, limit int, want []statedb.Timer) {
	t.Helper()
	got := due(t, st, p, until, limit)
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("Due(%v, until %d, limit %d) = %v, want %v", p, until, limit, got, want)
	}
}

// wantClaim acquires p and checks the claim's offset and meta and that the
// epoch moved past after.
func wantClaim(t *testing.T, st statedb.Store, p statedb.Partition, after int64, offset int64, meta []byte) statedb.Claim {
	t.Helper()
	c := acquire(t, st, p)
	if c.Epoch <= after {
		t.Errorf("Acquire(%v): epoch %d, want > %d", p, c.Epoch, after)
	}
	if c.Offset != offset {
		t.Errorf("Acquire(%v): offset %d, want %d", p, c.Offset, offset)
	}
	if !bytes.Equal(c.Meta, meta) {
		t.Errorf("Acquire(%v): meta %s, want %s", p, show(c.Meta), show(meta))
	}
	return c
}

func wantFenced(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, statedb.ErrFenced) {
		t.Fatalf("Commit with a stale epoch: err = %v, want errors.Is(err, statedb.ErrFenced)", err)
	}
}

// show prints a value for an error message, short.
func show(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) > 40 {
		return fmt.Sprintf("%q... (%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}
