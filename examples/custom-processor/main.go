// Command custom-processor shows eddy used as a library: a Go program
// registers its own Processors and runs the same runtime as the worker
// binary. running-total keeps state; followed-by (followedby.go) also sets
// timers, fired by the partition's watermark.
//
//	go run ./examples/custom-processor -c examples/custom-processor/pipeline.yaml
//	go run ./examples/custom-processor -c examples/custom-processor/followed-by.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
)

// runningTotal adds a numeric field of each event to its key's total, kept
// in the partition's state, and passes the event on with the total.
type runningTotal struct{ field string }

// runningTotalConfig is the step's config: {field: amount}.
type runningTotalConfig struct {
	Field string `yaml:"field"` // the numeric event field to add up
}

// newRunningTotal is the processor's Factory: it decodes and checks the
// step's config (a typo or a wrong type is an error naming the field).
func newRunningTotal(config map[string]any) (processor.Processor, error) {
	var c runningTotalConfig
	if err := processor.DecodeConfig(config, &c); err != nil {
		return nil, err
	}
	if c.Field == "" {
		return nil, errors.New("field: required (the numeric event field to add up)")
	}
	return &runningTotal{field: c.Field}, nil
}

// Keys lets the runtime load a whole batch's totals in one round trip.
func (p *runningTotal) Keys(rec *processor.Record) []string { return []string{"total/" + rec.Key} }

func (p *runningTotal) Process(ctx context.Context, rec *processor.Record, out processor.Emitter, st processor.State) error {
	var amount float64
	switch v := rec.Event[p.field].(type) {
	case int64:
		amount = float64(v)
	case float64:
		amount = v
	default:
		return fmt.Errorf("%s: want a number, got %T", p.field, v)
	}
	key := "total/" + rec.Key
	prev, ok, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	total := 0.0
	if ok {
		if total, err = strconv.ParseFloat(string(prev), 64); err != nil {
			return fmt.Errorf("stored total of %q: %w", rec.Key, err)
		}
	}
	total += amount
	st.Put(key, strconv.AppendFloat(nil, total, 'f', -1, 64), 0)
	rec.Event["running_total"] = total
	out.Emit(rec)
	return nil
}

func main() {
	path := flag.String("c", "examples/custom-processor/pipeline.yaml", "pipeline file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *path); err != nil {
		log.Fatal(err)
	}
}

// run loads the pipeline file and runs it until ctx ends.
func run(ctx context.Context, path string) error {
	p, err := pipeline.Load(path)
	if err != nil {
		return err // every problem of the file, one per line: file:line:col: field: message
	}
	w, err := processor.New(p,
		processor.WithProcessor("running-total", newRunningTotal),
		processor.WithProcessor("followed-by", newFollowedBy))
	if err != nil {
		return err // an unknown processor or a bad config, at its file, line and step
	}
	// Run opens the state store the pipeline's state section names (memory
	// when none is: name redis or singlestore there to share state between
	// workers) and closes it once the partitions are flushed and committed.
	return w.Run(ctx)
}
