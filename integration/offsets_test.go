package integration_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/offsets"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// ofsTool opens an offsets.Tool on group, reading watermarks from store
// (nil: none).
func ofsTool(t *testing.T, brokers []string, group string, store statedb.Inspector) *offsets.Tool {
	t.Helper()
	opts := []offsets.Option{offsets.WithSaramaConfig(testenv.SaramaConfig())}
	if store != nil {
		opts = append(opts, offsets.WithStore(store))
	}
	tool, err := offsets.New(brokers, group, opts...)
	if err != nil {
		t.Fatalf("offsets.New: %v", err)
	}
	t.Cleanup(func() { _ = tool.Close() })
	return tool
}

// ofsProduce writes counts[p] messages to partition p of topic, with key
// "k<i mod 4>" and, when ts is set, timestamp ts(p, i).
func ofsProduce(t *testing.T, brokers []string, topic string, counts map[int32]int, ts func(p int32, i int) time.Time) {
	t.Helper()
	cfg := testenv.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var msgs []*sarama.ProducerMessage
	for p, n := range counts {
		for i := range n {
			m := &sarama.ProducerMessage{Topic: topic, Partition: p,
				Key: sarama.StringEncoder(fmt.Sprint("k", i%4)), Value: sarama.StringEncoder(fmt.Sprintf(`{"i":%d}`, i))}
			if ts != nil {
				m.Timestamp = ts(p, i)
			}
			msgs = append(msgs, m)
		}
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// ofsCommit sets the group's committed offsets with sarama's offset
// manager, as a client outside the group: a path independent of package
// offsets.
func ofsCommit(t *testing.T, brokers []string, group, topic string, offs map[int32]int64) {
	t.Helper()
	client, err := sarama.NewClient(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close()
	var poms []sarama.PartitionOffsetManager
	for p, off := range offs {
		pom, err := om.ManagePartition(topic, p)
		if err != nil {
			t.Fatalf("manage %s/%d: %v", topic, p, err)
		}
		pom.MarkOffset(off, "")  // forward
		pom.ResetOffset(off, "") // or back
		pom.AsyncClose()
		poms = append(poms, pom)
	}
	om.Commit() // commits, then releases the closed partition managers
	for _, pom := range poms {
		for err := range pom.Errors() {
			t.Fatalf("commit offsets of group %s: %v", group, err)
		}
	}
	if got := ofsCommitted(t, brokers, group, topic, slices.Collect(maps.Keys(offs))); !maps.Equal(got, offs) {
		t.Fatalf("setting up group %s: committed %v, want %v", group, got, offs)
	}
}

// ofsCommitted reads the group's committed offsets of parts with
// ClusterAdmin.ListConsumerGroupOffsets (-1: none).
func ofsCommitted(t *testing.T, brokers []string, group, topic string, parts []int32) map[int32]int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		t.Fatalf("committed offsets of group %s: %v", group, err)
	}
	out := map[int32]int64{}
	for _, p := range parts {
		b := resp.GetBlock(topic, p)
		if b == nil || !errors.Is(b.Err, sarama.ErrNoError) {
			t.Fatalf("committed offset of group %s on %s/%d: %v", group, topic, p, b)
		}
		out[p] = b.Offset
	}
	return out
}

// ofsMember is a live member of a group: a sarama consumer group that
// claims partitions and reads nothing, commits nothing.
type ofsMember struct {
	mu       sync.Mutex
	sessions []ofsSession // one per group session, in order
	joined   chan struct{}
	stop     func()
}

type ofsSession struct {
	memberID string
	initial  map[int32]int64 // claimed partition → initial offset
}

func (m *ofsMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.sessions = append(m.sessions, ofsSession{memberID: s.MemberID(), initial: map[int32]int64{}})
	m.mu.Unlock()
	select {
	case m.joined <- struct{}{}:
	default:
	}
	return nil
}

func (m *ofsMember) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (m *ofsMember) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	m.mu.Lock()
	m.sessions[len(m.sessions)-1].initial[c.Partition()] = c.InitialOffset()
	m.mu.Unlock()
	for range c.Messages() {
	}
	return nil
}

// session returns the member's latest session.
func (m *ofsMember) session() ofsSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[len(m.sessions)-1]
	s.initial = maps.Clone(s.initial)
	return s
}

// ofsJoin starts a live member of group on topic with client id clientID
// and waits until it is in the group.
func ofsJoin(t *testing.T, brokers []string, group, topic, clientID string) *ofsMember {
	t.Helper()
	cfg := testenv.SaramaConfig()
	cfg.ClientID = clientID
	cfg.Consumer.Group.Heartbeat.Interval = time.Second
	cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &ofsMember{joined: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, m); err != nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
	go func() {
		for range cg.Errors() {
		}
	}()
	var once sync.Once
	m.stop = func() { once.Do(func() { cancel(); wg.Wait(); _ = cg.Close() }) }
	t.Cleanup(m.stop)
	select {
	case <-m.joined:
	case <-time.After(20 * time.Second):
		t.Fatal("the live member did not join the group")
	}
	return m
}

// TestOffsetsStatus: a group with committed offsets and a store with
// watermarks: Status reports both per partition, with the log range, the
// lag and warnings about inconsistencies.
func TestOffsetsStatus(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Topic(t, brokers, 4)
	group := testenv.Group(t)
	ofsProduce(t, brokers, topic, map[int32]int{0: 10, 1: 20, 2: 30, 3: 5}, nil)
	ofsCommit(t, brokers, group, topic, map[int32]int64{0: 5, 1: 20, 3: 5})

	store := memory.New()
	ctx := t.Context()
	for p, w := range map[int32]int64{0: 2, 1: 19, 3: 100} {
		part := statedb.Partition{Topic: topic, Partition: p}
		c, err := store.Acquire(ctx, part)
		if err != nil {
			t.Fatal(err)
		}
		if p == 1 { // a second owner
			if c, err = store.Acquire(ctx, part); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.Commit(ctx, &statedb.Commit{Partition: part, Epoch: c.Epoch, Offset: w}); err != nil {
			t.Fatal(err)
		}
	}

	st, err := ofsTool(t, brokers, group, store).Status(ctx, topic)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Group.ID != group || st.Group.State != "Empty" || len(st.Group.Members) != 0 {
		t.Errorf("group %+v, want %s Empty without members", st.Group, group)
	}
	want := []struct {
		end, committed, w, epoch, lag int64
		warning                       string
	}{
		{10, 5, 2, 1, 7, "committed offset 5 is ahead of the store watermark 2: a worker that claims the partition rewinds the group to 3 and processes 3-4"},
		{20, 20, 19, 2, 0, ""},
		{30, -1, -1, 0, 30, ""},
		{5, 5, 100, 1, 0, "store watermark 100 is at or beyond the log end 5"},
	}
	if len(st.Partitions) != len(want) {
		t.Fatalf("%d partitions, want %d", len(st.Partitions), len(want))
	}
	for i, w := range want {
		got := st.Partitions[i]
		t.Run("partition "+strconv.Itoa(i), func(t *testing.T) {
			if got.Topic != topic || got.Partition != int32(i) || got.LogStart != 0 || got.LogEnd != w.end {
				t.Errorf("%s/%d log %d-%d, want %s/%d log 0-%d", got.Topic, got.Partition, got.LogStart, got.LogEnd, topic, i, w.end)
			}
			if got.Committed != w.committed {
				t.Errorf("committed %d, want %d", got.Committed, w.committed)
			}
			if got.Watermark == nil || got.Watermark.Offset != w.w || got.Watermark.Epoch != w.epoch {
				t.Errorf("watermark %+v, want offset %d epoch %d", got.Watermark, w.w, w.epoch)
			}
			if got.Lag != w.lag {
				t.Errorf("lag %d, want %d", got.Lag, w.lag)
			}
			switch {
			case w.warning == "" && len(got.Warnings) > 0:
				t.Errorf("warnings %q, want none", got.Warnings)
			case w.warning != "" && (len(got.Warnings) != 1 || !strings.HasPrefix(got.Warnings[0], w.warning)):
				t.Errorf("warnings %q, want one starting %q", got.Warnings, w.warning)
			}
		})
	}

	// Status only read: the store's epochs did not move.
	for p, epoch := range map[int32]int64{0: 1, 1: 2, 2: 0, 3: 1} {
		c, err := store.Inspect(ctx, statedb.Partition{Topic: topic, Partition: p})
		if err != nil || c.Epoch != epoch {
			t.Errorf("after Status: partition %d epoch %d (%v), want %d", p, c.Epoch, err, epoch)
		}
	}
	// Without a store the watermarks are unknown and the lag counts from
	// the committed offset.
	st, err = ofsTool(t, brokers, group, nil).Status(ctx, topic)
	if err != nil {
		t.Fatalf("Status without a store: %v", err)
	}
	for _, p := range st.Partitions {
		if p.Watermark != nil {
			t.Errorf("without a store: partition %d watermark %+v, want nil", p.Partition, p.Watermark)
		}
	}
	if st.Partitions[0].Lag != 5 || st.Partitions[2].Lag != 30 {
		t.Errorf("without a store: lags %d and %d, want 5 and 30", st.Partitions[0].Lag, st.Partitions[2].Lag)
	}
	// A topic that does not exist is an error naming it.
	if _, err := ofsTool(t, brokers, group, nil).Status(ctx, topic+"_missing"); err == nil || !strings.Contains(err.Error(), topic+"_missing") {
		t.Errorf("Status of a missing topic: %v, want an error naming it", err)
	}
}

// TestOffsetsResetToEarliestMovesAnEmptyGroup: on a group without members,
// a reset to earliest moves every partition to its log start (not 0 where
// records were deleted), and the plan says what the replay skips.
func TestOffsetsResetToEarliestMovesAnEmptyGroup(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Topic(t, brokers, 3)
	group := testenv.Group(t)
	ofsProduce(t, brokers, topic, map[int32]int{0: 10, 1: 10, 2: 10}, nil)
	ofsCommit(t, brokers, group, topic, map[int32]int64{0: 10, 1: 10, 2: 10})
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteRecords(topic, map[int32]int64{1: 4}); err != nil { // log start of partition 1: 4
		t.Fatalf("delete records: %v", err)
	}
	_ = admin.Close()
	// The store has applied everything on 0, up to 6 on 1, nothing on 2.
	store := memory.New()
	for p, w := range map[int32]int64{0: 9, 1: 6} {
		part := statedb.Partition{Topic: topic, Partition: p}
		c, _ := store.Acquire(t.Context(), part)
		if err := store.Commit(t.Context(), &statedb.Commit{Partition: part, Epoch: c.Epoch, Offset: w}); err != nil {
			t.Fatal(err)
		}
	}

	tool := ofsTool(t, brokers, group, store)
	plan, err := tool.Plan(t.Context(), offsets.Reset{Topic: topic, To: offsets.ToEarliest()})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if got := ofsCommitted(t, brokers, group, topic, []int32{0, 1, 2}); !maps.Equal(got, map[int32]int64{0: 10, 1: 10, 2: 10}) {
		t.Errorf("Plan changed the committed offsets: %v", got)
	}
	want := []struct {
		new                    int64
		skip, process, replays string
	}{
		{0, "0-9", "0--1", "skip 0-9 (10 already in state); nothing to process until new messages arrive"},
		{4, "4-6", "7-9", "skip 4-6 (3 already in state); process 7-9 (3)"},
		{0, "0--1", "0-9", "process 0-9 (10)"},
	}
	for i, w := range want {
		m := plan.Moves[i]
		if m.Partition != int32(i) || m.Committed != 10 || m.New != w.new {
			t.Errorf("move %d: partition %d %d -> %d, want %d 10 -> %d", i, m.Partition, m.Committed, m.New, i, w.new)
		}
		if got := m.Replay.String(); got != w.replays {
			t.Errorf("move %d: replay %q, want %q", i, got, w.replays)
		}
		if m.Replay.Skip.Len() > 0 && m.Replay.Skip.String() != w.skip || m.Replay.Process.Len() > 0 && m.Replay.Process.String() != w.process {
			t.Errorf("move %d: skip %v process %v, want %s and %s", i, m.Replay.Skip, m.Replay.Process, w.skip, w.process)
		}
	}

	applied, err := tool.Apply(t.Context(), plan, false)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(applied.Removed) != 0 {
		t.Errorf("Apply removed members %v from an empty group", applied.Removed)
	}
	if got := ofsCommitted(t, brokers, group, topic, []int32{0, 1, 2}); !maps.Equal(got, map[int32]int64{0: 0, 1: 4, 2: 0}) {
		t.Errorf("after reset to earliest: committed %v, want 0:0 1:4 2:0", got)
	}
	// A group that never existed (Dead) can be reset too.
	fresh := testenv.Group(t) + "_new"
	tool = ofsTool(t, brokers, fresh, nil)
	plan, err = tool.Plan(t.Context(), offsets.Reset{Topic: topic, To: offsets.ToLatest()})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Group.State != "Dead" || plan.Group.Active() {
		t.Errorf("group %s that never existed: state %q, want Dead", fresh, plan.Group.State)
	}
	if _, err := tool.Apply(t.Context(), plan, false); err != nil {
		t.Fatalf("Apply to a new group: %v", err)
	}
	if got := ofsCommitted(t, brokers, fresh, topic, []int32{0, 1, 2}); !maps.Equal(got, map[int32]int64{0: 10, 1: 10, 2: 10}) {
		t.Errorf("new group after reset to latest: committed %v, want 10 everywhere", got)
	}
}

// TestOffsetsResetRefusesWhileMembersAreLive: with a live member, Apply
// refuses, names the member and changes nothing; --force removes the
// member, commits, and the member rejoins at the new offsets.
func TestOffsetsResetRefusesWhileMembersAreLive(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Topic(t, brokers, 2)
	group := testenv.Group(t)
	ofsProduce(t, brokers, topic, map[int32]int{0: 8, 1: 8}, nil)
	ofsCommit(t, brokers, group, topic, map[int32]int64{0: 8, 1: 8})
	member := ofsJoin(t, brokers, group, topic, "eddy-live-member")
	first := member.session()

	tool := ofsTool(t, brokers, group, nil)
	// The member shows in Describe with its assignment (once the group
	// is stable).
	var g *offsets.Group
	waitFor(t, 20*time.Second, "the group to be stable with one member", func() bool {
		var err error
		g, err = tool.Describe(t.Context())
		return err == nil && g.State == "Stable" && len(g.Members) == 1 && len(g.Members[0].Assigned[topic]) == 2
	})
	if m := g.Members[0]; m.ID != first.memberID || m.ClientID != "eddy-live-member" || m.Host == "" {
		t.Errorf("member %+v, want id %s client eddy-live-member", m, first.memberID)
	}

	plan, err := tool.Plan(t.Context(), offsets.Reset{Topic: topic, To: offsets.ToEarliest()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tool.Apply(t.Context(), plan, false)
	var active *offsets.ActiveGroupError
	if !errors.As(err, &active) {
		t.Fatalf("Apply with a live member: %v, want an *offsets.ActiveGroupError", err)
	}
	for _, want := range []string{"group " + group + " is Stable with 1 live member(s)", first.memberID,
		"client eddy-live-member", "stop the workers first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not contain %q", err, want)
		}
	}
	if got := ofsCommitted(t, brokers, group, topic, []int32{0, 1}); !maps.Equal(got, map[int32]int64{0: 8, 1: 8}) {
		t.Errorf("after the refusal: committed %v, want unchanged 8, 8", got)
	}

	t.Run("force", func(t *testing.T) {
		applied, err := tool.Apply(t.Context(), plan, true)
		if err != nil {
			t.Fatalf("Apply --force: %v", err)
		}
		if len(applied.Removed) != 1 || applied.Removed[0].ID != first.memberID {
			t.Errorf("removed %v, want the member %s", applied.Removed, first.memberID)
		}
		if got := ofsCommitted(t, brokers, group, topic, []int32{0, 1}); !maps.Equal(got, map[int32]int64{0: 0, 1: 0}) {
			t.Errorf("after --force: committed %v, want 0, 0", got)
		}
		// The member was really removed: it rejoins under a new id and
		// starts from the new offsets.
		waitFor(t, 20*time.Second, "the member to rejoin", func() bool {
			s := member.session()
			return s.memberID != first.memberID && len(s.initial) == 2
		})
		if s := member.session(); !maps.Equal(s.initial, map[int32]int64{0: 0, 1: 0}) {
			t.Errorf("rejoined member starts at %v, want 0, 0", s.initial)
		}
	})
}

// TestOffsetsResetToTime: ToTime picks, per partition, the first offset
// whose timestamp is at or after the time, and the log end when none is.
func TestOffsetsResetToTime(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Topic(t, brokers, 2)
	group := testenv.Group(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	// Partition 0: base+0s ... base+9s; partition 1: 30 s later.
	ofsProduce(t, brokers, topic, map[int32]int{0: 10, 1: 10}, func(p int32, i int) time.Time {
		return base.Add(time.Duration(i)*time.Second + time.Duration(p)*30*time.Second)
	})
	tool := ofsTool(t, brokers, group, nil)
	for _, c := range []struct {
		name   string
		at     time.Time
		p0, p1 int64
	}{
		{"before everything", base.Add(-time.Minute), 0, 0},
		{"between messages", base.Add(4500 * time.Millisecond), 5, 0},
		{"exactly at a message", base.Add(7 * time.Second), 7, 0},
		{"inside partition 1", base.Add(33 * time.Second), 10, 3},
		{"after everything", base.Add(time.Minute), 10, 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan, err := tool.Plan(t.Context(), offsets.Reset{Topic: topic, To: offsets.ToTime(c.at)})
			if err != nil {
				t.Fatal(err)
			}
			if got := []int64{plan.Moves[0].New, plan.Moves[1].New}; !slices.Equal(got, []int64{c.p0, c.p1}) {
				t.Errorf("ToTime(%s): new offsets %v, want [%d %d]", c.at.Format(time.RFC3339Nano), got, c.p0, c.p1)
			}
		})
	}
	plan, err := tool.Plan(t.Context(), offsets.Reset{Topic: topic, To: offsets.ToTime(base.Add(4500 * time.Millisecond))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tool.Apply(t.Context(), plan, false); err != nil {
		t.Fatal(err)
	}
	if got := ofsCommitted(t, brokers, group, topic, []int32{0, 1}); !maps.Equal(got, map[int32]int64{0: 5, 1: 0}) {
		t.Errorf("after reset to time: committed %v, want 0:5 1:0", got)
	}
}

// TestOffsetsResetPartitionsLimitsTheChange: only the chosen partitions
// move; ToOffset is clamped to the log; a partition the topic lacks is an
// error naming it.
func TestOffsetsResetPartitionsLimitsTheChange(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Topic(t, brokers, 4)
	group := testenv.Group(t)
	ofsProduce(t, brokers, topic, map[int32]int{0: 5, 1: 5, 2: 5, 3: 5}, nil)
	ofsCommit(t, brokers, group, topic, map[int32]int64{0: 5, 1: 5, 2: 5, 3: 5})
	tool := ofsTool(t, brokers, group, nil)

	plan, err := tool.Plan(t.Context(), offsets.Reset{Topic: topic, Partitions: []int32{3, 1}, To: offsets.ToOffset(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Moves) != 2 || plan.Moves[0].Partition != 1 || plan.Moves[1].Partition != 3 {
		t.Fatalf("plan moves %+v, want partitions 1 and 3", plan.Moves)
	}
	if _, err := tool.Apply(t.Context(), plan, false); err != nil {
		t.Fatal(err)
	}
	if got := ofsCommitted(t, brokers, group, topic, []int32{0, 1, 2, 3}); !maps.Equal(got, map[int32]int64{0: 5, 1: 2, 2: 5, 3: 2}) {
		t.Errorf("after reset of partitions 1 and 3: committed %v, want 0:5 1:2 2:5 3:2", got)
	}

	plan, err = tool.Plan(t.Context(), offsets.Reset{Topic: topic, Partitions: []int32{0}, To: offsets.ToOffset(99)})
	if err != nil {
		t.Fatal(err)
	}
	if m := plan.Moves[0]; m.New != 5 || !m.Clamped {
		t.Errorf("ToOffset(99) on a 5-message partition: new %d clamped %v, want 5 and clamped", m.New, m.Clamped)
	}

	_, err = tool.Plan(t.Context(), offsets.Reset{Topic: topic, Partitions: []int32{1, 4}, To: offsets.ToEarliest()})
	if want := fmt.Sprintf("offsets: topic %s has no partition 4 (it has 4: 0-3)", topic); err == nil || err.Error() != want {
		t.Errorf("Plan of partition 4: %v, want %q", err, want)
	}
}

// ofsCounter counts events per key in the partition's state.
type ofsCounter struct{}

func (ofsCounter) Keys(rec *processor.Record) []string { return []string{rec.Key} }

func (ofsCounter) Process(ctx context.Context, rec *processor.Record, _ processor.Emitter, st processor.State) error {
	v, _, err := st.Get(ctx, rec.Key)
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(string(v))
	st.Put(rec.Key, []byte(strconv.Itoa(n+1)), 0)
	return nil
}

// TestOffsetsReplayNeverDoubleCounts runs a pipeline that counts events
// per key in State over a topic until done, stops it, resets the group to
// the earliest offsets and runs it again: every message is read again and
// skipped (its offset is at or below the partition's watermark), and the
// counts are unchanged.
func TestOffsetsReplayNeverDoubleCounts(t *testing.T) {
	r := newOfsReplay(t)
	first := r.run("first run", r.total)
	if first.Skipped != 0 || first.Duplicates != 0 || first.Poison != 0 {
		t.Fatalf("first run: %+v, want nothing skipped, duplicated or poisoned", first)
	}
	counts, epochs := r.check("first run", nil)

	tool := ofsTool(t, r.brokers, r.group, r.store)
	plan, err := tool.Plan(t.Context(), offsets.Reset{Topic: r.topic, To: offsets.ToEarliest()})
	if err != nil {
		t.Fatal(err)
	}
	var skip int64
	for _, m := range plan.Moves {
		skip += m.Replay.Skip.Len()
		if m.Replay.Process.Len() != 0 || m.Replay.Never.Len() != 0 {
			t.Errorf("partition %d: replay %s, want everything skipped", m.Partition, m.Replay)
		}
	}
	if skip != int64(r.total) {
		t.Errorf("the plan skips %d messages, want %d", skip, r.total)
	}
	if _, err := tool.Apply(t.Context(), plan, false); err != nil {
		t.Fatalf("reset to earliest: %v", err)
	}
	if got := ofsCommitted(t, r.brokers, r.group, r.topic, []int32{0, 1, 2}); !maps.Equal(got, map[int32]int64{0: 0, 1: 0, 2: 0}) {
		t.Fatalf("after the reset: committed %v, want 0 everywhere", got)
	}

	second := r.run("second run", r.total)
	if second.Skipped != uint64(r.total) {
		t.Errorf("second run skipped %d messages, want all %d", second.Skipped, r.total)
	}
	if second.Duplicates != 0 || second.Poison != 0 {
		t.Errorf("second run: %+v, want no duplicates or poison (every message skipped before dedup)", second)
	}
	if got, _ := r.check("second run", epochs); !maps.Equal(got, counts) {
		t.Errorf("counts after the replay: %v, want unchanged %v", got, counts)
	}
}

// TestOffsetsForcedResetUnderARunningWorker: a forced reset to earliest
// while a worker runs removes it from the group; it rejoins, reads the
// topic again from offset 0, skips every message, and the counts stay.
func TestOffsetsForcedResetUnderARunningWorker(t *testing.T) {
	r := newOfsReplay(t)
	w, stop := r.start("worker")
	waitFor(t, 30*time.Second, "the worker to apply every message", func() bool { return r.applied() })
	counts, epochs := r.check("before the reset", nil)
	sessions := w.Stats().Rebalances

	tool := ofsTool(t, r.brokers, r.group, r.store)
	plan, err := tool.Plan(t.Context(), offsets.Reset{Topic: r.topic, To: offsets.ToEarliest()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tool.Apply(t.Context(), plan, false); err == nil {
		t.Fatal("Apply without force while the worker runs: no error")
	}
	applied, err := tool.Apply(t.Context(), plan, true)
	if err != nil {
		t.Fatalf("Apply --force: %v", err)
	}
	if len(applied.Removed) != 1 {
		t.Errorf("removed %v, want the one worker", applied.Removed)
	}
	waitFor(t, 30*time.Second, "the worker to rejoin and read the topic again", func() bool {
		s := w.Stats()
		return s.Rebalances > sessions && s.In >= uint64(2*r.total)
	})
	stop()
	s := w.Stats()
	if s.Skipped != uint64(r.total) {
		t.Errorf("after the forced reset the worker skipped %d messages, want %d", s.Skipped, r.total)
	}
	if got, _ := r.check("after the forced reset", epochs); !maps.Equal(got, counts) {
		t.Errorf("counts after the forced replay: %v, want unchanged %v", got, counts)
	}
}

// TestOffsetsForwardResetIsRewound: with a store the tool can only read, a
// reset to latest on a group whose partitions have unprocessed messages
// skips nothing: the plan says the workers rewind to W+1, and a worker does
// so and counts every message.
func TestOffsetsForwardResetIsRewound(t *testing.T) {
	r := newOfsReplay(t)
	r.run("first run", r.total)
	r.check("first run", nil)
	r.produceRound() // one more event per key, not processed yet

	tool := ofsTool(t, r.brokers, r.group, struct{ statedb.Inspector }{r.store}) // read-only
	plan, err := tool.Plan(t.Context(), offsets.Reset{Topic: r.topic, To: offsets.ToLatest()})
	if err != nil {
		t.Fatal(err)
	}
	var process int64
	for _, m := range plan.Moves {
		if m.New != r.ends[m.Partition] || (m.New > m.Watermark.Offset+1) != m.Replay.Rewind || m.Replay.Never.Len() != 0 || m.Replay.Advance {
			t.Errorf("partition %d: new %d (end %d), W %d, replay %s: want a rewind to W+1 wherever new > W+1",
				m.Partition, m.New, r.ends[m.Partition], m.Watermark.Offset, m.Replay)
		}
		process += m.Replay.Process.Len()
	}
	if process != int64(r.keys) {
		t.Errorf("the plan processes %d messages, want the %d unprocessed ones", process, r.keys)
	}
	if _, err := tool.Apply(t.Context(), plan, false); err != nil {
		t.Fatal(err)
	}
	w, stop := r.start("after the reset")
	waitFor(t, 30*time.Second, "the worker to apply the skipped-over messages", r.applied)
	stop()
	r.check("after the forward reset", nil) // every key counted perKey (+1) times
	if s := w.Stats(); s.Skipped != 0 {
		t.Errorf("the rewound worker skipped %d messages, want 0", s.Skipped)
	}
}

// TestOffsetsForwardResetSkips: with a writable store, a reset to latest
// skips the unprocessed messages on purpose: Apply moves the group's
// offsets and the store's watermarks to the log end, and a worker started
// afterwards neither processes nor rewinds to them; the state is
// untouched.
func TestOffsetsForwardResetSkips(t *testing.T) {
	r := newOfsReplay(t)
	r.run("first run", r.total)
	counts, _ := r.check("first run", nil)
	r.produceRound() // one more event per key, to be skipped

	tool := ofsTool(t, r.brokers, r.group, r.store)
	plan, err := tool.Plan(t.Context(), offsets.Reset{Topic: r.topic, To: offsets.ToLatest()})
	if err != nil {
		t.Fatal(err)
	}
	var never int64
	for _, m := range plan.Moves {
		if want := m.New > m.Watermark.Offset+1; m.Replay.Advance != want || m.Replay.Rewind {
			t.Errorf("partition %d: new %d, W %d, replay %s: want an advance wherever new > W+1", m.Partition, m.New, m.Watermark.Offset, m.Replay)
		}
		never += m.Replay.Never.Len()
	}
	if never != int64(r.keys) {
		t.Errorf("the plan skips %d messages, want the %d unprocessed ones", never, r.keys)
	}
	applied, err := tool.Apply(t.Context(), plan, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied.Advanced) == 0 {
		t.Fatal("no store watermark advanced")
	}
	w, stop := r.start("after the reset")
	waitFor(t, 30*time.Second, "the worker to join", func() bool { return w.Stats().Partitions == 3 })
	time.Sleep(time.Second) // time to (wrongly) rewind and re-read
	stop()
	if s := w.Stats(); s.In != 0 {
		t.Errorf("the worker read %d messages after a reset to latest, want 0", s.In)
	}
	r.perKey-- // the skipped round is not counted
	got, _ := r.check("after the forward reset", nil)
	if !maps.Equal(got, counts) {
		t.Errorf("counts after the skip: %v, want unchanged %v", got, counts)
	}
}

// ofsReplay is a counting pipeline over a 3-partition topic holding
// keys × perKey events, with a memory store shared by its runs.
type ofsReplay struct {
	t            *testing.T
	brokers      []string
	topic, group string
	pipe         *pipeline.Pipeline
	store        *memory.Store
	ends         map[int32]int64
	keys, perKey int
	total        int
}

func newOfsReplay(t *testing.T) *ofsReplay {
	brokers := testenv.KafkaBrokers(t)
	r := &ofsReplay{t: t, brokers: brokers, topic: testenv.Topic(t, brokers, 3), group: testenv.Group(t),
		store: memory.New(), keys: 12, perKey: 25}
	r.pipe = loadPipeline(t, `
name: %s
kafka: {brokers: [unused:9092]}
source: {topics: [%s], event_id: event.id}
dedup: {enabled: true, ttl: 1h}
flush: {max_messages: 100, interval: 50ms}
steps:
  - processor: {name: count}
`, testenv.Unique("p"), r.topic)
	var msgs []*sarama.ProducerMessage
	for i := range r.perKey {
		for k := range r.keys {
			msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(fmt.Sprint("user-", k)),
				Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"e-%d-%d"}`, k, i))})
		}
	}
	r.total = len(msgs)
	produce(t, brokers, r.topic, msgs)
	r.ends = partitionEnds(t, brokers, r.topic)
	return r
}

// produceRound produces one more event per key.
func (r *ofsReplay) produceRound() {
	var msgs []*sarama.ProducerMessage
	for k := range r.keys {
		msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(fmt.Sprint("user-", k)),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"e-%d-%d"}`, k, r.perKey))})
	}
	produce(r.t, r.brokers, r.topic, msgs)
	r.perKey++
	r.total += len(msgs)
	r.ends = partitionEnds(r.t, r.brokers, r.topic)
}

// start runs a worker of the pipeline until stop is called.
func (r *ofsReplay) start(name string) (*processor.Worker, func()) {
	t := r.t
	w, err := processor.New(r.pipe, processor.WithStore(r.store), processor.WithBrokers(r.brokers...),
		processor.WithGroup(r.group), processor.WithLogger(zaptest.NewLogger(t).Named(name)),
		processor.WithCommitInterval(100*time.Millisecond),
		processor.WithProcessor("count", func(map[string]any) (processor.Processor, error) { return ofsCounter{}, nil }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

// run runs a worker until it has read n messages, stops it and returns
// its stats.
func (r *ofsReplay) run(name string, n int) processor.Stats {
	w, stop := r.start(name)
	waitFor(r.t, 30*time.Second, name+" to read every message", func() bool { return w.Stats().In >= uint64(n) })
	stop()
	return w.Stats()
}

// applied reports whether every partition's watermark is at its last
// offset.
func (r *ofsReplay) applied() bool {
	for part, end := range r.ends {
		c, err := r.store.Inspect(r.t.Context(), statedb.Partition{Topic: r.topic, Partition: part})
		if err != nil || c.Offset != end-1 {
			return false
		}
	}
	return true
}

// check checks that every partition's watermark is at its last offset
// and its epoch above before's (when given), and that every key was
// counted perKey times; it returns the counts and the epochs.
func (r *ofsReplay) check(when string, before map[int32]int64) (map[string]int, map[int32]int64) {
	t := r.t
	t.Helper()
	epochs := map[int32]int64{}
	for part, end := range r.ends {
		c, err := r.store.Inspect(t.Context(), statedb.Partition{Topic: r.topic, Partition: part})
		if err != nil || c.Offset != end-1 {
			t.Fatalf("%s: partition %d watermark %d (%v), want %d", when, part, c.Offset, err, end-1)
		}
		if before != nil && c.Epoch <= before[part] && end > 0 {
			t.Errorf("%s: partition %d epoch %d, want above %d (claimed again)", when, part, c.Epoch, before[part])
		}
		epochs[part] = c.Epoch
	}
	names := make([]string, r.keys)
	for k := range names {
		names[k] = processor.StateKey("count", fmt.Sprint("user-", k))
	}
	counts := map[string]int{}
	for part := range r.ends {
		vals, err := r.store.Load(t.Context(), statedb.Partition{Topic: r.topic, Partition: part}, names)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range vals {
			n, _ := strconv.Atoi(string(v))
			counts[k] += n
		}
	}
	for _, k := range names {
		if counts[k] != r.perKey {
			t.Errorf("%s: %s counted %d times, want %d", when, k, counts[k], r.perKey)
		}
	}
	return counts, epochs
}
