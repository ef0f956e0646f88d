package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/route"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/windows"
)

// Queries of live state. eddy's state is in the shared store, so any
// process that has the pipeline and the store can answer what an
// aggregate holds for a key or what a table holds for a row: a worker
// that does not own the key's partition, a worker of another pipeline,
// the CLI. A StateReader reads what the partitions' owners last
// committed (the flush protocol's step (b)), never a batch in flight: a
// value is at most one flush interval plus a commit old while the
// partition is processed, and during a failover it is what the last
// owner committed until the next owner's first flush.

// ErrUnknown is returned for a step or table the pipeline does not have.
var ErrUnknown = errors.New("processor: unknown")

// ErrNotFound is returned when the store holds nothing for the key.
var ErrNotFound = errors.New("processor: not found")

// WindowState is one window of an aggregate's key as the store holds it.
type WindowState struct {
	Start, End time.Time
	// Closed: the partition's watermark has passed End + grace, so the
	// window's final result was emitted (its state is still kept, for
	// retention, or until the owner's next flush deletes it).
	Closed bool
	// Result is the window's result as the step emits it: its values,
	// key, window_start and window_end.
	Result map[string]any
	// Partition is the partition whose state holds it.
	Partition statedb.Partition
}

// KeyState is what an aggregate holds for one key.
type KeyState struct {
	Step, Key string
	Windows   []WindowState // by Start
	// Watermark is, per partition read, the watermark of its last
	// commit (zero time: none yet).
	Watermark map[statedb.Partition]time.Time
}

// StateReader reads a pipeline's committed state from its store. It is
// safe for concurrent use.
type StateReader struct {
	p     *pipeline.Pipeline
	store statedb.Store
	parts func(ctx context.Context, topic string) (int32, error)
	aggs  map[string]*queryAgg
	// MaxWindows bounds how many windows of a key one query reads per
	// partition (tumbling and hopping windows are read by key, from the
	// watermark on): the newest are read. Default 1000.
	MaxWindows int
}

// queryAgg is an aggregate step and the topics of its stage.
type queryAgg struct {
	op     *aggOp
	topics []string
}

// NewStateReader returns a reader of p's state in store. partitions gives
// a topic's partition count (from Kafka's metadata); store must implement
// statedb.Inspector (every backend of eddy does) for aggregate queries.
func NewStateReader(p *pipeline.Pipeline, store statedb.Store, partitions func(ctx context.Context, topic string) (int32, error)) (*StateReader, error) {
	r := &StateReader{p: p, store: store, parts: partitions, aggs: map[string]*queryAgg{}, MaxWindows: 1000}
	for _, st := range p.Stages() {
		for i := st.First; i < st.End; i++ {
			s := &p.Steps[i]
			if s.Aggregate == nil {
				continue
			}
			op, err := newAggOp(stepName(i, s), s.Aggregate)
			if err != nil {
				return nil, err
			}
			r.aggs[s.Aggregate.Name] = &queryAgg{op: op, topics: st.Topics}
		}
	}
	return r, nil
}

// Steps lists the aggregate steps a reader answers for, by name.
func (r *StateReader) Steps() []string { return slices.Sorted(maps.Keys(r.aggs)) }

// Tables lists the tables whose rows are in the store (not those kept in
// Redis or SQL by the user: those are read where they are).
func (r *StateReader) Tables() []string {
	var out []string
	for _, t := range r.p.Tables {
		if t.External == nil {
			out = append(out, t.Name)
		}
	}
	return out
}

// Windows returns the windows that aggregate step holds for key: with a
// zero at, every window the store still has, open and closed; else the
// windows containing at. It reads every partition of the step's stage
// (normally only the key's holds it; all are read so that an aggregate
// whose input is not keyed by the group key, see Co-partitioning, is
// still answered whole). ErrUnknown for a step the pipeline lacks,
// ErrNotFound when no partition holds a window of key.
func (r *StateReader) Windows(ctx context.Context, step, key string, at time.Time) (*KeyState, error) {
	a := r.aggs[step]
	if a == nil {
		return nil, fmt.Errorf("%w aggregate step %q (have %v)", ErrUnknown, step, r.Steps())
	}
	var parts []statedb.Partition
	for _, t := range a.topics {
		n, err := r.parts(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("processor: partitions of %s: %w", t, err)
		}
		for p := range n {
			parts = append(parts, statedb.Partition{Topic: t, Partition: p})
		}
	}
	out := &KeyState{Step: step, Key: key, Watermark: map[statedb.Partition]time.Time{}}
	var mu sync.Mutex
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, p := range parts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ws, wm, err := r.partWindows(ctx, a, p, key, at)
			mu.Lock()
			defer mu.Unlock()
			errs[i] = err
			out.Windows = append(out.Windows, ws...)
			if wm != math.MinInt64 {
				out.Watermark[p] = time.UnixMilli(wm).UTC()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(out.Windows) == 0 {
		return nil, fmt.Errorf("%w: step %s holds no window of key %q", ErrNotFound, step, key)
	}
	sort.Slice(out.Windows, func(i, j int) bool { return out.Windows[i].Start.Before(out.Windows[j].Start) })
	return out, nil
}

// partWindows reads key's windows in partition p, and p's watermark.
func (r *StateReader) partWindows(ctx context.Context, a *queryAgg, p statedb.Partition, key string, at time.Time) ([]WindowState, int64, error) {
	in, ok := r.store.(statedb.Inspector)
	if !ok {
		return nil, 0, fmt.Errorf("processor: the store (%T) cannot be inspected", r.store)
	}
	c, err := in.Inspect(ctx, p)
	if err != nil {
		return nil, 0, fmt.Errorf("processor: reading %s: %w", p, err)
	}
	meta, err := decodeMeta(c.Meta)
	if err != nil {
		return nil, 0, fmt.Errorf("processor: the metadata of %s: %w", p, err)
	}
	wm := windows.NewWatermark(0)
	if err := restoreWatermark(wm, meta); err != nil {
		return nil, 0, fmt.Errorf("processor: the watermark of %s: %w", p, err)
	}
	o := a.op
	var keys []string
	var starts []windows.Window
	switch {
	case o.session:
		keys = []string{o.stateKey(key, 0)}
	case !at.IsZero():
		starts = o.spec.Assign(at.UnixMilli())
	default:
		starts = r.candidates(o, wm)
	}
	for _, w := range starts {
		keys = append(keys, o.stateKey(key, w.Start))
	}
	if len(keys) == 0 {
		return nil, wm.Current(), nil
	}
	got, err := r.store.Load(ctx, p, keys)
	if err != nil {
		return nil, 0, fmt.Errorf("processor: reading %s: %w", p, err)
	}
	var out []WindowState
	add := func(w windows.Window, acc *windows.Acc) {
		if !at.IsZero() && (at.UnixMilli() < w.Start || at.UnixMilli() >= w.End) {
			return
		}
		out = append(out, WindowState{
			Start: time.UnixMilli(w.Start).UTC(), End: time.UnixMilli(w.End).UTC(),
			Closed: o.spec.Closed(w, wm.Current()), Result: o.values(key, w, acc), Partition: p,
		})
	}
	if o.session {
		if b, ok := got[keys[0]]; ok {
			ss, err := o.decodeSessions(b)
			if err != nil {
				return nil, 0, fmt.Errorf("processor: the sessions of %q in %s: %w", key, p, err)
			}
			for _, s := range ss {
				add(s.w, s.acc)
			}
		}
		return out, wm.Current(), nil
	}
	for i, w := range starts {
		b, ok := got[keys[i]]
		if !ok {
			continue
		}
		acc, err := o.fns.Decode(b)
		if err != nil {
			return nil, 0, fmt.Errorf("processor: the window %d of %q in %s: %w", w.Start, key, p, err)
		}
		add(w, acc)
	}
	return out, wm.Current(), nil
}

// candidates are the tumbling or hopping windows a key may hold in a
// partition with watermark wm: from the oldest that may be kept (closed
// at most the step's retention ago) to the one holding the greatest event
// time seen, the newest MaxWindows of them.
func (r *StateReader) candidates(o *aggOp, wm *windows.Watermark) []windows.Window {
	last := wm.MaxEventTime()
	if last == math.MinInt64 {
		return nil
	}
	adv := o.spec.Size
	if o.spec.Kind == windows.Hopping {
		adv = o.spec.Advance
	}
	step := adv.Milliseconds()
	from := last
	if cur := wm.Current(); cur != math.MinInt64 {
		from = min(from, cur-o.spec.Grace.Milliseconds()-o.agg.Retention.Milliseconds()-o.spec.Size.Milliseconds())
	}
	max := r.MaxWindows
	if max <= 0 {
		max = 1000
	}
	var out []windows.Window
	seen := map[int64]bool{}
	for t := last; t >= from && len(out) < max; t -= step {
		for _, w := range o.spec.Assign(t) {
			if !seen[w.Start] && len(out) < max {
				seen[w.Start] = true
				out = append(out, w)
			}
		}
	}
	return out
}

// Row returns table's row for key, as its lookups see it: what the table
// partition's owner last committed. ErrUnknown for a table the pipeline
// lacks (or one kept in Redis or SQL by the user), ErrNotFound for a key
// it does not hold.
func (r *StateReader) Row(ctx context.Context, table, key string) (map[string]any, error) {
	var t *pipeline.Table
	for _, x := range r.p.Tables {
		if x.Name == table && x.External == nil {
			t = x
		}
	}
	if t == nil {
		return nil, fmt.Errorf("%w table %q (have %v)", ErrUnknown, table, r.Tables())
	}
	n, err := r.parts(ctx, t.Topic)
	if err != nil {
		return nil, fmt.Errorf("processor: partitions of %s: %w", t.Topic, err)
	}
	pl, _ := route.NewPlacer(route.Hash)
	p := statedb.Partition{Topic: t.Topic, Partition: pl.Place([]byte(key), "", n)}
	k := scopePrefix(tableScope(t)) + key
	got, err := r.store.Load(ctx, p, []string{k})
	if err != nil {
		return nil, fmt.Errorf("processor: reading %s: %w", p, err)
	}
	raw, ok := got[k]
	if !ok {
		return nil, fmt.Errorf("%w: table %s has no row %q", ErrNotFound, table, key)
	}
	row, err := decodeRow(t, raw)
	if err != nil {
		return nil, fmt.Errorf("processor: the row %q of table %s: %w", key, table, err)
	}
	return row, nil
}
