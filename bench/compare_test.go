package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
)

// w0 is a window start (a multiple of a minute) near the fill's times.
const w0 = 1_700_000_040_000

// The reference counts and sums per user and minute, and keeps the windows
// whose partition's greatest event time reached their end.
func TestReference(t *testing.T) {
	t.Run("one partition", func(t *testing.T) {
		r := newReference(1)
		r.add("a", 1, w0+10)
		r.add("a", 2, w0+20)
		r.add("b", 5, w0+59_999)
		r.add("a", 7, w0+60_000) // the watermark reaches w0's end: w0 closes, w0+1m stays open
		got := r.emitted()
		want := map[winKey]aggResult{{"a", w0}: {2, 3}, {"b", w0}: {1, 5}}
		if !equalWindows(got, want) {
			t.Errorf("emitted %v, want %v", got, want)
		}
		if all := r.wins[winKey{"a", w0 + 60_000}]; all != (aggResult{1, 7}) {
			t.Errorf("open window a [w0+1m): %v", all)
		}
	})
	t.Run("per partition", func(t *testing.T) {
		r := newReference(2)
		x, y := usersIn(t, r)
		r.add(x, 1, w0+5)      // x's partition never gets past w0+5
		r.add(y, 2, w0+6)      // y's window w0 is closed by y's next event
		r.add(y, 3, w0+70_000) // ... which opens w0+1m, never closed
		got := r.emitted()
		want := map[winKey]aggResult{{y, w0}: {1, 2}}
		if !equalWindows(got, want) {
			t.Errorf("emitted %v, want %v (partition of %s: greatest time w0+5)", got, want, x)
		}
	})
	t.Run("the fill's partitioner", func(t *testing.T) {
		// The producer's murmur2, as Kafka's Java client: known values.
		r := newReference(6)
		p := sarama.NewMurmur2Partitioner("t")
		for _, u := range []string{"u00000", "u00017", "u09999"} {
			want, _ := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(u)}, 6)
			if got := r.partition(u); got != want {
				t.Errorf("partition(%s) = %d, want %d", u, got, want)
			}
		}
	})
	for _, tc := range []struct{ t, want int64 }{{0, 0}, {59_999, 0}, {60_000, 60_000}, {-1, -60_000}, {-60_000, -60_000}} {
		if got := floorMs(tc.t, windowMs); got != tc.want {
			t.Errorf("floorMs(%d) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

// usersIn returns two users that r places in different partitions.
func usersIn(t *testing.T, r *reference) (string, string) {
	t.Helper()
	first := userKey(0)
	for i := 1; i < 100; i++ {
		if u := userKey(i); r.partition(u) != r.partition(first) {
			return first, u
		}
	}
	t.Fatal("no two users in different partitions")
	return "", ""
}

func equalWindows(a, b map[winKey]aggResult) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// output is an output record as eddy's sink writes a window result
// (the value encoded by pipeline.EncodeJSON from the fields aggOp.result
// sets); fields overrides or adds fields.
func output(t *testing.T, id, user string, start int64, n, total any, fields map[string]any) *sarama.ConsumerMessage {
	t.Helper()
	ev := map[string]any{"key": user, "window_start": time.UnixMilli(start).UTC(),
		"window_end": time.UnixMilli(start + windowMs).UTC(), "n": n, "total": total}
	for k, v := range fields {
		ev[k] = v
	}
	b, err := pipeline.EncodeJSON(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := &sarama.ConsumerMessage{Topic: "out", Key: []byte(user), Value: b}
	if id != "" {
		m.Headers = []*sarama.RecordHeader{{Key: []byte(processor.IDHeader), Value: []byte(id)}}
	}
	return m
}

func TestCompareOutputs(t *testing.T) {
	want := map[winKey]aggResult{{"u1", w0}: {3, 1500}, {"u1", w0 + windowMs}: {1, 7}, {"u2", w0}: {2, 10}}
	good := func(t *testing.T) []*sarama.ConsumerMessage {
		return []*sarama.ConsumerMessage{
			output(t, "i1", "u1", w0, int64(3), int64(1500), nil),
			output(t, "i2", "u1", w0+windowMs, int64(1), int64(7), nil),
			output(t, "i3", "u2", w0, int64(2), int64(10), nil),
		}
	}
	for _, tc := range []struct {
		name string
		msgs func(t *testing.T) []*sarama.ConsumerMessage
		// want: the counts of the comparison, and a text its summary holds.
		missing, extra, wrong, bad, repeats int
		text                                string
	}{
		{name: "equal", msgs: good, text: "3 windows, all equal"},
		{name: "an identical repeat", repeats: 1, text: "3 windows, all equal (1 repeated records, identical, counted once)",
			msgs: func(t *testing.T) []*sarama.ConsumerMessage { return append(good(t), good(t)[0]) }},
		{name: "missing", missing: 1, text: "1 of 3 windows differ (1 missing, 0 extra, 0 wrong, 0 bad records); e.g. missing u2 [2023-11-14T22:14:00Z, +1m): want n=2 total=10",
			msgs: func(t *testing.T) []*sarama.ConsumerMessage { return good(t)[:2] }},
		{name: "extra", extra: 1, text: "extra u3 [",
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				return append(good(t), output(t, "i4", "u3", w0, int64(1), int64(1), nil))
			}},
		{name: "wrong sum", wrong: 1, text: "u1 [2023-11-14T22:14:00Z, +1m): got n=3 total=1499, want n=3 total=1500",
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				ms := good(t)
				ms[0] = output(t, "i1", "u1", w0, int64(3), int64(1499), nil)
				return ms
			}},
		{name: "wrong count", wrong: 1, text: "got n=1 total=10, want n=2 total=10",
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				ms := good(t)
				ms[2] = output(t, "i3", "u2", w0, int64(1), int64(10), nil)
				return ms
			}},
		{name: "a window twice under two IDs", wrong: 1, text: "emitted 2 times under different IDs",
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				return append(good(t), output(t, "i9", "u2", w0, int64(2), int64(10), nil))
			}},
		{name: "another record under a seen ID", bad: 1, text: "ID i1 of out/0@0, with other contents",
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				return append(good(t), output(t, "i1", "u1", w0, int64(3), int64(1501), nil))
			}},
		{name: "no ID", bad: 1, missing: 1, text: "no eddy-id header",
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				ms := good(t)
				ms[1] = output(t, "", "u1", w0+windowMs, int64(1), int64(7), nil)
				return ms
			}},
		{name: "a float sum", bad: 1, missing: 1, text: `total "1500.0": not an integer`,
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				ms := good(t)
				ms[0] = output(t, "i1", "u1", w0, int64(3), 1500.0, nil)
				return ms
			}},
		{name: "another field", bad: 1, missing: 1, text: `unknown field "avg"`,
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				ms := good(t)
				ms[0] = output(t, "i1", "u1", w0, int64(3), int64(1500), map[string]any{"avg": 500.0})
				return ms
			}},
		{name: "another record key", bad: 1, missing: 1, text: `record key "u9", window key "u1"`,
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				ms := good(t)
				ms[0].Key = []byte("u9")
				return ms
			}},
		{name: "a window of another size", bad: 1, missing: 1, text: "is not a tumbling minute",
			msgs: func(t *testing.T) []*sarama.ConsumerMessage {
				ms := good(t)
				ms[0] = output(t, "i1", "u1", w0, int64(3), int64(1500), map[string]any{"window_end": time.UnixMilli(w0 + 2*windowMs).UTC()})
				return ms
			}},
		{name: "nothing", missing: 3, text: "3 of 3 windows differ (3 missing",
			msgs: func(*testing.T) []*sarama.ConsumerMessage { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := compareOutputs(want, tc.msgs(t))
			if c.Missing != tc.missing || c.Extra != tc.extra || c.Wrong != tc.wrong || c.Bad != tc.bad || c.Repeats != tc.repeats {
				t.Errorf("missing %d extra %d wrong %d bad %d repeats %d, want %d %d %d %d %d (%s)",
					c.Missing, c.Extra, c.Wrong, c.Bad, c.Repeats, tc.missing, tc.extra, tc.wrong, tc.bad, tc.repeats, c.Summary)
			}
			equal := tc.missing+tc.extra+tc.wrong+tc.bad == 0
			if c.Equal() != equal || c.Windows != 3 {
				t.Errorf("Equal() = %t with %d windows, want %t with 3", c.Equal(), c.Windows, equal)
			}
			if !strings.Contains(c.Summary, tc.text) {
				t.Errorf("summary %q does not contain %q", c.Summary, tc.text)
			}
		})
	}
}

// At most maxExamples differences are described, however many there are.
func TestCompareOutputsExamples(t *testing.T) {
	want := map[winKey]aggResult{}
	for i := range 20 {
		want[winKey{userKey(i), w0}] = aggResult{1, 1}
	}
	c := compareOutputs(want, nil)
	if c.Missing != 20 || len(c.Examples) != maxExamples || !strings.HasPrefix(c.Examples[0], "missing u00000 ") {
		t.Errorf("missing %d, examples %q", c.Missing, c.Examples)
	}
}

// TestReferenceAfterHop: behind a repartition a window closes only when
// every input partition's greatest event time has passed its end.
func TestReferenceAfterHop(t *testing.T) {
	r := newReference(2)
	var users [2]string // one user per input partition
	for i := 0; users[0] == "" || users[1] == ""; i++ {
		u := fmt.Sprintf("u%d", i)
		if p := r.partition(u); users[p] == "" {
			users[p] = u
		}
	}
	r.add(users[0], 1, 0)
	r.add(users[0], 2, 3*windowMs) // partition 0 reaches minute 3
	r.add(users[1], 5, windowMs/2) // partition 1 only half of minute 0
	if got := r.emittedAfterHop(); len(got) != 0 {
		t.Errorf("after the hop: %v, want none: partition 1 holds minute 0 open", got)
	}
	r.add(users[1], 6, 2*windowMs) // partition 1 reaches minute 2
	got := r.emittedAfterHop()
	want := map[winKey]aggResult{{users[0], 0}: {N: 1, Total: 1}, {users[1], 0}: {N: 1, Total: 5}}
	if len(got) != len(want) || got[winKey{users[0], 0}] != want[winKey{users[0], 0}] || got[winKey{users[1], 0}] != want[winKey{users[1], 0}] {
		t.Errorf("after the hop: %v, want %v", got, want)
	}
}
