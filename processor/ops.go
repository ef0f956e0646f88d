package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/eddy-streams/eddy/pipeline"
)

// buildOps compiles the pipeline's steps into operators, making one
// Processor per custom step from its Factory.
func buildOps(p *pipeline.Pipeline, factories map[string]Factory) ([]operator, error) {
	b := &opBuilder{factories: factories, seen: map[string]int{}}
	ops := make([]operator, 0, len(p.Steps))
	for i := range p.Steps {
		s := &p.Steps[i]
		build, ok := builders[s.Kind]
		if !ok {
			return nil, fmt.Errorf("processor: steps[%d]: unknown step kind %s", i, s.Kind)
		}
		o, err := build(b, i, s)
		if err != nil {
			return nil, err
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// builders has the runtime of each step kind: one entry per
// pipeline.StepKind, whose decoding, validation and compilation are
// pipeline's kinds table (pipeline/kinds.go). TestEveryStepKindHasABuilder
// fails when a kind has no entry here.
var builders = map[pipeline.StepKind]func(b *opBuilder, i int, s *pipeline.Step) (operator, error){
	pipeline.FilterStep:    buildStateless,
	pipeline.SetStep:       buildStateless,
	pipeline.MapStep:       buildStateless,
	pipeline.KeyStep:       buildStateless,
	pipeline.ProcessorStep: (*opBuilder).processor,
	pipeline.RepartitionStep: func(_ *opBuilder, i int, s *pipeline.Step) (operator, error) {
		return newRepartOp(i, s)
	},
	pipeline.JoinStep: func(_ *opBuilder, i int, s *pipeline.Step) (operator, error) {
		return newJoinOp(i, s)
	},
	pipeline.LookupStep: func(_ *opBuilder, i int, s *pipeline.Step) (operator, error) {
		return newLookupOp(i, s)
	},
	pipeline.AggregateStep: func(_ *opBuilder, i int, s *pipeline.Step) (operator, error) {
		a, err := newAggOp(stepName(i, s), s.Aggregate)
		if err != nil {
			return nil, fmt.Errorf("processor: %w", err)
		}
		return a, nil
	},
}

// opBuilder is what building a pipeline's operators needs beyond a step.
type opBuilder struct {
	factories map[string]Factory // registered custom processors
	seen      map[string]int     // processor name -> steps of it so far
}

func buildStateless(_ *opBuilder, i int, s *pipeline.Step) (operator, error) {
	return &statelessOp{step: s, name: stepName(i, s)}, nil
}

// processor makes a custom step's Processor from its Factory.
func (b *opBuilder) processor(i int, s *pipeline.Step) (operator, error) {
	f, ok := b.factories[s.Processor.Name]
	if !ok {
		registered := "none are registered"
		if len(b.factories) > 0 {
			registered = "registered: " + strings.Join(slices.Sorted(maps.Keys(b.factories)), ", ")
		}
		return nil, fmt.Errorf("processor: steps[%d].processor.name: no processor registered as %q (%s): "+
			"a custom processor is Go code: the program that runs the pipeline registers it with processor.WithProcessor "+
			"(go run ./examples/custom-processor shows one)", i, s.Processor.Name, registered)
	}
	proc, err := f(s.Processor.Config)
	if err != nil {
		return nil, fmt.Errorf("processor: steps[%d].processor %q: config: %w", i, s.Processor.Name, err)
	}
	// The scope is the registered name, and "#n" for its n-th repeat:
	// stable while steps are added or moved around it.
	sc := "p\x00" + s.Processor.Name
	if n := b.seen[s.Processor.Name]; n > 0 {
		sc += "#" + strconv.Itoa(n+1)
	}
	b.seen[s.Processor.Name]++
	return &procOp{name: stepName(i, s), proc: proc, sc: sc}, nil
}

// scopeOf is an operator's scope, "" for a stateless one.
func scopeOf(o operator) string {
	if s, ok := o.(scoped); ok {
		return s.scope()
	}
	return ""
}

func stepName(_ int, s *pipeline.Step) string {
	return s.Field + "." + s.Kind.String()
}

// statelessOp is filter, set, map and key: pipeline.Step.Apply, the one
// implementation of those steps.
type statelessOp struct {
	stateless
	step *pipeline.Step
	name string
}

func (o *statelessOp) process(_ context.Context, c *opCtx, in []*Record) ([]*Record, error) {
	out := in[:0]
	for _, r := range in {
		v := c.bind(r)
		keep, err := o.step.Apply(v)
		if err != nil {
			step := o.name
			var ee *pipeline.EvalError
			if errors.As(err, &ee) && ee.Field != "" {
				step = ee.Field
			}
			c.poison(r, step, err)
			continue
		}
		if !keep {
			c.stats().filtered.Add(1)
			continue
		}
		r.Event, r.Key = v.Event, v.Key
		out = append(out, r)
	}
	return out, nil
}
