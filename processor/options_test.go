package processor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb/memory"
)

func nopFactory(map[string]any) (Processor, error) {
	return ProcessorFunc(func(_ context.Context, r *Record, out Emitter, _ State) error { out.Emit(r); return nil }), nil
}

// TestProcessorsAreRegisteredOnce: a pipeline loaded without naming its
// processors runs with the ones given to New (one registration), and a
// step naming another gets an error at its line listing the registered
// ones (or saying none are, and how custom processors are run).
func TestProcessorsAreRegisteredOnce(t *testing.T) {
	const yaml = `name: reg
kafka: {brokers: [k:9092]}
source: {topics: [in]}
steps:
  - processor: {name: enrich}
  - processor: {name: geo}
sink: {topic: out}
`
	p, err := pipeline.Parse("reg.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		regs []string
		want []string // lines of the error; none: no error
	}{
		{"all registered", []string{"enrich", "geo"}, nil},
		{"one unknown", []string{"enrich", "audit"}, []string{
			`reg.yaml:6: steps[1].processor.name: unknown processor "geo" (registered: audit, enrich)`,
		}},
		{"none registered", nil, []string{
			`reg.yaml:5: steps[0].processor.name: unknown processor "enrich" (none are registered: custom processors run in a Go program that registers them with processor.WithProcessor, see examples/custom-processor)`,
			`reg.yaml:6: steps[1].processor.name: unknown processor "geo" (none are registered: custom processors run in a Go program that registers them with processor.WithProcessor, see examples/custom-processor)`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := []Option{WithStore(memory.New())}
			for _, n := range c.regs {
				opts = append(opts, WithProcessor(n, nopFactory))
			}
			_, err := New(p, opts...)
			if c.want == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New: no error")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("New's error:\n%s\nwant:\n%s", err, strings.Join(c.want, "\n"))
			}
			var pe *pipeline.Error
			if !errors.As(err, &pe) || !strings.HasSuffix(pe.Field, ".processor.name") {
				t.Errorf("New's error is not a *pipeline.Error at a step's name: %#v", err)
			}
		})
	}
}
