package processor

import (
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// TestEveryStepKindHasABuilder ties the runtime to package pipeline's
// kinds table: a step kind that can be parsed can be run.
func TestEveryStepKindHasABuilder(t *testing.T) {
	for _, k := range pipeline.StepKinds() {
		if builders[k] == nil {
			t.Errorf("step kind %s has no builder in processor/ops.go", k)
		}
	}
	if len(builders) != len(pipeline.StepKinds()) {
		t.Errorf("%d builders for %d step kinds", len(builders), len(pipeline.StepKinds()))
	}
}

// TestUnregisteredProcessor: a processor step naming no registered
// processor fails New with the names that are registered, and says that a
// custom processor is registered by a Go program.
func TestUnregisteredProcessor(t *testing.T) {
	p, err := pipeline.Parse("p.yaml", []byte("name: t\nkafka: {brokers: [k:1]}\nsource: {topics: [in]}\n"+
		"steps:\n  - processor: {name: running-total}\nsink: {topic: out}\n"))
	if err != nil {
		t.Fatal(err)
	}
	noop := func(map[string]any) (Processor, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"none registered", nil, `steps[0].processor.name: no processor registered as "running-total" (none are registered)`},
		{"others registered", []Option{WithProcessor("followed-by", noop), WithProcessor("enrich", noop)},
			`no processor registered as "running-total" (registered: enrich, followed-by)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(p, append(tc.opts, WithStore(memory.New()))...)
			if err == nil || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), "a custom processor is Go code: the program that runs the pipeline registers it with processor.WithProcessor") {
				t.Errorf("err %v;\nwant %q and how to register one", err, tc.want)
			}
		})
	}
}
