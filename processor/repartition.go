package processor

import (
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

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/route"
)

// A repartition step ends a stage (pipeline.Stage): repartOp writes each
// record, re-keyed, to the step's internal topic, and the next stage's
// tasks read it in the same consumer group. Across the hop:
//
//   - Records carry their event ID (an output ID of the step, the same on
//     every replay) and event time in headers; the reading side always
//     deduplicates, since an upstream task that dies between its produce
//     and its store commit has its batch produced again by the next owner.
//   - Watermarks: each upstream task writes its partition watermark into
//     every partition of the internal topic (a marker record, after the
//     batch's records, in the same transaction), and a downstream
//     partition's watermark is the minimum over every upstream partition
//     of the stage (the source topics' partition count). A downstream
//     partition reads records from every upstream partition in whatever
//     order their tasks ran: the greatest event time seen would make the
//     on-time events of a lagging upstream partition late. An upstream
//     partition without a marker for source.watermark.idle_timeout is left
//     out of the minimum; without idle_timeout, every upstream partition
//     must have reported before the downstream watermark moves.

// Headers of internal records and markers.
const (
	headerEventTime = "eddy-time"   // event time, Unix ms
	headerMarker    = "eddy-marker" // a watermark marker from upstream partition "<topic>/<partition>"
	headerMarkerWM  = "eddy-wm"     // the marker's watermark, Unix ms
	headerSide      = "eddy-side"   // the join side of a record: "l" or "r"
)

// metaUpstream is the partition metadata key of a downstream task's
// upstream watermarks, so that a new owner continues from them.
const metaUpstream = "\x00upstream"

// repartOp routes a stage's records into an internal topic: a
// repartition step, or one side of a join (its records tagged with their
// side). Stateless, it passes nothing on in its stage.
type repartOp struct {
	stateless
	step   *pipeline.Repartition
	name   string
	router route.Router
	kind   string // of the records' output IDs: distinct per step and side
}

func newRepartOp(i int, s *pipeline.Step) (operator, error) {
	r, err := route.New(s.Repartition.Router)
	if err != nil {
		return nil, fmt.Errorf("processor: steps[%d].repartition.router: %w", i, err)
	}
	return &repartOp{step: s.Repartition, name: stepName(i, s), router: r, kind: "rp\x00" + s.Repartition.Name}, nil
}

// newRouteOp is the routing of one side of a join into its internal
// topic (by hash of the join key), named name in errors.
func newRouteOp(r *pipeline.Repartition, name string) operator {
	pl, _ := route.New(route.Hash)
	return &repartOp{step: r, name: name, router: pl, kind: "rp\x00" + r.Name + "\x00" + string(r.Side)}
}

func (o *repartOp) process(_ context.Context, c *opCtx, in []*Record) ([]*Record, error) {
	n := c.partitions(o.step.Topic)
	var nth map[string]int
	var parts []int32
	for _, r := range in {
		key, err := o.step.Key.String(c.bind(r))
		if err != nil {
			c.poison(r, o.name+".key", err)
			continue
		}
		val, err := pipeline.EncodeJSON(r.Event)
		if err != nil {
			c.poison(r, o.name+".encode", err)
			continue
		}
		if nth == nil {
			nth = map[string]int{}
		}
		id := outputID(c.pipelineName(), o.kind, r.ID, nth[r.ID])
		nth[r.ID]++
		parts = o.router.Route(parts[:0], []byte(key), id, n)
		for _, p := range parts {
			pid := id
			if o.step.Router == route.Multicast {
				pid = route.CopyID(id, p)
			}
			m := &sarama.ProducerMessage{
				Topic: o.step.Topic, Partition: p,
				Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(val),
				Headers: []sarama.RecordHeader{
					{Key: idHeaderBytes, Value: []byte(pid)},
					{Key: []byte(headerEventTime), Value: strconv.AppendInt(nil, r.Time.UnixMilli(), 10)},
				},
			}
			if r.op != OpNone {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(OpHeader), Value: opValues[r.op]})
			}
			if o.step.Side != pipeline.SideNone {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(headerSide), Value: []byte{byte(o.step.Side)}})
			}
			for k, v := range r.Headers {
				if !strings.HasPrefix(k, "eddy-") {
					m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
				}
			}
			c.send(m)
		}
	}
	return nil, nil
}

// markWatermark appends, after the batch's internal records, a marker of
// the partition's watermark to every partition of the internal topic the
// task's stage feeds, when it moved since the last one.
func (t *task) markWatermark() {
	r := t.stage.Repartition
	if r == nil {
		return
	}
	wm := t.wm.Current()
	if wm == math.MinInt64 || wm <= t.markedWM {
		return
	}
	t.markedWM = wm
	from := []byte(t.part.Topic + "/" + strconv.FormatInt(int64(t.part.Partition), 10))
	val := strconv.AppendInt(nil, wm, 10)
	for p := range t.partitions(r.Topic) {
		t.out = append(t.out, &sarama.ProducerMessage{
			Topic: r.Topic, Partition: p,
			Headers: []sarama.RecordHeader{{Key: []byte(headerMarker), Value: from}, {Key: []byte(headerMarkerWM), Value: val}},
		})
	}
}

// upstream is a downstream task's view of the watermarks of the upstream
// partitions feeding its internal partition.
type upstream struct {
	expected int                  // upstream partitions (the previous stage's)
	wm       map[string]int64     // "<topic>/<partition>" -> last marker's watermark
	seen     map[string]time.Time // when each last reported (wall clock)
	since    time.Time            // when the task started
}

// isMarker reports whether m, read from an internal topic, is a
// watermark marker rather than a record.
func isMarker(m *sarama.ConsumerMessage) bool {
	for _, h := range m.Headers {
		if string(h.Key) == headerMarker {
			return true
		}
	}
	return false
}

// marker applies m, a watermark marker, and reports whether it was one.
func (u *upstream) marker(m *sarama.ConsumerMessage) bool {
	var from string
	var wm int64
	found := false
	for _, h := range m.Headers {
		switch string(h.Key) {
		case headerMarker:
			from, found = string(h.Value), true
		case headerMarkerWM:
			wm, _ = strconv.ParseInt(string(h.Value), 10, 64)
		}
	}
	if !found {
		return false
	}
	if cur, ok := u.wm[from]; !ok || wm > cur {
		u.wm[from] = wm
	}
	u.seen[from] = time.Now()
	return true
}

// min is the downstream watermark: the minimum over the upstream
// partitions, those silent for idle (when > 0) left out; MinInt64 until
// every counted one has reported.
func (u *upstream) min(idle time.Duration) int64 {
	now := time.Now()
	out, counted := int64(math.MaxInt64), 0
	for from, wm := range u.wm {
		if idle > 0 && now.Sub(u.seen[from]) >= idle {
			continue
		}
		out = min(out, wm)
		counted++
	}
	missing := u.expected - len(u.wm)
	if missing > 0 && (idle <= 0 || now.Sub(u.since) < idle) {
		return math.MinInt64 // an upstream partition has not reported yet
	}
	if counted == 0 {
		return math.MinInt64
	}
	return out
}

// encode writes the upstream watermarks for the partition metadata, in
// order of upstream partition: per entry, the length of "<topic>/<n>"
// (uvarint), the name, and its watermark (varint).
func (u *upstream) encode(dst []byte) []byte {
	keys := make([]string, 0, len(u.wm))
	for k := range u.wm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendVarint(dst, u.wm[k])
	}
	return dst
}

func (u *upstream) decode(b []byte) error {
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return errors.New("processor: upstream watermarks: truncated")
		}
		from := string(b[k : k+int(n)])
		b = b[k+int(n):]
		wm, k := binary.Varint(b)
		if k <= 0 {
			return errors.New("processor: upstream watermarks: truncated")
		}
		b = b[k:]
		u.wm[from] = wm
		u.seen[from] = time.Now()
	}
	return nil
}

// decodeInternal turns a record of an internal topic into rec: the event,
// the key it was routed by, its event ID and time from the headers.
func (t *task) decodeInternal(_ context.Context, rec *Record, m *sarama.ConsumerMessage) (string, error) {
	*rec = Record{
		Key: string(m.Key), Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Timestamp: m.Timestamp, Time: m.Timestamp, raw: m.Value, srcKey: m.Key,
	}
	for _, h := range m.Headers {
		switch k := string(h.Key); k {
		case IDHeader:
			rec.ID = string(h.Value)
		case headerEventTime:
			ms, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil {
				return "decode", fmt.Errorf("internal record: header %s: %w", headerEventTime, err)
			}
			rec.Time = time.UnixMilli(ms)
		case headerSide:
			if len(h.Value) == 1 {
				rec.side = pipeline.Side(h.Value[0])
			}
		case OpHeader:
			rec.op = parseOp(string(h.Value))
		default:
			if rec.Headers == nil {
				rec.Headers = map[string]string{}
			}
			rec.Headers[k] = string(h.Value)
		}
	}
	if rec.ID == "" {
		rec.ID = fmt.Sprintf("%s-%d-%d", m.Topic, m.Partition, m.Offset)
		return "decode", errors.New("internal record without an eddy-id header")
	}
	var ev map[string]any
	var err error
	if t.proj != nil {
		ev, err = t.proj.DecodeInto(m.Value, t.events.next())
	} else {
		ev, err = pipeline.DecodeJSON(m.Value)
	}
	if err != nil {
		return "decode", err
	}
	rec.Event = ev
	return "", nil
}
