package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/processor"
)

// windowMs is the tumbling window of aggregateStep (1m), in ms.
const windowMs = 60_000

// aggregates are the scenarios whose outputs are aggregateStep's window
// results, compared by content with the fill's reference.
var aggregates = []string{"c", "d", "e", "f", "g", "h", "i"}

// aggResult is one window's result: count() and sum(event.v).
type aggResult struct{ N, Total int64 }

// reference computes what the aggregate scenarios must emit for the
// events the fill generated, in plain Go and without eddy: per (user,
// tumbling minute) the count and the sum of v. It is fed every event as
// the fill generates it, in the order they are produced, which is their
// order in each partition.
type reference struct {
	partitions int32
	wins       map[winKey]aggResult
	maxTime    map[int32]int64  // per input partition: the greatest event time
	partOf     map[string]int32 // user -> input partition, as the fill's producer chose it
	hash       sarama.Partitioner
}

func newReference(partitions int) *reference {
	return &reference{partitions: int32(partitions), wins: map[winKey]aggResult{},
		maxTime: map[int32]int64{}, partOf: map[string]int32{}, hash: sarama.NewMurmur2Partitioner("")}
}

// add counts one event.
func (r *reference) add(user string, v int, ts int64) {
	k := winKey{user, floorMs(ts, windowMs)}
	a := r.wins[k]
	a.N++
	a.Total += int64(v)
	r.wins[k] = a
	p := r.partition(user)
	if t, ok := r.maxTime[p]; !ok || ts > t {
		r.maxTime[p] = ts
	}
}

// partition is the input partition of user's events: murmur2 of the key,
// as newProducer's partitioner (the same function) placed them.
func (r *reference) partition(user string) int32 {
	if p, ok := r.partOf[user]; ok {
		return p
	}
	// A hash partitioner fails only when the key fails to encode, which a
	// StringEncoder never does.
	p, _ := r.hash.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(user)}, r.partitions)
	r.partOf[user] = p
	return p
}

// emitted returns the windows the aggregate scenarios emit, with their
// results.
//
// The fill ends without a closing event, so not every window closes. The
// pipelines emit a window when it closes (emit: on_close), and it closes
// when its partition's watermark reaches its end: watermark >= end
// (windows.Spec.Closed, no grace). The watermark is the greatest event
// time the partition has read (allowed_lateness 0, and no idle_timeout,
// so it never moves without events), and once the whole topic is read it
// is the partition's greatest event time. A window [start, start+1m) of a
// user is therefore emitted exactly when start+1m <= the greatest event
// time of the user's partition; the windows still open at the end (those
// of the minute each partition's last event falls in) are never emitted,
// and are left out here by that rule.
//
// The rule assumes no event is late (Stats.Late, recorded as "late"): one
// producer sends the events in event-time order, so each partition holds
// them in that order unless a send was retried past later ones; an event
// whose window had closed by then would be dropped by eddy, counted here,
// and show as a wrong window.
func (r *reference) emitted() map[winKey]aggResult {
	out := make(map[winKey]aggResult, len(r.wins))
	for k, a := range r.wins {
		if k.start+windowMs <= r.maxTime[r.partition(k.key)] {
			out[k] = a
		}
	}
	return out
}

// emittedAfterHop returns the windows scenario i emits: its aggregate
// runs behind a repartition, where a partition's watermark is the minimum
// of every input partition's (pipeline doc, repartition), so a window is
// emitted when start+1m <= the smallest of the partitions' greatest event
// times.
func (r *reference) emittedAfterHop() map[winKey]aggResult {
	low := int64(math.MaxInt64)
	for p := range r.partitions {
		if t, ok := r.maxTime[p]; ok {
			low = min(low, t)
		} else {
			low = math.MinInt64 // an empty partition holds every window back
		}
	}
	out := make(map[winKey]aggResult, len(r.wins))
	for k, a := range r.wins {
		if k.start+windowMs <= low {
			out[k] = a
		}
	}
	return out
}

// floorMs is t rounded down to a multiple of size (for t < 0 too).
func floorMs(t, size int64) int64 {
	q := t / size
	if t%size != 0 && t < 0 {
		q--
	}
	return q * size
}

// Comparison is how a scenario's outputs compared with the reference.
type Comparison struct {
	// Windows is the number of windows in the reference, Records the
	// number of records read from the output topic.
	Windows int `json:"windows"`
	Records int `json:"records"`
	// Repeats are records with the ID (eddy-id header) of an earlier one,
	// and identical to it: one output written twice (possible without
	// transactions), counted once.
	Repeats int `json:"repeats,omitempty"`
	// Missing windows are in the reference and not in the outputs, Extra
	// in the outputs and not in the reference; Wrong ones are in both,
	// with a different result, or emitted more than once under different
	// IDs. Bad records are not a window result (undecodable, no ID, or a
	// different record under the ID of an earlier one).
	Missing int `json:"missing,omitempty"`
	Extra   int `json:"extra,omitempty"`
	Wrong   int `json:"wrong,omitempty"`
	Bad     int `json:"bad_records,omitempty"`
	// Examples are a few of the differences.
	Examples []string `json:"examples,omitempty"`
	// Summary is the line the report prints after "outputs compared: ".
	Summary string `json:"summary"`
}

// maxExamples is how many differences a Comparison describes.
const maxExamples = 5

// Equal reports whether the outputs were exactly the reference.
func (c *Comparison) Equal() bool { return c.Differ() == 0 }

// Differ is the number of windows (and bad records) that differ.
func (c *Comparison) Differ() int { return c.Missing + c.Extra + c.Wrong + c.Bad }

func (c *Comparison) summarize() {
	if c.Equal() {
		c.Summary = fmt.Sprintf("%d windows, all equal", c.Windows)
		if c.Repeats > 0 {
			c.Summary += fmt.Sprintf(" (%d repeated records, identical, counted once)", c.Repeats)
		}
		return
	}
	c.Summary = fmt.Sprintf("%d of %d windows differ (%d missing, %d extra, %d wrong, %d bad records); e.g. %s",
		c.Differ(), c.Windows, c.Missing, c.Extra, c.Wrong, c.Bad, strings.Join(c.Examples, "; "))
}

func (c *Comparison) example(format string, args ...any) {
	if len(c.Examples) < maxExamples {
		c.Examples = append(c.Examples, fmt.Sprintf(format, args...))
	}
}

// windowOutput is an output record of aggregateStep as the sink writes it
// (processor aggOp.result, encoded by pipeline.EncodeJSON):
//
//	{"key":"u00017","n":3,"total":1500,"window_end":"...Z","window_start":"...Z"}
//
// and its record key is the window's key.
type windowOutput struct {
	Key   string      `json:"key"`
	Start time.Time   `json:"window_start"`
	End   time.Time   `json:"window_end"`
	N     json.Number `json:"n"`
	Total json.Number `json:"total"`
}

// decodeWindow decodes an output record strictly: every field present,
// no other, integers, a one-minute window, the record key the window's.
func decodeWindow(m *sarama.ConsumerMessage) (winKey, aggResult, error) {
	dec := json.NewDecoder(bytes.NewReader(m.Value))
	dec.DisallowUnknownFields()
	var o windowOutput
	if err := dec.Decode(&o); err != nil {
		return winKey{}, aggResult{}, err
	}
	n, err := strconv.ParseInt(o.N.String(), 10, 64)
	if err != nil {
		return winKey{}, aggResult{}, fmt.Errorf("n %q: not an integer", o.N)
	}
	total, err := strconv.ParseInt(o.Total.String(), 10, 64)
	if err != nil {
		return winKey{}, aggResult{}, fmt.Errorf("total %q: not an integer", o.Total)
	}
	start, end := o.Start.UnixMilli(), o.End.UnixMilli()
	switch {
	case o.Key == "" || o.Start.IsZero() || o.End.IsZero():
		return winKey{}, aggResult{}, fmt.Errorf("key, window_start or window_end missing")
	case end-start != windowMs || floorMs(start, windowMs) != start:
		return winKey{}, aggResult{}, fmt.Errorf("window [%s, %s) is not a tumbling minute", o.Start, o.End)
	case string(m.Key) != o.Key:
		return winKey{}, aggResult{}, fmt.Errorf("record key %q, window key %q", m.Key, o.Key)
	}
	return winKey{o.Key, start}, aggResult{n, total}, nil
}

func header(m *sarama.ConsumerMessage, name string) (string, bool) {
	for _, h := range m.Headers {
		if string(h.Key) == name {
			return string(h.Value), true
		}
	}
	return "", false
}

// compareOutputs compares the output records of an aggregate scenario
// with want, the reference's emitted windows, by content: each window's
// key, start, end, count and sum. Records repeating an earlier record's
// ID are counted once if identical to it (key, value and the other
// headers), and bad if not.
func compareOutputs(want map[winKey]aggResult, msgs []*sarama.ConsumerMessage) *Comparison {
	c := &Comparison{Windows: len(want), Records: len(msgs)}
	byID := map[string]*sarama.ConsumerMessage{}
	got := map[winKey][]aggResult{}
	for _, m := range msgs {
		where := fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset)
		id, ok := header(m, processor.IDHeader)
		if !ok {
			c.Bad++
			c.example("record %s: no %s header", where, processor.IDHeader)
			continue
		}
		if first, ok := byID[id]; ok {
			if sameRecord(first, m) {
				c.Repeats++
			} else {
				c.Bad++
				c.example("record %s: ID %s of %s/%d@%d, with other contents", where, id, first.Topic, first.Partition, first.Offset)
			}
			continue
		}
		byID[id] = m
		k, a, err := decodeWindow(m)
		if err != nil {
			c.Bad++
			c.example("record %s: %v: %.200s", where, err, m.Value)
			continue
		}
		got[k] = append(got[k], a)
	}
	for _, k := range sortedKeys(want) {
		w, as := want[k], got[k]
		switch {
		case len(as) == 0:
			c.Missing++
			c.example("missing %s: want %s", k, w)
		case len(as) > 1:
			c.Wrong++
			c.example("%s emitted %d times under different IDs: %v, want %s", k, len(as), as, w)
		case as[0] != w:
			c.Wrong++
			c.example("%s: got %s, want %s", k, as[0], w)
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			c.Extra++
			c.example("extra %s: got %v", k, got[k])
		}
	}
	c.summarize()
	return c
}

// sameRecord reports whether two records are the same output: key, value
// and headers.
func sameRecord(a, b *sarama.ConsumerMessage) bool {
	if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i, h := range a.Headers {
		if !bytes.Equal(h.Key, b.Headers[i].Key) || !bytes.Equal(h.Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[winKey]V) []winKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b winKey) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.start, b.start)
	})
}

func (k winKey) String() string {
	return fmt.Sprintf("%s [%s, +1m)", k.key, time.UnixMilli(k.start).UTC().Format(time.RFC3339))
}

func (a aggResult) String() string { return fmt.Sprintf("n=%d total=%d", a.N, a.Total) }
