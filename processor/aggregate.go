package processor

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/windows"
)

// aggOp is an `aggregate` step: a windowed aggregation whose state lives in
// the partition's store entries, written through the flush protocol.
//
// State layout (keys are per partition):
//
//	tumbling, hopping: "w\x00<step>\x00<window start>\x00<group key>" -> the window's accumulator
//	session:           "s\x00<step>\x00<group key>" -> the key's open sessions and their accumulators
//
// Every state entry has a store timer under the same key, due when its
// (earliest) window closes, so that whoever owns the partition next finds
// the windows left open without scanning state.
//
// Event time: each event is judged late or not against the step's
// watermark as it stood before the event, and then advances it; windows
// close at the end of each batch. Results therefore do not depend on where
// batches begin and end, only on the partition's order of events.
type aggOp struct {
	name    string // the step's error prefix, steps[N].aggregate
	agg     *pipeline.Aggregate
	spec    windows.Spec
	fns     *windows.Aggregator
	wm      *windows.Watermark
	prefix  string // "w\x00<name>\x00" or "s\x00<name>\x00"
	session bool

	// lowDue is a lower bound of this step's earliest timer: while the
	// watermark is below it no window can close, and the store is not
	// asked. MinInt64 means unknown.
	lowDue int64
	// idleSince is when the partition last received an event (wall clock,
	// read once per batch that added events), for
	// source.watermark.idle_timeout.
	idleSince time.Time

	work    map[string]*winState // this batch's decoded state
	slab    []winState           // where work's entries are allocated, 256 at a time
	changed []string             // keys updated this batch, in order (on_update)
}

// winState is the decoded state of one state key: one accumulator for a
// tumbling or hopping window, or a key's open sessions.
type winState struct {
	group    string
	start    int64          // window start (tumbling, hopping)
	acc      *windows.Acc   // tumbling, hopping
	sessions []sessionState // session
	dirty    bool
	isNew    bool
}

type sessionState struct {
	w   windows.Window
	acc *windows.Acc
}

func newAggOp(name string, a *pipeline.Aggregate, lateness time.Duration) (*aggOp, error) {
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
		wm:      windows.NewWatermark(lateness),
		prefix:  kind + "\x00" + a.Name + "\x00",
		session: spec.Kind == windows.Session,
		lowDue:  math.MinInt64,
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

func (o *aggOp) run(ctx context.Context, t *task, in []*Record) ([]*Record, error) {
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
			t.poison(r, o.name, fmt.Errorf("event time %v: %w", r.Time, err))
			continue
		}
		group, err := o.agg.Key.String(t.bind(r))
		if err != nil {
			t.poison(r, o.name+".key", err)
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
			if args[i], err = v.Arg.Value(t.bind(r)); err != nil {
				t.poison(r, o.name+".values."+v.Name, err)
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
	if err := t.loadState(ctx, keys); err != nil {
		return nil, err
	}

	// Pass 2, in order: lateness against the watermark as it stands before
	// each event, then the event's aggregates. Only an event that was
	// added advances event time: a late or rejected (poison) event changes
	// nothing.
	added := false
	for i := range ups {
		u := &ups[i]
		wm := o.wm.Current()
		if o.spec.LateEvent(u.t, wm) {
			t.late(u.rec, o, u.t, wm)
			continue
		}
		var err error
		if o.session {
			err = o.addSession(t, u)
		} else {
			o.keepOpen(u, wm)
			err = o.addWindows(t, u)
		}
		if err != nil {
			t.poison(u.rec, o.name, err)
			continue
		}
		t.checkCoPartitioned(u.rec, u.group)
		o.wm.Observe(u.t)
		added = true
	}
	if added { // once per batch: the clock is read for idle_timeout only
		o.idleSince = time.Now()
	}

	var out []*Record
	if o.agg.Emit == pipeline.EmitOnUpdate {
		out = o.emitUpdates(t, out)
	}
	o.idleAdvance(t)
	out, err := o.closeDue(ctx, t, out)
	if err != nil {
		return nil, err
	}
	o.writeBack(t)
	t.setMeta(o.agg.Name, o.wm.AppendBinary(nil))
	return out, nil
}

// get returns the decoded state of key, from this batch's working set or
// the cache (loaded before). It never touches the store.
func (o *aggOp) get(t *task, key, group string, start int64) (*winState, error) {
	if ws, ok := o.work[key]; ok {
		return ws, nil
	}
	if len(o.slab) == cap(o.slab) {
		o.slab = make([]winState, 0, 256)
	}
	o.slab = append(o.slab, winState{group: group, start: start})
	ws := &o.slab[len(o.slab)-1]
	b, ok, _ := t.state.get(key)
	if !ok {
		ws.isNew = true
	} else if o.session {
		s, err := o.decodeSessions(b)
		if err != nil {
			return nil, fmt.Errorf("stored sessions of %q: %w", group, err)
		}
		ws.sessions = s
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
func (o *aggOp) addWindows(t *task, u *update) error {
	// On the stack for up to 4 windows (every tumbling window, most
	// hopping ones).
	var statesArr [4]*winState
	var backupArr [4]*windows.Acc
	states, backup := statesArr[:0], backupArr[:0]
	for i, w := range u.wins {
		ws, err := o.get(t, u.keys[i], u.group, w.Start)
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
func (o *aggOp) addSession(t *task, u *update) error {
	key := u.keys[0]
	ws, err := o.get(t, key, u.group, 0)
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
func (o *aggOp) emitUpdates(t *task, out []*Record) []*Record {
	for _, key := range o.changed {
		ws := o.work[key]
		if o.session {
			for _, s := range ws.sessions {
				out = append(out, o.result(t, ws.group, s.w, s.acc, "update"))
			}
			continue
		}
		w := windows.Window{Start: ws.start, End: ws.start + o.spec.Size.Milliseconds()}
		out = append(out, o.result(t, ws.group, w, ws.acc, "update"))
	}
	o.changed = o.changed[:0]
	return out
}

// idleAdvance lets event time pass on a partition that received nothing
// for source.watermark.idle_timeout: the watermark then follows the wall
// clock from the last event's time. Emission time then depends on when
// the partition went quiet, not on the data alone.
func (o *aggOp) idleAdvance(t *task) {
	idle := t.w.p.Source.IdleTimeout
	if idle <= 0 || o.idleSince.IsZero() || o.wm.MaxEventTime() == math.MinInt64 {
		return
	}
	quiet := time.Since(o.idleSince)
	if quiet < idle {
		return
	}
	o.wm.Advance(o.wm.MaxEventTime() + quiet.Milliseconds() - t.w.p.Source.AllowedLateness.Milliseconds())
}

// dueBatch bounds how many timers one Due call returns.
const dueBatch = 1000

// closeDue closes the windows whose close time the watermark has reached:
// it emits their final result (on_close) and deletes their state and timer.
func (o *aggOp) closeDue(ctx context.Context, t *task, out []*Record) ([]*Record, error) {
	wm := o.wm.Current()
	if wm < o.lowDue {
		return out, nil
	}
	// Timers in the store (committed), plus those this task set and has not
	// committed yet, minus those it cleared.
	due := map[string]int64{}
	var timers []statedb.Timer
	err := t.retry(ctx, "timers", func(ctx context.Context) (err error) {
		timers, err = t.w.o.store.Due(ctx, t.part, "", math.MaxInt64, dueBatch)
		return err
	})
	if err != nil {
		return nil, err
	}
	o.lowDue = math.MaxInt64
	if len(timers) == dueBatch {
		o.lowDue = timers[len(timers)-1].Due // more may follow: ask again next time
	}
	for _, x := range timers {
		if !strings.HasPrefix(x.Key, o.prefix) {
			continue
		}
		if _, cleared := t.state.clrT[x.Key]; cleared {
			continue
		}
		if _, moved := t.state.setT[x.Key]; moved {
			continue // the uncommitted timer below wins
		}
		if x.Due <= wm {
			due[x.Key] = x.Due
		} else if x.Due < o.lowDue {
			o.lowDue = x.Due
		}
	}
	for k, d := range t.state.setT {
		if !strings.HasPrefix(k, o.prefix) {
			continue
		}
		if d <= wm {
			due[k] = d
		} else if d < o.lowDue {
			o.lowDue = d
		}
	}
	// State this batch changed: new windows have no timer yet, and a key's
	// sessions may close earlier than their stored timer says.
	for k, ws := range o.work {
		if ws.dirty {
			d := o.nextClose(ws)
			if d <= wm {
				due[k] = d
			} else if d < o.lowDue {
				o.lowDue = d
			}
		}
	}
	if len(due) == 0 {
		return out, nil
	}
	keys := make([]string, 0, len(due))
	for k := range due {
		keys = append(keys, k)
	}
	// Close in a deterministic order: by close time, then key.
	sortByDue(keys, due)
	if err := t.loadState(ctx, keys); err != nil {
		return nil, err
	}
	for _, k := range keys {
		group, start, ok := o.parseKey(k)
		if !ok {
			t.log.Error("dropping a timer with a malformed key", zap.String("step", o.name), zap.String("key", k))
			t.state.clearTimer(k)
			continue
		}
		ws, err := o.get(t, k, group, start)
		if err != nil {
			// Corrupt state cannot be emitted; report it and drop the
			// window rather than block the partition forever.
			t.log.Error("dropping undecodable window state", zap.String("step", o.name), zap.Error(err))
			ws = &winState{group: group, start: start, isNew: true}
			o.work[k] = ws
		}
		if o.session {
			var keep []sessionState
			for _, s := range ws.sessions {
				if o.spec.Closed(s.w, wm) {
					if o.agg.Emit == pipeline.EmitOnClose {
						out = append(out, o.result(t, group, s.w, s.acc, "final"))
					}
					t.w.stats.windowsClosed.Add(1)
					continue
				}
				keep = append(keep, s)
			}
			ws.sessions = keep
		} else if ws.acc != nil {
			w := windows.Window{Start: start, End: start + o.spec.Size.Milliseconds()}
			if o.agg.Emit == pipeline.EmitOnClose {
				out = append(out, o.result(t, group, w, ws.acc, "final"))
			}
			t.w.stats.windowsClosed.Add(1)
			ws.acc = nil
		}
		ws.dirty = true
	}
	return out, nil
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

// writeBack encodes the batch's changed state into the cache, with its
// timers, and empties the working set.
func (o *aggOp) writeBack(t *task) {
	for k, ws := range o.work {
		if !ws.dirty {
			continue
		}
		empty := ws.acc == nil && len(ws.sessions) == 0
		if empty {
			t.state.del(k)
			t.state.clearTimer(k)
			continue
		}
		var b []byte
		if o.session {
			b = o.encodeSessions(ws.sessions)
		} else {
			b = ws.acc.AppendBinary(nil)
		}
		due := o.nextClose(ws)
		t.state.put(k, b, o.ttl(due))
		if ws.isNew || o.session {
			t.state.setTimer(k, due)
		}
		if due < o.lowDue {
			o.lowDue = due
		}
	}
	clear(o.work)
}

// ttl is the wall-clock lifetime of window state, a safety net for state
// that nobody closes (a partition that never receives events again):
// with retention set, the event time left until the window closes plus
// the retention; without it, none (state is deleted when its window
// closes).
func (o *aggOp) ttl(due int64) time.Duration {
	if o.agg.Retention <= 0 {
		return 0
	}
	left := time.Duration(max(0, due-o.wm.Current())) * time.Millisecond
	if due == math.MaxInt64 || o.wm.Current() == math.MinInt64 {
		left = 0
	}
	return left + o.agg.Retention
}

// result builds the output record of a window.
func (o *aggOp) result(t *task, group string, w windows.Window, acc *windows.Acc, kind string) *Record {
	ev := make(map[string]any, len(o.agg.Values)+3)
	vals := acc.Result()
	for i, v := range o.agg.Values {
		ev[v.Name] = vals[i]
	}
	ev["key"] = group
	ev["window_start"] = time.UnixMilli(w.Start).UTC()
	ev["window_end"] = time.UnixMilli(w.End).UTC()
	// The ID is outputID(pipeline, "<step>/final", group 0 start 0 end, 0)
	// for a final result. Updates of one window differ by the batch's last
	// offset: outputID(pipeline, "<step>/update", group 0 start, last); a
	// replay may cut batches differently, which on_update consumers absorb
	// by upserting on (key, window). The input is assembled here in a
	// stack buffer: the ID string is the only allocation.
	var stack [256]byte
	b := append(stack[:0], t.w.p.Spec.Name...)
	b = append(b, 0)
	b = append(b, o.agg.Name...)
	b = append(b, '/')
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, group...)
	b = append(b, 0)
	b = strconv.AppendInt(b, w.Start, 10)
	b = append(b, 0)
	if kind == "update" {
		b = strconv.AppendInt(b, int64(int(t.last)), 10)
	} else {
		b = strconv.AppendInt(b, w.End, 10)
		b = append(b, 0, '0')
	}
	id := hashID(b)
	return &Record{
		Key: group, Event: ev, ID: id, outID: id,
		Time:  time.UnixMilli(w.End - 1).UTC(),
		Topic: t.part.Topic, Partition: t.part.Partition, Offset: t.last,
	}
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

// restore sets the step's watermark from the partition's metadata.
func (o *aggOp) restore(meta map[string][]byte) error {
	b, ok := meta[o.agg.Name]
	if !ok {
		return nil
	}
	return o.wm.UnmarshalBinary(b)
}

func sortByDue(keys []string, due map[string]int64) {
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(due[a], due[b]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

// late handles an event that arrived after every window it belongs to
// closed: counted, and sent to the step's late topic when it has one.
func (t *task) late(r *Record, o *aggOp, tm, wm int64) {
	t.w.stats.late.Add(1)
	if o.agg.LateTopic == "" {
		return
	}
	hdr := func(k, v string) sarama.RecordHeader { return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	m := &sarama.ProducerMessage{
		Topic: o.agg.LateTopic,
		Value: sarama.ByteEncoder(r.raw),
		Headers: []sarama.RecordHeader{
			hdr(IDHeader, outputID(t.w.p.Spec.Name, "late", r.ID, 0)),
			hdr(HeaderError, fmt.Sprintf("late: event time %s is behind the watermark %s of step %s",
				time.UnixMilli(tm).UTC().Format(time.RFC3339Nano), time.UnixMilli(wm).UTC().Format(time.RFC3339Nano), o.agg.Name)),
			hdr(HeaderStep, o.name),
			hdr(HeaderTopic, r.Topic),
			hdr(HeaderPartition, strconv.FormatInt(int64(r.Partition), 10)),
			hdr(HeaderOffset, strconv.FormatInt(r.Offset, 10)),
			hdr(HeaderEventID, r.ID),
			hdr(HeaderPipeline, t.w.p.Spec.Name),
		},
	}
	if r.srcKey != nil {
		m.Key = sarama.ByteEncoder(r.srcKey)
	}
	t.out = append(t.out, m)
}
