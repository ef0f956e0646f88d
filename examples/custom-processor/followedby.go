package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/eddy-streams/eddy/processor"
)

// followedBy detects, per key, an event of type `first` followed by one of
// type `then` within `within` of event time: a match is emitted when the
// second event arrives; a miss when the partition's watermark passes the
// deadline first (a timer). Its state and timers move with the partition,
// so a worker killed between the two events loses nothing.
type followedBy struct {
	first, then string
	within      time.Duration
}

// followedByConfig is the step's config: {first: cart, then: checkout,
// within: 5m}.
type followedByConfig struct {
	First  string        `yaml:"first"`  // the first event's type
	Then   string        `yaml:"then"`   // the second event's type
	Within time.Duration `yaml:"within"` // how long after the first the second may come
}

// newFollowedBy is the processor's Factory: it decodes and checks the
// step's config.
func newFollowedBy(config map[string]any) (processor.Processor, error) {
	var c followedByConfig
	if err := processor.DecodeConfig(config, &c); err != nil {
		return nil, err
	}
	if c.First == "" || c.Then == "" {
		return nil, errors.New("first, then: required (the two event types)")
	}
	if c.Within <= 0 {
		return nil, errors.New("within: required, a positive duration such as 5m")
	}
	return &followedBy{first: c.First, then: c.Then, within: c.Within}, nil
}

// pending is the state key of a key's unmatched first event: its time.
func pending(key string) string { return "first/" + key }

func (p *followedBy) Process(ctx context.Context, rec *processor.Record, out processor.Emitter, st processor.State) error {
	ts := st.(processor.TimerState)
	typ, _ := rec.Event["type"].(string)
	at, ok, err := st.Get(ctx, pending(rec.Key))
	if err != nil {
		return err
	}
	switch {
	case typ == p.first && !ok:
		st.Put(pending(rec.Key), strconv.AppendInt(nil, rec.Time.UnixMilli(), 10), 0)
		ts.SetTimer(rec.Key, rec.Time.Add(p.within))
	case typ == p.then && ok:
		first, err := strconv.ParseInt(string(at), 10, 64)
		if err != nil {
			return fmt.Errorf("stored time of %q: %w", rec.Key, err)
		}
		if rec.Time.UnixMilli()-first > p.within.Milliseconds() {
			return nil // too late: the timer reports the miss
		}
		st.Delete(pending(rec.Key))
		ts.ClearTimer(rec.Key)
		out.Emit(&processor.Record{Key: rec.Key, Event: map[string]any{
			"key": rec.Key, "matched": true, "after_ms": rec.Time.UnixMilli() - first,
		}})
	}
	return nil
}

// OnTimer runs when the watermark passes a first event's deadline with no
// second event: a miss.
func (p *followedBy) OnTimer(ctx context.Context, t processor.Timer, out processor.Emitter, st processor.TimerState) error {
	if _, ok, err := st.Get(ctx, pending(t.Key)); err != nil || !ok {
		return err
	}
	st.Delete(pending(t.Key))
	out.Emit(&processor.Record{Key: t.Key, Event: map[string]any{"key": t.Key, "matched": false, "deadline": t.Due}})
	return nil
}
