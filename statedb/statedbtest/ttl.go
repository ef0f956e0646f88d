package statedbtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// shortTTL is the TTL the expiry subtests wait for. Short enough to keep
// the suite fast, long enough that a commit and the reads after it finish
// well before it on a loaded machine.
const shortTTL = 1500 * time.Millisecond

// clockSkew is how much earlier than shortTTL after the commit started an
// expiry may be observed: the backend's clock (a database server's) need
// not be the test's.
const clockSkew = 250 * time.Millisecond

func (s *suite) ttlCases() []testCase {
	return []testCase{
		{"entries and IDs expire after their TTL and the others stay", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			start := time.Now()
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1,
				Puts: []statedb.Entry{
					{Key: "short", Value: []byte("s"), TTL: shortTTL},
					{Key: "long", Value: []byte("l"), TTL: time.Hour},
					{Key: "forever", Value: []byte("f")},
					{Key: "made-permanent", Value: []byte("p1"), TTL: shortTTL},
					{Key: "extended", Value: []byte("e1"), TTL: shortTTL},
				},
				IDs: []string{"id-short"}, IDTTL: shortTTL})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2,
				Puts: []statedb.Entry{
					// A put without TTL drops the earlier TTL; a put with a
					// new TTL restarts it.
					{Key: "made-permanent", Value: []byte("p2")},
					{Key: "extended", Value: []byte("e2"), TTL: time.Hour},
				},
				IDs: []string{"id-long"}, IDTTL: time.Hour})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 3,
				IDs: []string{"id-forever"}})

			keys := []string{"short", "long", "forever", "made-permanent", "extended"}
			later := map[string][]byte{
				"long": []byte("l"), "forever": []byte("f"),
				"made-permanent": []byte("p2"), "extended": []byte("e2"),
			}
			all := map[string][]byte{"short": []byte("s")}
			for k, v := range later {
				all[k] = v
			}
			ids := []string{"id-short", "id-long", "id-forever"}

			if s.cfg.advance != nil {
				// Fake clock: expiry to the millisecond.
				s.cfg.advance(shortTTL - time.Millisecond)
				wantLoad(t, st, p, keys, all)
				wantSeen(t, st, p, ids, nil)
				s.cfg.advance(2 * time.Millisecond)
				wantLoad(t, st, p, keys, later)
				wantSeen(t, st, p, ids[1:], ids[:1])
			} else {
				got := load(t, st, p, keys...)
				sn := seen(t, st, p, ids...)
				if el := time.Since(start); el < shortTTL-clockSkew {
					if _, ok := got["short"]; !ok {
						t.Errorf("entry with TTL %v absent %v after the commit began", shortTTL, el)
					}
					if !sn["id-short"] {
						t.Errorf("ID with TTL %v not seen %v after the commit began", shortTTL, el)
					}
				}
				deadline := start.Add(shortTTL + 5*time.Second)
				for {
					got = load(t, st, p, "short")
					sn = seen(t, st, p, "id-short")
					_, entry := got["short"]
					if !entry && !sn["id-short"] {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("TTL %v not honoured after %v: entry present %v, ID seen %v",
							shortTTL, time.Since(start), entry, sn["id-short"])
					}
					time.Sleep(50 * time.Millisecond)
				}
				if el := time.Since(start); el < shortTTL-clockSkew {
					t.Errorf("TTL %v expired too early: gone %v after the commit began", shortTTL, el)
				}
				wantLoad(t, st, p, keys, later)
				wantSeen(t, st, p, ids[1:], ids[:1])
			}
			// An expired key can be written again.
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 4,
				Puts: []statedb.Entry{{Key: "short", Value: []byte("s2")}}})
			wantLoad(t, st, p, []string{"short"}, map[string][]byte{"short": []byte("s2")})
		}},
	}
}

func (s *suite) timerCases() []testCase {
	// Event time in Unix milliseconds, as the runtime uses it.
	const base = int64(1_700_000_000_000)
	return []testCase{
		{"Due returns timers earliest first, up to limit, until inclusive", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, SetTimers: []statedb.Timer{
				{Key: "w50", Due: base + 50}, {Key: "w10", Due: base + 10}, {Key: "w30", Due: base + 30},
				{Key: "w20", Due: base + 20}, {Key: "w40", Due: base + 40}, {Key: "neg", Due: -5},
			}})
			all := []statedb.Timer{{Key: "neg", Due: -5}, {Key: "w10", Due: base + 10}, {Key: "w20", Due: base + 20},
				{Key: "w30", Due: base + 30}, {Key: "w40", Due: base + 40}, {Key: "w50", Due: base + 50}}
			wantDue(t, st, p, base+30, 10, all[:4])
			wantDue(t, st, p, base+30, 2, all[:2])
			wantDue(t, st, p, base+20, 2, all[:2])
			wantDue(t, st, p, base+20, 3, all[:3])
			wantDue(t, st, p, base+29, 10, all[:3])
			wantDue(t, st, p, -6, 10, nil)
			wantDue(t, st, p, -5, 10, all[:1])
			wantDue(t, st, p, base+1000, 100, all)
			// Due only reads: the same timers come back.
			wantDue(t, st, p, base+1000, 100, all)
		}},
		{"Due under a prefix sees only that prefix, and the others never use up its limit", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			// Two operators' timers: "a" has 1,200 due before any of "b"'s
			// (more than the backends' page sizes), plus keys that share a
			// byte prefix with "b\x00" without being under it, and one that
			// ends in 0xff bytes.
			var set []statedb.Timer
			for i := range 1200 {
				set = append(set, statedb.Timer{Key: fmt.Sprintf("a\x00%04d", i), Due: base + int64(i)})
			}
			bs := []statedb.Timer{
				{Key: "b\x00w1", Due: base + 5000}, {Key: "b\x00\xff\xff", Due: base + 5001}, {Key: "b\x00w0", Due: base + 5002},
			}
			set = append(set, bs...)
			set = append(set, statedb.Timer{Key: "b", Due: base}, statedb.Timer{Key: "b\x01", Due: base},
				statedb.Timer{Key: "bb\x00w", Due: base}, statedb.Timer{Key: "\xff", Due: base})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, SetTimers: set})
			wantDueUnder(t, st, p, "b\x00", base+10_000, 10, bs)
			wantDueUnder(t, st, p, "b\x00", base+10_000, 2, bs[:2])
			wantDueUnder(t, st, p, "b\x00", base+5001, 10, bs[:2])
			wantDueUnder(t, st, p, "b\x00", base+4999, 10, nil)
			wantDueUnder(t, st, p, "\xff", base+10_000, 10, []statedb.Timer{{Key: "\xff", Due: base}})
			got := dueUnder(t, st, p, "a\x00", base+10_000, 2000)
			if len(got) != 1200 || got[0].Key != "a\x000000" || got[1199].Key != "a\x001199" {
				t.Errorf("Due under a: %d timers (first %v), want the 1,200 of a in order", len(got), got[:min(1, len(got))])
			}
			if all := due(t, st, p, base+10_000, 5000); len(all) != len(set) {
				t.Errorf("Due with no prefix: %d timers, want all %d", len(all), len(set))
			}
		}},
		{"timers with the same Due come back by key", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, SetTimers: []statedb.Timer{
				{Key: "m", Due: base}, {Key: "b", Due: base}, {Key: "z", Due: base}, {Key: "B", Due: base}, {Key: "a", Due: base + 1},
			}})
			wantDue(t, st, p, base+1, 10, []statedb.Timer{{Key: "B", Due: base}, {Key: "b", Due: base},
				{Key: "m", Due: base}, {Key: "z", Due: base}, {Key: "a", Due: base + 1}})
			wantDue(t, st, p, base+1, 2, []statedb.Timer{{Key: "B", Due: base}, {Key: "b", Due: base}})
		}},
		{"SetTimers moves a timer and ClearTimers removes it", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1,
				Puts:      []statedb.Entry{{Key: "a", Value: []byte("state of a")}},
				SetTimers: []statedb.Timer{{Key: "a", Due: base + 100}, {Key: "b", Due: base + 200}, {Key: "c", Due: base + 300}}})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2,
				SetTimers:   []statedb.Timer{{Key: "a", Due: base + 250}},
				ClearTimers: []string{"b", "never-set"}})
			wantDue(t, st, p, base+200, 10, nil)
			wantDue(t, st, p, base+1000, 10, []statedb.Timer{{Key: "a", Due: base + 250}, {Key: "c", Due: base + 300}})
			// A timer is not its key's state: deleting the state keeps the
			// timer, clearing the timer keeps the state.
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 3, Deletes: []string{"c"}, ClearTimers: []string{"a"}})
			wantDue(t, st, p, base+1000, 10, []statedb.Timer{{Key: "c", Due: base + 300}})
			wantLoad(t, st, p, []string{"a"}, map[string][]byte{"a": []byte("state of a")})
			// A timer can move earlier too.
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 4, SetTimers: []statedb.Timer{{Key: "c", Due: base - 1}}})
			wantDue(t, st, p, base, 10, []statedb.Timer{{Key: "c", Due: base - 1}})
		}},
		{"a timer both cleared and set in one commit ends up set", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1,
				SetTimers: []statedb.Timer{{Key: "a", Due: 100}}})
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2,
				SetTimers:   []statedb.Timer{{Key: "a", Due: 150}, {Key: "b", Due: 160}},
				ClearTimers: []string{"a", "b"}})
			wantDue(t, st, p, 1000, 10, []statedb.Timer{{Key: "a", Due: 150}, {Key: "b", Due: 160}})
		}},
	}
}
