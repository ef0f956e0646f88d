package processor

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
)

// The partition task is every operator's env (see operator.go): these are
// the only parts of it an operator reaches.

// load loads keys into the cache, retrying while the store is down. Keys
// already cached cost nothing: when all are, no store call is made (nor
// counted in Stats.StoreCalls).
func (t *task) load(ctx context.Context, keys []string) error {
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

// lookup reads keys of partition p's committed state, retrying while the
// store is down: one round trip.
func (t *task) lookup(ctx context.Context, p statedb.Partition, keys []string) (map[string][]byte, error) {
	var rows map[string][]byte
	err := t.retry(ctx, "table lookup", func(ctx context.Context) (err error) {
		rows, err = t.w.o.store.Load(ctx, p, keys)
		return err
	})
	return rows, err
}

// tableRows reads keys from the source of the table the user keeps,
// retrying while it is down: the partition pauses, as for the store.
func (t *task) tableRows(ctx context.Context, table string, keys []string) (map[string]map[string]any, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	src := t.w.o.tables[table]
	var rows map[string]map[string]any
	err := t.retry(ctx, "table "+table+" lookup", func(ctx context.Context) (err error) {
		rows, err = src.Get(ctx, keys)
		return err
	})
	return rows, err
}

// due reads the partition's stored timers under prefix, retrying while
// the store is down.
func (t *task) due(ctx context.Context, prefix string, until int64, limit int) ([]statedb.Timer, error) {
	var timers []statedb.Timer
	err := t.retry(ctx, "timers", func(ctx context.Context) (err error) {
		timers, err = t.w.o.store.Due(ctx, t.part, prefix, until, limit)
		return err
	})
	return timers, err
}

func (t *task) watermark() int64 { return t.wm.Current() }

func (t *task) firedAt() int64 { return t.wmStart }

func (t *task) origin() (statedb.Partition, int64) { return t.part, t.last }

func (t *task) pipelineName() string { return t.w.p.Spec.Name }

func (t *task) stats() *counters { return &t.w.stats }

func (t *task) logger() *zap.Logger { return t.log }

// errOldLayout refuses state written before operators had scopes, when
// the pipeline has a step that would read it wrongly (see checkLayout).
var errOldLayout = errors.New("processor: stored state predates per-step state scopes")

// checkLayout refuses a partition whose stored state was written before
// layout 2 when the pipeline has custom processor steps: their keys were
// not scoped then, so they would now read as absent — silently wrong
// results. Aggregates' keys did not change: their state carries over
// (their watermarks become the partition's, see restoreWatermark). The
// README's "Upgrading" says what to do; a pipeline whose processors keep
// no state opts in with WithStateUpgrade.
func (t *task) checkLayout() error {
	_, ok := t.meta[metaLayout]
	if !ok && t.stored != statedb.NoOffset && !t.w.o.stateUpgrade {
		for i := range t.w.p.Steps {
			if s := &t.w.p.Steps[i]; s.Kind == pipeline.ProcessorStep {
				return fmt.Errorf("%w: partition %s has state written by an earlier eddy, in which custom processors' keys "+
					"were not scoped per step, and %s (%q) would no longer find its keys; if no processor of this pipeline "+
					"keeps state, start the worker with processor.WithStateUpgrade(), otherwise see the README, \"Upgrading\"",
					errOldLayout, t.part, s.Field, s.Processor.Name)
			}
		}
	}
	t.meta[metaLayout] = []byte(layoutVersion)
	return nil
}
