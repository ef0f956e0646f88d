package processor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/pipeline"
)

// A join step is an interval join. Both inputs are routed by join key into
// the join's internal topic, each record tagged with its side
// (pipeline.Stages), so a join task reads one log: its outputs depend only
// on the order of that log, as an aggregate's do on its partition's, and a
// replay from the stored offset reproduces them. The task's watermark is
// the minimum over every upstream partition of both inputs.
//
// Per join key the operator keeps, in the store, the events of both sides
// whose interval is still open. An event e with time t is:
//
//   - late when t + grace < its watermark (Record.wm): it can no longer be
//     joined with certainty, and goes to the late path;
//   - matched with every buffered event of the other side at most within
//     away: one output per pair, when the second of the two arrives, with
//     an ID made from both IDs (left, right);
//   - buffered until the watermark passes t + within + grace. Then no
//     event still accepted (time ≥ watermark − grace) can match it: it is
//     deleted, and if it never matched and its side's unmatched events are
//     emitted (left, right, outer), it is emitted alone, with the other
//     side null. Never earlier: no later match can contradict it.
//
// One timer per key is due when the key's earliest buffered event closes.

// joinOp is a join step, run on the join's internal topic.
type joinOp struct {
	j      *pipeline.Join
	name   string // steps[i].join, for errors
	sc     string
	within int64               // ms
	grace  int64               // ms
	work   map[string]*joinBuf // this batch's decoded buffers
}

// joinBuf is a join key's buffered events.
type joinBuf struct {
	rows  []joinRow
	dirty bool
}

// joinRow is one buffered event.
type joinRow struct {
	side    pipeline.Side
	matched bool
	t       int64  // event time, ms
	id      string // its ID on the internal topic
	event   []byte // JSON
}

func newJoinOp(i int, s *pipeline.Step) (operator, error) {
	j := s.Join
	if j.Within <= 0 || j.Grace < 0 {
		return nil, fmt.Errorf("processor: %s: within must be > 0 and grace >= 0", s.Field)
	}
	return &joinOp{j: j, name: stepName(i, s), sc: "j\x00" + j.Name,
		within: j.Within.Milliseconds(), grace: j.Grace.Milliseconds(), work: map[string]*joinBuf{}}, nil
}

func (o *joinOp) scope() string { return o.sc }

// closeAt is when a row with time t closes: the first watermark at which
// no accepted event can match it.
func (o *joinOp) closeAt(t int64) int64 {
	if t > math.MaxInt64-o.within-o.grace-1 {
		return math.MaxInt64
	}
	return t + o.within + o.grace + 1
}

func (o *joinOp) process(ctx context.Context, c *opCtx, in []*Record) ([]*Record, error) {
	keys := make([]string, 0, len(in))
	live := in[:0]
	for _, r := range in {
		if r.side != pipeline.SideLeft && r.side != pipeline.SideRight {
			c.poison(r, o.name, errors.New("a record of the join's internal topic without a side"))
			continue
		}
		t := r.Time.UnixMilli()
		if t+o.grace < r.wm {
			c.late(r, o.name, o.j.LateTopic, t, r.wm)
			continue
		}
		keys = append(keys, c.state.key(r.Key))
		live = append(live, r)
	}
	if len(live) == 0 {
		return nil, nil
	}
	if err := c.state.prefetch(ctx, keys); err != nil {
		return nil, err
	}
	var out []*Record
	for i, r := range live {
		k := keys[i]
		b := o.get(c, k)
		ev, err := pipeline.EncodeJSON(r.Event)
		if err != nil {
			c.poison(r, o.name+".encode", err)
			continue
		}
		t := r.Time.UnixMilli()
		row := joinRow{side: r.side, t: t, id: r.ID, event: ev}
		for j := range b.rows {
			other := &b.rows[j]
			if other.side == r.side || absDiff(other.t, t) > o.within {
				continue
			}
			l, rt := other, &row
			if r.side == pipeline.SideLeft {
				l, rt = &row, other
			}
			rec, err := o.pair(c, r.Key, l, rt, r, r.wm)
			if err != nil {
				c.poison(r, o.name, err)
				continue
			}
			out = append(out, rec)
			other.matched, row.matched = true, true
		}
		b.rows = append(b.rows, row)
		b.dirty = true
	}
	o.writeBack(c)
	return out, nil
}

// fire drops the rows whose interval the watermark has closed, emitting
// the unmatched ones of the sides the join type keeps.
func (o *joinOp) fire(ctx context.Context, c *opCtx) ([]*Record, error) {
	wm := c.watermark()
	keys, err := c.dueKeys(ctx)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	var out []*Record
	for _, k := range keys {
		key, ok := c.state.local(k)
		if !ok {
			c.timers.clear(k)
			continue
		}
		b := o.get(c, k)
		keep := b.rows[:0]
		for _, row := range b.rows {
			if o.closeAt(row.t) > wm {
				keep = append(keep, row)
				continue
			}
			if row.matched || !o.j.Emits(row.side) {
				continue
			}
			rec, err := o.unmatched(c, key, &row)
			if err != nil {
				c.logger().Error("dropping an unmatched join row that cannot be emitted", zap.String("step", o.name), zap.Error(err))
				continue
			}
			out = append(out, rec)
		}
		b.rows = keep
		b.dirty = true
	}
	o.writeBack(c)
	return out, nil
}

// get returns the decoded buffer of key (prefetched), from this batch's
// working set or the cache. Undecodable state is reported and dropped
// rather than block the partition.
func (o *joinOp) get(c *opCtx, key string) *joinBuf {
	if b, ok := o.work[key]; ok {
		return b
	}
	b := &joinBuf{}
	if v, ok := c.state.get(key); ok {
		rows, err := decodeJoinRows(v)
		if err != nil {
			c.logger().Error("dropping undecodable join state", zap.String("step", o.name), zap.Error(err))
			b.dirty = true
		}
		b.rows = rows
	}
	o.work[key] = b
	return b
}

// writeBack encodes the changed buffers into the cache with their timer
// (the earliest row's close) and empties the working set.
func (o *joinOp) writeBack(c *opCtx) {
	for k, b := range o.work {
		if !b.dirty {
			continue
		}
		if len(b.rows) == 0 {
			c.state.del(k)
			c.timers.clear(k)
			continue
		}
		due := int64(math.MaxInt64)
		for _, r := range b.rows {
			due = min(due, o.closeAt(r.t))
		}
		c.state.put(k, encodeJoinRows(b.rows), 0)
		c.timers.set(k, due)
	}
	clear(o.work)
}

// pair builds the output of a matching pair; from is the record whose
// arrival made it, wm the watermark it carries.
func (o *joinOp) pair(c *opCtx, key string, l, r *joinRow, from *Record, wm int64) (*Record, error) {
	le, err := pipeline.DecodeJSON(l.event)
	if err != nil {
		return nil, fmt.Errorf("buffered left event: %w", err)
	}
	re, err := pipeline.DecodeJSON(r.event)
	if err != nil {
		return nil, fmt.Errorf("buffered right event: %w", err)
	}
	ev, err := o.output(c, key, le, re, false)
	if err != nil {
		return nil, err
	}
	return &Record{
		Key: key, Event: ev, ID: outputID(c.pipelineName(), "join\x00"+o.j.Name, l.id+"\x00"+r.id, 0),
		Time:  time.UnixMilli(max(l.t, r.t)).UTC(),
		Topic: from.Topic, Partition: from.Partition, Offset: from.Offset, Timestamp: from.Timestamp,
		wm: wm, op: OpInsert,
	}, nil
}

// unmatched builds the output of a row that closed without a match: the
// other side is null.
func (o *joinOp) unmatched(c *opCtx, key string, row *joinRow) (*Record, error) {
	ev, err := pipeline.DecodeJSON(row.event)
	if err != nil {
		return nil, err
	}
	var le, re map[string]any
	if row.side == pipeline.SideLeft {
		le = ev
	} else {
		re = ev
	}
	out, err := o.output(c, key, le, re, true)
	if err != nil {
		return nil, err
	}
	part, last := c.origin()
	return &Record{
		Key: key, Event: out, ID: outputID(c.pipelineName(), "join\x00"+o.j.Name+"\x00"+string(row.side), row.id, 0),
		Time:  time.UnixMilli(row.t).UTC(),
		Topic: part.Topic, Partition: part.Partition, Offset: last,
		wm: c.firedAt(), op: OpInsert,
	}, nil
}

// output is the event of an output: {left, right} (the missing side of an
// unmatched row null), or select evaluated over left and right. In an
// unmatched row the missing side is an empty map, and a field whose
// expression fails (it reads the missing side) is null, as in SQL.
func (o *joinOp) output(c *opCtx, key string, le, re map[string]any, unmatched bool) (map[string]any, error) {
	both := map[string]any{"left": nilIfEmpty(le), "right": nilIfEmpty(re)}
	if o.j.Select == nil {
		return both, nil
	}
	if le == nil {
		le = map[string]any{}
	}
	if re == nil {
		re = map[string]any{}
	}
	v := c.bind(&Record{Key: key, Event: both})
	v.Left, v.Right = le, re
	defer func() { v.Left, v.Right = nil, nil }()
	out := make(map[string]any, len(o.j.Select))
	for _, f := range o.j.Select {
		val, err := f.Expr.Value(v)
		if err != nil {
			if unmatched {
				out[f.Name] = nil
				continue
			}
			return nil, err
		}
		out[f.Name] = val
	}
	return out, nil
}

func nilIfEmpty(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// joinRowsVersion is the first byte of a join buffer's encoding.
const joinRowsVersion = 1

// encodeJoinRows: version, uvarint n, then per row: side, matched (0|1),
// varint time, uvarint len + ID, uvarint len + event JSON.
func encodeJoinRows(rows []joinRow) []byte {
	b := []byte{joinRowsVersion}
	b = binary.AppendUvarint(b, uint64(len(rows)))
	for _, r := range rows {
		m := byte(0)
		if r.matched {
			m = 1
		}
		b = append(b, byte(r.side), m)
		b = binary.AppendVarint(b, r.t)
		b = binary.AppendUvarint(b, uint64(len(r.id)))
		b = append(b, r.id...)
		b = binary.AppendUvarint(b, uint64(len(r.event)))
		b = append(b, r.event...)
	}
	return b
}

func decodeJoinRows(b []byte) ([]joinRow, error) {
	bad := func(what string) error { return fmt.Errorf("join state: %s", what) }
	if len(b) == 0 || b[0] != joinRowsVersion {
		return nil, bad("unknown encoding version")
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, bad("row count")
	}
	b = b[k:]
	rows := make([]joinRow, 0, n)
	bytesOf := func() ([]byte, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return nil, false
		}
		v := b[k : k+int(l)]
		b = b[k+int(l):]
		return v, true
	}
	for range n {
		if len(b) < 2 {
			return nil, bad("truncated row")
		}
		r := joinRow{side: pipeline.Side(b[0]), matched: b[1] == 1}
		b = b[2:]
		t, k := binary.Varint(b)
		if k <= 0 {
			return nil, bad("row time")
		}
		r.t, b = t, b[k:]
		id, ok := bytesOf()
		if !ok {
			return nil, bad("row id")
		}
		ev, ok := bytesOf()
		if !ok {
			return nil, bad("row event")
		}
		r.id, r.event = string(id), slices.Clone(ev)
		rows = append(rows, r)
	}
	if len(b) != 0 {
		return nil, bad("trailing bytes")
	}
	return rows, nil
}
