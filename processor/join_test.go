package processor

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

const joinYAML = `
name: j
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_time: event.ts}
flush: {max_messages: 1000, interval: 5ms, shutdown_timeout: 2s}
steps:
  - join:
      name: paid
      with: {topics: [pay], event_time: event.ts}
      on: {left: event.id, right: event.order}
      within: 10s
      grace: 2s
      type: left
sink: {topic: out}
`

// joinFeed writes what the join's internal topic holds: records tagged by
// side and the upstream partitions' watermark markers.
type joinFeed struct {
	h    *harness
	next int64
}

func (f *joinFeed) record(side byte, key, id string, ts int64) {
	f.h.claim.msgs <- &sarama.ConsumerMessage{Topic: "eddy-j-paid", Offset: f.next, Key: []byte(key),
		Value: []byte(fmt.Sprintf(`{"id":%q,"order":%q,"ts":%d}`, key, key, ts)),
		Headers: []*sarama.RecordHeader{
			{Key: []byte(IDHeader), Value: []byte(id)},
			{Key: []byte(headerEventTime), Value: []byte(strconv.FormatInt(ts, 10))},
			{Key: []byte(headerSide), Value: []byte{side}},
		}}
	f.next++
}

func (f *joinFeed) marker(from string, wm int64) {
	f.h.claim.msgs <- &sarama.ConsumerMessage{Topic: "eddy-j-paid", Offset: f.next,
		Headers: []*sarama.RecordHeader{{Key: []byte(headerMarker), Value: []byte(from)}, {Key: []byte(headerMarkerWM), Value: []byte(strconv.FormatInt(wm, 10))}}}
	f.next++
}

// outputs are the join's outputs so far, as "left.id/right.order".
func (f *joinFeed) outputs() []string {
	f.h.prod.mu.Lock()
	defer f.h.prod.mu.Unlock()
	var out []string
	for _, m := range f.h.prod.sent {
		b, _ := m.Value.Encode()
		var ev struct {
			Left  map[string]any `json:"left"`
			Right map[string]any `json:"right"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			f.h.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%v/%v", ev.Left["id"], ev.Right["order"]))
	}
	slices.Sort(out)
	return out
}

// TestJoinWaitsForBothInputsAndTheGrace: the join's watermark is the
// minimum over the partitions of both inputs, so a left event is not
// emitted unmatched while the other input has not reported; and its
// interval stays open for the grace after within, so a match that comes
// then is a pair, not a "no match" row followed by nothing.
func TestJoinWaitsForBothInputsAndTheGrace(t *testing.T) {
	const t0 = int64(1_800_000_000_000)
	h := newHarnessOn(t, "eddy-j-paid", joinYAML, memory.New())
	f := &joinFeed{h: h}

	f.record('l', "k1", "L1", t0)
	f.record('l', "k2", "L2", t0+1000) // never matched
	f.marker("in/0", t0+60_000)        // the left input is far ahead
	h.waitMarked(f.next)
	if got := f.outputs(); len(got) != 0 {
		t.Fatalf("outputs %v before the right input reported a watermark", got)
	}

	f.marker("pay/0", t0+11_500) // within (10s) passed for L1, not the grace (2s)
	h.waitMarked(f.next)
	if got := f.outputs(); len(got) != 0 {
		t.Fatalf("outputs %v while L1's and L2's intervals are open by the grace", got)
	}
	f.record('r', "k1", "R1", t0+9_900) // behind the watermark, within the grace: joined
	h.waitMarked(f.next)
	if got, want := f.outputs(), []string{"k1/k1"}; !slices.Equal(got, want) {
		t.Fatalf("outputs %v, want the pair %v", got, want)
	}

	f.record('r', "k1", "R2", t0+9_950) // a second match of L1, in a batch of its own
	h.waitMarked(f.next)

	f.marker("pay/0", t0+30_000) // every interval closed
	h.waitMarked(f.next)
	if got, want := f.outputs(), []string{"k1/k1", "k1/k1", "k2/<nil>"}; !slices.Equal(got, want) {
		t.Fatalf("outputs %v, want %v: two pairs, L2 alone once its interval closed, L1 not (it matched)", got, want)
	}
	// Each pair has its own ID (from both inputs' IDs): a reader that
	// deduplicates by eddy-id keeps both.
	ids := map[string]bool{}
	h.prod.mu.Lock()
	for _, m := range h.prod.sent {
		for _, hd := range m.Headers {
			if string(hd.Key) == IDHeader {
				ids[string(hd.Value)] = true
			}
		}
	}
	h.prod.mu.Unlock()
	if len(ids) != 3 {
		t.Errorf("%d distinct output IDs for 3 outputs", len(ids))
	}
	// Both buffers were deleted with their intervals: no timer is left.
	ts, err := h.store.Due(t.Context(), statedb.Partition{Topic: "eddy-j-paid"}, "", math.MaxInt64, 10)
	if err != nil || len(ts) != 0 {
		t.Errorf("timers left after every interval closed: %v (%v)", ts, err)
	}
}
