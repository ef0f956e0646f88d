package statedbtest

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/eddy-streams/eddy/statedb"
)

// inspectCases check the statedb.Inspector contract. They exist only when
// the stores newStore returns implement statedb.Inspector; one store is
// made (and cleaned up with t) to find out.
func (s *suite) inspectCases(t *testing.T) []testCase {
	t.Helper()
	if _, ok := s.newStore(t).(statedb.Inspector); !ok {
		return nil
	}
	cases := []testCase{
		{"a never-acquired partition has epoch 0, NoOffset and nil meta", func(t *testing.T) {
			st := s.newStore(t)
			wantInspect(t, st, part("orders", 0), statedb.Claim{Epoch: 0, Offset: statedb.NoOffset})
			// Nor does another partition's commit make it appear.
			c := acquire(t, st, part("orders", 1))
			commit(t, st, &statedb.Commit{Partition: part("orders", 1), Epoch: c.Epoch, Offset: 7, Meta: []byte("m")})
			wantInspect(t, st, part("orders", 0), statedb.Claim{Epoch: 0, Offset: statedb.NoOffset})
		}},
		{"an acquired partition without commits has its epoch and NoOffset", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 2)
			c := acquire(t, st, p)
			wantInspect(t, st, p, statedb.Claim{Epoch: c.Epoch, Offset: statedb.NoOffset})
		}},
		{"Inspect returns the last commit's offset and meta, and empty meta as nil", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 3)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 41, Meta: []byte{0, 'w', 0xff},
				Puts: []statedb.Entry{{Key: "a", Value: []byte("1")}}, IDs: []string{"e1"}})
			wantInspect(t, st, p, statedb.Claim{Epoch: c.Epoch, Offset: 41, Meta: []byte{0, 'w', 0xff}})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 99, Meta: []byte{}})
			wantInspect(t, st, p, statedb.Claim{Epoch: c.Epoch, Offset: 99})
			// A fenced commit changes nothing Inspect sees.
			c2 := acquire(t, st, p)
			wantFenced(t, st.Commit(ctx(t), &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 500, Meta: []byte("zombie")}))
			wantInspect(t, st, p, statedb.Claim{Epoch: c2.Epoch, Offset: 99})
		}},
		{"Inspect does not bump the epoch: the owner's next commit succeeds", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 4)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 10})
			for range 3 {
				wantInspect(t, st, p, statedb.Claim{Epoch: c.Epoch, Offset: 10})
			}
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 11, Meta: []byte("m11")})
			wantInspect(t, st, p, statedb.Claim{Epoch: c.Epoch, Offset: 11, Meta: []byte("m11")})
			// The next claim is the very next epoch: Inspect took none.
			next := acquire(t, st, p)
			if next.Epoch != c.Epoch+1 {
				t.Errorf("Acquire after 4 Inspects: epoch %d, want %d (Inspect must not bump it)", next.Epoch, c.Epoch+1)
			}
			if next.Offset != 11 || !bytes.Equal(next.Meta, []byte("m11")) {
				t.Errorf("Acquire after Inspect: offset %d meta %s, want 11 and \"m11\"", next.Offset, show(next.Meta))
			}
		}},
		{"partitions and look-alike topics are inspected apart", func(t *testing.T) {
			st := s.newStore(t)
			ps := []statedb.Partition{part("orders", 0), part("orders", 1), part("orders-2", 0), part("Orders", 0), part("orders:0", 0)}
			epochs := map[statedb.Partition]int64{}
			for i, p := range ps {
				c := acquire(t, st, p)
				epochs[p] = c.Epoch
				commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: int64(100 * (i + 1)), Meta: []byte(p.String())})
			}
			for i, p := range ps {
				wantInspect(t, st, p, statedb.Claim{Epoch: epochs[p], Offset: int64(100 * (i + 1)), Meta: []byte(p.String())})
			}
		}},
		{"Inspect during commits sees whole commits only, in order", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 5)
			c := acquire(t, st, p)
			const commits = 50
			in := st.(statedb.Inspector)
			rctx := ctx(t)
			var wg sync.WaitGroup
			errs := make(chan string, 4)
			stop := make(chan struct{})
			for range 2 {
				wg.Go(func() {
					last := statedb.NoOffset
					for {
						select {
						case <-stop:
							return
						default:
						}
						got, err := in.Inspect(rctx, p)
						if err != nil {
							errs <- "Inspect: " + err.Error()
							return
						}
						// Each commit's meta names its offset: a torn read
						// would mix two commits.
						if got.Offset != statedb.NoOffset && string(got.Meta) != metaOf(got.Offset) {
							errs <- "offset " + metaOf(got.Offset) + " with meta " + show(got.Meta) + ": a torn read"
							return
						}
						if got.Offset < last || got.Epoch != c.Epoch {
							errs <- "offset went back or epoch moved: " + metaOf(got.Offset) + " after " + metaOf(last)
							return
						}
						last = got.Offset
					}
				})
			}
			for i := range int64(commits) {
				commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: i, Meta: []byte(metaOf(i)),
					Puts: []statedb.Entry{{Key: "k", Value: []byte(metaOf(i))}}})
			}
			close(stop)
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			wantInspect(t, st, p, statedb.Claim{Epoch: c.Epoch, Offset: commits - 1, Meta: []byte(metaOf(commits - 1))})
		}},
		{"Inspect of a canceled context fails", func(t *testing.T) {
			st := s.newStore(t)
			cctx, cancel := context.WithCancel(ctx(t))
			cancel()
			if _, err := st.(statedb.Inspector).Inspect(cctx, part("orders", 0)); err == nil {
				t.Error("Inspect with a canceled context: no error")
			}
		}},
		{"a reopened store inspects the same", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 6)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 12, Meta: []byte("m12")})
			st = s.reopen(t, st)
			wantInspect(t, st, p, statedb.Claim{Epoch: c.Epoch, Offset: 12, Meta: []byte("m12")})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 13})
		}},
	}
	if s.cfg.roundTrips != nil {
		cases = append(cases, testCase{"Inspect is one round trip", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 7)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 3, Meta: []byte("m")})
			for pass := range 2 { // the first pass warms up
				before := s.cfg.roundTrips()
				wantInspect(t, st, p, statedb.Claim{Epoch: c.Epoch, Offset: 3, Meta: []byte("m")})
				if n := s.cfg.roundTrips() - before; pass == 1 && n != 1 {
					t.Errorf("Inspect took %d round trips, want 1", n)
				}
			}
		}})
	}
	return cases
}

// metaOf is the meta of the commit of offset off in the concurrency case.
func metaOf(off int64) string { return "offset=" + strconv.FormatInt(off, 10) }

// wantInspect checks that Inspect(p) returns exactly want.
func wantInspect(t *testing.T, st statedb.Store, p statedb.Partition, want statedb.Claim) {
	t.Helper()
	got, err := st.(statedb.Inspector).Inspect(ctx(t), p)
	if err != nil {
		t.Fatalf("Inspect(%v): %v", p, err)
	}
	if got.Epoch != want.Epoch || got.Offset != want.Offset || !bytes.Equal(got.Meta, want.Meta) ||
		(got.Meta == nil) != (want.Meta == nil) {
		t.Errorf("Inspect(%v) = {epoch %d, offset %d, meta %s}, want {epoch %d, offset %d, meta %s}",
			p, got.Epoch, got.Offset, show(got.Meta), want.Epoch, want.Offset, show(want.Meta))
	}
}
