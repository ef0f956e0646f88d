package statedbtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

func (s *suite) acquireCases() []testCase {
	return []testCase{
		{"a new partition starts at NoOffset with nil meta and a positive epoch", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			if c.Epoch < 1 {
				t.Errorf("epoch %d, want >= 1", c.Epoch)
			}
			if c.Offset != statedb.NoOffset {
				t.Errorf("offset %d, want NoOffset (%d)", c.Offset, statedb.NoOffset)
			}
			if c.Meta != nil {
				t.Errorf("meta %s, want nil", show(c.Meta))
			}
			// A second claim without any commit still finds nothing.
			wantClaim(t, st, p, c.Epoch, statedb.NoOffset, nil)
		}},
		{"each claim bumps the epoch strictly and returns the last commit's offset and meta", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 3)
			prev := acquire(t, st, p)
			for i := range 5 {
				off := int64(100 + i)
				meta := []byte{byte(i), 0, 0xff, ':'}
				commit(t, st, &statedb.Commit{Partition: p, Epoch: prev.Epoch, Offset: off, Meta: meta})
				prev = wantClaim(t, st, p, prev.Epoch, off, meta)
			}
			// Claims without commits in between still bump.
			for range 3 {
				prev = wantClaim(t, st, p, prev.Epoch, 104, []byte{4, 0, 0xff, ':'})
			}
		}},
		{"Ping answers", func(t *testing.T) {
			st := s.newStore(t)
			if err := st.Ping(ctx(t)); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
}

// fixture is one commit's worth of everything, used to check that a commit
// is visible as a whole and that a failed one changed nothing.
type fixture struct {
	p      statedb.Partition
	keys   []string // every key the fixtures touch
	ids    []string // every id the fixtures record
	before map[string][]byte
}

func (s *suite) commitCases() []testCase {
	return []testCase{
		{"entries, IDs, timers, offset and meta of one commit are visible together", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 1)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{
				Partition: p, Epoch: c.Epoch, Offset: 41, Meta: []byte("wm=1000"),
				Puts: []statedb.Entry{
					{Key: "a", Value: []byte("1")},
					{Key: "b", Value: []byte("22"), TTL: time.Hour},
					{Key: "c", Value: []byte{0, 1, 2}},
				},
				IDs: []string{"e1", "e2", "e3"}, IDTTL: time.Hour,
				SetTimers: []statedb.Timer{{Key: "w1", Due: 2000}, {Key: "w2", Due: 1000}},
			})
			wantLoad(t, st, p, []string{"a", "b", "c", "d"}, map[string][]byte{
				"a": []byte("1"), "b": []byte("22"), "c": {0, 1, 2},
			})
			wantSeen(t, st, p, []string{"e1", "e2", "e3"}, []string{"e4", "a", "w1"})
			wantDue(t, st, p, 5000, 10, []statedb.Timer{{Key: "w2", Due: 1000}, {Key: "w1", Due: 2000}})
			wantClaim(t, st, p, c.Epoch, 41, []byte("wm=1000"))
		}},
		{"IDs recorded with IDTTL 0 are kept", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 1)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, IDs: []string{"forever"}})
			wantSeen(t, st, p, []string{"forever"}, []string{"never"})
		}},
		{"a commit with nothing but an offset moves only the offset and meta", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 2)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 7, Meta: []byte("m1"),
				Puts: []statedb.Entry{{Key: "k", Value: []byte("v")}}, IDs: []string{"i"},
				SetTimers: []statedb.Timer{{Key: "t", Due: 5}}})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 8, Meta: []byte("m2")})
			wantLoad(t, st, p, []string{"k"}, map[string][]byte{"k": []byte("v")})
			wantSeen(t, st, p, []string{"i"}, nil)
			wantDue(t, st, p, 5, 10, []statedb.Timer{{Key: "t", Due: 5}})
			c = wantClaim(t, st, p, c.Epoch, 8, []byte("m2"))
			// A commit without meta leaves the next claim's meta empty.
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 9})
			wantClaim(t, st, p, c.Epoch, 9, nil)
		}},
		{"a stale epoch is ErrFenced and changes nothing", func(t *testing.T) {
			st := s.newStore(t)
			f := s.setupFenceFixture(t, st)
			old := acquire(t, st, f.p)
			newer := acquire(t, st, f.p)
			// The newer owner has not committed yet: the old one is fenced
			// all the same.
			wantFenced(t, st.Commit(ctx(t), f.spoiler(old.Epoch)))
			f.check(t, st)
			commit(t, st, &statedb.Commit{Partition: f.p, Epoch: newer.Epoch, Offset: 50, Meta: []byte("newer")})
			wantFenced(t, st.Commit(ctx(t), f.spoiler(old.Epoch)))
			f.wantUnchanged(t, st, 50, []byte("newer"))
		}},
		{"an epoch that was never acquired is rejected and changes nothing", func(t *testing.T) {
			st := s.newStore(t)
			// A partition never claimed: epoch 0 and 1 are not its epoch.
			fresh := part("orders", 9)
			for _, e := range []int64{0, 1} {
				if err := st.Commit(ctx(t), &statedb.Commit{Partition: fresh, Epoch: e, Offset: 5,
					Puts: []statedb.Entry{{Key: "k", Value: []byte("v")}}, IDs: []string{"i"}}); err == nil {
					t.Errorf("Commit on a never acquired partition with epoch %d succeeded, want an error", e)
				}
			}
			wantLoad(t, st, fresh, []string{"k"}, nil)
			wantSeen(t, st, fresh, nil, []string{"i"})
			wantClaim(t, st, fresh, 0, statedb.NoOffset, nil)

			// A claimed partition: an epoch from the future is not current.
			f := s.setupFenceFixture(t, st)
			c := acquire(t, st, f.p)
			if err := st.Commit(ctx(t), f.spoiler(c.Epoch+1)); err == nil {
				t.Errorf("Commit with epoch %d while the current one is %d succeeded, want an error", c.Epoch+1, c.Epoch)
			}
			f.wantUnchanged(t, st, f.offset(), f.meta())
		}},
		{"a canceled context fails the commit and changes nothing", func(t *testing.T) {
			st := s.newStore(t)
			f := s.setupFenceFixture(t, st)
			c := acquire(t, st, f.p)
			cctx, cancel := context.WithCancel(ctx(t))
			cancel()
			err := st.Commit(cctx, f.spoiler(c.Epoch))
			if err == nil {
				t.Fatal("Commit with a canceled context succeeded, want an error")
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Commit with a canceled context: err = %v, want errors.Is(err, context.Canceled)", err)
			}
			f.wantUnchanged(t, st, f.offset(), f.meta())
		}},
		{"deletes remove entries and deleting a missing key is harmless", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 4)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Puts: []statedb.Entry{
				{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "c", Value: []byte("3"), TTL: time.Hour},
			}})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2,
				Deletes: []string{"a", "c", "never-written"}})
			wantLoad(t, st, p, []string{"a", "b", "c", "never-written"}, map[string][]byte{"b": []byte("2")})
			// A deleted key can be written again.
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 3,
				Puts: []statedb.Entry{{Key: "a", Value: []byte("again")}}})
			wantLoad(t, st, p, []string{"a", "b", "c"}, map[string][]byte{"a": []byte("again"), "b": []byte("2")})
		}},
		{"a key both deleted and put in one commit ends up put", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 4)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1,
				Puts: []statedb.Entry{{Key: "a", Value: []byte("old")}}})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2,
				Puts: []statedb.Entry{{Key: "a", Value: []byte("new")}, {Key: "b", Value: []byte("b")}}, Deletes: []string{"a", "b"}})
			wantLoad(t, st, p, []string{"a", "b"}, map[string][]byte{"a": []byte("new"), "b": []byte("b")})
		}},
		{"a large commit (600 to 1000 of each kind) is applied whole", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 6)
			c := acquire(t, st, p)
			first := &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1}
			for i := range 1000 {
				first.Puts = append(first.Puts, statedb.Entry{Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint("old", i))})
				first.SetTimers = append(first.SetTimers, statedb.Timer{Key: fmt.Sprint("t", i), Due: int64(i)})
			}
			commit(t, st, first)
			second := &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2, IDTTL: time.Hour}
			want := map[string][]byte{}
			var keys, ids []string
			var timers []statedb.Timer
			for i := range 1000 {
				k := fmt.Sprint("k", i)
				keys = append(keys, k)
				switch {
				case i < 600: // deleted
					second.Deletes = append(second.Deletes, k)
				case i < 700: // kept
					want[k] = []byte(fmt.Sprint("old", i))
				default: // rewritten, every third with a TTL
					want[k] = []byte(fmt.Sprint("new", i))
					second.Puts = append(second.Puts, statedb.Entry{Key: k, Value: want[k], TTL: time.Duration(i%3/2) * time.Hour})
				}
				// 300 puts of fresh keys, partly between the TTL ones.
				if i%10 < 3 {
					fk := fmt.Sprint("fresh", i)
					keys = append(keys, fk)
					want[fk] = []byte(fk)
					second.Puts = append(second.Puts, statedb.Entry{Key: fk, Value: want[fk]})
				}
				if i < 800 {
					ids = append(ids, fmt.Sprint("id", i))
				}
				tk := fmt.Sprint("t", i)
				switch {
				case i < 600:
					second.ClearTimers = append(second.ClearTimers, tk)
				case i < 700:
					timers = append(timers, statedb.Timer{Key: tk, Due: int64(i)})
				default:
					second.SetTimers = append(second.SetTimers, statedb.Timer{Key: tk, Due: int64(i) + 1000})
				}
			}
			second.IDs = ids
			for i := 700; i < 1000; i++ {
				timers = append(timers, statedb.Timer{Key: fmt.Sprint("t", i), Due: int64(i) + 1000})
			}
			commit(t, st, second)
			wantLoad(t, st, p, keys, want)
			wantSeen(t, st, p, ids, []string{"id800", "id999"})
			wantDue(t, st, p, 1<<40, 2000, timers)
			wantClaim(t, st, p, c.Epoch, 2, nil)
		}},
		{"a key put twice in one commit keeps the last put", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 4)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Puts: []statedb.Entry{
				{Key: "a", Value: []byte("a1")}, {Key: "b", Value: []byte("b1"), TTL: time.Hour},
				{Key: "a", Value: []byte("a2"), TTL: time.Hour}, {Key: "b", Value: []byte("b2")},
				{Key: "c", Value: []byte("c1")}, {Key: "c", Value: []byte("c2")},
			}})
			wantLoad(t, st, p, []string{"a", "b", "c"}, map[string][]byte{"a": []byte("a2"), "b": []byte("b2"), "c": []byte("c2")})
		}},
		{"a later commit overwrites values", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 5)
			c := acquire(t, st, p)
			for i := range 3 {
				commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: int64(i),
					Puts: []statedb.Entry{{Key: "k", Value: []byte{byte('a' + i)}}}})
			}
			wantLoad(t, st, p, []string{"k"}, map[string][]byte{"k": []byte("c")})
		}},
	}
}

// setupFenceFixture commits a known state to a fresh partition of st
// under its own claim, for checking later that a rejected commit changed
// nothing.
func (s *suite) setupFenceFixture(t *testing.T, st statedb.Store) *fixture {
	t.Helper()
	p := part("fenced", 0)
	c := acquire(t, st, p)
	commit(t, st, &statedb.Commit{
		Partition: p, Epoch: c.Epoch, Offset: 10, Meta: []byte("orig"),
		Puts: []statedb.Entry{
			{Key: "keep", Value: []byte("keep-v")},
			{Key: "del", Value: []byte("del-v")},
			{Key: "over", Value: []byte("over-v"), TTL: time.Hour},
		},
		IDs: []string{"id-orig"}, IDTTL: time.Hour,
		SetTimers: []statedb.Timer{{Key: "t-keep", Due: 100}, {Key: "t-clear", Due: 200}, {Key: "t-move", Due: 300}},
	})
	return &fixture{
		p:    p,
		keys: []string{"keep", "del", "over", "new"},
		ids:  []string{"id-orig", "id-new"},
		before: map[string][]byte{
			"keep": []byte("keep-v"), "del": []byte("del-v"), "over": []byte("over-v"),
		},
	}
}

func (f *fixture) offset() int64 { return 10 }
func (f *fixture) meta() []byte  { return []byte("orig") }

// spoiler is a commit that would change every part of the fixture.
func (f *fixture) spoiler(epoch int64) *statedb.Commit {
	return &statedb.Commit{
		Partition: f.p, Epoch: epoch, Offset: 999, Meta: []byte("spoiled"),
		Puts:        []statedb.Entry{{Key: "over", Value: []byte("spoiled")}, {Key: "new", Value: []byte("spoiled")}},
		Deletes:     []string{"del"},
		IDs:         []string{"id-new"},
		IDTTL:       time.Hour,
		SetTimers:   []statedb.Timer{{Key: "t-move", Due: 1}, {Key: "t-new", Due: 2}},
		ClearTimers: []string{"t-clear"},
	}
}

// check verifies entries, IDs and timers of the fixture (not the claim).
func (f *fixture) check(t *testing.T, st statedb.Store) {
	t.Helper()
	wantLoad(t, st, f.p, f.keys, f.before)
	wantSeen(t, st, f.p, []string{"id-orig"}, []string{"id-new"})
	wantDue(t, st, f.p, 1000, 10, []statedb.Timer{{Key: "t-keep", Due: 100}, {Key: "t-clear", Due: 200}, {Key: "t-move", Due: 300}})
}

// wantUnchanged verifies the whole fixture and that the claim still holds
// offset and meta.
func (f *fixture) wantUnchanged(t *testing.T, st statedb.Store, offset int64, meta []byte) {
	t.Helper()
	f.check(t, st)
	wantClaim(t, st, f.p, 0, offset, meta)
}
