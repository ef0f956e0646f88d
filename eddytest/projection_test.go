package eddytest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
)

const projectedYAML = `
name: proj
source: {topics: [in], event_time: event.ts}
dead_letter: {topic: dlq}
steps:
  - filter: %s
  - aggregate:
      name: per_user
      key: event.user
      window: {tumbling: 1m}
      values: {n: count(), total: sum(event.v), top: max(event.v)}
sink: {topic: out}
`

// TestProjectedDecodeGivesTheFullDecodesResults runs one aggregate twice
// over the same 600 events, once as written (the runtime decodes only ts,
// user and v) and once with a filter that reads the whole event (so every
// field is decoded): the same window results with the same IDs, and the
// same dead letters for the same reasons. The events carry fields no
// expression reads, some of them broken (a number out of range, a
// control character, a truncated array), repeated keys and escaped keys
// that name a read field.
func TestProjectedDecodeGivesTheFullDecodesResults(t *testing.T) {
	projected := mustParse(t, "proj.yaml", fmt.Sprintf(projectedYAML, "event.v % 7 != 3"))
	full := mustParse(t, "proj.yaml", fmt.Sprintf(projectedYAML, "event.v % 7 != 3 && size(event) > 0"))
	if fields, all := projected.EventFields(projected.Stages()[0]); all || !slices.Equal(fields, []string{"ts", "user", "v"}) {
		t.Fatalf("projected pipeline reads %v (all: %t), want [ts user v]", fields, all)
	}
	if _, all := full.EventFields(full.Stages()[0]); !all {
		t.Fatal("the reference pipeline should decode the whole event")
	}
	rng := rand.New(rand.NewPCG(1, 19))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	extras := []string{
		``, `,"pad":"xxxxxxxxxxxx"`, `,"nested":{"a":[1,2,{"b":null}],"c":"\u00e9"}`,
		`,"big":1e400`, "," + `"ctl":"a` + "\x01" + `"`, `,"cut":[1,}`, `,"v":1000`, `,"\u0076":7`,
		`,"u":18446744073709551616`, `,"bad":tru`, `,"esc":"\q"`,
	}
	var evs []Event
	for i := range 600 {
		user := fmt.Sprintf("u%d", rng.IntN(7))
		body := fmt.Sprintf(`{"id":"e%d","user":%q,"v":%d,"ts":%d%s}`, i, user, rng.IntN(100), base+int64(i*500+rng.IntN(2000)), extras[rng.IntN(len(extras))])
		if rng.IntN(40) == 0 {
			body = fmt.Sprintf(`{"id":"e%d","user":%q,"ts":%d}`, i, user, base) // no v: the filter fails
		}
		evs = append(evs, Event{Key: user, Value: []byte(body), Time: time.UnixMilli(base)})
	}
	run := func(p *pipeline.Pipeline) *Result {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := Run(ctx, []*pipeline.Pipeline{p}, evs, Config{Partitions: 3, Logger: zaptest.NewLogger(t)}, false)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	got, want := run(projected), run(full)
	outputs := func(res *Result) []string {
		var out []string
		for _, r := range res.Outputs {
			out = append(out, r.Key+" "+r.ID()+" "+string(r.Value))
		}
		slices.Sort(out)
		return out
	}
	deadLetters := func(res *Result) []string {
		var out []string
		for _, r := range res.DeadLetters {
			why := r.Headers[processor.HeaderStep]
			if why == "decode" {
				why += ": " + r.Error() // eval errors name their expression, which differs here
			}
			out = append(out, r.Headers[processor.HeaderPartition]+"/"+r.Headers[processor.HeaderOffset]+" "+r.ID()+" "+why)
		}
		slices.Sort(out)
		return out
	}
	if g, w := outputs(got), outputs(want); !slices.Equal(g, w) || len(g) < 20 {
		t.Errorf("window results differ (or too few: %d):\nprojected %v\nfull      %v", len(g), g, w)
	}
	if g, w := deadLetters(got), deadLetters(want); !slices.Equal(g, w) || len(g) < 100 {
		t.Errorf("dead letters differ (or too few: %d):\nprojected %v\nfull      %v", len(g), g, w)
	}
}
