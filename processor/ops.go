package processor

import (
	"context"
	"fmt"

	"github.com/eddy-streams/eddy/pipeline"
)

// op is one compiled pipeline step. run takes the batch's live records in
// order and returns the records passed on, in order. A record that fails
// goes to t.poison and is not passed on; run returns an error only when the
// batch cannot go on (the task's context ended, or it was fenced).
type op interface {
	run(ctx context.Context, t *task, in []*Record) ([]*Record, error)
}

// buildOps compiles the pipeline's steps into ops, making one Processor
// per custom step from its Factory.
func buildOps(p *pipeline.Pipeline, factories map[string]Factory) ([]op, error) {
	ops := make([]op, 0, len(p.Steps))
	for i := range p.Steps {
		s := &p.Steps[i]
		name := stepName(i, s)
		switch s.Kind {
		case pipeline.FilterStep:
			ops = append(ops, &filterOp{name: name, expr: s.Filter})
		case pipeline.SetStep:
			ops = append(ops, &fieldsOp{name: name, fields: s.Fields})
		case pipeline.MapStep:
			ops = append(ops, &fieldsOp{name: name, fields: s.Fields, replace: true})
		case pipeline.KeyStep:
			ops = append(ops, &keyOp{name: name, expr: s.Key})
		case pipeline.ProcessorStep:
			f, ok := factories[s.Processor.Name]
			if !ok {
				return nil, fmt.Errorf("processor: steps[%d].processor.name: no processor registered as %q", i, s.Processor.Name)
			}
			proc, err := f(s.Processor.Config)
			if err != nil {
				return nil, fmt.Errorf("processor: steps[%d].processor %q: config: %w", i, s.Processor.Name, err)
			}
			ops = append(ops, &procOp{name: name, proc: proc})
		case pipeline.AggregateStep:
			a, err := newAggOp(name, s.Aggregate, p.Source.AllowedLateness)
			if err != nil {
				return nil, fmt.Errorf("processor: %w", err)
			}
			ops = append(ops, a)
		default:
			return nil, fmt.Errorf("processor: steps[%d]: unknown step kind %s", i, s.Kind)
		}
	}
	return ops, nil
}

func stepName(_ int, s *pipeline.Step) string {
	return s.Field + "." + s.Kind.String()
}

type filterOp struct {
	name string
	expr *pipeline.Expr
}

func (o *filterOp) run(_ context.Context, t *task, in []*Record) ([]*Record, error) {
	out := in[:0]
	for _, r := range in {
		ok, err := o.expr.Bool(t.bind(r))
		if err != nil {
			t.poison(r, o.name, err)
			continue
		}
		if !ok {
			t.w.stats.filtered.Add(1)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// fieldsOp is `set` (add or replace fields) and `map` (replace the event).
// All fields are evaluated against the record as it came in, so a field
// never sees another field of the same step.
type fieldsOp struct {
	name    string
	fields  []pipeline.Field
	replace bool
	vals    []any
}

func (o *fieldsOp) run(_ context.Context, t *task, in []*Record) ([]*Record, error) {
	out := in[:0]
next:
	for _, r := range in {
		o.vals = o.vals[:0]
		for _, f := range o.fields {
			v, err := f.Expr.Value(t.bind(r))
			if err != nil {
				t.poison(r, o.name+"."+f.Name, err)
				continue next
			}
			o.vals = append(o.vals, v)
		}
		ev := r.Event
		if o.replace || ev == nil {
			ev = make(map[string]any, len(o.fields))
		}
		for i, f := range o.fields {
			ev[f.Name] = o.vals[i]
		}
		r.Event = ev
		out = append(out, r)
	}
	return out, nil
}

type keyOp struct {
	name string
	expr *pipeline.Expr
}

func (o *keyOp) run(_ context.Context, t *task, in []*Record) ([]*Record, error) {
	out := in[:0]
	for _, r := range in {
		k, err := o.expr.String(t.bind(r))
		if err != nil {
			t.poison(r, o.name, err)
			continue
		}
		r.Key = k
		out = append(out, r)
	}
	return out, nil
}

// procOp runs a custom Processor. Keys of a Prefetcher are loaded for the
// whole batch in one round trip first.
type procOp struct {
	name string
	proc Processor
}

type collector struct{ recs []*Record }

func (c *collector) Emit(r *Record) { c.recs = append(c.recs, r) }

func (o *procOp) run(ctx context.Context, t *task, in []*Record) ([]*Record, error) {
	if pf, ok := o.proc.(Prefetcher); ok {
		var keys []string
		for _, r := range in {
			keys = append(keys, pf.Keys(r)...)
		}
		if err := t.loadState(ctx, keys); err != nil {
			return nil, err
		}
	}
	out := make([]*Record, 0, len(in))
	st := &overlay{c: t.state, load: t.loadState}
	var col collector
	for _, r := range in {
		col.recs = col.recs[:0]
		err := safeProcess(ctx, o.proc, r, &col, st)
		if st.fail != nil {
			return nil, st.fail
		}
		if err != nil {
			st.discard()
			t.poison(r, o.name, err)
			continue
		}
		st.apply()
		for _, e := range col.recs {
			if e.raw == nil { // a new record: keep its source for dead letters
				e.raw, e.srcKey, e.Topic, e.Partition, e.Offset = r.raw, r.srcKey, r.Topic, r.Partition, r.Offset
				if e.ID == "" {
					e.ID = r.ID
				}
				if e.Timestamp.IsZero() {
					e.Timestamp = r.Timestamp
				}
				if e.Time.IsZero() {
					e.Time = r.Time
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// safeProcess turns a panic in custom code into an error: one bad record
// must not crash the worker.
func safeProcess(ctx context.Context, p Processor, r *Record, out Emitter, st State) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return p.Process(ctx, r, out, st)
}

// loadState loads keys into the cache, retrying while the store is down.
// Keys already cached cost nothing: when all are, no store call is made
// (nor counted in Stats.StoreCalls).
func (t *task) loadState(ctx context.Context, keys []string) error {
	miss := t.state.missing(keys)
	if len(miss) == 0 {
		return nil
	}
	err := t.retry(ctx, "state load", func(ctx context.Context) error {
		return t.state.fetch(ctx, miss)
	})
	if err != nil {
		t.state.forget(miss)
	}
	return err
}
