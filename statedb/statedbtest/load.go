package statedbtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eddy-streams/eddy/statedb"
)

func (s *suite) loadCases() []testCase {
	return []testCase{
		{"1000 keys come back byte-exact and missing keys are absent", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			rng := rand.New(rand.NewPCG(1, 2))
			want := map[string][]byte{}
			var puts []statedb.Entry
			var keys []string
			for i := range 1000 {
				k := fmt.Sprintf("key-%04d", i)
				keys = append(keys, k)
				if i%5 == 4 {
					continue // missing
				}
				v := make([]byte, rng.IntN(64)) // empty values included
				for j := range v {
					v[j] = byte(rng.Uint32())
				}
				want[k] = v
				puts = append(puts, statedb.Entry{Key: k, Value: v})
			}
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Puts: puts})
			rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			wantLoad(t, st, p, keys, want)
		}},
		{"empty and nil values are present and empty", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Puts: []statedb.Entry{
				{Key: "empty", Value: []byte{}}, {Key: "nil", Value: nil},
			}})
			got := load(t, st, p, "empty", "nil", "absent")
			for _, k := range []string{"empty", "nil"} {
				v, ok := got[k]
				if !ok || len(v) != 0 {
					t.Errorf("Load: key %q = %s (present %v), want present and empty", k, show(v), ok)
				}
			}
			if _, ok := got["absent"]; ok {
				t.Errorf("Load: key %q present, want absent", "absent")
			}
		}},
		{"no keys, no ids and a zero limit ask for nothing", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1,
				Puts: []statedb.Entry{{Key: "k", Value: []byte("v")}}, IDs: []string{"i"},
				SetTimers: []statedb.Timer{{Key: "t", Due: 1}}})
			if m := load(t, st, p); len(m) != 0 {
				t.Errorf("Load of no keys = %v, want empty", m)
			}
			if m := seen(t, st, p); len(m) != 0 {
				t.Errorf("Seen of no ids = %v, want empty", m)
			}
			if ts := due(t, st, p, 10, 0); len(ts) != 0 {
				t.Errorf("Due with limit 0 = %v, want none", ts)
			}
		}},
		{"1 MiB values round trip", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			rng := rand.New(rand.NewPCG(3, 4))
			want := map[string][]byte{}
			var puts []statedb.Entry
			for _, k := range []string{"big1", "big2"} {
				v := make([]byte, 1<<20)
				for j := range v {
					v[j] = byte(rng.Uint32())
				}
				want[k] = v
				puts = append(puts, statedb.Entry{Key: k, Value: v})
			}
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Puts: puts, Meta: want["big1"][:4096]})
			wantLoad(t, st, p, []string{"big1", "big2"}, want)
			wantClaim(t, st, p, c.Epoch, 1, want["big1"][:4096])
		}},
		{"loaded values are copies the caller may change", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			v := []byte("value")
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Meta: []byte("meta"),
				Puts: []statedb.Entry{{Key: "k", Value: v}}})
			v[0] = 'X' // the committed value must not alias the caller's slice
			got := load(t, st, p, "k")
			got["k"][0] = 'Y' // nor the returned one the store's
			wantLoad(t, st, p, []string{"k"}, map[string][]byte{"k": []byte("value")})
		}},
	}
}

// oddKeys returns keys (and IDs, timer keys and topics) with bytes that break
// naive encodings: separators, Redis hash-tag braces, glob characters,
// case and trailing-space variants that case-insensitive or PAD SPACE
// collations merge, unicode, NUL and invalid UTF-8.
func oddKeys() []string {
	return []string{
		"plain", "with space", " lead", "trail ", "trail", "a:b", ":", "::x::",
		"{", "}", "{tag}", "{}", "x{y}z", "}{", "*", "?", "[a-z]", "\\", "%", "%41",
		"Key", "key", "KEY", "ünïcödé", "日本語", "emoji 🙂", "tab\tnl\n", "nul\x00byte",
		"\xff\xfe invalid utf8", "quote'\"`", "slash/back\\", "long-key-0123456789abcdef0123456789abcdef0123456789abcdef",
	}
}

func (s *suite) keyCases() []testCase {
	return []testCase{
		{"keys with odd bytes are distinct entries", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			keys := oddKeys()
			want := map[string][]byte{}
			var puts []statedb.Entry
			for i, k := range keys {
				v := []byte(fmt.Sprintf("v%d", i))
				want[k] = v
				puts = append(puts, statedb.Entry{Key: k, Value: v})
			}
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Puts: puts})
			wantLoad(t, st, p, slices.Concat(keys, []string{"KeY", "trail  ", "{tag", "%2541"}), want)
			// Deleting one odd key leaves its look-alikes.
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2, Deletes: []string{"key", "trail ", "{tag}"}})
			delete(want, "key")
			delete(want, "trail ")
			delete(want, "{tag}")
			wantLoad(t, st, p, keys, want)
		}},
		{"IDs with odd bytes are distinct", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			var yes, no []string
			for i, k := range oddKeys() {
				if i%2 == 0 {
					yes = append(yes, k)
				} else {
					no = append(no, k)
				}
			}
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, IDs: yes})
			wantSeen(t, st, p, yes, no)
		}},
		{"timer keys with odd bytes are distinct", func(t *testing.T) {
			st := s.newStore(t)
			p := part("orders", 0)
			c := acquire(t, st, p)
			keys := oddKeys()
			var set []statedb.Timer
			for i, k := range keys {
				set = append(set, statedb.Timer{Key: k, Due: int64(i)})
			}
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, SetTimers: set})
			wantDue(t, st, p, int64(len(keys)), len(keys)+1, set)
			commit(t, st, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2, ClearTimers: []string{"key", "{tag}"}})
			var rest []statedb.Timer
			for _, tm := range set {
				if tm.Key != "key" && tm.Key != "{tag}" {
					rest = append(rest, tm)
				}
			}
			wantDue(t, st, p, int64(len(keys)), len(keys)+1, rest)
		}},
	}
}
