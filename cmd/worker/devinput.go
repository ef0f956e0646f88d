package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/eddy-streams/eddy/eddytest"
	"github.com/eddy-streams/eddy/internal/ingest"
	"github.com/eddy-streams/eddy/pipeline"
)

// inputName names an -input in messages.
func inputName(path string) string {
	if path == "-" {
		return "stdin"
	}
	return path
}

// feed sends the events of o.input to the run, in order, in batches: each
// line an event (its key from -key), or with -records a record as a test
// file's input gives one. A line that is not JSON is sent as it is (the
// pipeline dead-letters it, as it would on a real topic); a record line
// that cannot be read is reported with its line number and skipped.
func feed(ctx context.Context, r *eddytest.Runner, o *devOptions, pr *printer, produced *atomic.Int64) error {
	in := io.Reader(os.Stdin)
	if o.input != "-" {
		f, err := os.Open(o.input)
		if err != nil {
			return fmt.Errorf("-input: %w", err)
		}
		defer f.Close()
		in = f
	}
	var key *ingest.Key
	if o.key != "" {
		var err error
		if key, err = ingest.CompileKey(o.key); err != nil {
			return fmt.Errorf("-key: %w", err)
		}
	}
	name := inputName(o.input)
	dec := ingest.NewDecoder(in, ingest.JSON, ingest.CSVOptions{})
	var vars pipeline.Vars
	var batch []eddytest.Event
	send := func() error {
		if err := r.Send(batch...); err != nil {
			return err
		}
		produced.Add(int64(len(batch)))
		batch = batch[:0]
		return nil
	}
	for ctx.Err() == nil {
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		ev := eddytest.Event{Topic: o.topic, Value: rec.Raw}
		switch {
		case o.records:
			if ev, err = eddytest.ParseRecord(rec.Raw); err != nil {
				pr.note("✗ %s:%d: not a record, skipped: %v", name, rec.Line, err)
				continue
			}
		case rec.Err == nil && key != nil:
			vars.Event = rec.Event
			k, err := key.Eval(&vars)
			if err != nil {
				pr.note("✗ %s:%d: %v (sent without a key)", name, rec.Line, err)
			}
			ev.Key = k
		}
		batch = append(batch, ev)
		if len(batch) == 500 {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return send()
}

// tailSides prints the dead letters and late events of every stage as
// they are committed, each with its reason.
func tailSides(ctx context.Context, r *eddytest.Runner, stages []*devStage, pr *printer) {
	var topics []string
	for _, s := range stages {
		for _, u := range s.p.Outputs() {
			if u.Side {
				topics = append(topics, u.Topic)
			}
		}
	}
	r.Tail(ctx, topics, func(rec eddytest.Record) {
		what := "late"
		for _, s := range stages {
			if dl := s.p.Spec.DeadLetter; dl != nil && dl.Topic == rec.Topic {
				what = "dead letter"
			}
		}
		pr.side(what, rec)
	})
}
