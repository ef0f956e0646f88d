package singlestore

import (
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// expiringCommit writes, to p, n state entries and n IDs that expire after
// ttl, plus one permanent entry, one entry and one ID with a long TTL.
func expiringCommit(p statedb.Partition, epoch, offset int64, n int, ttl time.Duration) *statedb.Commit {
	c := &statedb.Commit{Partition: p, Epoch: epoch, Offset: offset, IDTTL: ttl,
		Puts: []statedb.Entry{{Key: "forever", Value: []byte("f")}, {Key: "long", Value: []byte("l"), TTL: time.Hour}}}
	for _, k := range keysN("short-", n) {
		c.Puts = append(c.Puts, statedb.Entry{Key: k, Value: []byte("s"), TTL: ttl})
		c.IDs = append(c.IDs, k)
	}
	return c
}

func TestSweep(t *testing.T) {
	s := newTestStore(t, Config{SweepBatch: 2}) // five expired rows per table: three batches each
	p := statedb.Partition{Topic: "t", Partition: 0}
	c := mustAcquire(t, s, p)
	const ttl = time.Second
	mustCommit(t, s, expiringCommit(p, c.Epoch, 1, 5, ttl))
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2, IDs: []string{"long-id"}, IDTTL: time.Hour})
	short := keysN("short-", 5)

	if n, err := s.Sweep(testCtx(t)); err != nil || n != 0 {
		t.Fatalf("Sweep before expiry = %d, %v; want 0 rows", n, err)
	}
	if m := mustLoad(t, s, p, short...); len(m) != 5 {
		t.Fatalf("before expiry: %d of 5 short entries loaded", len(m))
	}
	time.Sleep(ttl + 100*time.Millisecond)
	// Reads filter expired rows at once, swept or not.
	wantValues(t, s, p, append(short, "forever", "long"), map[string][]byte{"forever": []byte("f"), "long": []byte("l")})
	if seen, _ := s.Seen(testCtx(t), p, append(short, "long-id")); len(seen) != 1 || !seen["long-id"] {
		t.Errorf("Seen after expiry = %v, want only long-id", seen)
	}
	if n := countRows(t, s, s.t.state); n != 7 {
		t.Errorf("%d state rows before the sweep, want 7 (expired ones still stored)", n)
	}

	n, err := s.Sweep(testCtx(t))
	if err != nil || n != 10 {
		t.Fatalf("Sweep = %d, %v; want the 10 expired rows", n, err)
	}
	if got := countRows(t, s, s.t.state); got != 2 {
		t.Errorf("%d state rows after the sweep, want 2", got)
	}
	if got := countRows(t, s, s.t.ids); got != 1 {
		t.Errorf("%d id rows after the sweep, want 1", got)
	}
	wantValues(t, s, p, []string{"forever", "long"}, map[string][]byte{"forever": []byte("f"), "long": []byte("l")})
}

func TestBackgroundSweep(t *testing.T) {
	dsn := freshDSN(t)
	s, err := New(testCtx(t), Config{DSN: dsn, SweepInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.Close()
		}
	})
	p := statedb.Partition{Topic: "t", Partition: 0}
	c := mustAcquire(t, s, p)
	mustCommit(t, s, expiringCommit(p, c.Epoch, 1, 50, 100*time.Millisecond))

	deadline := time.Now().Add(10 * time.Second)
	for countRows(t, s, s.t.state) != 2 || countRows(t, s, s.t.ids) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("background sweep left %d state rows and %d id rows, want 2 and 0",
				countRows(t, s, s.t.state), countRows(t, s, s.t.ids))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// After Close the sweep is gone: expired rows written through another
	// store (its own sweep off) stay.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	other := newTestStore(t, Config{DSN: dsn})
	c = mustAcquire(t, other, p)
	mustCommit(t, other, expiringCommit(p, c.Epoch, 2, 3, time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	if n := countRows(t, other, other.t.ids); n != 3 {
		t.Errorf("%d expired id rows 300 ms after the sweeping store closed, want 3 (not swept)", n)
	}
}
