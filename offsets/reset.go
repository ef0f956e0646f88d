package offsets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/statedb"
)

// To is where a reset moves the committed offsets: ToEarliest, ToLatest,
// ToTime or ToOffset. The zero To is invalid.
type To struct {
	kind   toKind
	offset int64
	time   time.Time
}

type toKind int

const (
	toEarliest toKind = iota + 1
	toLatest
	toTime
	toOffset
)

// ToEarliest moves to the log start: the oldest retained message.
func ToEarliest() To { return To{kind: toEarliest} }

// ToLatest moves to the log end: only messages produced from now on are
// read.
func ToLatest() To { return To{kind: toLatest} }

// ToTime moves to the first offset whose timestamp is at or after t (the
// log end if there is none), as Kafka's ListOffsets finds it.
func ToTime(t time.Time) To { return To{kind: toTime, time: t} }

// ToOffset moves to offset n on every chosen partition, clamped to the
// partition's log (Move.Clamped tells).
func ToOffset(n int64) To { return To{kind: toOffset, offset: n} }

// String describes the target: "earliest", "latest", "time
// 2024-05-01T12:00:00Z" or "offset 42".
func (t To) String() string {
	switch t.kind {
	case toEarliest:
		return "earliest"
	case toLatest:
		return "latest"
	case toTime:
		return "time " + t.time.UTC().Format(time.RFC3339Nano)
	case toOffset:
		return "offset " + strconv.FormatInt(t.offset, 10)
	}
	return "nowhere"
}

// MarshalText makes a To print as its String in JSON.
func (t To) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Reset asks for a reset of one topic's committed offsets.
type Reset struct {
	// Topic is a source topic of the pipeline.
	Topic string
	// Partitions limits the reset to these partitions; nil means all.
	Partitions []int32
	// To is the new position.
	To To
}

// Range is an inclusive range of offsets; it is empty when From > To.
type Range struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Len returns the number of offsets in r.
func (r Range) Len() int64 { return max(0, r.To-r.From+1) }

func (r Range) String() string {
	if r.From == r.To {
		return strconv.FormatInt(r.From, 10)
	}
	return strconv.FormatInt(r.From, 10) + "-" + strconv.FormatInt(r.To, 10)
}

// Replay is what workers do with a partition's retained log once its
// committed offset has moved, given the store's watermark W. Offsets from
// the log end on (new messages) are processed as usual and not counted.
type Replay struct {
	// Known is false when W is unknown (no store): then everything from
	// the new offset is counted in Process.
	Known bool `json:"known"`
	// Skip are offsets read again and skipped: at or below W, their
	// effects are already in state. Not counted twice.
	Skip Range `json:"skip"`
	// Process are offsets processed, each once: above W.
	Process Range `json:"process"`
	// Advance is set when the new offset is past W+1 on a partition the
	// store has a watermark for, and the Tool can write to the store:
	// Apply moves W to the new offset - 1, so the offsets in between
	// (Never) are skipped on purpose, in Kafka and in the store alike.
	Advance bool `json:"advance,omitempty"`
	// Rewind is set in the same case when the Tool can only read the
	// store: a worker that claims the partition rewinds the group to W+1
	// (the store is the truth), so the forward reset skips nothing there
	// and Process starts at W+1.
	Rewind bool `json:"rewind,omitempty"`
	// Never are offsets a forward reset jumps over: skipped on purpose
	// (Advance), or on a partition the store has no record of (W none).
	// They are never processed.
	Never Range `json:"never"`
}

// String describes the replay for people, e.g. "skip 0-1199 (1200
// already in state); process 1200-1499 (300)".
func (r Replay) String() string {
	var parts []string
	if r.Rewind {
		parts = append(parts, "workers rewind to W+1 (a forward reset past the store's watermark skips nothing)")
	}
	if r.Advance && r.Never.Len() > 0 {
		parts = append(parts, fmt.Sprintf("NEVER process %s (%d, skipped on purpose: the store's watermark moves to %d)", r.Never, r.Never.Len(), r.Never.To))
	} else if r.Never.Len() > 0 {
		parts = append(parts, fmt.Sprintf("NEVER process %s (%d, jumped over; the store has no record of the partition)", r.Never, r.Never.Len()))
	}
	if r.Skip.Len() > 0 {
		parts = append(parts, fmt.Sprintf("skip %s (%d already in state)", r.Skip, r.Skip.Len()))
	}
	switch {
	case r.Process.Len() > 0 && r.Known:
		parts = append(parts, fmt.Sprintf("process %s (%d)", r.Process, r.Process.Len()))
	case r.Process.Len() > 0:
		parts = append(parts, fmt.Sprintf("process %s (%d; watermark unknown: what is in state is skipped)", r.Process, r.Process.Len()))
	default:
		parts = append(parts, "nothing to process until new messages arrive")
	}
	return strings.Join(parts, "; ")
}

// Move is the planned change of one partition.
type Move struct {
	PartitionStatus
	// New is the committed offset after the reset.
	New int64 `json:"new"`
	// Clamped is set when ToOffset's offset was outside the log and New
	// is the log start or end instead.
	Clamped bool `json:"clamped,omitempty"`
	// Replay is what workers will do from New.
	Replay Replay `json:"replay"`
}

// replay works out m.Replay from New, the log range and the watermark,
// the way the runtime treats a claimed partition: messages at or below W
// are skipped; a start past W+1 is rewound to W+1, unless the store has no
// record of the partition or Apply advances W (canAdvance: the Tool can
// write to the store).
func (m *Move) replay(canAdvance bool) {
	last := m.LogEnd - 1
	r := Replay{Skip: Range{0, -1}, Never: Range{0, -1}, Process: Range{m.New, last}}
	if w := m.Watermark; w != nil {
		r.Known = true
		switch {
		case m.New <= w.Offset:
			r.Skip = Range{m.New, min(w.Offset, last)}
			r.Process = Range{w.Offset + 1, last}
		case m.New > w.Offset+1 && w.Offset != statedb.NoOffset && canAdvance:
			r.Advance = true
			r.Never = Range{max(w.Offset+1, m.LogStart), m.New - 1}
		case m.New > w.Offset+1 && w.Offset != statedb.NoOffset:
			r.Rewind = true
			r.Process = Range{max(w.Offset+1, m.LogStart), last}
		case m.New > m.LogStart && w.Offset == statedb.NoOffset && canAdvance:
			// Set W too: a worker that finds no record of a partition
			// with committed offsets takes it for a wiped store and
			// rebuilds it from offset 0 (state.missing), undoing the skip.
			r.Advance = true
			r.Never = Range{m.LogStart, m.New - 1}
		case m.New > m.LogStart && w.Offset == statedb.NoOffset:
			r.Never = Range{m.LogStart, m.New - 1}
		}
	}
	m.Replay = r
}

// Plan is a reset worked out but not applied.
type Plan struct {
	Group *Group `json:"group"`
	Topic string `json:"topic"`
	To    To     `json:"to"`
	Moves []Move `json:"moves"`
}

// Plan works out r: per partition the current committed offset, the new
// one, and what a replay will do given the store's watermark. It changes
// nothing; a dry run is a Plan alone.
func (t *Tool) Plan(ctx context.Context, r Reset) (*Plan, error) {
	if r.To.kind == 0 {
		return nil, errors.New("offsets: reset: no target (ToEarliest, ToLatest, ToTime or ToOffset)")
	}
	if r.To.kind == toOffset && r.To.offset < 0 {
		return nil, fmt.Errorf("offsets: reset to offset %d: must be >= 0", r.To.offset)
	}
	all, err := t.partitions(r.Topic)
	if err != nil {
		return nil, err
	}
	parts := all
	if r.Partitions != nil {
		parts = slices.Clone(r.Partitions)
		slices.Sort(parts)
	}
	seen := map[int32]bool{}
	for _, p := range parts {
		if !slices.Contains(all, p) {
			return nil, fmt.Errorf("offsets: topic %s has no partition %d (it has %d: 0-%d)", r.Topic, p, len(all), len(all)-1)
		}
		if seen[p] {
			return nil, fmt.Errorf("offsets: partition %d is listed twice", p)
		}
		seen[p] = true
	}
	g, err := t.Describe(ctx)
	if err != nil {
		return nil, err
	}
	states, err := t.partitionStates(ctx, r.Topic, parts)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Group: g, Topic: r.Topic, To: r.To}
	for _, ps := range states {
		m := Move{PartitionStatus: ps}
		switch r.To.kind {
		case toEarliest:
			m.New = ps.LogStart
		case toLatest:
			m.New = ps.LogEnd
		case toTime:
			off, err := t.client.GetOffset(r.Topic, ps.Partition, r.To.time.UnixMilli())
			if err != nil {
				return nil, fmt.Errorf("offsets: offset of %s/%d at %s: %w", r.Topic, ps.Partition, r.To.time.Format(time.RFC3339Nano), err)
			}
			if off < 0 { // no message at or after the time
				off = ps.LogEnd
			}
			m.New = off
		case toOffset:
			m.New = min(max(r.To.offset, ps.LogStart), ps.LogEnd)
			m.Clamped = m.New != r.To.offset
		}
		m.replay(t.writable() != nil)
		plan.Moves = append(plan.Moves, m)
	}
	return plan, nil
}

// ActiveGroupError is Apply's refusal to reset a group that has members.
type ActiveGroupError struct {
	Group *Group
}

func (e *ActiveGroupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "offsets: group %s is %s with %d live member(s)", e.Group.ID, e.Group.State, len(e.Group.Members))
	for i, m := range e.Group.Members {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(m.String())
	}
	b.WriteString(". Kafka accepts offsets from outside a group only while it has no members: stop the workers first (they leave the group when they stop)")
	for _, m := range e.Group.Members {
		if m.InstanceID != "" {
			b.WriteString("; static members stay in the group for the session timeout after their worker stops")
			break
		}
	}
	return b.String()
}

// Applied reports what Apply did.
type Applied struct {
	// Removed are the members a forced Apply removed from the group.
	Removed []Member `json:"removed,omitempty"`
	// Advanced are the partitions whose store watermark Apply moved
	// forward (Replay.Advance).
	Advanced []int32 `json:"advanced,omitempty"`
}

// groupWait bounds how long a forced Apply waits for the group to empty
// after removing its members.
const groupWait = 10 * time.Second

// forceAttempts bounds how many times a forced Apply removes the members
// and commits when workers rejoin in between.
const forceAttempts = 3

// errRejoined marks a commit Kafka refused because the group has members
// again.
var errRejoined = errors.New("the group has members again (a worker joined)")

// Apply commits the plan's new offsets for the group, then reads them
// back and fails unless every one is in place.
//
// If the group is active (has members), Apply returns an
// *ActiveGroupError, unless force is set: it then removes the members
// from the group (Kafka >= 2.4), waits until the group is empty and
// commits. Running workers rejoin within a heartbeat and resume from the
// new offsets. One that rejoins before the commit makes Kafka refuse it
// with nothing changed: a forced Apply then removes the members again and
// retries, up to three attempts in all. See the package documentation for
// what a replay does.
func (t *Tool) Apply(ctx context.Context, plan *Plan, force bool) (*Applied, error) {
	if len(plan.Moves) == 0 {
		return &Applied{}, nil
	}
	g, err := t.Describe(ctx)
	if err != nil {
		return nil, err
	}
	res := &Applied{}
	for attempt := 1; ; attempt++ {
		if g.Active() {
			if !force {
				return nil, &ActiveGroupError{Group: g}
			}
			if err := t.removeMembers(ctx, g); err != nil {
				return nil, err
			}
			res.Removed = addMembers(res.Removed, g.Members)
			if err := t.waitInactive(ctx); err != nil {
				return nil, err
			}
		}
		if t.beforeCommit != nil {
			t.beforeCommit(attempt)
		}
		err := t.commit(ctx, plan)
		if err == nil {
			break
		}
		if !errors.Is(err, errRejoined) {
			return nil, err
		}
		if !force || attempt == forceAttempts {
			return nil, fmt.Errorf("%w (%d attempt(s)); nothing was changed: stop the workers and run the reset again", err, attempt)
		}
		if g, err = t.Describe(ctx); err != nil {
			return nil, err
		}
	}
	if err := t.verify(ctx, plan, force); err != nil {
		return res, err
	}
	// Kafka first, then the store: if advancing a watermark fails, the
	// workers rewind to W+1 and the skip does not happen — nothing is lost
	// that the user did not ask to skip.
	for _, m := range plan.Moves {
		if !m.Replay.Advance {
			continue
		}
		if err := t.advance(ctx, plan.Topic, m); err != nil {
			return res, err
		}
		res.Advanced = append(res.Advanced, m.Partition)
	}
	return res, nil
}

// writable returns the Tool's store if it can be written to.
func (t *Tool) writable() statedb.Store {
	s, _ := t.store.(statedb.Store)
	return s
}

// advance moves a partition's store watermark to m.New - 1 without
// touching its state: it claims the partition (fencing any owner, which
// then rejoins and claims it again) and commits only the offset, keeping
// the metadata (the steps' event-time watermarks).
func (t *Tool) advance(ctx context.Context, topic string, m Move) error {
	st := t.writable()
	p := statedb.Partition{Topic: topic, Partition: m.Partition}
	c, err := st.Acquire(ctx, p)
	if err != nil {
		return fmt.Errorf("offsets: advance the store watermark of %s: %w (the group's offset moved; workers will rewind to W+1 and skip nothing)", p, err)
	}
	if c.Offset >= m.New-1 {
		return nil
	}
	err = st.Commit(ctx, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: m.New - 1, Meta: c.Meta})
	if errors.Is(err, statedb.ErrFenced) {
		return fmt.Errorf("offsets: a worker claimed %s during the reset, so its store watermark was not advanced and the skip will not happen: stop the workers and run the reset again", p)
	}
	if err != nil {
		return fmt.Errorf("offsets: advance the store watermark of %s: %w (workers will rewind to W+1 and skip nothing)", p, err)
	}
	return nil
}

// removeMembers makes the coordinator drop g's members (LeaveGroup v3 on
// their behalf, by member id, or instance id for static members).
func (t *Tool) removeMembers(ctx context.Context, g *Group) error {
	if !t.cfg.Version.IsAtLeast(sarama.V2_4_0_0) {
		return fmt.Errorf("offsets: removing the members of group %s needs kafka version >= 2.4.0 (configured %s)", t.group, t.cfg.Version)
	}
	if len(g.Members) == 0 {
		return nil
	}
	req := &sarama.LeaveGroupRequest{Version: 3, GroupId: t.group}
	for _, m := range g.Members {
		id := sarama.MemberIdentity{MemberId: m.ID}
		if m.InstanceID != "" {
			inst := m.InstanceID
			id.GroupInstanceId = &inst
		}
		req.Members = append(req.Members, id)
	}
	return t.toCoordinator(ctx, "remove the members of group "+t.group, func(b *sarama.Broker) error {
		resp, err := b.LeaveGroup(req)
		if err != nil {
			return err
		}
		if !errors.Is(resp.Err, sarama.ErrNoError) {
			return resp.Err
		}
		for _, m := range resp.Members {
			// A member already gone is what we want.
			if !errors.Is(m.Err, sarama.ErrNoError) && !errors.Is(m.Err, sarama.ErrUnknownMemberId) {
				return fmt.Errorf("member %s: %w", m.MemberId, m.Err)
			}
		}
		return nil
	})
}

// waitInactive polls the group until it is Empty or Dead.
func (t *Tool) waitInactive(ctx context.Context) error {
	deadline := time.Now().Add(groupWait)
	for {
		g, err := t.Describe(ctx)
		if err != nil {
			return err
		}
		if !g.Active() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("offsets: group %s still %s with %d member(s) %s after removing its members: workers are rejoining; stop them",
				t.group, g.State, len(g.Members), groupWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("offsets: waiting for group %s to empty: %w", t.group, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// commit sends one OffsetCommit request, as a client outside the group
// (generation -1, no member id), to the group's coordinator.
func (t *Tool) commit(ctx context.Context, plan *Plan) error {
	req := sarama.NewOffsetCommitRequest(t.cfg, t.group)
	for _, m := range plan.Moves {
		req.AddBlockWithLeaderEpoch(m.Topic, m.Partition, m.New, -1, 0, "")
	}
	return t.toCoordinator(ctx, "commit the offsets of group "+t.group, func(b *sarama.Broker) error {
		resp, err := b.CommitOffset(req)
		if err != nil {
			return err
		}
		var errs []error
		for _, m := range plan.Moves {
			kerr, ok := resp.Errors[m.Topic][m.Partition]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s/%d: no answer", m.Topic, m.Partition))
			case errors.Is(kerr, sarama.ErrUnknownMemberId), errors.Is(kerr, sarama.ErrIllegalGeneration),
				errors.Is(kerr, sarama.ErrRebalanceInProgress):
				return fmt.Errorf("%w: %w", errRejoined, kerr)
			case !errors.Is(kerr, sarama.ErrNoError):
				errs = append(errs, fmt.Errorf("%s/%d: %w", m.Topic, m.Partition, kerr))
			}
		}
		return errors.Join(errs...)
	})
}

// verify reads the committed offsets back and checks them against the
// plan.
func (t *Tool) verify(ctx context.Context, plan *Plan, force bool) error {
	parts := make([]int32, len(plan.Moves))
	for i, m := range plan.Moves {
		parts[i] = m.Partition
	}
	got, err := t.Committed(ctx, plan.Topic, parts)
	if err != nil {
		return fmt.Errorf("offsets: reading back the new offsets: %w", err)
	}
	return checkCommitted(plan, got, force)
}

// checkCommitted checks the offsets read back after the commit: each must
// be the plan's. After a forced commit, running workers rejoin and resume
// from the new offsets, so one may already have committed progress past
// it: Kafka took the commit only while the group was empty, and every
// member that joined since started from it. A smaller offset, or a
// different one without force, means the reset did not take.
func checkCommitted(plan *Plan, got map[int32]int64, force bool) error {
	var errs []error
	for _, m := range plan.Moves {
		c, ok := got[m.Partition]
		if ok && (c == m.New || (force && c > m.New)) {
			continue
		}
		errs = append(errs, fmt.Errorf("offsets: %s/%d: committed offset is %d after the reset, want %d (did a worker commit meanwhile?)",
			m.Topic, m.Partition, c, m.New))
	}
	return errors.Join(errs...)
}

// addMembers appends to have the members of add it does not hold yet.
func addMembers(have, add []Member) []Member {
	for _, m := range add {
		if !slices.ContainsFunc(have, func(h Member) bool { return h.ID == m.ID }) {
			have = append(have, m)
		}
	}
	return have
}

// toCoordinator runs f against the group's coordinator, retrying (after a
// coordinator refresh) while the coordinator moves or loads.
func (t *Tool) toCoordinator(ctx context.Context, what string, f func(*sarama.Broker) error) error {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("offsets: %s: %w", what, ctx.Err())
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
			_ = t.client.RefreshCoordinator(t.group)
		}
		if err = ctx.Err(); err != nil {
			break
		}
		var b *sarama.Broker
		if b, err = t.client.Coordinator(t.group); err == nil {
			err = f(b)
		}
		if !retriable(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("offsets: %s: %w", what, err)
	}
	return nil
}

func retriable(err error) bool {
	return errors.Is(err, sarama.ErrNotCoordinatorForConsumer) || errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable) ||
		errors.Is(err, sarama.ErrOffsetsLoadInProgress)
}
