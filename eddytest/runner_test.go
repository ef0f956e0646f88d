package eddytest

import (
	"context"
	"fmt"
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
