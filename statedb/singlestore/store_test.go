package singlestore

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/statedb"
)

func TestAcquire(t *testing.T) {
	s := newTestStore(t, Config{})
	p := statedb.Partition{Topic: "orders", Partition: 3}

	first := mustAcquire(t, s, p)
	if first.Epoch != 1 || first.Offset != statedb.NoOffset || first.Meta != nil {
		t.Fatalf("first Acquire = %+v, want epoch 1, offset %d, nil meta", first, statedb.NoOffset)
	}
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: first.Epoch, Offset: 41, Meta: []byte("wm=7")})

	second := mustAcquire(t, s, p)
	if second.Epoch != 2 || second.Offset != 41 || !bytes.Equal(second.Meta, []byte("wm=7")) {
		t.Fatalf("second Acquire = %+v, want epoch 2, offset 41, meta wm=7", second)
	}
	// An Acquire that nobody commits after still bumps.
	if third := mustAcquire(t, s, p); third.Epoch != 3 || third.Offset != 41 {
		t.Fatalf("third Acquire = %+v, want epoch 3, offset 41", third)
	}
	// Other partitions of the topic, and other topics, start afresh.
	for _, q := range []statedb.Partition{{Topic: "orders", Partition: 4}, {Topic: "orders2", Partition: 3}} {
		if c := mustAcquire(t, s, q); c.Epoch != 1 || c.Offset != statedb.NoOffset {
			t.Errorf("Acquire(%v) = %+v, want a fresh claim", q, c)
		}
	}
}

func TestCommitAndRead(t *testing.T) {
	s := newTestStore(t, Config{})
	p := statedb.Partition{Topic: "clicks", Partition: 0}
	c := mustAcquire(t, s, p)

	mustCommit(t, s, &statedb.Commit{
		Partition: p, Epoch: c.Epoch, Offset: 10,
		Puts:      []statedb.Entry{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "c", Value: []byte("3")}},
		IDs:       []string{"e1", "e2"},
		SetTimers: []statedb.Timer{{Key: "w1", Due: 300}, {Key: "w2", Due: 100}, {Key: "w3", Due: 200}},
	})
	mustCommit(t, s, &statedb.Commit{
		Partition: p, Epoch: c.Epoch, Offset: 20,
		Puts:        []statedb.Entry{{Key: "b", Value: []byte("22")}, {Key: "d", Value: nil}},
		Deletes:     []string{"c", "never-there"},
		IDs:         []string{"e3"},
		ClearTimers: []string{"w3"},
		SetTimers:   []statedb.Timer{{Key: "w1", Due: 50}},
	})

	wantValues(t, s, p, []string{"a", "b", "c", "d", "x"}, map[string][]byte{
		"a": []byte("1"), "b": []byte("22"), "d": {},
	})
	seen, err := s.Seen(testCtx(t), p, []string{"e1", "e2", "e3", "e4"})
	if err != nil {
		t.Fatal(err)
	}
	if !seen["e1"] || !seen["e2"] || !seen["e3"] || seen["e4"] {
		t.Errorf("Seen = %v, want e1, e2, e3 and not e4", seen)
	}

	tests := []struct {
		name  string
		until int64
		limit int
		want  []statedb.Timer
	}{
		{"all", 1000, 10, []statedb.Timer{{Key: "w1", Due: 50}, {Key: "w2", Due: 100}}},
		{"limit", 1000, 1, []statedb.Timer{{Key: "w1", Due: 50}}},
		{"until is inclusive", 100, 10, []statedb.Timer{{Key: "w1", Due: 50}, {Key: "w2", Due: 100}}},
		{"none due", 49, 10, nil},
		{"zero limit", 1000, 0, nil},
	}
	for _, tt := range tests {
		t.Run("Due/"+tt.name, func(t *testing.T) {
			got, err := s.Due(testCtx(t), p, "", tt.until, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Due(until %d, limit %d) = %v, want %v", tt.until, tt.limit, got, tt.want)
			}
		})
	}
	if got := mustAcquire(t, s, p); got.Offset != 20 {
		t.Errorf("watermark after commits = %d, want 20", got.Offset)
	}
}

func TestCommitOrdering(t *testing.T) {
	s := newTestStore(t, Config{})
	p := statedb.Partition{Topic: "t", Partition: 1}
	c := mustAcquire(t, s, p)
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1,
		Puts:      []statedb.Entry{{Key: "k", Value: []byte("old")}},
		SetTimers: []statedb.Timer{{Key: "t", Due: 5}}})
	// The same key deleted and put in one commit ends up put; the same
	// timer cleared and set ends up set; the last of two puts wins.
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2,
		Deletes:     []string{"k", "j"},
		Puts:        []statedb.Entry{{Key: "k", Value: []byte("new")}, {Key: "j", Value: []byte("1")}, {Key: "j", Value: []byte("2")}},
		ClearTimers: []string{"t"},
		SetTimers:   []statedb.Timer{{Key: "t", Due: 9}}})
	wantValues(t, s, p, []string{"k", "j"}, map[string][]byte{"k": []byte("new"), "j": []byte("2")})
	got, err := s.Due(testCtx(t), p, "", 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []statedb.Timer{{Key: "t", Due: 9}}; !slices.Equal(got, want) {
		t.Errorf("Due = %v, want %v", got, want)
	}
}

func TestBinaryKeysAndValues(t *testing.T) {
	s := newTestStore(t, Config{})
	p := statedb.Partition{Topic: "bin\x00ary\xff", Partition: 7}
	c := mustAcquire(t, s, p)

	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	entries := []statedb.Entry{
		{Key: "a", Value: []byte("plain")},
		{Key: "a ", Value: []byte("trailing space is significant")},
		{Key: "A", Value: []byte("case is significant")},
		{Key: "a\x00", Value: []byte("trailing NUL is significant")},
		{Key: "\xff\xfe\x00'\"\\%_;--", Value: allBytes},
		{Key: "é", Value: []byte{}},
		{Key: "e\u0301", Value: []byte("no unicode normalisation")},
		{Key: strings.Repeat("k", 512), Value: []byte("512-byte key")},
		{Key: strings.Repeat("\xfe", MaxKeyLen), Value: bytes.Repeat([]byte{0, '\'', '\\'}, 100000)},
	}
	var keys []string
	want := map[string][]byte{}
	var ids []string
	for _, e := range entries {
		keys = append(keys, e.Key)
		want[e.Key] = e.Value
		ids = append(ids, e.Key)
	}
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Meta: allBytes, Puts: entries, IDs: ids})

	wantValues(t, s, p, append(keys, "a  ", "", "b"), want)
	seen, err := s.Seen(testCtx(t), p, append(ids, "a  ", "a\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(ids) {
		t.Errorf("Seen: %d ids seen, want %d", len(seen), len(ids))
	}
	if c := mustAcquire(t, s, p); !bytes.Equal(c.Meta, allBytes) {
		t.Errorf("meta did not round-trip: %q", c.Meta)
	}
	// A partition whose topic differs by one byte sees nothing.
	if m := mustLoad(t, s, statedb.Partition{Topic: "bin\x00ary", Partition: 7}, keys...); len(m) != 0 {
		t.Errorf("other topic loaded %d keys", len(m))
	}
}

func TestKeyTooLong(t *testing.T) {
	s := newTestStore(t, Config{})
	p := statedb.Partition{Topic: "t", Partition: 0}
	c := mustAcquire(t, s, p)
	long := strings.Repeat("x", MaxKeyLen+1)
	tests := []struct {
		name   string
		commit statedb.Commit
		want   string
	}{
		{"put", statedb.Commit{Puts: []statedb.Entry{{Key: "ok", Value: []byte("v")}, {Key: long}}}, "put 1: key"},
		{"id", statedb.Commit{IDs: []string{"ok", long}}, "id 1:"},
		{"timer", statedb.Commit{SetTimers: []statedb.Timer{{Key: long}}}, "timer 0: key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := tt.commit
			cm.Partition, cm.Epoch, cm.Offset = p, c.Epoch, 99
			err := s.Commit(testCtx(t), &cm)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "1025 bytes") {
				t.Fatalf("Commit = %v, want an error naming %q and its length", err, tt.want)
			}
			if _, wm := ownerRow(t, s, p); wm != statedb.NoOffset {
				t.Errorf("watermark = %d after a rejected commit, want unchanged", wm)
			}
			if n := countRows(t, s, s.t.state) + countRows(t, s, s.t.ids); n != 0 {
				t.Errorf("%d rows written by a rejected commit", n)
			}
		})
	}
}

func TestBadPartition(t *testing.T) {
	s := newTestStore(t, Config{})
	for _, p := range []statedb.Partition{{Topic: ""}, {Topic: strings.Repeat("t", MaxTopicLen+1)}} {
		if _, err := s.Acquire(testCtx(t), p); err == nil || !strings.Contains(err.Error(), "topic") {
			t.Errorf("Acquire(topic of %d bytes) = %v, want an error naming the topic", len(p.Topic), err)
		}
		if err := s.Commit(testCtx(t), &statedb.Commit{Partition: p, Epoch: 1}); err == nil || !strings.Contains(err.Error(), "topic") {
			t.Errorf("Commit(topic of %d bytes) = %v, want an error naming the topic", len(p.Topic), err)
		}
	}
	if err := s.Commit(testCtx(t), nil); err == nil {
		t.Error("Commit(nil) = nil, want an error")
	}
}

func TestLargeCommitIsChunked(t *testing.T) {
	s := newTestStore(t, Config{})
	p := statedb.Partition{Topic: "big", Partition: 2}
	c := mustAcquire(t, s, p)

	const n = 2345 // five put statements, two IN lists
	keys := keysN("key-", n)
	puts := make([]statedb.Entry, n)
	want := map[string][]byte{}
	timers := make([]statedb.Timer, n)
	for i, k := range keys {
		puts[i] = statedb.Entry{Key: k, Value: []byte("v" + k)}
		want[k] = puts[i].Value
		timers[i] = statedb.Timer{Key: k, Due: int64(n - i)}
	}
	body := s.commitBody(&statedb.Commit{Puts: puts, IDs: keys, SetTimers: timers})
	if len(body) != 15 {
		t.Errorf("commit of %d puts, ids and timers has %d statements after the fence, want 15", n, len(body))
	}
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 5, Puts: puts, IDs: keys, SetTimers: timers})
	wantValues(t, s, p, keys, want)
	seen, err := s.Seen(testCtx(t), p, keys)
	if err != nil || len(seen) != n {
		t.Errorf("Seen = %d ids, %v; want %d", len(seen), err, n)
	}
	due, err := s.Due(testCtx(t), p, "", 3, 10)
	if err != nil || !slices.Equal(due, []statedb.Timer{{Key: keys[n-1], Due: 1}, {Key: keys[n-2], Due: 2}, {Key: keys[n-3], Due: 3}}) {
		t.Errorf("Due(3) = %v, %v", due, err)
	}

	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 6, Deletes: keys[:n-1], ClearTimers: keys})
	wantValues(t, s, p, keys, map[string][]byte{keys[n-1]: want[keys[n-1]]})
	if due, _ := s.Due(testCtx(t), p, "", 1<<62, 10); len(due) != 0 {
		t.Errorf("Due after clearing all timers = %v", due)
	}
}

func TestPutChunksByBytes(t *testing.T) {
	big := bytes.Repeat([]byte{'\''}, 3<<20) // escapes to 6 MiB
	tests := []struct {
		name string
		puts []statedb.Entry
		want []int // entries per statement
	}{
		{"empty", nil, nil},
		{"rows", make([]statedb.Entry, 1001), []int{500, 500, 1}},
		{"bytes", []statedb.Entry{{Key: "a", Value: big}, {Key: "b", Value: big}, {Key: "c"}, {Key: "d", Value: big}}, []int{1, 2, 1}},
		{"huge alone", []statedb.Entry{{Key: "a"}, {Key: "b", Value: make([]byte, 5<<20)}, {Key: "c"}}, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for c := range putChunks(tt.puts) {
				got = append(got, len(c))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("chunks = %v, want %v", got, tt.want)
			}
		})
	}

	// And the 3 MiB values of quotes really do commit and load back.
	s := newTestStore(t, Config{})
	p := statedb.Partition{Topic: "big", Partition: 0}
	c := mustAcquire(t, s, p)
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Puts: tests[2].puts})
	wantValues(t, s, p, []string{"a", "b", "c", "d"}, map[string][]byte{"a": big, "b": big, "c": {}, "d": big})
}

func TestNamespaces(t *testing.T) {
	dsn := freshDSN(t)
	a := newTestStore(t, Config{DSN: dsn, Namespace: "pipeline_a"})
	b := newTestStore(t, Config{DSN: dsn, Namespace: "pipeline_b"})
	a2 := newTestStore(t, Config{DSN: dsn, Namespace: "pipeline_a"})
	p := statedb.Partition{Topic: "shared", Partition: 0}

	ca := mustAcquire(t, a, p)
	mustCommit(t, a, &statedb.Commit{Partition: p, Epoch: ca.Epoch, Offset: 100,
		Puts: []statedb.Entry{{Key: "k", Value: []byte("a")}}, IDs: []string{"id"}, SetTimers: []statedb.Timer{{Key: "t", Due: 1}}})

	cb := mustAcquire(t, b, p)
	if cb.Epoch != 1 || cb.Offset != statedb.NoOffset {
		t.Errorf("namespace b sees a's claim: %+v", cb)
	}
	if m := mustLoad(t, b, p, "k"); len(m) != 0 {
		t.Errorf("namespace b loads a's state: %v", m)
	}
	if seen, _ := b.Seen(testCtx(t), p, []string{"id"}); seen["id"] {
		t.Error("namespace b sees a's event id")
	}
	if due, _ := b.Due(testCtx(t), p, "", 10, 10); len(due) != 0 {
		t.Errorf("namespace b sees a's timers: %v", due)
	}
	// A commit in b with a's epoch number is still fenced in b only by b's
	// own epoch.
	mustCommit(t, b, &statedb.Commit{Partition: p, Epoch: cb.Epoch, Offset: 7, Puts: []statedb.Entry{{Key: "k", Value: []byte("b")}}})
	wantValues(t, a, p, []string{"k"}, map[string][]byte{"k": []byte("a")})

	// The same namespace is shared: a second worker's store takes over.
	if c := mustAcquire(t, a2, p); c.Epoch != 2 || c.Offset != 100 {
		t.Errorf("second store of namespace a: claim %+v, want epoch 2 offset 100", c)
	}
	if err := a.Commit(testCtx(t), &statedb.Commit{Partition: p, Epoch: ca.Epoch, Offset: 101}); !isFenced(err) {
		t.Errorf("first store of namespace a after takeover: Commit = %v, want ErrFenced", err)
	}
}

func TestNewFromDB(t *testing.T) {
	dsn := freshDSN(t)
	db := openAdmin(t, dsn) // no clientFoundRows, no interpolateParams
	s, err := NewFromDB(testCtx(t), db, Config{Namespace: "fromdb", SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	p := statedb.Partition{Topic: "t", Partition: 0}
	c := mustAcquire(t, s, p)
	// Two commits that leave the owner row's watermark and meta unchanged:
	// without clientFoundRows MySQL would report 0 rows changed, if the
	// fence did not bump its commits counter.
	for range 2 {
		mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 5, Meta: []byte("m")})
	}
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 5, Meta: []byte("m"), Puts: []statedb.Entry{{Key: "k", Value: []byte("v")}}})
	wantValues(t, s, p, []string{"k"}, map[string][]byte{"k": []byte("v")})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Errorf("Close closed the caller's pool: %v", err)
	}
}
