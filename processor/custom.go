package processor

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// procOp runs a custom Processor as an operator: its State is the
// operator's keyed state (scope "p\x00<registered name>", "#n" for the
// n-th step of the same name), and a TimerProcessor's timers are the
// operator's timers, fired by the partition's watermark.
type procOp struct {
	name string
	proc Processor
	sc   string
	ov   overlay
	col  collector
}

func (o *procOp) scope() string { return o.sc }

func (o *procOp) untimed() bool {
	_, ok := o.proc.(TimerProcessor)
	return !ok
}

type collector struct{ recs []*Record }

func (c *collector) Emit(r *Record) { c.recs = append(c.recs, r) }

// process calls Process for each record. Keys of a Prefetcher are loaded
// for the whole batch in one round trip first.
func (o *procOp) process(ctx context.Context, c *opCtx, in []*Record) ([]*Record, error) {
	if pf, ok := o.proc.(Prefetcher); ok {
		var keys []string
		for _, r := range in {
			for _, k := range pf.Keys(r) {
				keys = append(keys, c.state.key(k))
			}
		}
		if err := c.state.prefetch(ctx, keys); err != nil {
			return nil, err
		}
	}
	_, canTimer := o.proc.(TimerProcessor)
	out := make([]*Record, 0, len(in))
	for _, r := range in {
		o.ov.begin(c, r.wm, canTimer)
		o.col.recs = o.col.recs[:0]
		err := safeCall(func() error { return o.proc.Process(ctx, r, &o.col, &o.ov) })
		if o.ov.fail != nil {
			return nil, o.ov.fail
		}
		if err == nil {
			err = o.ov.misuse
		}
		if err != nil {
			o.ov.discard()
			c.poison(r, o.name, err)
			continue
		}
		o.ov.apply()
		for _, e := range o.col.recs {
			if e.raw == nil { // a new record: keep its source for dead letters
				e.raw, e.srcKey, e.Topic, e.Partition, e.Offset = r.raw, r.srcKey, r.Topic, r.Partition, r.Offset
				e.wm = r.wm
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

// fire calls OnTimer for each of the processor's timers that the
// watermark has reached, earliest first (ties by key). A timer fires once:
// it is cleared before OnTimer runs, which may set it again.
func (o *procOp) fire(ctx context.Context, c *opCtx) ([]*Record, error) {
	tp, ok := o.proc.(TimerProcessor)
	if !ok {
		return nil, nil
	}
	wm := c.watermark()
	due, err := c.timers.dueAt(ctx, wm)
	if err != nil || len(due) == 0 {
		return nil, err
	}
	part, last := c.origin()
	var out []*Record
	for _, x := range due {
		local, _ := c.state.local(x.Key)
		c.timers.clear(x.Key)
		tmr := Timer{Key: local, Due: time.UnixMilli(x.Due).UTC()}
		// What the timer emits has an ID that depends on the timer alone,
		// not on the batch it fired in: the same on every replay.
		id := "timer\x00" + o.sc + "\x00" + local + "\x00" + strconv.FormatInt(x.Due, 10)
		o.ov.begin(c, wm, true)
		o.col.recs = o.col.recs[:0]
		err := safeCall(func() error { return tp.OnTimer(ctx, tmr, &o.col, &o.ov) })
		if o.ov.fail != nil {
			return nil, o.ov.fail
		}
		if err == nil {
			err = o.ov.misuse
		}
		if err != nil {
			o.ov.discard()
			c.poison(&Record{Key: local, ID: id, Time: tmr.Due, Topic: part.Topic, Partition: part.Partition, Offset: last},
				o.name+".on_timer", fmt.Errorf("timer %q due %s: %w", local, tmr.Due.Format(time.RFC3339Nano), err))
			continue
		}
		o.ov.apply()
		for _, e := range o.col.recs {
			if e.ID == "" {
				e.ID = id
			}
			if e.Time.IsZero() {
				e.Time = tmr.Due
			}
			if e.Timestamp.IsZero() {
				e.Timestamp = tmr.Due
			}
			if e.Topic == "" {
				e.Topic, e.Partition, e.Offset = part.Topic, part.Partition, last
			}
			e.wm = c.firedAt()
			out = append(out, e)
		}
	}
	return out, nil
}

// safeCall turns a panic in custom code into an error: one bad record
// must not crash the worker.
func safeCall(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return f()
}

// overlay is the TimerState a Processor sees while it handles one record
// or timer: its writes and timers are staged and applied to the operator's
// state only if the call succeeds, so a failed record leaves no trace.
type overlay struct {
	c        *opCtx
	wm       int64
	canTimer bool

	puts   map[string]cached // by full key
	order  []string
	timers map[string]int64 // by full key; clearTimer for a cleared one
	torder []string
	// fail keeps the error of a load that gave up (the task's context
	// ended or it was fenced): that is not the record's fault, and the
	// batch is abandoned instead of dead-lettering the record.
	fail error
	// misuse is a programming error of the call (a timer set by a
	// Processor that has no OnTimer): the record goes to the dead letters.
	misuse error
}

// clearTimer marks a staged timer clear.
const clearTimer = math.MinInt64

func (o *overlay) begin(c *opCtx, wm int64, canTimer bool) {
	o.c, o.wm, o.canTimer = c, wm, canTimer
	o.fail, o.misuse = nil, nil
}

func (o *overlay) Get(ctx context.Context, key string) ([]byte, bool, error) {
	full := o.c.state.key(key)
	if e, ok := o.puts[full]; ok {
		return e.val, e.ok, nil
	}
	if !o.c.state.cached(full) {
		if err := o.c.state.prefetch(ctx, []string{full}); err != nil {
			o.fail = err
			return nil, false, err
		}
	}
	v, ok := o.c.state.get(full)
	return v, ok, nil
}

func (o *overlay) Put(key string, value []byte, ttl time.Duration) {
	o.stage(o.c.state.key(key), cached{val: value, ok: true, ttl: ttl})
}

func (o *overlay) Delete(key string) { o.stage(o.c.state.key(key), cached{}) }

func (o *overlay) stage(key string, e cached) {
	if o.puts == nil {
		o.puts = map[string]cached{}
	}
	if _, ok := o.puts[key]; !ok {
		o.order = append(o.order, key)
	}
	o.puts[key] = e
}

func (o *overlay) SetTimer(key string, due time.Time) {
	if !o.canTimer {
		o.misuse = fmt.Errorf("SetTimer(%q): the processor does not implement processor.TimerProcessor (OnTimer)", key)
		return
	}
	o.stageTimer(o.c.state.key(key), due.UnixMilli())
}

func (o *overlay) ClearTimer(key string) { o.stageTimer(o.c.state.key(key), clearTimer) }

func (o *overlay) stageTimer(key string, due int64) {
	if o.timers == nil {
		o.timers = map[string]int64{}
	}
	if _, ok := o.timers[key]; !ok {
		o.torder = append(o.torder, key)
	}
	o.timers[key] = due
}

func (o *overlay) Watermark() time.Time {
	if o.wm == math.MinInt64 {
		return time.Time{}
	}
	return time.UnixMilli(o.wm).UTC()
}

func (o *overlay) apply() {
	for _, k := range o.order {
		e := o.puts[k]
		if e.ok {
			o.c.state.put(k, e.val, e.ttl)
		} else {
			o.c.state.del(k)
		}
	}
	for _, k := range o.torder {
		if d := o.timers[k]; d == clearTimer {
			o.c.timers.clear(k)
		} else {
			o.c.timers.set(k, d)
		}
	}
	o.discard()
}

func (o *overlay) discard() {
	clear(o.puts)
	o.order = o.order[:0]
	clear(o.timers)
	o.torder = o.torder[:0]
}

// StateKey is where the state store keeps key of the custom processor step
// registered as name: what a tool that reads the store directly must ask
// for. A pipeline's n-th step of the same processor (n > 1) is name "#n",
// e.g. "enrich#2". Timers of the step are kept under the same keys, apart
// from its state.
func StateKey(name, key string) string { return scopePrefix("p\x00"+name) + key }
