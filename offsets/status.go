package offsets

import (
	"context"
	"fmt"

	"github.com/eddy-streams/eddy/statedb"
)

// Watermark is a partition's ownership record in the state store.
type Watermark struct {
	// Offset is W, the last offset whose effects are persisted, or
	// statedb.NoOffset (-1) when nothing was committed.
	Offset int64 `json:"offset"`
	// Epoch is the partition's current owner epoch (0: never claimed).
	Epoch int64 `json:"epoch"`
}

// PartitionStatus is where one source partition stands.
type PartitionStatus struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// LogStart and LogEnd are the first offset still in the log and the
	// offset the next message will get.
	LogStart int64 `json:"log_start"`
	LogEnd   int64 `json:"log_end"`
	// Committed is the group's committed offset (the next offset to read),
	// -1 when the group has none.
	Committed int64 `json:"committed"`
	// Watermark is read from the store; nil when the Tool has no store.
	Watermark *Watermark `json:"watermark"`
	// Lag is the number of messages left to process: LogEnd − Next().
	Lag int64 `json:"lag"`
	// Warnings point at inconsistencies worth a look (a watermark beyond
	// the log end, a commit ahead of the watermark, ...).
	Warnings []string `json:"warnings,omitempty"`
}

// Next returns the next offset the pipeline processes on this partition,
// as the runtime decides when a worker claims it: W+1 when the store has a
// watermark (messages up to W are skipped; a committed offset past W+1 is
// rewound to it), else the committed offset; at least the log start
// (with neither, that is where source.start: earliest begins).
func (p *PartitionStatus) Next() int64 {
	if w := p.Watermark; w != nil && w.Offset != statedb.NoOffset {
		return max(w.Offset+1, p.LogStart)
	}
	return max(p.Committed, p.LogStart)
}

// check fills Lag and Warnings.
func (p *PartitionStatus) check() {
	p.Lag = max(0, p.LogEnd-p.Next())
	if p.Committed > p.LogEnd {
		p.warn("committed offset %d is beyond the log end %d (topic recreated?)", p.Committed, p.LogEnd)
	}
	if p.Committed >= 0 && p.Committed < p.LogStart {
		p.warn("committed offset %d is below the log start %d: offsets %d-%d were deleted by retention before being read",
			p.Committed, p.LogStart, p.Committed, p.LogStart-1)
	}
	w := p.Watermark
	if w == nil {
		return
	}
	if w.Offset == statedb.NoOffset {
		if p.Committed > p.LogStart {
			p.warn("the store has no record of this partition but the group has committed offset %d: offsets %d-%d are not in state "+
				"(a new or wiped store: a worker that claims it rebuilds it from offset 0 when the log starts there, else holds it; see state.missing)",
				p.Committed, p.LogStart, p.Committed-1)
		}
		return
	}
	if w.Offset >= p.LogEnd {
		p.warn("store watermark %d is at or beyond the log end %d: the topic was recreated or truncated? "+
			"new messages up to offset %d will be skipped as already applied", w.Offset, p.LogEnd, w.Offset)
	}
	if p.Committed > w.Offset+1 {
		p.warn("committed offset %d is ahead of the store watermark %d: a worker that claims the partition rewinds the group to %d "+
			"and processes %d-%d (the store lost commits, or the offsets were moved forward)",
			p.Committed, w.Offset, w.Offset+1, w.Offset+1, p.Committed-1)
	}
}

func (p *PartitionStatus) warn(format string, args ...any) {
	p.Warnings = append(p.Warnings, fmt.Sprintf(format, args...))
}

// Status is where a group stands on a set of topics.
type Status struct {
	Group      *Group            `json:"group"`
	Partitions []PartitionStatus `json:"partitions"`
}

// Status reads, for every partition of topics: the log start and end,
// the group's committed offset, the store's watermark (with Inspect: no
// partition is claimed) and the lag; and the group's state and members.
// It changes nothing.
func (t *Tool) Status(ctx context.Context, topics ...string) (*Status, error) {
	g, err := t.Describe(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{Group: g}
	for _, topic := range topics {
		ps, err := t.partitionStates(ctx, topic, nil)
		if err != nil {
			return nil, err
		}
		st.Partitions = append(st.Partitions, ps...)
	}
	return st, nil
}

// partitionStates reads the state of parts of topic (nil: all of them),
// which must exist.
func (t *Tool) partitionStates(ctx context.Context, topic string, parts []int32) ([]PartitionStatus, error) {
	all, err := t.partitions(topic)
	if err != nil {
		return nil, err
	}
	if parts == nil {
		parts = all
	}
	committed, err := t.Committed(ctx, topic, parts)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionStatus, 0, len(parts))
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("offsets: %s/%d: %w", topic, p, err)
		}
		ps := PartitionStatus{Topic: topic, Partition: p, Committed: committed[p]}
		if ps.LogStart, ps.LogEnd, err = t.logRange(topic, p); err != nil {
			return nil, err
		}
		if ps.Watermark, err = t.watermark(ctx, statedb.Partition{Topic: topic, Partition: p}); err != nil {
			return nil, err
		}
		ps.check()
		out = append(out, ps)
	}
	return out, nil
}
