package dedup

import (
	"context"
	"strconv"
)

// IDHeader is the header that carries the deterministic ID of every record
// eddy produces. When source.event_id is not set, an event's ID is this
// header's value if present, so a downstream eddy pipeline drops the
// repeats a crash upstream can cause.
const IDHeader = "eddy-id"

// DefaultID is an event's ID when the pipeline sets no source.event_id:
// the eddy-id header when present, else "<topic>-<partition>-<offset>",
// which is unique per message but makes every re-sent copy a new event.
func DefaultID(topic string, partition int32, offset int64, headers map[string]string) string {
	if id, ok := headers[IDHeader]; ok && id != "" {
		return id
	}
	return topic + "-" + strconv.FormatInt(int64(partition), 10) + "-" + strconv.FormatInt(offset, 10)
}

// SeenFunc asks the idempotency store which of ids it holds (one round
// trip: statedb.Store.Seen for one partition).
type SeenFunc func(ctx context.Context, ids []string) (map[string]bool, error)

// Tracker is the idempotency filter of one partition task: it drops events
// whose ID the store already holds (committed by an earlier flush, this
// owner's or a predecessor's) or that appeared earlier in the unflushed
// batches, and collects the new IDs, which the task commits atomically
// with the state they produced — never before, so a crash cannot mark an
// event seen whose effects were lost.
//
// A Tracker is owned by its task's goroutine.
type Tracker struct {
	pending map[string]struct{}
	ids     []string
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker { return &Tracker{pending: map[string]struct{}{}} }

// Filter reports, for each of ids (one batch, in order), whether to keep
// the event: false for an ID seen before, in the store or pending. It asks
// the store once for the IDs not already pending. Kept IDs become pending.
// On error nothing changes.
func (t *Tracker) Filter(ctx context.Context, ids []string, seen SeenFunc) ([]bool, error) {
	ask := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, dup := t.pending[id]; !dup {
			ask = append(ask, id)
		}
	}
	var stored map[string]bool
	if len(ask) > 0 {
		var err error
		if stored, err = seen(ctx, ask); err != nil {
			return nil, err
		}
	}
	keep := make([]bool, len(ids))
	for i, id := range ids {
		if _, dup := t.pending[id]; dup || stored[id] {
			continue
		}
		t.pending[id] = struct{}{}
		t.ids = append(t.ids, id)
		keep[i] = true
	}
	return keep, nil
}

// Pending returns the IDs kept since the last Committed, for the commit.
func (t *Tracker) Pending() []string { return t.ids }

// Committed forgets the pending IDs once the store holds them.
func (t *Tracker) Committed() {
	clear(t.pending)
	t.ids = t.ids[:0]
}
