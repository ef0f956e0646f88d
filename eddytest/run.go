package eddytest

import (
	"context"
	"errors"
	"slices"

	"github.com/eddy-streams/eddy/pipeline"
)

// Run runs the pipelines (a cascade, upstream first) on events and
// returns what they wrote: it starts a Runner, sends the events of the
// tables' topics first and waits until they are materialized, then the
// others, in order, and with keepOpen false closes the input (every
// window closes, as at the end of a bounded stream) before it reads the
// output topics. Before an event of another topic than the one before it,
// it waits until everything sent is processed: a pipeline that reads
// several topics (a join) sees them in the order given, not in the order
// its tasks, one per topic partition, happened to forward them.
func Run(ctx context.Context, pipelines []*pipeline.Pipeline, events []Event, cfg Config, keepOpen bool) (res *Result, err error) {
	r, err := Start(ctx, pipelines, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	tables := r.tableTopics()
	var first, rest []Event
	for _, ev := range events {
		if slices.Contains(tables, ev.Topic) {
			first = append(first, ev)
		} else {
			rest = append(rest, ev)
		}
	}
	if len(first) > 0 {
		if err := r.Send(first...); err != nil {
			return nil, err
		}
		if err := r.Settle(ctx); err != nil {
			return nil, err
		}
	}
	for i := 0; i < len(rest); {
		n := 1
		for i+n < len(rest) && r.topic(rest[i+n]) == r.topic(rest[i]) {
			n++
		}
		if i > 0 {
			if err := r.Settle(ctx); err != nil {
				return nil, err
			}
		}
		if err := r.send(i, rest[i:i+n]); err != nil {
			return nil, err
		}
		i += n
	}
	if keepOpen {
		err = r.Settle(ctx)
	} else {
		err = r.End(ctx)
	}
	if err != nil {
		return nil, err
	}
	return r.Read(ctx)
}

// tableTopics lists the topics the pipelines' tables materialize.
func (r *Runner) tableTopics() []string {
	var out []string
	for _, s := range r.stages {
		for _, t := range s.Pipeline.Tables {
			out = appendNew(out, t.Topic)
		}
	}
	return out
}
