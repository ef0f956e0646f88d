package statedbtest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// Bench runs the benchmarks every backend shares, as sub-benchmarks:
//
//   - Commit/entries=N for N = 1, 100 and 1000: one flush of N dirty
//     entries of 100 bytes plus N fresh event IDs (IDTTL 5 s, so the
//     seen-set stays bounded and its trimming is part of the cost);
//   - Load/keys=1000: one batched read of 1000 present keys;
//   - Seen/ids=1000: one duplicate check of 1000 recorded IDs.
//
// Each reports entries/s (keys or IDs per second for the reads) and, with
// WithRoundTrips, roundtrips/op. newStore has the same duties as Run's;
// WithReopen and WithClock are ignored.
func Bench(b *testing.B, newStore func(b *testing.B) statedb.Store, opts ...Option) {
	cfg := buildConfig(opts)
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("Commit/entries=%d", n), func(b *testing.B) { benchCommit(b, cfg, newStore(b), n) })
	}
	b.Run("Load/keys=1000", func(b *testing.B) { benchRead(b, cfg, newStore(b), 1000, false) })
	b.Run("Seen/ids=1000", func(b *testing.B) { benchRead(b, cfg, newStore(b), 1000, true) })
}

func benchCommit(b *testing.B, cfg config, st statedb.Store, n int) {
	p := part("bench", 0)
	c, err := st.Acquire(b.Context(), p)
	if err != nil {
		b.Fatalf("Acquire: %v", err)
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	value := make([]byte, 100)
	cm := &statedb.Commit{Partition: p, Epoch: c.Epoch, IDTTL: 5 * time.Second,
		Puts: make([]statedb.Entry, n), IDs: make([]string, n)}
	flush := func(iter int64) {
		prefix := "evt-" + strconv.FormatInt(iter, 10) + "-"
		for i := range n {
			value[0] = byte(iter)
			cm.Puts[i] = statedb.Entry{Key: keys[i], Value: value}
			cm.IDs[i] = prefix + strconv.Itoa(i)
		}
		cm.Offset = iter
		if err := st.Commit(b.Context(), cm); err != nil {
			b.Fatalf("Commit of %d entries: %v", n, err)
		}
	}
	// One commit outside the measure warms up connections and script
	// caches; its IDs (iteration -1) are distinct from the others.
	flush(-1)
	b.ReportAllocs()
	var iter, before int64
	if cfg.roundTrips != nil {
		before = cfg.roundTrips()
	}
	for b.Loop() {
		flush(iter)
		iter++
	}
	report(b, cfg, before, iter, n)
}

func benchRead(b *testing.B, cfg config, st statedb.Store, n int, ids bool) {
	p := part("bench", 0)
	c, err := st.Acquire(b.Context(), p)
	if err != nil {
		b.Fatalf("Acquire: %v", err)
	}
	keys := make([]string, n)
	cm := &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, IDTTL: time.Hour}
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
		if ids {
			cm.IDs = append(cm.IDs, keys[i])
		} else {
			cm.Puts = append(cm.Puts, statedb.Entry{Key: keys[i], Value: make([]byte, 100)})
		}
	}
	if err := st.Commit(b.Context(), cm); err != nil {
		b.Fatalf("Commit: %v", err)
	}
	read := func() {
		if ids {
			m, err := st.Seen(b.Context(), p, keys)
			if err != nil || !m[keys[n-1]] {
				b.Fatalf("Seen of %d ids: %v (last seen: %v)", n, err, m[keys[n-1]])
			}
		} else {
			m, err := st.Load(b.Context(), p, keys)
			if err != nil || len(m) != n {
				b.Fatalf("Load of %d keys: %v (%d returned)", n, err, len(m))
			}
		}
	}
	read() // warm-up, outside the measure
	b.ReportAllocs()
	var iter, before int64
	if cfg.roundTrips != nil {
		before = cfg.roundTrips()
	}
	for b.Loop() {
		read()
		iter++
	}
	report(b, cfg, before, iter, n)
}

func report(b *testing.B, cfg config, before, iter int64, n int) {
	if iter == 0 {
		return
	}
	if cfg.roundTrips != nil {
		b.ReportMetric(float64(cfg.roundTrips()-before)/float64(iter), "roundtrips/op")
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(iter)*float64(n)/s, "entries/s")
	}
}
