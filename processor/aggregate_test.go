package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

const aggPipeline = `
name: agg
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_time: event.ts, watermark: {allowed_lateness: %s}}
flush: {max_messages: %d, interval: 5ms, shutdown_timeout: 2s}
steps:
  - aggregate:
      name: clicks
      key: event.user
      window: %s
      values: {n: count(), total: sum(event.v), last: last(event.page)}
      emit: %s
      late: {topic: late}
sink: {topic: out}
`

type ev struct {
	user string
	ts   int64
	v    int64
}

func (e ev) json() string {
	return fmt.Sprintf(`{"user":%q,"ts":%d,"v":%d,"page":"/p%d"}`, e.user, e.ts, e.v, e.v)
}

// result is one emitted window, comparable.
type result struct {
	Key   string `json:"key"`
	Start string `json:"window_start"`
	End   string `json:"window_end"`
	N     int64  `json:"n"`
	Total int64  `json:"total"`
	Last  string `json:"last"`
}

// runAgg feeds evs through partition tasks on one store, restarting the task
// (revoke, then a new owner) before each offset in restarts, and returns the
// window results, the late count and the number of outputs with each
// eddy-id.
func runAgg(t *testing.T, yaml string, evs []ev, restarts []int) (results []result, late int, ids map[string]int) {
	t.Helper()
	store := memory.New()
	ids = map[string]int{}
	bounds := append(append([]int{0}, restarts...), len(evs))
	for i := 0; i+1 < len(bounds); i++ {
		from, to := bounds[i], bounds[i+1]
		h := newHarnessYAML(t, yaml, store)
		// A new owner may get messages it has already applied (Kafka's
		// commit lags the store): replay from a bit earlier.
		replay := max(0, from-3)
		for o := replay; o < to; o++ {
			h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: int64(o), Key: []byte(evs[o].user),
				Value: []byte(evs[o].json()), Timestamp: time.UnixMilli(evs[o].ts)}
		}
		h.waitMarked(int64(to))
		h.stop()
		if err := <-h.done; err != nil {
			t.Fatalf("task: %v", err)
		}
		h.done <- nil
		for _, m := range h.prod.sent {
			switch m.Topic {
			case "late":
				late++
			case "out":
				b, _ := m.Value.Encode()
				var r result
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				results = append(results, r)
				for _, hd := range m.Headers {
					if string(hd.Key) == IDHeader {
						ids[string(hd.Value)]++
					}
				}
			}
		}
	}
	sort.Slice(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.End < b.End
	})
	return results, late, ids
}

func ts(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

func TestAggregateTumblingOnClose(t *testing.T) {
	yaml := fmt.Sprintf(aggPipeline, "0s", 2, "{tumbling: 10s, grace: 2s}", "on_close")
	evs := []ev{
		{"a", 1_000, 1}, {"b", 2_000, 10}, {"a", 9_000, 2}, // window [0,10s)
		{"a", 11_000, 4},  // [10,20): watermark 11s, [0,10) open until 12s
		{"a", 5_000, 8},   // out of order but within grace: counts in [0,10)
		{"b", 12_500, 20}, // watermark 12.5s closes [0,10)
		{"a", 3_000, 16},  // late: [0,10) is closed
		{"a", 25_000, 0},  // closes [10,20)
	}
	got, late, _ := runAgg(t, yaml, evs, nil)
	want := []result{
		{"a", ts(0), ts(10_000), 3, 11, "/p2"}, // 1+2+8; last by event time is 9s
		{"b", ts(0), ts(10_000), 1, 10, "/p10"},
		{"a", ts(10_000), ts(20_000), 1, 4, "/p4"},
		{"b", ts(10_000), ts(20_000), 1, 20, "/p20"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("results\n got %v\nwant %v", got, want)
	}
	if late != 1 {
		t.Errorf("%d late events, want 1", late)
	}
}

func TestAggregateOnUpdateEmitsEveryChange(t *testing.T) {
	yaml := fmt.Sprintf(aggPipeline, "0s", 1, "{tumbling: 10s}", "on_update")
	evs := []ev{{"a", 1_000, 1}, {"a", 2_000, 2}, {"a", 3_000, 3}}
	got, _, ids := runAgg(t, yaml, evs, nil)
	if len(got) != 3 || got[2].N != 3 && got[1].N != 3 && got[0].N != 3 {
		t.Fatalf("results %v, want three updates, the last with n=3", got)
	}
	var totals []int64
	for _, r := range got {
		totals = append(totals, r.Total)
	}
	sort.Slice(totals, func(i, j int) bool { return totals[i] < totals[j] })
	if fmt.Sprint(totals) != "[1 3 6]" {
		t.Errorf("running totals %v, want [1 3 6]", totals)
	}
	if len(ids) != 3 {
		t.Errorf("%d distinct update ids, want 3", len(ids))
	}
}

func TestAggregateSessionsMerge(t *testing.T) {
	yaml := fmt.Sprintf(aggPipeline, "0s", 1, "{session: 5s, grace: 10s}", "on_close") // events may lag the watermark by 10s
	evs := []ev{
		{"a", 0, 1}, {"a", 12_000, 2}, // two sessions: [0,5s) and [12s,17s)
		{"a", 6_000, 4},  // [6s,11s): within 5s of neither? 6-0=6 >= 5 -> separate; 12-6=6 -> separate
		{"a", 9_000, 8},  // bridges [6,11) and [12,17): 9+5=14 > 12 -> merged [6s,17s)
		{"a", 40_000, 0}, // closes everything before
	}
	got, _, _ := runAgg(t, yaml, evs, nil)
	want := []result{
		{"a", ts(0), ts(5_000), 1, 1, "/p1"},
		{"a", ts(6_000), ts(17_000), 3, 14, "/p2"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("results\n got %v\nwant %v", got, want)
	}
}

// reference computes tumbling-window results independently of package
// windows: per event in order, watermark = max time seen - lateness
// (before the event); an event is late when its window's end + grace <=
// watermark; windows whose end + grace <= the final watermark are emitted.
func reference(evs []ev, size, grace, lateness int64) (results []result, late int) {
	type acc struct {
		n, total int64
		lastT    int64
		last     string
	}
	wins := map[[2]any]*acc{}
	maxT := int64(-1 << 62)
	for _, e := range evs {
		wm := maxT - lateness
		start := e.ts - ((e.ts%size)+size)%size
		if start+size+grace <= wm {
			late++
			continue
		}
		k := [2]any{e.user, start}
		a := wins[k]
		if a == nil {
			a = &acc{lastT: -1 << 62}
			wins[k] = a
		}
		a.n++
		a.total += e.v
		if e.ts >= a.lastT {
			a.lastT, a.last = e.ts, fmt.Sprintf("/p%d", e.v)
		}
		maxT = max(maxT, e.ts)
	}
	wm := maxT - lateness
	for k, a := range wins {
		start := k[1].(int64)
		if start+size+grace <= wm {
			results = append(results, result{k[0].(string), ts(start), ts(start + size), a.n, a.total, a.last})
		}
	}
	sort.Slice(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		return a.Key < b.Key
	})
	return results, late
}

// TestAggregateRestartsGiveTheUninterruptedResult runs random out-of-order
// streams through tasks that are revoked and replaced at random offsets (the
// new owner re-reading some applied messages), and checks the results equal
// both an uninterrupted run and an independent reference: no window lost,
// none counted twice, each emitted once.
func TestAggregateRestartsGiveTheUninterruptedResult(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			var evs []ev
			now := int64(0)
			for range 300 {
				now += r.Int64N(400)
				jitter := r.Int64N(3_000) // out of order by up to 3s: some late
				evs = append(evs, ev{fmt.Sprint("u", r.IntN(5)), now - jitter, r.Int64N(100)})
			}
			evs = append(evs, ev{"u0", now + 60_000, 0}) // closes every window
			yaml := fmt.Sprintf(aggPipeline, "1s", 1+r.IntN(20), "{tumbling: 5s, grace: 1s}", "on_close")

			want, wantLate := reference(evs, 5_000, 1_000, 1_000)
			whole, late, _ := runAgg(t, yaml, evs, nil)
			var restarts []int
			for o := 20 + r.IntN(40); o < len(evs); o += 20 + r.IntN(60) {
				restarts = append(restarts, o)
			}
			split, _, ids := runAgg(t, yaml, evs, restarts)

			if fmt.Sprint(whole) != fmt.Sprint(want) {
				t.Errorf("uninterrupted run differs from the reference:\n got %v\nwant %v", whole, want)
			}
			if late != wantLate {
				t.Errorf("%d late events, reference says %d", late, wantLate)
			}
			if fmt.Sprint(split) != fmt.Sprint(whole) {
				t.Errorf("with restarts at %v the results differ:\n got %v\nwant %v", restarts, split, whole)
			}
			for id, n := range ids {
				if n != 1 {
					t.Errorf("output %s emitted %d times", id, n)
				}
			}
		})
	}
}

// TestAggregateStateIsRemovedWhenWindowsClose checks that closed windows
// leave neither state nor timers behind.
func TestAggregateStateIsRemovedWhenWindowsClose(t *testing.T) {
	store := memory.New()
	yaml := fmt.Sprintf(aggPipeline, "0s", 1, "{tumbling: 1s}", "on_close")
	h := newHarnessYAML(t, yaml, store)
	for i, e := range []ev{{"a", 100, 1}, {"b", 200, 1}, {"a", 5_000, 1}} {
		h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: int64(i), Value: []byte(e.json())}
	}
	h.waitMarked(3)
	timers, err := store.Due(context.Background(), statedb.Partition{Topic: "in"}, "", 1<<62, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(timers) != 1 || !strings.Contains(timers[0].Key, "5000") {
		t.Errorf("timers %v, want only the open window [5s,6s)", timers)
	}
}

var _ = pipeline.Tumbling

// An event an aggregate rejects (a string in sum) goes to the dead-letter
// topic and changes no window; but it is a source event with a valid time,
// so it moves the partition's watermark like any other (the watermark is
// the partition's, not a step's): the event after it is late.
func TestAggregateRejectedEventStillAdvancesThePartitionsWatermark(t *testing.T) {
	yaml := fmt.Sprintf(aggPipeline, "0s", 10, "{tumbling: 5s}", "on_close")
	yaml = strings.Replace(yaml, "flush: {", "dead_letter: {topic: dlq}\nflush: {", 1)
	h := newHarnessYAML(t, yaml, memory.New())
	vals := []string{
		`{"user":"a","ts":1000,"v":1,"page":"/1"}`,
		`{"user":"a","ts":100000,"v":"x","page":"/x"}`, // rejected by sum
		`{"user":"a","ts":2000,"v":2,"page":"/2"}`,     // late: the rejected event moved time past [0,5s)
		`{"user":"a","ts":200000,"v":0,"page":"/0"}`,   // closes [0,5s)
	}
	for i, v := range vals {
		h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: int64(i), Value: []byte(v)}
	}
	h.waitMarked(4)
	var got []result
	var dlq, late int
	for _, m := range h.prod.sent {
		switch m.Topic {
		case "out":
			b, _ := m.Value.Encode()
			var r result
			_ = json.Unmarshal(b, &r)
			got = append(got, r)
		case "dlq":
			dlq++
		case "late":
			late++
		}
	}
	if len(got) != 1 || got[0].N != 1 || got[0].Total != 1 {
		t.Errorf("results %v, want [0,5s) with n=1 total=1", got)
	}
	if dlq != 1 || late != 1 {
		t.Errorf("%d dead letters and %d late events, want 1 and 1", dlq, late)
	}
}

// TestAggregateOutputsCarryTheirOp: every window result says what it does
// to its row (key, window_start): an on_close result and an on_update
// window's first result insert it, later on_update results update it,
// and an on_update session merged into one that starts earlier deletes
// its row, so that a table applying the outputs holds the live sessions.
func TestAggregateOutputsCarryTheirOp(t *testing.T) {
	ops := func(window, emit string, evs []ev) []string {
		t.Helper()
		h := newHarnessYAML(t, fmt.Sprintf(aggPipeline, "0s", 1, window, emit), memory.New())
		for o, e := range evs {
			h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: int64(o), Key: []byte(e.user), Value: []byte(e.json())}
			h.waitMarked(int64(o + 1))
		}
		h.prod.mu.Lock()
		defer h.prod.mu.Unlock()
		var out []string
		for _, m := range h.prod.sent {
			if m.Topic != "out" {
				continue
			}
			var op string
			for _, hd := range m.Headers {
				if string(hd.Key) == OpHeader {
					op = string(hd.Value)
				}
			}
			b, _ := m.Value.Encode()
			var r result
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %s@%s n=%d", op, r.Key, strings.TrimPrefix(r.Start, "1970-01-01T"), r.N))
		}
		return out
	}
	for _, tc := range []struct {
		name, window, emit string
		evs                []ev
		want               []string
	}{
		{"on_update tumbling", "{tumbling: 10s}", "on_update", []ev{{"a", 1_000, 1}, {"a", 2_000, 2}, {"b", 3_000, 1}},
			[]string{"insert a@00:00:00Z n=1", "update a@00:00:00Z n=2", "insert b@00:00:00Z n=1"}},
		{"on_close tumbling", "{tumbling: 10s}", "on_close", []ev{{"a", 1_000, 1}, {"a", 25_000, 2}},
			[]string{"insert a@00:00:00Z n=1"}},
		{"on_update sessions", "{session: 5s, grace: 10s}", "on_update",
			[]ev{{"a", 0, 1}, {"a", 12_000, 2}, {"a", 6_000, 4}, {"a", 9_000, 8}},
			[]string{
				"insert a@00:00:00Z n=1", "update a@00:00:00Z n=1", // the stored session is emitted again with each change of the key
				"insert a@00:00:12Z n=1",
				"update a@00:00:00Z n=1", "update a@00:00:12Z n=1", "insert a@00:00:06Z n=1",
				"update a@00:00:00Z n=1", "update a@00:00:06Z n=3", "delete a@00:00:12Z n=0", // [12s,17s) merged into [6s,17s)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ops(tc.window, tc.emit, tc.evs); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("outputs\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// timerLog records the timers each commit sets, in commit order.
type timerLog struct {
	statedb.Store
	mu   sync.Mutex
	sets [][]statedb.Timer
}

func (s *timerLog) Commit(ctx context.Context, c *statedb.Commit) error {
	if err := s.Store.Commit(ctx, c); err != nil {
		return err
	}
	s.mu.Lock()
	s.sets = append(s.sets, slices.Clone(c.SetTimers))
	s.mu.Unlock()
	return nil
}

// TestSessionTimerWrittenOnlyWhenItMoves commits after every event: a
// session's timer is written when the session starts and when it grows at
// its end, and not for an event inside it, which leaves the close time
// where the stored timer already is; the session still closes exactly.
func TestSessionTimerWrittenOnlyWhenItMoves(t *testing.T) {
	yaml := fmt.Sprintf(aggPipeline, "0s", 1, "{session: 5s, grace: 10s}", "on_close")
	store := &timerLog{Store: memory.New()}
	h := newHarnessYAML(t, yaml, store)
	evs := []ev{
		{"a", 0, 1},      // [0s,5s): new, timer at 15s
		{"a", 1_000, 2},  // [0s,6s): grown, timer at 16s
		{"a", 500, 4},    // inside: timer stays at 16s
		{"a", 5_900, 8},  // [0s,10.9s): grown, timer at 20.9s
		{"a", 2_000, 16}, // inside
		{"a", 40_000, 0}, // closes [0s,10.9s); a new session
	}
	for i, e := range evs {
		h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: int64(i), Key: []byte(e.user),
			Value: []byte(e.json()), Timestamp: time.UnixMilli(e.ts)}
		h.waitMarked(int64(i + 1))
	}
	h.stop()
	if err := <-h.done; err != nil {
		t.Fatalf("task: %v", err)
	}
	h.done <- nil
	store.mu.Lock()
	var dues []string
	for _, set := range store.sets {
		var d []string
		for _, x := range set {
			d = append(d, fmt.Sprint(x.Due))
		}
		dues = append(dues, "["+strings.Join(d, " ")+"]")
	}
	store.mu.Unlock()
	// One commit per event (an empty one for an event that changed
	// nothing is not made); the last sets the new session's timer.
	want := "[15000] [16000] [] [20900] [] [55000]"
	if got := strings.Join(dues, " "); got != want {
		t.Errorf("timers set per commit: %s, want %s", got, want)
	}
	var got []result
	for _, m := range h.prod.sent {
		if m.Topic == "out" {
			b, _ := m.Value.Encode()
			var r result
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
	}
	want2 := []result{{"a", ts(0), ts(10_900), 5, 31, "/p8"}}
	if fmt.Sprint(got) != fmt.Sprint(want2) {
		t.Errorf("results %v, want %v", got, want2)
	}
}
