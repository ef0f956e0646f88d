package processor

import (
	"context"
	"time"

	"github.com/eddy-streams/eddy/pipeline"
)

// Record is one event as it moves through a pipeline: decoded from a source
// message, changed by the steps, and encoded to the sink.
//
// A Record belongs to the partition task that created it. A Processor may
// change it during Process and must not keep it after Process returns.
type Record struct {
	// Key is the record's key: the source message key until a `key` step
	// or a Processor replaces it. The sink partitions by it.
	Key string
	// Event is the decoded message (format json: the JSON object, with
	// integral numbers as int64 and others as float64).
	Event map[string]any
	// Headers are the source message's headers.
	Headers map[string]string
	// ID is the event ID (source.event_id; by default the eddy-id header
	// of an upstream eddy pipeline, else "topic-partition-offset").
	ID string
	// Time is the event time (source.event_time; by default the Kafka
	// record timestamp).
	Time time.Time

	// Where the record came from.
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time

	// raw is the source message value, kept for the dead-letter topic.
	raw []byte
	// srcKey is the source message key, kept for the dead-letter topic.
	srcKey []byte
	// outID, when set, is the output's deterministic ID (window results).
	outID string
	// wm is the partition's watermark as it stood before the source event
	// the record comes from: what an operator judges its lateness against.
	// A record an operator made when its timers fired carries the
	// watermark as it stood when the batch began.
	wm int64
	// version, when versioned, is the eddy-version header of an on_update
	// output: the source offset of the last event of the batch that
	// produced it.
	version   int64
	versioned bool
	// side is the join side of a record read from a join's internal topic.
	side pipeline.Side
	// op, when set, is what the record does to the row it describes: the
	// eddy-op header of the output (see OpHeader).
	op Op
	// tombstone marks a table record with a null value: its row is deleted.
	tombstone bool
}

// OpHeader is the header of every output that describes a row — a window
// result, a joined row — saying what it does to that row, so that a
// downstream table or database can apply the outputs: "insert" (a row not
// emitted before: an on_close result, a join's output, an on_update
// window's first result), "update" (a newer version of a row emitted
// before, same key and window_start: later on_update results) or "delete"
// (a row emitted before is gone: an on_update session merged into another
// that starts earlier).
const OpHeader = "eddy-op"

// Op is the value of the eddy-op header.
type Op uint8

// The ops; OpNone writes no header.
const (
	OpNone Op = iota
	OpInsert
	OpUpdate
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return ""
}

// parseOp is the inverse of Op.String; OpNone for anything else.
func parseOp(s string) Op {
	for _, o := range []Op{OpInsert, OpUpdate, OpDelete} {
		if o.String() == s {
			return o
		}
	}
	return OpNone
}

// Processor is custom Go code that runs as a pipeline step:
//
//	steps:
//	  - processor: {name: enrich, config: {...}}
//
// The runtime creates one Processor per partition task with the Factory
// registered under that name (WithProcessor), and calls Process from that
// task's goroutine only, so a Processor needs no locking. It must keep
// nothing between calls that is not in State: the partition can move to
// another worker at any time, and only State moves with it.
//
// Process receives one record; it passes records on with out.Emit (none
// to drop it, several to fan out; emitting rec itself passes it on
// unchanged or changed). An error sends the input to the dead-letter topic
// (with the error text in its headers) and discards what Process emitted
// and wrote for it; it never stops the partition.
type Processor interface {
	Process(ctx context.Context, rec *Record, out Emitter, st State) error
}

// Emitter passes records to the next step. It is valid only during the
// Process call that received it.
type Emitter interface {
	Emit(rec *Record)
}

// State is the partition's state, kept in the pipeline's state store and
// written through the flush protocol: changes become durable, all together
// with the partition's offset, at the next flush. Keys are per partition.
// It is valid only during the Process call that received it.
type State interface {
	// Get returns the key's value, loading it from the store on a cache
	// miss (one round trip; see Prefetcher to batch them).
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	// Put sets the key's value; a positive ttl makes it expire.
	Put(key string, value []byte, ttl time.Duration)
	// Delete removes the key.
	Delete(key string)
}

// Prefetcher is implemented by a Processor that knows the state keys a
// record will read: the runtime then loads the keys of a whole batch in one
// round trip before calling Process.
type Prefetcher interface {
	Keys(rec *Record) []string
}

// Factory makes a Processor for one partition task from the step's
// `config` in the pipeline file. It is called once when the worker starts,
// to check the config, and then once per claimed partition.
//
// config is the mapping as YAML decodes it (string, int, float64, bool,
// []any and map[string]any values; nil when the step has none), after
// ${VAR} expansion. DecodeConfig decodes it into a struct of the
// processor's own, durations included, reporting unknown fields and wrong
// types by name. An error fails New, wrapped with the file, the step's line
// and the step.
type Factory func(config map[string]any) (Processor, error)

// ProcessorFunc adapts a stateless function to Processor.
type ProcessorFunc func(ctx context.Context, rec *Record, out Emitter, st State) error

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, rec *Record, out Emitter, st State) error {
	return f(ctx, rec, out, st)
}

// TimerProcessor is a Processor that reacts to event time: it sets timers
// on its TimerState, and OnTimer is called for each when the partition's
// watermark reaches its due time, earliest first. With it a Processor can
// wait for what does not happen ("no B within 5 minutes of an A") or emit
// a result once its input is complete.
//
// Timers live in the state store with the Processor's state and move with
// the partition, so a timer set before a crash fires on the next owner. A
// timer fires once; OnTimer may set it again. A key has at most one timer:
// setting it again moves it. What OnTimer emits gets an event ID made of
// the step, the timer's key and its due time (unless OnTimer sets one), so
// its outputs have the same IDs on every replay. An error from OnTimer
// sends a record naming the timer to the dead-letter topic and discards
// what the call emitted and wrote; the timer stays cleared.
type TimerProcessor interface {
	Processor
	OnTimer(ctx context.Context, t Timer, out Emitter, st TimerState) error
}

// Timer is a due timer: the key it was set under and its due time (event
// time, millisecond precision).
type Timer struct {
	Key string
	Due time.Time
}

// TimerState is the State of a Processor's step, with its timers and the
// partition's watermark. The State passed to Process implements it: a
// TimerProcessor type-asserts it (st.(processor.TimerState)).
type TimerState interface {
	State
	// SetTimer sets (or moves) the key's timer: OnTimer is called once
	// the partition's watermark reaches due. Timer keys are the step's
	// own, separate from its state keys. Only a TimerProcessor may set
	// timers: for another Processor the call fails the record.
	SetTimer(key string, due time.Time)
	// ClearTimer removes the key's timer, if any.
	ClearTimer(key string)
	// Watermark is the partition's event-time watermark: the greatest
	// event time seen on the partition minus source.allowed_lateness, as
	// it stood before the record being processed (in OnTimer: now). It is
	// the zero Time before the partition's first event.
	Watermark() time.Time
}

// eventMaps are the maps a task's projected decode fills, reused from one
// batch to the next: an event decoded by a Projection never leaves its
// stage (pipeline.Pipeline.EventFields says "all" for every step that
// would let it: a sink, a repartition, a join, a table, a custom
// processor), and nothing holds a record past its batch's flush, so when
// the next batch starts every map is free again. This saves the two
// allocations of a small map per event.
type eventMaps struct {
	maps []map[string]any
	used int
}

// reuse starts a batch: every map is free.
func (e *eventMaps) reuse() { e.used = 0 }

// next returns a free map (the Projection clears it).
func (e *eventMaps) next() map[string]any {
	if e.used == len(e.maps) {
		e.maps = append(e.maps, make(map[string]any, 8))
	}
	m := e.maps[e.used]
	e.used++
	return m
}
