package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/eddy-streams/eddy/pipeline"
)

// buildOps compiles the pipeline's steps into operators, making one
// Processor per custom step from its Factory. A step kind's runtime is
// built here and nowhere else; its decoding, validation and compilation
// are in package pipeline (see pipeline.Step).
func buildOps(p *pipeline.Pipeline, factories map[string]Factory) ([]operator, error) {
	ops := make([]operator, 0, len(p.Steps))
	seen := map[string]int{} // processor name -> occurrences so far
	for i := range p.Steps {
		s := &p.Steps[i]
		name := stepName(i, s)
		var o operator
		switch s.Kind {
		case pipeline.FilterStep, pipeline.SetStep, pipeline.MapStep, pipeline.KeyStep:
			o = &statelessOp{step: s, name: name}
		case pipeline.ProcessorStep:
			f, ok := factories[s.Processor.Name]
			if !ok {
				return nil, fmt.Errorf("processor: steps[%d].processor.name: no processor registered as %q", i, s.Processor.Name)
			}
			proc, err := f(s.Processor.Config)
			if err != nil {
				return nil, fmt.Errorf("processor: steps[%d].processor %q: config: %w", i, s.Processor.Name, err)
			}
			// The scope is the registered name, and "#n" for its n-th
			// repeat: stable while steps are added or moved around it.
			sc := "p\x00" + s.Processor.Name
			if n := seen[s.Processor.Name]; n > 0 {
				sc += "#" + strconv.Itoa(n+1)
			}
			seen[s.Processor.Name]++
			o = &procOp{name: name, proc: proc, sc: sc}
		case pipeline.AggregateStep:
			a, err := newAggOp(name, s.Aggregate)
			if err != nil {
				return nil, fmt.Errorf("processor: %w", err)
			}
			o = a
		default:
			return nil, fmt.Errorf("processor: steps[%d]: unknown step kind %s", i, s.Kind)
		}
		ops = append(ops, o)
	}
	return ops, nil
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
