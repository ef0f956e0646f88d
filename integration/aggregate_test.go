package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
)

// The aggregate tests run the real runtime (processor.New + Worker.Run)
// over a 3-partition topic of real Apache Kafka, with the window state in
// Redis or in MariaDB (SingleStore's stand-in), and compare every window
// result with a brute-force reference computed from the input as it lies
// in the topic. They prove:
//   - exact on_close results for tumbling, hopping and session windows,
//     with out-of-order events within the allowed lateness and grace
//     counted, and late events sent to the late topic and not counted;
//   - a worker stopped mid-stream with windows open, and another taking
//     over (after it, or sharing the partitions with it first), gives the
//     same results as one uninterrupted run;
//   - once the windows closed, no state or timer of theirs is left.

// aggPipeline is the pipeline under test: name, source topic, state
// section, window, late topic, sink topic.
const aggPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source:
  topics: [%s]
  event_time: event.ts
  watermark: {allowed_lateness: 1s}
state: %s
flush: {max_messages: 7, interval: 20ms, shutdown_timeout: 15s}
steps:
  - aggregate:
      name: clicks
      key: event.user
      window: %s
      values: {n: count(), total: sum(event.v), lo: min(event.v), hi: max(event.v), pages: count_distinct(event.page)}
      late: {topic: %s}
sink: {topic: %s}
`

// aggLateness is source.watermark.allowed_lateness of aggPipeline, in ms.
const aggLateness = 1000

// aggParts is the number of partitions of the source topic.
const aggParts = 3

// aggStep is the aggregate step's name (error prefix) in headers.
const aggStep = "steps[0].aggregate"

// aggKind is a window of the table: its YAML and, in milliseconds, its
// parameters for the reference. Tumbling windows have advance == size;
// sessions have gap > 0.
type aggKind struct {
	name                      string
	yaml                      string
	size, advance, gap, grace int64
}

var aggKinds = []aggKind{
	{name: "tumbling", yaml: "{tumbling: 5s, grace: 1s}", size: 5000, advance: 5000, grace: 1000},
	{name: "hopping", yaml: "{hopping: 6s, advance: 2s, grace: 500ms}", size: 6000, advance: 2000, grace: 500},
	{name: "session", yaml: "{session: 3s, grace: 1s}", gap: 3000, grace: 1000},
}

// aggBackend is a state backend of the table: its state section.
type aggBackend struct {
	name  string
	state func(t *testing.T) string
}

var aggBackends = []aggBackend{
	{"redis", func(t *testing.T) string {
		return fmt.Sprintf("{backend: redis, redis: {addrs: [%q], key_prefix: %q}}", testenv.RedisAddr(t), testenv.RedisPrefix(t))
	}},
	{"mariadb", func(t *testing.T) string {
		return fmt.Sprintf("{backend: singlestore, singlestore: {dialect: mysql, dsn: %q}}", testenv.MySQL(t))
	}},
}

// aggEvent is an input event; ts is its event time in Unix ms.
type aggEvent struct {
	User string `json:"user"`
	TS   int64  `json:"ts"`
	V    int64  `json:"v"`
	Page string `json:"page"`
}

// aggInput generates a deterministic stream: 12 users, event times
// advancing by 0-300 ms with pauses of 4-8 s (so sessions end), most events
// out of order by up to 1.5 s (within the allowed lateness and grace) and
// one in 12 behind by 2-15 s (late for some or all of its windows); half
// of the times are multiples of 500 ms, so that the boundary cases (an
// event at a window's end, a watermark exactly at a close time, events
// exactly a session gap apart) occur.
func aggInput(seed uint64) []aggEvent {
	r := rand.New(rand.NewPCG(seed, 5))
	now := int64(1_700_000_000_000)
	var evs []aggEvent
	// First each user plays boundaryCase in a 30 s slot of its own, before
	// the random stream: each partition then sees the cases undisturbed.
	for u := range 12 {
		slot := now - int64(12-u)*30_000
		for _, dt := range boundaryCase {
			evs = append(evs, aggEvent{User: fmt.Sprintf("u%02d", u), TS: slot + dt,
				V: r.Int64N(200) - 50, Page: fmt.Sprintf("/p%d", r.IntN(6))})
		}
	}
	for range 450 {
		now += r.Int64N(300)
		if r.IntN(40) == 0 {
			now += 4000 + r.Int64N(4000)
		}
		jitter := r.Int64N(1500)
		if r.IntN(12) == 0 {
			jitter = 2000 + r.Int64N(13_000)
		}
		ts := now - jitter
		if r.IntN(2) == 0 {
			// On a 500 ms grid, like every window parameter: events fall
			// exactly on window bounds, close times and session gaps.
			ts -= ts % 500
		}
		evs = append(evs, aggEvent{
			User: fmt.Sprintf("u%02d", r.IntN(12)),
			TS:   ts,
			V:    r.Int64N(200) - 50,
			Page: fmt.Sprintf("/p%d", r.IntN(6)),
		})
	}
	return evs
}

// boundaryCase is a sequence of event times (ms after a multiple of 10 s)
// that hits the boundaries of aggKinds with a 1 s allowed lateness. wm is
// the watermark after an event; session s1 is [4999, ...).
var boundaryCase = []int64{
	4999,   // the last ms of the tumbling window [0,5s)
	5000,   // the first of the next
	6999,   // wm 5.999s
	1000,   // tumbling: [0,5s) closes at wm 6s, still open: counted; hopping: counted in [0,6s) only
	7000,   // wm 6s: [0,5s) closes exactly
	2000,   // tumbling: late, exactly at the close
	5000,   // session: 5s + grace 1s = wm: not late
	4999,   // session: late by 1 ms; tumbling: late
	8000,   // session: extends s1 to [4.999s,11s)
	9500,   // wm 8.5s
	2000,   // hopping: [2s,8s) closes at 8.5s: every window closed, late
	4000,   // hopping: [4s,10s) open: counted there only
	7500,   // session: 7.5s + 1s = wm: not late
	16_000, // session s2 [16s,19s); wm 15s closes s1
	20_000, // session s3 [20s,23s): s2 ends at 19s
	18_500, // session: bridges s2 and s3 into [16s,23s)
	23_000, // session: exactly the gap after the last event (20s): a new session
}

// closingEvents returns one event per partition, keyed so that it lands
// there, an hour after every other event: the watermark it sets closes
// every window of the input (and opens one of its own, which stays open).
func closingEvents(t *testing.T, evs []aggEvent) []aggEvent {
	t.Helper()
	var last int64
	for _, e := range evs {
		last = max(last, e.TS)
	}
	var out []aggEvent
	for p := range int32(aggParts) {
		for i := 0; ; i++ {
			key := fmt.Sprintf("end-%d", i)
			if partitionOf(t, key, aggParts) == p {
				out = append(out, aggEvent{User: key, TS: last + time.Hour.Milliseconds(), V: 0, Page: "/end"})
				break
			}
		}
	}
	return out
}

func aggMessages(evs []aggEvent) []*sarama.ProducerMessage {
	msgs := make([]*sarama.ProducerMessage, len(evs))
	for i, e := range evs {
		b, _ := json.Marshal(e)
		msgs[i] = &sarama.ProducerMessage{Key: sarama.StringEncoder(e.User), Value: sarama.ByteEncoder(b)}
	}
	return msgs
}

// --- The reference ---------------------------------------------------------

// winResult is one window's result; times in Unix ms.
type winResult struct {
	Key                     string
	Start, End              int64
	N, Total, Lo, Hi, Pages int64
}

func (r winResult) String() string {
	return fmt.Sprintf("%s[%d,%d) n=%d total=%d lo=%d hi=%d pages=%d", r.Key, r.Start, r.End, r.N, r.Total, r.Lo, r.Hi, r.Pages)
}

func (r winResult) window() [3]string {
	return [3]string{r.Key, strconv.FormatInt(r.Start, 10), strconv.FormatInt(r.End, 10)}
}

// inputEvent is an event as read back from the source topic.
type inputEvent struct {
	part   int32
	offset int64
	key    string
	raw    []byte
	ev     aggEvent
}

type lateAt struct {
	part   int32
	offset int64
}

// openWindow is a window still open when the input ends.
type openWindow struct {
	group           string
	start, end, due int64 // due: end + grace, the watermark closing it
}

// aggReference is what the input must give.
type aggReference struct {
	results []winResult            // closed windows, sorted by key, start, end
	late    map[lateAt]bool        // late events
	open    map[int32][]openWindow // windows left open, per partition
	finalWM map[int32]int64        // each partition's final watermark

	// Coverage: accepted out-of-order events, hopping events late for some
	// of their windows only, sessions bridged by an event.
	outOfOrder, partial, merges int
}

type refWindow struct {
	group      string
	start, end int64
	evs        []aggEvent
	absorbed   bool
}

// reference computes the window results of input by brute force, from the
// documented semantics and independently of package windows. Per
// partition, in offset order: the watermark is the greatest event time
// accepted so far minus the allowed lateness (before the event); a window
// [s, e) is closed at watermark wm when e + grace <= wm.
//   - Tumbling/hopping: an event at t belongs to the windows [s, s+size)
//     with s a multiple of advance and t-size < s <= t; it updates those
//     not closed, and is late when all are closed.
//   - Session: an event at t is late when t + grace < wm; otherwise its
//     window [t, t+gap) absorbs every open session of its key it overlaps.
//
// With judgeLate false no event is late and no window refuses an event: the
// results if late events were counted.
func reference(k aggKind, input []inputEvent, judgeLate bool) *aggReference {
	ref := &aggReference{late: map[lateAt]bool{}, open: map[int32][]openWindow{}, finalWM: map[int32]int64{}}
	byPart := map[int32][]inputEvent{}
	for _, ie := range input {
		byPart[ie.part] = append(byPart[ie.part], ie)
	}
	for part, evs := range byPart {
		maxT, wm := int64(math.MinInt64), int64(math.MinInt64)
		closed := func(end int64) bool { return judgeLate && end+k.grace <= wm }
		var wins []*refWindow
		fixed := map[string]*refWindow{}
		sessions := map[string][]*refWindow{}
		for _, ie := range evs {
			e, t := ie.ev, ie.ev.TS
			if k.gap == 0 {
				var all, open []int64
				for s := floorDiv(t, k.advance) * k.advance; s > t-k.size; s -= k.advance {
					all = append(all, s)
					if !closed(s + k.size) {
						open = append(open, s)
					}
				}
				if len(open) == 0 {
					ref.late[lateAt{part, ie.offset}] = true
					continue
				}
				if len(open) < len(all) {
					ref.partial++
				}
				for _, s := range open {
					id := e.User + "\x00" + strconv.FormatInt(s, 10)
					w := fixed[id]
					if w == nil {
						w = &refWindow{group: e.User, start: s, end: s + k.size}
						fixed[id] = w
						wins = append(wins, w)
					}
					w.evs = append(w.evs, e)
				}
			} else {
				if judgeLate && t+k.grace < wm {
					ref.late[lateAt{part, ie.offset}] = true
					continue
				}
				nw := &refWindow{group: e.User, start: t, end: t + k.gap, evs: []aggEvent{e}}
				var keep []*refWindow
				absorbed := 0
				for _, s := range sessions[e.User] {
					if !closed(s.end) && s.start < nw.end && t < s.end {
						nw.start, nw.end = min(nw.start, s.start), max(nw.end, s.end)
						nw.evs = append(nw.evs, s.evs...)
						s.absorbed = true
						absorbed++
						continue
					}
					keep = append(keep, s)
				}
				if absorbed >= 2 {
					ref.merges++
				}
				sessions[e.User] = append(keep, nw)
				wins = append(wins, nw)
			}
			if t < maxT {
				ref.outOfOrder++
			}
			maxT = max(maxT, t)
			wm = maxT - aggLateness
		}
		ref.finalWM[part] = wm
		for _, w := range wins {
			if w.absorbed {
				continue
			}
			if w.end+k.grace > wm {
				ref.open[part] = append(ref.open[part], openWindow{w.group, w.start, w.end, w.end + k.grace})
				continue
			}
			r := winResult{Key: w.group, Start: w.start, End: w.end, N: int64(len(w.evs)),
				Lo: math.MaxInt64, Hi: math.MinInt64}
			pages := map[string]bool{}
			for _, e := range w.evs {
				r.Total += e.V
				r.Lo, r.Hi = min(r.Lo, e.V), max(r.Hi, e.V)
				pages[e.Page] = true
			}
			r.Pages = int64(len(pages))
			ref.results = append(ref.results, r)
		}
	}
	sortResults(ref.results)
	return ref
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func sortResults(rs []winResult) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		return a.End < b.End
	})
}

// --- One scenario: topics, pipeline, store, input --------------------------

type aggEnv struct {
	t       *testing.T
	kind    aggKind
	brokers []string
	name    string
	in      string
	out     string
	late    string
	group   string
	p       *pipeline.Pipeline
	store   statedb.Store // the test's own connection, for reads only
	prod    *syncProducer
	data    []aggEvent // without the closing events
	closing []aggEvent
}

func newAggEnv(t *testing.T, b aggBackend, k aggKind) *aggEnv {
	t.Helper()
	return newAggEnvOn(t, testenv.KafkaBrokers(t), b, k)
}

// newAggEnvOn is newAggEnv on the given brokers (a private broker's).
func newAggEnvOn(t *testing.T, brokers []string, b aggBackend, k aggKind) *aggEnv {
	t.Helper()
	e := &aggEnv{
		t: t, kind: k, brokers: brokers, name: testenv.Unique("agg"),
		in: testenv.Topic(t, brokers, aggParts), out: testenv.Topic(t, brokers, aggParts),
		late: testenv.Topic(t, brokers, 1), group: testenv.Group(t),
	}
	e.p = loadPipeline(t, aggPipeline, e.name, e.in, b.state(t), k.yaml, e.late, e.out)
	e.store = openStore(t, e.p)
	e.prod = newSyncProducer(t, brokers)
	e.data = aggInput(1)
	e.closing = closingEvents(t, e.data)
	users := map[int32]int{}
	for u := range 12 {
		users[partitionOf(t, fmt.Sprintf("u%02d", u), aggParts)]++
	}
	if len(users) != aggParts {
		t.Fatalf("the input's users fall in %d partitions, want all %d: %v", len(users), aggParts, users)
	}
	return e
}

func (e *aggEnv) send(evs []aggEvent) {
	e.t.Helper()
	if err := e.prod.send(e.in, aggMessages(evs)); err != nil {
		e.t.Fatal(err)
	}
}

// feed produces evs in small chunks from a goroutine, so that workers
// start and stop while input is arriving; the channel gets its result.
func (e *aggEnv) feed(evs []aggEvent) <-chan error {
	done := make(chan error, 1)
	msgs := aggMessages(evs)
	go func() {
		for i := 0; i < len(msgs); i += 8 {
			if err := e.prod.send(e.in, msgs[i:min(i+8, len(msgs))]); err != nil {
				done <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		done <- nil
	}()
	return done
}

// startAggWorker runs a worker with a fresh store connection until stop is
// called (a graceful shutdown: flush, commit, leave the group). opts come
// after the defaults and override them.
func (e *aggEnv) startAggWorker(name string, opts ...processor.Option) (w *processor.Worker, stop func()) {
	e.t.Helper()
	st := openStore(e.t, e.p) // closed at cleanup, after stop (cleanups run last-in first-out)
	return startWorker(e.t, name, e.p, e.brokers, e.group, st, append([]processor.Option{
		processor.WithLogger(zaptest.NewLogger(e.t, zaptest.Level(zap.InfoLevel)).Named(name))}, opts...)...)
}

// lastOffsets returns the source topic's last offset per partition.
func (e *aggEnv) lastOffsets() map[int32]int64 {
	ends := partitionEnds(e.t, e.brokers, e.in)
	for p := range ends {
		ends[p]--
	}
	return ends
}

// waitAllStored waits until the store holds the effects of every input
// message.
func (e *aggEnv) waitAllStored(what string) {
	e.t.Helper()
	waitStored(e.t, e.store, e.in, aggParts, e.lastOffsets(), 40*time.Second, what)
}

// waitProgressBeyond waits until some partition's stored offset passes
// from (or until feeding is over), and returns the stored offsets.
func (e *aggEnv) waitProgressBeyond(from map[int32]int64, fed <-chan error) (map[int32]int64, <-chan error) {
	t := e.t
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cur, err := storedOffsets(ctx, e.store, e.in, aggParts)
		cancel()
		if err != nil {
			t.Fatalf("stored offsets: %v", err)
		}
		for p, off := range cur {
			if off > from[p] {
				return cur, fed
			}
		}
		select {
		case err := <-fed:
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			done <- nil
			fed = done
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress beyond %v within 40s (stored %v)", from, cur)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// requireOpenWindows fails the test unless every partition has window
// timers: the stopped worker left windows open for the next one.
func (e *aggEnv) requireOpenWindows(who string) {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for p := range int32(aggParts) {
		timers, err := e.store.Due(ctx, statedb.Partition{Topic: e.in, Partition: p}, "", math.MaxInt64, 1000)
		if err != nil {
			t.Fatalf("due timers of partition %d: %v", p, err)
		}
		if len(timers) == 0 {
			t.Fatalf("partition %d has no open window after %s stopped: the handover would prove nothing", p, who)
		}
	}
}

// --- Checking the outcome --------------------------------------------------

// checkOutcome reads the output and late topics and the store, and compares
// them with the reference computed from the source topic. With exactlyOnce
// every output must appear once; otherwise repeats must be identical.
func (e *aggEnv) checkOutcome(exactlyOnce bool) *aggReference {
	t := e.t
	t.Helper()
	inMsgs := readTopic(t, e.brokers, e.in, 30*time.Second)
	if want := len(e.data) + len(e.closing); len(inMsgs) != want {
		t.Fatalf("the source topic holds %d messages, want %d", len(inMsgs), want)
	}
	input := make([]inputEvent, len(inMsgs))
	byOffset := map[lateAt]inputEvent{}
	for i, m := range inMsgs {
		input[i] = inputEvent{part: m.Partition, offset: m.Offset, key: string(m.Key), raw: m.Value}
		if err := json.Unmarshal(m.Value, &input[i].ev); err != nil {
			t.Fatalf("input %d/%d: %v", m.Partition, m.Offset, err)
		}
		byOffset[lateAt{m.Partition, m.Offset}] = input[i]
	}
	ref := reference(e.kind, input, true)
	e.requireCoverage(ref, input)

	e.checkResults(ref, exactlyOnce)
	e.checkLate(ref, byOffset)
	e.checkState(ref)
	return ref
}

// requireCoverage fails the test if the input does not exercise what it
// is meant to: out-of-order events that count, late events that would
// have changed results, partially late hopping events, bridged sessions.
func (e *aggEnv) requireCoverage(ref *aggReference, input []inputEvent) {
	t := e.t
	t.Helper()
	if ref.outOfOrder == 0 || len(ref.late) == 0 || len(ref.results) < 20 {
		t.Fatalf("weak input: %d accepted out-of-order events, %d late, %d windows", ref.outOfOrder, len(ref.late), len(ref.results))
	}
	lateParts := map[int32]bool{}
	for l := range ref.late {
		lateParts[l.part] = true
	}
	if len(lateParts) != aggParts {
		t.Fatalf("late events in %d partitions only, want all %d", len(lateParts), aggParts)
	}
	if e.kind.name == "hopping" && ref.partial == 0 {
		t.Fatal("weak input: no hopping event late for some of its windows only")
	}
	if e.kind.gap > 0 && ref.merges == 0 {
		t.Fatal("weak input: no event bridges two sessions")
	}
	if counted := reference(e.kind, input, false); slices.Equal(counted.results, ref.results) {
		t.Fatal("weak input: counting the late events would not change any result")
	}
}

type outRecord struct {
	Key   string    `json:"key"`
	Start time.Time `json:"window_start"`
	End   time.Time `json:"window_end"`
	N     int64     `json:"n"`
	Total int64     `json:"total"`
	Lo    int64     `json:"lo"`
	Hi    int64     `json:"hi"`
	Pages int64     `json:"pages"`
}

// checkResults compares the output topic, deduplicated by eddy-id, with
// the reference.
func (e *aggEnv) checkResults(ref *aggReference, exactlyOnce bool) {
	t := e.t
	t.Helper()
	msgs := readTopic(t, e.brokers, e.out, 30*time.Second)
	byID := map[string]winResult{}
	copies := map[string]int{}
	idOf := map[[3]string]string{}
	for _, m := range msgs {
		at := fmt.Sprintf("output %d/%d", m.Partition, m.Offset)
		id := header(m, processor.IDHeader)
		if id == "" {
			t.Errorf("%s: no %s header", at, processor.IDHeader)
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(m.Value, &fields); err != nil || len(fields) != 8 {
			t.Errorf("%s: %s: want an object of 8 fields (%v)", at, m.Value, err)
			continue
		}
		var o outRecord
		dec := json.NewDecoder(bytes.NewReader(m.Value))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			t.Errorf("%s: %s: %v", at, m.Value, err)
			continue
		}
		r := winResult{Key: o.Key, Start: o.Start.UnixMilli(), End: o.End.UnixMilli(),
			N: o.N, Total: o.Total, Lo: o.Lo, Hi: o.Hi, Pages: o.Pages}
		if string(m.Key) != r.Key {
			t.Errorf("%s: message key %q, want the group key %q", at, m.Key, r.Key)
		}
		if prev, ok := byID[id]; ok && prev != r {
			t.Errorf("eddy-id %s carries two different results:\n %v\n %v", id, prev, r)
		}
		if other, ok := idOf[r.window()]; ok && other != id {
			t.Errorf("window %v emitted under two ids, %s and %s", r.window(), other, id)
		}
		idOf[r.window()] = id
		byID[id] = r
		copies[id]++
	}
	got := make([]winResult, 0, len(byID))
	repeated := 0
	for id, r := range byID {
		got = append(got, r)
		if copies[id] > 1 {
			repeated++
			if exactlyOnce {
				t.Errorf("eddy-id %s (%v) emitted %d times, want once", id, r, copies[id])
			}
		}
	}
	sortResults(got)
	t.Logf("%d output records, %d distinct windows (%d repeated), reference %d windows, %d late events",
		len(msgs), len(got), repeated, len(ref.results), len(ref.late))
	diffResults(t, got, ref.results)
}

// diffResults reports the windows missing, unexpected or different.
func diffResults(t *testing.T, got, want []winResult) {
	t.Helper()
	g := map[[3]string]winResult{}
	for _, r := range got {
		g[r.window()] = r
	}
	w := map[[3]string]winResult{}
	for _, r := range want {
		w[r.window()] = r
	}
	var lines []string
	for _, r := range want {
		if x, ok := g[r.window()]; !ok {
			lines = append(lines, "missing:    "+r.String())
		} else if x != r {
			lines = append(lines, "different:  "+x.String()+"\n      want: "+r.String())
		}
	}
	for _, r := range got {
		if _, ok := w[r.window()]; !ok {
			lines = append(lines, "unexpected: "+r.String())
		}
	}
	if len(lines) > 0 {
		n := len(lines)
		if n > 25 {
			lines = append(lines[:25], "...")
		}
		t.Errorf("%d of %d windows wrong (got %d):\n%s", n, len(want), len(got), strings.Join(lines, "\n"))
	}
}

// checkLate checks that the late topic holds exactly the late events, each
// with its original key and value and the headers saying where it came
// from.
func (e *aggEnv) checkLate(ref *aggReference, input map[lateAt]inputEvent) {
	t := e.t
	t.Helper()
	msgs := readTopic(t, e.brokers, e.late, 30*time.Second)
	seen := map[lateAt]string{}
	for _, m := range msgs {
		part, err1 := strconv.ParseInt(header(m, processor.HeaderPartition), 10, 32)
		off, err2 := strconv.ParseInt(header(m, processor.HeaderOffset), 10, 64)
		if err1 != nil || err2 != nil {
			t.Errorf("late record %d: headers %s=%q %s=%q: want numbers", m.Offset,
				processor.HeaderPartition, header(m, processor.HeaderPartition), processor.HeaderOffset, header(m, processor.HeaderOffset))
			continue
		}
		at := lateAt{int32(part), off}
		id := header(m, processor.IDHeader)
		if prev, ok := seen[at]; ok && prev != id {
			t.Errorf("late event %d/%d sent under two ids, %s and %s", at.part, at.offset, prev, id)
		}
		seen[at] = id
		src, ok := input[at]
		if !ok {
			t.Errorf("late record %d names source %d/%d, which does not exist", m.Offset, at.part, at.offset)
			continue
		}
		if !ref.late[at] {
			t.Errorf("event %d/%d %s was sent to the late topic; the reference counts it", at.part, at.offset, src.raw)
		}
		if !bytes.Equal(m.Value, src.raw) || string(m.Key) != src.key {
			t.Errorf("late event %d/%d: key %q value %s, want the original %q %s", at.part, at.offset, m.Key, m.Value, src.key, src.raw)
		}
		for h, want := range map[string]string{
			processor.HeaderStep: aggStep, processor.HeaderTopic: e.in, processor.HeaderPipeline: e.name,
			processor.HeaderEventID: fmt.Sprintf("%s-%d-%d", e.in, at.part, at.offset),
		} {
			if got := header(m, h); got != want {
				t.Errorf("late event %d/%d: header %s = %q, want %q", at.part, at.offset, h, got, want)
			}
		}
		if id == "" || !strings.HasPrefix(header(m, processor.HeaderError), "late:") {
			t.Errorf("late event %d/%d: %s %q, %s %q: want an id and a \"late: ...\" error",
				at.part, at.offset, processor.IDHeader, id, processor.HeaderError, header(m, processor.HeaderError))
		}
	}
	for at := range ref.late {
		if _, ok := seen[at]; !ok {
			t.Errorf("late event %d/%d %s is not in the late topic", at.part, at.offset, input[at].raw)
		}
	}
}

// stateKey is the aggregate's state key of a window (the layout documented
// on processor's aggOp): "w\x00<step>\x00<start>\x00<group>" for tumbling
// and hopping windows, "s\x00<step>\x00<group>" for a key's sessions.
// Should the layout change, checkState's positive control fails.
func (e *aggEnv) stateKey(group string, start int64) string {
	if e.kind.gap > 0 {
		return "s\x00clicks\x00" + group
	}
	return "w\x00clicks\x00" + strconv.FormatInt(start, 10) + "\x00" + group
}

// checkState checks, through the store, that closed windows left neither
// state nor timer: the only timers are those of the windows still open
// (the closing events' own), due when the reference says, none at or
// before the watermark; the state of every closed window is gone, that of
// every open one is there.
func (e *aggEnv) checkState(ref *aggReference) {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	closedByPart := map[int32]map[string]bool{}
	for _, r := range ref.results {
		p := partitionOf(t, r.Key, aggParts)
		if closedByPart[p] == nil {
			closedByPart[p] = map[string]bool{}
		}
		closedByPart[p][e.stateKey(r.Key, r.Start)] = true
	}
	for p := range int32(aggParts) {
		part := statedb.Partition{Topic: e.in, Partition: p}
		want := map[string]int64{} // open key -> due
		for _, w := range ref.open[p] {
			k := e.stateKey(w.group, w.start)
			if d, ok := want[k]; !ok || w.due < d {
				want[k] = w.due
			}
			delete(closedByPart[p], k) // a session key with an open session keeps its state
		}
		timers, err := e.store.Due(ctx, part, "", math.MaxInt64, 100)
		if err != nil {
			t.Fatalf("partition %d: due timers: %v", p, err)
		}
		got := map[string]int64{}
		for _, x := range timers {
			got[x.Key] = x.Due
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("partition %d: timers left %s, want only the open windows' %s", p, quoteKeys(got), quoteKeys(want))
		}
		if due, err := e.store.Due(ctx, part, "", ref.finalWM[p], 100); err != nil || len(due) != 0 {
			t.Errorf("partition %d: timers due at the final watermark %d: %v (%v), want none", p, ref.finalWM[p], due, err)
		}
		closedKeys := make([]string, 0, len(closedByPart[p]))
		for k := range closedByPart[p] {
			closedKeys = append(closedKeys, k)
		}
		if len(closedKeys) == 0 {
			t.Errorf("partition %d: no closed window to check", p)
		}
		left, err := e.store.Load(ctx, part, closedKeys)
		if err != nil {
			t.Fatalf("partition %d: load: %v", p, err)
		}
		for k := range left {
			t.Errorf("partition %d: state of closed window %q left in the store", p, k)
		}
		openKeys := make([]string, 0, len(want))
		for k := range want {
			openKeys = append(openKeys, k)
		}
		have, err := e.store.Load(ctx, part, openKeys)
		if err != nil {
			t.Fatalf("partition %d: load: %v", p, err)
		}
		if len(have) != len(openKeys) {
			t.Errorf("partition %d: %d of the %d open windows' state found (keys %q): the state layout changed?", p, len(have), len(openKeys), openKeys)
		}
	}
}

// quoteKeys formats timers for messages: keys quoted (they hold NULs).
func quoteKeys(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%q: %d", k, m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// --- The tests -------------------------------------------------------------

// TestAggregateExactResults runs one worker over the whole input, for each
// backend and window kind: the output, deduplicated by eddy-id, equals the
// reference exactly and holds every window once; late events are in the
// late topic and not counted; closed windows leave no state or timer.
func TestAggregateExactResults(t *testing.T) {
	for _, b := range aggBackends {
		for _, k := range aggKinds {
			t.Run(b.name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				e := newAggEnv(t, b, k)
				e.send(e.data)
				e.send(e.closing)
				w, stop := e.startAggWorker("w")
				e.waitAllStored("the worker to persist every input")
				stop()
				ran := time.Since(start)

				ref := e.checkOutcome(true)
				s := w.Stats()
				if s.WindowsClosed != uint64(len(ref.results)) || s.Out != uint64(len(ref.results)) {
					t.Errorf("stats: %d windows closed, %d outputs; want %d", s.WindowsClosed, s.Out, len(ref.results))
				}
				if s.Late != uint64(len(ref.late)) || s.Poison != 0 || s.NotCoPartitioned != 0 {
					t.Errorf("stats: %d late (want %d), %d poison, %d not co-partitioned (want 0)",
						s.Late, len(ref.late), s.Poison, s.NotCoPartitioned)
				}
				t.Logf("%s/%s: %d events in %d flushes, %d windows, %d late, %d out of order counted; ran %v, flushing %v",
					b.name, k.name, s.In, s.Flushes, s.WindowsClosed, s.Late, ref.outOfOrder, ran.Round(time.Millisecond), s.FlushTime.Round(time.Millisecond))
			})
		}
	}
}

// TestAggregateRestartHandover stops worker a mid-stream, while input is
// arriving and windows are open, and starts worker b (a new Worker with a
// fresh store connection, in the same group) to finish. The union of
// their outputs, deduplicated by eddy-id, equals the uninterrupted run's
// (the reference, which TestAggregateExactResults checks the
// uninterrupted run against); repeated ids carry identical results.
func TestAggregateRestartHandover(t *testing.T) { testAggregateRestart(t, false) }

// TestAggregateRestartOverlap is TestAggregateRestartHandover with worker
// b started while a still runs: they share the partitions, then a stops
// mid-stream and b takes over its partitions.
func TestAggregateRestartOverlap(t *testing.T) { testAggregateRestart(t, true) }

func testAggregateRestart(t *testing.T, overlap bool) {
	for _, b := range aggBackends {
		for _, k := range aggKinds {
			t.Run(b.name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				e := newAggEnv(t, b, k)
				n1 := len(e.data) * 2 / 5
				e.send(e.data[:n1])
				phase1 := e.lastOffsets()
				a, stopA := e.startAggWorker("a")
				e.waitAllStored("worker a to persist the first part")
				if a.Stats().WindowsClosed == 0 {
					t.Fatal("worker a closed no window in the first part")
				}
				var bw *processor.Worker
				var stopB func()
				if overlap {
					bw, stopB = e.startAggWorker("b")
					waitFor(t, 40*time.Second, "a and b to share the partitions", func() bool {
						sa, sb := a.Stats(), bw.Stats()
						return sa.Partitions > 0 && sb.Partitions > 0 && sa.Partitions+sb.Partitions == aggParts
					})
				}
				fed := e.feed(e.data[n1:])
				atStop, fed := e.waitProgressBeyond(phase1, fed)
				stopA()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				afterA, err := storedOffsets(ctx, e.store, e.in, aggParts)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				e.requireOpenWindows("worker a")
				if !overlap {
					bw, stopB = e.startAggWorker("b")
				}
				if err := <-fed; err != nil {
					t.Fatal(err)
				}
				dataEnd := e.lastOffsets()
				midStream := false
				for p, off := range dataEnd {
					midStream = midStream || afterA[p] < off
				}
				if !midStream {
					t.Fatalf("worker a stopped at stored offsets %v, the end of the data %v: not mid-stream", afterA, dataEnd)
				}
				e.send(e.closing)
				e.waitAllStored("worker b to persist every input")
				stopB()
				ran := time.Since(start)

				ref := e.checkOutcome(false)
				sa, sb := a.Stats(), bw.Stats()
				if sa.Poison+sb.Poison != 0 {
					t.Errorf("%d poison events, want 0", sa.Poison+sb.Poison)
				}
				if sb.WindowsClosed == 0 {
					t.Error("worker b closed no window")
				}
				t.Logf("a stopped (asked at stored offsets %v, stopped at %v; the first part ends at %v, the data at %v); a: in %d, windows %d, late %d; b: in %d, skipped %d, windows %d, late %d; reference %d windows; ran %v",
					atStop, afterA, phase1, dataEnd, sa.In, sa.WindowsClosed, sa.Late, sb.In, sb.Skipped, sb.WindowsClosed, sb.Late,
					len(ref.results), ran.Round(time.Millisecond))
			})
		}
	}
}
