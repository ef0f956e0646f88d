package statedbtest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

func (s *suite) isolationCases() []testCase {
	return []testCase{
		{"partitions and topics do not share state", func(t *testing.T) {
			st := s.newStore(t)
			// Topics that a naive key encoding would confuse with each
			// other or with the separators.
			parts := []statedb.Partition{
				part("orders", 0), part("orders", 1), part("orders", 10), part("orders:1", 0),
				part("orders:1", 1), part("payments", 0), part("{orders}", 0), part("orders}", 1),
				part("{", 0), part("o:rs", 0), part("o%3Ars", 0), part("o%3ars", 0), part("Orders", 0),
				part("orders ", 0), part("ördérs", 0),
			}
			claims := make([]statedb.Claim, len(parts))
			// Claim all first: claiming one partition fences no other.
			for i, p := range parts {
				claims[i] = acquire(t, st, p)
			}
			for i, p := range parts {
				commit(t, st, &statedb.Commit{Partition: p, Epoch: claims[i].Epoch, Offset: int64(i), Meta: []byte(p.String()),
					Puts:      []statedb.Entry{{Key: "k", Value: []byte(p.String())}},
					IDs:       []string{"id-" + p.String()},
					SetTimers: []statedb.Timer{{Key: "t", Due: int64(i)}}})
			}
			// One partition's delete and timer clear touch no other.
			commit(t, st, &statedb.Commit{Partition: parts[0], Epoch: claims[0].Epoch, Offset: 0, Meta: []byte(parts[0].String()),
				Deletes: []string{"k"}, ClearTimers: []string{"t"}, IDs: []string{"shared"}})
			for i, p := range parts {
				var ids []string
				for _, q := range parts {
					if q != p {
						ids = append(ids, "id-"+q.String())
					}
				}
				if i == 0 {
					wantLoad(t, st, p, []string{"k"}, nil)
					wantDue(t, st, p, 1000, 10, nil)
					wantSeen(t, st, p, []string{"id-" + p.String(), "shared"}, ids)
				} else {
					wantLoad(t, st, p, []string{"k"}, map[string][]byte{"k": []byte(p.String())})
					wantDue(t, st, p, 1000, 10, []statedb.Timer{{Key: "t", Due: int64(i)}})
					wantSeen(t, st, p, []string{"id-" + p.String()}, append(ids, "shared"))
				}
				wantClaim(t, st, p, claims[i].Epoch, int64(i), []byte(p.String()))
			}
		}},
		{"stores of two namespaces do not share partitions", func(t *testing.T) {
			a, b := s.newStore(t), s.newStore(t)
			p := part("orders", 0)
			ca := acquire(t, a, p)
			commit(t, a, &statedb.Commit{Partition: p, Epoch: ca.Epoch, Offset: 5, Meta: []byte("a"),
				Puts: []statedb.Entry{{Key: "k", Value: []byte("a")}}, IDs: []string{"i"},
				SetTimers: []statedb.Timer{{Key: "t", Due: 1}}})
			wantLoad(t, b, p, []string{"k"}, nil)
			wantSeen(t, b, p, nil, []string{"i"})
			wantDue(t, b, p, 1000, 10, nil)
			cb := wantClaim(t, b, p, 0, statedb.NoOffset, nil)
			// b's claim does not fence a's owner.
			commit(t, a, &statedb.Commit{Partition: p, Epoch: ca.Epoch, Offset: 6, Meta: []byte("a2")})
			commit(t, b, &statedb.Commit{Partition: p, Epoch: cb.Epoch, Offset: 100, Meta: []byte("b")})
			wantClaim(t, a, p, ca.Epoch, 6, []byte("a2"))
		}},
	}
}

func (s *suite) concurrencyCases() []testCase {
	return []testCase{
		{"16 partitions commit concurrently without interfering", func(t *testing.T) {
			st := s.newStore(t)
			const parts, rounds, keys = 16, 20, 10
			var wg sync.WaitGroup
			errs := make(chan error, parts)
			for i := range parts {
				wg.Go(func() {
					p := part("orders", int32(i))
					c, err := st.Acquire(ctx(t), p)
					if err != nil {
						errs <- fmt.Errorf("Acquire(%v): %w", p, err)
						return
					}
					for r := range rounds {
						cm := &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: int64(r), Meta: []byte(fmt.Sprint(i, r)),
							IDs: []string{fmt.Sprintf("id-%d-%d", i, r)}, IDTTL: time.Hour,
							SetTimers: []statedb.Timer{{Key: "t", Due: int64(i*1000 + r)}}}
						for k := range keys {
							cm.Puts = append(cm.Puts, statedb.Entry{Key: fmt.Sprint("k", k), Value: fmt.Appendf(nil, "%d/%d/%d", i, r, k)})
						}
						if err := st.Commit(ctx(t), cm); err != nil {
							errs <- fmt.Errorf("Commit(%v, round %d): %w", p, r, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for i := range parts {
				p := part("orders", int32(i))
				want := map[string][]byte{}
				var ks []string
				for k := range keys {
					ks = append(ks, fmt.Sprint("k", k))
					want[fmt.Sprint("k", k)] = fmt.Appendf(nil, "%d/%d/%d", i, rounds-1, k)
				}
				wantLoad(t, st, p, ks, want)
				var yes, no []string
				for r := range rounds {
					yes = append(yes, fmt.Sprintf("id-%d-%d", i, r))
					no = append(no, fmt.Sprintf("id-%d-%d", (i+1)%parts, r))
				}
				wantSeen(t, st, p, yes, no)
				wantDue(t, st, p, 1<<40, 10, []statedb.Timer{{Key: "t", Due: int64(i*1000 + rounds - 1)}})
				wantClaim(t, st, p, 0, rounds-1, []byte(fmt.Sprint(i, rounds-1)))
			}
		}},
		{"two owners racing on one partition: only the newest epoch wins", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			for round := range 30 {
				var claims [2]statedb.Claim
				var errs [2]error
				var wg sync.WaitGroup
				for o := range 2 {
					wg.Go(func() { claims[o], errs[o] = st.Acquire(ctx(t), p) })
				}
				wg.Wait()
				for o := range 2 {
					if errs[o] != nil {
						t.Fatalf("round %d: Acquire by owner %d: %v", round, o, errs[o])
					}
				}
				if claims[0].Epoch == claims[1].Epoch {
					t.Fatalf("round %d: two concurrent claims got the same epoch %d", round, claims[0].Epoch)
				}
				for o := range 2 {
					wg.Go(func() {
						errs[o] = st.Commit(ctx(t), &statedb.Commit{Partition: p, Epoch: claims[o].Epoch,
							Offset: int64(round*10 + o), Puts: []statedb.Entry{{Key: "k", Value: fmt.Appendf(nil, "%d/%d", round, o)}},
							IDs: []string{fmt.Sprintf("id-%d-%d", round, o)}})
					})
				}
				wg.Wait()
				win, lose := 0, 1
				if claims[1].Epoch > claims[0].Epoch {
					win, lose = 1, 0
				}
				if errs[win] != nil {
					t.Fatalf("round %d: the newest owner's commit failed: %v", round, errs[win])
				}
				if !errors.Is(errs[lose], statedb.ErrFenced) {
					t.Fatalf("round %d: the older owner's commit: err = %v, want ErrFenced", round, errs[lose])
				}
				wantLoad(t, st, p, []string{"k"}, map[string][]byte{"k": fmt.Appendf(nil, "%d/%d", round, win)})
				wantSeen(t, st, p, []string{fmt.Sprintf("id-%d-%d", round, win)}, []string{fmt.Sprintf("id-%d-%d", round, lose)})
			}
		}},
		{"a new owner sees exactly the last commit its fenced predecessor made", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			old := acquire(t, st, p)
			var done atomic.Int64 // commits made by the old owner
			lastOK := int64(statedb.NoOffset)
			var oldErr error
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				for off := int64(0); off < 100_000; off++ {
					err := st.Commit(ctx(t), &statedb.Commit{Partition: p, Epoch: old.Epoch, Offset: off,
						Puts: []statedb.Entry{{Key: "k", Value: fmt.Append(nil, off)}}})
					if errors.Is(err, statedb.ErrFenced) {
						return
					}
					if err != nil {
						oldErr = err
						return
					}
					lastOK = off
					done.Add(1)
				}
			}()
			for done.Load() < 20 {
				select {
				case <-finished:
					t.Fatalf("old owner stopped after %d commits: %v", done.Load(), oldErr)
				case <-time.After(time.Millisecond):
				}
			}
			newer := acquire(t, st, p)
			<-finished
			if oldErr != nil {
				t.Fatalf("old owner: %v", oldErr)
			}
			if newer.Offset != lastOK {
				t.Errorf("new owner's claim has offset %d, the fenced owner's last successful commit was %d", newer.Offset, lastOK)
			}
			wantLoad(t, st, p, []string{"k"}, map[string][]byte{"k": fmt.Append(nil, lastOK)})
		}},
	}
}

func (s *suite) reopenCases() []testCase {
	return []testCase{
		{"a reopened store has lost nothing committed", func(t *testing.T) {
			st := s.newStore(t)
			p, q := part("orders", 0), part("orders", 1)
			c := acquire(t, st, p)
			cq := acquire(t, st, q)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 10, Meta: []byte("m10"),
				Puts: []statedb.Entry{{Key: "a", Value: []byte("a1")}, {Key: "b", Value: []byte("b1"), TTL: time.Hour},
					{Key: "gone", Value: []byte("g")}},
				IDs: []string{"i1"}, IDTTL: time.Hour, SetTimers: []statedb.Timer{{Key: "t1", Due: 1}, {Key: "t2", Due: 2}}})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 11, Meta: []byte("m11"),
				Deletes: []string{"gone"}, IDs: []string{"i2"}, ClearTimers: []string{"t2"}})
			commit(t, st, &statedb.Commit{Partition: q, Epoch: cq.Epoch, Offset: 3, Puts: []statedb.Entry{{Key: "a", Value: []byte("qa")}}})

			st = s.reopen(t, st)
			c2 := wantClaim(t, st, p, c.Epoch, 11, []byte("m11"))
			wantLoad(t, st, p, []string{"a", "b", "gone"}, map[string][]byte{"a": []byte("a1"), "b": []byte("b1")})
			wantSeen(t, st, p, []string{"i1", "i2"}, []string{"i3"})
			wantDue(t, st, p, 100, 10, []statedb.Timer{{Key: "t1", Due: 1}})
			wantLoad(t, st, q, []string{"a"}, map[string][]byte{"a": []byte("qa")})
			// Fencing survives the reopen.
			wantFenced(t, st.Commit(ctx(t), &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 99,
				Puts: []statedb.Entry{{Key: "a", Value: []byte("zombie")}}}))
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c2.Epoch, Offset: 20, Meta: []byte("m20"),
				Puts: []statedb.Entry{{Key: "a", Value: []byte("a2")}}, IDs: []string{"i3"}, SetTimers: []statedb.Timer{{Key: "t3", Due: 3}}})

			st = s.reopen(t, st)
			c3 := wantClaim(t, st, p, c2.Epoch, 20, []byte("m20"))
			wantLoad(t, st, p, []string{"a", "b", "gone"}, map[string][]byte{"a": []byte("a2"), "b": []byte("b1")})
			wantSeen(t, st, p, []string{"i1", "i2", "i3"}, nil)
			wantDue(t, st, p, 100, 10, []statedb.Timer{{Key: "t1", Due: 1}, {Key: "t3", Due: 3}})
			wantFenced(t, st.Commit(ctx(t), &statedb.Commit{Partition: p, Epoch: c2.Epoch, Offset: 99}))
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c3.Epoch, Offset: 21})
			wantClaim(t, st, q, cq.Epoch, 3, nil)
		}},
	}
}

// roundTripCases exist only with WithRoundTrips.
func (s *suite) roundTripCases() []testCase {
	if s.cfg.roundTrips == nil {
		return nil
	}
	return []testCase{
		{"each method is one round trip, whatever the number of keys", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			var c statedb.Claim
			big := &statedb.Commit{Partition: p, Offset: 1, IDTTL: time.Hour}
			var keys, ids []string
			for i := range 1000 {
				k := fmt.Sprint("key-", i)
				keys = append(keys, k)
				ids = append(ids, fmt.Sprint("id-", i))
				big.Puts = append(big.Puts, statedb.Entry{Key: k, Value: []byte(k), TTL: time.Duration(i%2) * time.Hour})
				if i%10 == 0 {
					big.Deletes = append(big.Deletes, fmt.Sprint("del-", i))
					big.SetTimers = append(big.SetTimers, statedb.Timer{Key: k, Due: int64(i)})
					big.ClearTimers = append(big.ClearTimers, fmt.Sprint("key-", i+1))
				}
			}
			big.IDs = ids
			ops := []struct {
				name string
				op   func() error
			}{
				{"Acquire", func() (err error) { c, err = st.Acquire(ctx(t), p); return err }},
				{"Commit of 1000 entries, 1000 IDs, 100 deletes and 200 timer changes", func() error {
					big.Epoch = c.Epoch
					return st.Commit(ctx(t), big)
				}},
				{"Load of 1000 keys", func() error { _, err := st.Load(ctx(t), p, keys); return err }},
				{"Seen of 1000 IDs", func() error { _, err := st.Seen(ctx(t), p, ids); return err }},
				{"Due", func() error { _, err := st.Due(ctx(t), p, "", 1<<40, 100); return err }},
				{"fenced Commit", func() error {
					err := st.Commit(ctx(t), &statedb.Commit{Partition: p, Epoch: c.Epoch - 1, Offset: 2, Puts: big.Puts})
					if errors.Is(err, statedb.ErrFenced) {
						return nil
					}
					return fmt.Errorf("want ErrFenced, got %w", err)
				}},
				{"Ping", func() error { return st.Ping(ctx(t)) }},
			}
			for pass := range 2 { // the first pass warms up (loads scripts, dials)
				for _, o := range ops {
					before := s.cfg.roundTrips()
					if err := o.op(); err != nil {
						t.Fatalf("%s: %v", o.name, err)
					}
					if n := s.cfg.roundTrips() - before; pass == 1 && n != 1 {
						t.Errorf("%s took %d round trips, want 1", o.name, n)
					}
				}
			}
		}},
	}
}
