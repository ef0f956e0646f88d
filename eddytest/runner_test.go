package eddytest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/pipeline"
)

func mustParse(t *testing.T, name, yaml string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Parse(name, []byte(yaml), pipeline.WithBrokers("embedded:9092"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const countsYAML = `
name: counts
source: {topics: [clicks], event_time: timestamp(event.ts)}
dead_letter: {topic: dlq}
steps:
  - aggregate:
      name: per_user
      key: event.user
      window: {tumbling: 1m}
      values: {n: count()}
sink: {topic: counts}
`

// TestRunClosesEveryWindowAtTheEnd runs an aggregate on events of two
// windows on three partitions: at the end of the input every window has
// its result, and a broken event is a dead letter.
func TestRunClosesEveryWindowAtTheEnd(t *testing.T) {
	p := mustParse(t, "counts.yaml", countsYAML)
	var evs []Event
	for i := range 10 {
		user := fmt.Sprintf("u%d", i%2)
		evs = append(evs, Event{Key: user, Value: fmt.Appendf(nil, `{"user":%q,"ts":"2024-01-01T00:0%d:10Z"}`, user, i/5)})
	}
	evs = append(evs, Event{Key: "u0", Value: []byte("not json")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, []*pipeline.Pipeline{p}, evs, Config{Partitions: 3, Logger: zaptest.NewLogger(t)}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run took %v", time.Since(start))
	got := map[string]string{}
	for _, r := range res.Outputs {
		got[r.Key+" "+r.Headers["eddy-id"]] = string(r.Value)
	}
	if len(res.Outputs) != 4 {
		t.Errorf("%d outputs, want 4 (2 users × 2 windows): %v", len(res.Outputs), got)
	}
	for _, r := range res.Outputs {
		ev, err := pipeline.DecodeJSON(r.Value)
		if err != nil || (ev["n"] != int64(2) && ev["n"] != int64(3)) {
			t.Errorf("output %s (%v): want n 2 or 3", r.Value, err)
		}
	}
	if len(res.DeadLetters) != 1 || string(res.DeadLetters[0].Value) != "not json" || res.DeadLetters[0].Error() == "" {
		t.Errorf("dead letters %+v, want the broken event with its error", res.DeadLetters)
	}
}

// TestRunOnUpdateOneResultPerEvent runs an on_update aggregate on four
// events of one key and window: in a test run every event is a batch of its
// own, so the window is written once per event (counts 1 to 4), however
// the clock cut the batches; before, the events sent in a burst mostly
// made one batch and one update, sometimes more.
func TestRunOnUpdateOneResultPerEvent(t *testing.T) {
	p := mustParse(t, "updates.yaml", `
name: updates
source: {topics: [clicks], event_time: timestamp(event.ts)}
steps:
  - aggregate:
      name: per_user
      key: event.user
      window: {tumbling: 1m}
      values: {n: count()}
      emit: on_update
sink: {topic: counts}
`)
	if b := bounded(p); b.Spec.Flush.MaxMessages != 1 || p.Spec.Flush.MaxMessages == 1 {
		t.Fatalf("flush.max_messages %d in the test run (want 1), %d in the pipeline (want it kept)", b.Spec.Flush.MaxMessages, p.Spec.Flush.MaxMessages)
	}
	var evs []Event
	for i := range 4 {
		evs = append(evs, Event{Key: "u1", Value: fmt.Appendf(nil, `{"user":"u1","ts":"2024-01-01T00:00:0%dZ"}`, i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, []*pipeline.Pipeline{p}, evs, Config{Logger: zaptest.NewLogger(t)}, false)
	if err != nil {
		t.Fatal(err)
	}
	var ns []any
	for _, r := range res.Outputs {
		ev, err := pipeline.DecodeJSON(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, ev["n"])
	}
	if fmt.Sprint(ns) != "[1 2 3 4]" {
		t.Errorf("updates with n %v, want one per event: [1 2 3 4]", ns)
	}
}

// TestRunJoinSeesTopicsInOrder runs a left join whose result depends on
// the order of its two inputs: l1's right event r1 comes after r2 has
// moved both inputs 10 minutes on, so r1 is late and l1 is unmatched. Run
// waits between events of different topics, so the join reads them in
// the order given; before, the two topics' tasks forwarded them to the
// join's internal topic at their own pace, and when the left task lagged,
// r1 found the join's watermark still at l1 and matched it (more often
// than not).
func TestRunJoinSeesTopicsInOrder(t *testing.T) {
	p := mustParse(t, "join.yaml", `
name: join
source: {topics: [lefts], event_time: timestamp(event.ts)}
steps:
  - join:
      name: j
      with: {topics: [rights], event_time: timestamp(event.ts)}
      on: {left: event.id, right: event.id}
      within: 1m
      type: left
      select: {id: left.id, matched: has(right.id)}
sink: {topic: joined}
`)
	ev := func(topic, id, ts string) Event {
		return Event{Topic: topic, Key: id, Value: fmt.Appendf(nil, `{"id":%q,"ts":"2024-01-01T00:%sZ"}`, id, ts)}
	}
	evs := []Event{ev("lefts", "a", "00:00"), ev("lefts", "b", "10:00"), ev("rights", "b", "10:00"), ev("rights", "a", "00:30")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 3 {
		res, err := Run(ctx, []*pipeline.Pipeline{p}, evs, Config{Logger: zaptest.NewLogger(t)}, true)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range res.Outputs {
			got[r.Key] += string(r.Value)
		}
		want := map[string]string{"a": `{"id":"a","matched":false}`, "b": `{"id":"b","matched":true}`}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("outputs %v, want %v: a's right event is late (the watermark is at 10:00 when it comes), a is unmatched", got, want)
		}
	}
}

// TestSendRefusesTopicsNoPipelineReads: an event for an output topic (or
// one the pipelines do not know) is an error naming the inputs, not a
// record the run would never process.
func TestSendRefusesTopicsNoPipelineReads(t *testing.T) {
	p := mustParse(t, "counts.yaml", countsYAML)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Start(ctx, []*pipeline.Pipeline{p}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, topic := range []string{"counts", "dlq", "nope"} {
		err := r.Send(Event{Topic: topic, Value: []byte(`{}`)})
		if err == nil || !strings.Contains(err.Error(), "is not one the pipelines read ([clicks])") {
			t.Errorf("an event for %s: %v; want an error naming the inputs", topic, err)
		}
	}
}
