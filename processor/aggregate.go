package processor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/windows"
)

// aggOp is an `aggregate` step: a windowed aggregation. It is an operator
// like any other: its state and timers are its own (scope "w\x00<step>" or
// "s\x00<step>"), and it closes windows by the partition's watermark. What
// is here is window logic only; keyed state, timers and the watermark are
// the runtime's (operator.go), which joins and patterns share.
//
// State layout (keys are per partition):
//
//	tumbling, hopping: "w\x00<step>\x00<window start>\x00<group key>" -> the window's accumulator
//	session:           "s\x00<step>\x00<group key>" -> the key's open sessions and their accumulators
//
// Every state entry has a timer under the same key, due when its (earliest)
// window closes, so that whoever owns the partition next finds the windows
// left open without scanning state.
type aggOp struct {
	name    string // the step's error prefix, steps[N].aggregate
	agg     *pipeline.Aggregate
	spec    windows.Spec
	fns     *windows.Aggregator
	prefix  string // "w\x00<name>\x00" or "s\x00<name>\x00": scopePrefix(scope())
	session bool

	work    map[string]*winState // this batch's decoded state
	slab    []winState           // where work's entries are allocated, 256 at a time
	changed []string             // keys updated this batch, in order (on_update)
	enc     []byte               // scratch for encoding a state (writeBack)
}

// winState is the decoded state of one state key: one accumulator for a
// tumbling or hopping window, or a key's open sessions.
type winState struct {
	group    string
	start    int64          // window start (tumbling, hopping)
	acc      *windows.Acc   // tumbling, hopping
	sessions []sessionState // session
	// before are the sessions as stored when the batch began: those an
	// on_update result was emitted for already.
	before []windows.Window
	dirty  bool
	isNew  bool
}

type sessionState struct {
	w   windows.Window
	acc *windows.Acc
}

func newAggOp(name string, a *pipeline.Aggregate) (*aggOp, error) {
	spec := windows.Spec{Grace: a.Window.Grace}
	switch a.Window.Kind {
	case pipeline.Tumbling:
		spec.Kind, spec.Size = windows.Tumbling, a.Window.Size
	case pipeline.Hopping:
		spec.Kind, spec.Size, spec.Advance = windows.Hopping, a.Window.Size, a.Window.Advance
	case pipeline.Session:
		spec.Kind, spec.Gap = windows.Session, a.Window.Gap
	default:
		return nil, fmt.Errorf("%s.window: unknown kind %v", name, a.Window.Kind)
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("%s.window: %w", name, err)
	}
	defs := make([]windows.Def, len(a.Values))
	for i, v := range a.Values {
		defs[i] = windows.Def{Name: v.Name, Func: string(v.Func)}
	}
	fns, err := windows.NewAggregator(defs)
	if err != nil {
		return nil, fmt.Errorf("%s.values: %w", name, err)
	}
	kind := "w"
	if spec.Kind == windows.Session {
		kind = "s"
	}
	return &aggOp{
		name: name, agg: a, spec: spec, fns: fns,
		prefix:  kind + "\x00" + a.Name + "\x00",
		session: spec.Kind == windows.Session,
		work:    map[string]*winState{},
	}, nil
}

func (o *aggOp) stateKey(group string, start int64) string {
	if o.session {
		return o.prefix + group
	}
	// One allocation: the key is assembled in a stack buffer.
	var stack [128]byte
	b := append(stack[:0], o.prefix...)
	b = strconv.AppendInt(b, start, 10)
	b = append(b, 0)
	b = append(b, group...)
	return string(b)
}

// parseKey is stateKey's inverse.
func (o *aggOp) parseKey(k string) (group string, start int64, ok bool) {
	rest, ok := strings.CutPrefix(k, o.prefix)
	if !ok {
		return "", 0, false
	}
	if o.session {
		return rest, 0, true
	}
	s, group, ok := strings.Cut(rest, "\x00")
	if !ok {
		return "", 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	return group, start, err == nil
}

// update is one accepted event of the batch.
type update struct {
	rec   *Record
	group string
	t     int64
	args  []any
	// wins are the event's windows (tumbling, hopping): all of them after
	// pass 1, the open ones in pass 2; keys holds the state key of each
	// (session: the one key).
	wins []windows.Window
	keys []string
}

// scope is the aggregate's key space: "w\x00<name>" (tumbling, hopping)
// or "s\x00<name>" (session), the layout eddy has always used.
func (o *aggOp) scope() string { return strings.TrimSuffix(o.prefix, "\x00") }

// process adds the records to their windows. Each record is judged late or
// not against the partition's watermark as it stood before the source event
// it comes from (Record.wm), so results do not depend on where batches
// begin and end, only on the partition's order of events.
func (o *aggOp) process(ctx context.Context, c *opCtx, in []*Record) ([]*Record, error) {
	// Pass 1: key and arguments of each event, and the state keys to load.
	ups := make([]update, 0, len(in))
	// One buffer per batch for all events' arguments, windows and state
	// keys; each update holds its own part of them. (A part taken before a
	// buffer grew keeps the old array, whose contents do not change.)
	nv := len(o.agg.Values)
	argBuf := make([]any, 0, len(in)*nv)
	winBuf := make([]windows.Window, 0, len(in))
	keys := make([]string, 0, len(in))
	for _, r := range in {
		tm := r.Time.UnixMilli()
		if err := windows.CheckTime(tm); err != nil {
			c.poison(r, o.name, fmt.Errorf("event time %v: %w", r.Time, err))
			continue
		}
		group, err := o.agg.Key.String(c.bind(r))
		if err != nil {
			c.poison(r, o.name+".key", err)
			continue
		}
		a0 := len(argBuf)
		argBuf = append(argBuf, make([]any, nv)...)
		args := argBuf[a0:len(argBuf):len(argBuf)]
		bad := false
		for i, v := range o.agg.Values {
			if v.Arg == nil {
				continue
			}
			if args[i], err = v.Arg.Value(c.bind(r)); err != nil {
				c.poison(r, o.name+".values."+v.Name, err)
				bad = true
				break
			}
		}
		if bad {
			argBuf = argBuf[:a0]
			continue
		}
		// Load every window the event could touch; which of them are still
		// open is decided in order below.
		u := update{rec: r, group: group, t: tm, args: args}
		k0 := len(keys)
		if o.session {
			keys = append(keys, o.stateKey(group, 0))
		} else {
			w0 := len(winBuf)
			winBuf = o.spec.AppendWindows(winBuf, tm)
			u.wins = winBuf[w0:len(winBuf):len(winBuf)]
			for _, w := range u.wins {
				keys = append(keys, o.stateKey(group, w.Start))
			}
		}
		u.keys = keys[k0:len(keys):len(keys)]
		ups = append(ups, u)
	}
	if err := c.state.prefetch(ctx, keys); err != nil {
		return nil, err
	}

	// Pass 2, in order: lateness, then the event's aggregates.
	for i := range ups {
		u := &ups[i]
		wm := u.rec.wm
		if o.spec.LateEvent(u.t, wm) {
			c.late(u.rec, o.name, o.agg.LateTopic, u.t, wm)
			continue
		}
		var err error
		if o.session {
			err = o.addSession(c, u)
		} else {
			o.keepOpen(u, wm)
			err = o.addWindows(c, u)
		}
		if err != nil {
			c.poison(u.rec, o.name, err)
			continue
		}
		c.checkCoPartitioned(u.rec, u.group)
	}

	var out []*Record
	if o.agg.Emit == pipeline.EmitOnUpdate {
		out = o.emitUpdates(c, out)
	}
	o.writeBack(c)
	return out, nil
}

// fire closes the windows whose close time the partition's watermark has
// reached, earliest first: it emits their final result (on_close) and
// deletes their state and timer.
func (o *aggOp) fire(ctx context.Context, c *opCtx) ([]*Record, error) {
	wm := c.watermark()
	keys, err := c.dueKeys(ctx)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	var out []*Record
	for _, k := range keys {
		group, start, ok := o.parseKey(k)
		if !ok {
			c.logger().Error("dropping a timer with a malformed key", zap.String("step", o.name), zap.String("key", k))
			c.timers.clear(k)
			continue
		}
		ws, err := o.get(c, k, group, start)
		if err != nil {
			// Corrupt state cannot be emitted; report it and drop the
			// window rather than block the partition forever.
			c.logger().Error("dropping undecodable window state", zap.String("step", o.name), zap.Error(err))
			ws = &winState{group: group, start: start, isNew: true}
			o.work[k] = ws
		}
		if o.session {
			var keep []sessionState
			for _, s := range ws.sessions {
				if o.spec.Closed(s.w, wm) {
					if o.agg.Emit == pipeline.EmitOnClose {
						out = append(out, o.result(c, group, s.w, s.acc, "final"))
					}
					c.stats().windowsClosed.Add(1)
					continue
				}
				keep = append(keep, s)
			}
			ws.sessions = keep
		} else if ws.acc != nil {
			w := windows.Window{Start: start, End: start + o.spec.Size.Milliseconds()}
			if o.agg.Emit == pipeline.EmitOnClose {
				out = append(out, o.result(c, group, w, ws.acc, "final"))
			}
			c.stats().windowsClosed.Add(1)
			ws.acc = nil
		}
		ws.dirty = true
	}
	o.writeBack(c)
	return out, nil
}

// get returns the decoded state of key, from this batch's working set or
// the cache (loaded before). It never touches the store.
func (o *aggOp) get(c *opCtx, key, group string, start int64) (*winState, error) {
	if ws, ok := o.work[key]; ok {
		return ws, nil
	}
	if len(o.slab) == cap(o.slab) {
		o.slab = make([]winState, 0, 256)
	}
	o.slab = append(o.slab, winState{group: group, start: start})
	ws := &o.slab[len(o.slab)-1]
	b, ok := c.state.get(key)
	if !ok {
		ws.isNew = true
	} else if o.session {
		s, err := o.decodeSessions(b)
		if err != nil {
			return nil, fmt.Errorf("stored sessions of %q: %w", group, err)
		}
		ws.sessions = s
		for _, x := range s {
			ws.before = append(ws.before, x.w)
		}
	} else {
		acc, err := o.fns.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("stored window of %q: %w", group, err)
		}
		ws.acc = acc
	}
	o.work[key] = ws
	return ws, nil
}

// keepOpen keeps the event's windows (and their keys) that are not closed
// at wm, in order: what Spec.AppendOpenWindows returns, without
// allocating.
func (o *aggOp) keepOpen(u *update, wm int64) {
	n := 0
	for i, w := range u.wins {
		if !o.spec.Closed(w, wm) {
			u.wins[n], u.keys[n] = w, u.keys[i]
			n++
		}
	}
	u.wins, u.keys = u.wins[:n], u.keys[:n]
}

// addWindows adds the event to each of its open windows, all or none.
func (o *aggOp) addWindows(c *opCtx, u *update) error {
	// On the stack for up to 4 windows (every tumbling window, most
	// hopping ones).
	var statesArr [4]*winState
	var backupArr [4]*windows.Acc
	states, backup := statesArr[:0], backupArr[:0]
	for i, w := range u.wins {
		ws, err := o.get(c, u.keys[i], u.group, w.Start)
		if err != nil {
			return err
		}
		var bk *windows.Acc
		if ws.acc == nil {
			ws.acc = o.fns.NewAcc()
		} else if len(u.wins) > 1 {
			bk = ws.acc.Clone()
		}
		states, backup = append(states, ws), append(backup, bk)
	}
	for i, ws := range states {
		if err := ws.acc.Add(u.args, u.t); err != nil {
			for j := 0; j < i; j++ { // undo the windows already updated
				if backup[j] != nil {
					states[j].acc = backup[j]
				} else {
					states[j].acc = o.fns.NewAcc()
				}
			}
			return err
		}
	}
	for i, ws := range states {
		o.touch(ws, u.keys[i])
	}
	return nil
}

// addSession merges the event into the key's sessions.
func (o *aggOp) addSession(c *opCtx, u *update) error {
	key := u.keys[0]
	ws, err := o.get(c, key, u.group, 0)
	if err != nil {
		return err
	}
	open := make([]windows.Window, len(ws.sessions))
	for i, s := range ws.sessions {
		open[i] = s.w
	}
	merged, absorbed := o.spec.MergeSession(nil, open, u.t)
	acc := o.fns.NewAcc()
	var keep []sessionState
	for _, s := range ws.sessions {
		if containsWindow(absorbed, s.w) {
			continue
		}
		keep = append(keep, s)
	}
	for _, w := range absorbed { // ascending by start: earlier sessions first
		for _, s := range ws.sessions {
			if s.w == w {
				if err := acc.Merge(s.acc); err != nil {
					return err
				}
			}
		}
	}
	if err := acc.Add(u.args, u.t); err != nil {
		return err
	}
	ws.sessions = append(keep, sessionState{w: merged, acc: acc})
	o.touch(ws, key)
	return nil
}

func containsWindow(ws []windows.Window, w windows.Window) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

func (o *aggOp) touch(ws *winState, key string) {
	if !ws.dirty && o.agg.Emit == pipeline.EmitOnUpdate {
		o.changed = append(o.changed, key)
	}
	ws.dirty = true
}

// emitUpdates emits the current result of every window changed by the
// batch (emit: on_update).
func (o *aggOp) emitUpdates(c *opCtx, out []*Record) []*Record {
	for _, key := range o.changed {
		ws := o.work[key]
		if o.session {
			// A session keeps its row (key, window_start) while it grows
			// at its end; one that an earlier event merged into a session
			// starting before it is gone: its row is deleted.
			for _, s := range ws.sessions {
				r := o.result(c, ws.group, s.w, s.acc, "update")
				r.op = OpInsert
				if slices.ContainsFunc(ws.before, func(b windows.Window) bool { return b.Start == s.w.Start }) {
					r.op = OpUpdate
				}
				out = append(out, r)
			}
			for _, b := range ws.before {
				if !slices.ContainsFunc(ws.sessions, func(s sessionState) bool { return s.w.Start == b.Start }) {
					out = append(out, o.deleted(c, ws.group, b))
				}
			}
			continue
		}
		w := windows.Window{Start: ws.start, End: ws.start + o.spec.Size.Milliseconds()}
		r := o.result(c, ws.group, w, ws.acc, "update")
		r.op = OpUpdate
		if ws.isNew {
			r.op = OpInsert
		}
		out = append(out, r)
	}
	o.changed = o.changed[:0]
	return out
}

// nextClose is the close time of the state's earliest window.
func (o *aggOp) nextClose(ws *winState) int64 {
	if !o.session {
		return o.spec.CloseTime(windows.Window{Start: ws.start, End: ws.start + o.spec.Size.Milliseconds()})
	}
	d := int64(math.MaxInt64)
	for _, s := range ws.sessions {
		d = min(d, o.spec.CloseTime(s.w))
	}
	return d
}

// closeOf is the earliest close time of sessions, as stored: where the
// key's timer is (MaxInt64 for none).
func (o *aggOp) closeOf(sessions []windows.Window) int64 {
	d := int64(math.MaxInt64)
	for _, w := range sessions {
		d = min(d, o.spec.CloseTime(w))
	}
	return d
}

// writeBack encodes the batch's changed state into the cache, with its
// timers, and empties the working set.
func (o *aggOp) writeBack(c *opCtx) {
	for k, ws := range o.work {
		if !ws.dirty {
			continue
		}
		empty := ws.acc == nil && len(ws.sessions) == 0
		if empty {
			c.state.del(k)
			c.timers.clear(k)
			continue
		}
		var b []byte
		if o.session {
			b = o.encodeSessions(ws.sessions)
		} else {
			// Encoded into the reused scratch, then copied at its exact
			// size: one allocation per state, not one per growth.
			o.enc = ws.acc.AppendBinary(o.enc[:0])
			b = bytes.Clone(o.enc)
		}
		due := o.nextClose(ws)
		c.state.put(k, b, o.ttl(c, due))
		// A window's close time never moves: its timer is written once.
		// A session's moves when the session grows at its end or merges;
		// an event inside a session leaves it where the timer already is.
		if ws.isNew || (o.session && due != o.closeOf(ws.before)) {
			c.timers.set(k, due)
		}
	}
	clear(o.work)
}

// ttl is the wall-clock lifetime of window state, a safety net for state
// that nobody closes (a partition that never receives events again):
// with retention set, the event time left until the window closes plus
// the retention; without it, none (state is deleted when its window
// closes).
func (o *aggOp) ttl(c *opCtx, due int64) time.Duration {
	if o.agg.Retention <= 0 {
		return 0
	}
	wm := c.watermark()
	left := time.Duration(max(0, due-wm)) * time.Millisecond
	if due == math.MaxInt64 || wm == math.MinInt64 {
		left = 0
	}
	return left + o.agg.Retention
}

// values is a window's result event: its values, key, window_start and
// window_end.
func (o *aggOp) values(group string, w windows.Window, acc *windows.Acc) map[string]any {
	ev := make(map[string]any, len(o.agg.Values)+3)
	vals := acc.Result()
	for i, v := range o.agg.Values {
		ev[v.Name] = vals[i]
	}
	ev["key"] = group
	ev["window_start"] = time.UnixMilli(w.Start).UTC()
	ev["window_end"] = time.UnixMilli(w.End).UTC()
	return ev
}

// result builds the output record of a window.
func (o *aggOp) result(c *opCtx, group string, w windows.Window, acc *windows.Acc, kind string) *Record {
	ev := o.values(group, w, acc)
	// The ID is outputID(pipeline, "<step>/final", group 0 start 0 end, 0)
	// for a final result. Updates of one window differ by the batch's last
	// offset: outputID(pipeline, "<step>/update", group 0 start, last); a
	// replay may cut batches differently, which on_update consumers absorb
	// by upserting on (key, window). The input is assembled here in a
	// stack buffer: the ID string is the only allocation.
	var stack [256]byte
	part, last := c.origin()
	b := append(stack[:0], c.pipelineName()...)
	b = append(b, 0)
	b = append(b, o.agg.Name...)
	b = append(b, '/')
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, group...)
	b = append(b, 0)
	b = strconv.AppendInt(b, w.Start, 10)
	b = append(b, 0)
	if kind != "final" {
		b = strconv.AppendInt(b, last, 10)
	} else {
		b = strconv.AppendInt(b, w.End, 10)
		b = append(b, 0, '0')
	}
	id := hashID(b)
	return &Record{
		Key: group, Event: ev, ID: id, outID: id,
		Time:  time.UnixMilli(w.End - 1).UTC(),
		Topic: part.Topic, Partition: part.Partition, Offset: last,
		wm:      c.firedAt(),
		version: last, versioned: kind == "update",
		op: OpInsert, // an on_close result; emitUpdates sets its own
	}
}

// deleted is the on_update output that deletes the row of session w of
// group (merged into a session that starts earlier): key, window_start
// and window_end only, with an ID of its own and the batch's version.
func (o *aggOp) deleted(c *opCtx, group string, w windows.Window) *Record {
	r := o.result(c, group, w, o.fns.NewAcc(), "delete")
	r.Event = map[string]any{"key": group, "window_start": r.Event["window_start"], "window_end": r.Event["window_end"]}
	r.versioned, r.op = true, OpDelete
	return r
}

// encodeSessions: uvarint n, then per session varint start, varint end,
// uvarint len, accumulator.
func (o *aggOp) encodeSessions(ss []sessionState) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ss)))
	for _, s := range ss {
		b = binary.AppendVarint(b, s.w.Start)
		b = binary.AppendVarint(b, s.w.End)
		acc := s.acc.AppendBinary(nil)
		b = binary.AppendUvarint(b, uint64(len(acc)))
		b = append(b, acc...)
	}
	return b
}

var errCorruptSessions = errors.New("corrupt session state")

func (o *aggOp) decodeSessions(b []byte) ([]sessionState, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errCorruptSessions
	}
	b = b[k:]
	out := make([]sessionState, 0, n)
	for range n {
		start, k1 := binary.Varint(b)
		if k1 <= 0 {
			return nil, errCorruptSessions
		}
		b = b[k1:]
		end, k2 := binary.Varint(b)
		if k2 <= 0 {
			return nil, errCorruptSessions
		}
		b = b[k2:]
		l, k3 := binary.Uvarint(b)
		if k3 <= 0 || l > uint64(len(b)-k3) {
			return nil, errCorruptSessions
		}
		acc, err := o.fns.Decode(b[k3 : k3+int(l)])
		if err != nil {
			return nil, err
		}
		b = b[k3+int(l):]
		out = append(out, sessionState{w: windows.Window{Start: start, End: end}, acc: acc})
	}
	if len(b) != 0 {
		return nil, errCorruptSessions
	}
	return out, nil
}
