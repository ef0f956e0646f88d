package offsets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

func TestCheckCommitted(t *testing.T) {
	plan := &Plan{Topic: "t", Moves: []Move{
		{PartitionStatus: PartitionStatus{Topic: "t", Partition: 0}, New: 10},
		{PartitionStatus: PartitionStatus{Topic: "t", Partition: 1}, New: 0},
	}}
	for _, c := range []struct {
		name  string
		got   map[int32]int64
		force bool
		ok    bool
	}{
		{"exactly the plan", map[int32]int64{0: 10, 1: 0}, false, true},
		{"progress without force", map[int32]int64{0: 12, 1: 0}, false, false},
		{"progress after a forced reset", map[int32]int64{0: 12, 1: 3}, true, true},
		{"below the plan after a forced reset", map[int32]int64{0: 9, 1: 0}, true, false},
		{"a partition missing", map[int32]int64{0: 10}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkCommitted(plan, c.got, c.force)
			if (err == nil) != c.ok {
				t.Fatalf("checkCommitted(%v, force %v) = %v, want ok %v", c.got, c.force, err, c.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "after the reset, want") {
				t.Errorf("error %q does not say what was wanted", err)
			}
		})
	}
}

// TestForcedApplyRetriesWhenAWorkerRejoins: a member that joins the group
// between the removal of the members and the commit makes Kafka refuse
// the commit; a forced Apply removes the members again and commits.
func TestForcedApplyRetriesWhenAWorkerRejoins(t *testing.T) {
	r := newResetEnv(t, 2, 3)
	tool, brokers, group, topic := r.tool, r.brokers, r.group, r.topic

	var joined []string
	tool.beforeCommit = func(attempt int) {
		if attempt == 1 {
			joined = append(joined, joinGroup(t, tool, brokers, group, topic))
		}
	}
	applied, err := tool.Apply(t.Context(), r.plan, true)
	if err != nil {
		t.Fatalf("forced Apply with a member joining before its first commit: %v", err)
	}
	// (It may have been removed twice, under two member ids, had it
	// rejoined in the instant before the second commit.)
	if !hasMember(&Group{Members: applied.Removed}, joined[0]) {
		t.Errorf("removed %v, want the member that joined, %s", applied.Removed, joined[0])
	}
	got, err := tool.Committed(t.Context(), topic, []int32{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	// The member removed on the second attempt may rejoin and commit
	// progress from 3, never less.
	if got[0] < 3 || got[1] < 3 {
		t.Errorf("committed offsets %v, want 3 (or progress from it) on both partitions", got)
	}
}

// TestForcedApplyGivesUpAfterThreeRefusals: when a member joins before
// every commit, Apply stops after three attempts with an error that says
// so, and no offset changed.
func TestForcedApplyGivesUpAfterThreeRefusals(t *testing.T) {
	r := newResetEnv(t, 1, 2)
	tool, brokers, group, topic := r.tool, r.brokers, r.group, r.topic
	attempts := 0
	tool.beforeCommit = func(attempt int) {
		attempts = attempt
		joinGroup(t, tool, brokers, group, topic)
	}
	_, err := tool.Apply(t.Context(), r.plan, true)
	if err == nil || !errors.Is(err, errRejoined) || !strings.Contains(err.Error(), "(3 attempt(s)); nothing was changed") {
		t.Fatalf("Apply with a member joining before every commit: %v, want a refusal after 3 attempts", err)
	}
	if attempts != forceAttempts {
		t.Errorf("%d attempts, want %d", attempts, forceAttempts)
	}
	got, err := tool.Committed(t.Context(), topic, []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] == 2 {
		t.Errorf("committed offset %d: the refused reset changed it", got[0])
	}
}

// resetEnv is a topic with five messages on each partition, a fresh
// group, a Tool for it and the plan of a reset to one offset.
type resetEnv struct {
	brokers      []string
	topic, group string
	tool         *Tool
	plan         *Plan
}

func newResetEnv(t *testing.T, partitions int32, to int64) *resetEnv {
	t.Helper()
	r := &resetEnv{brokers: testenv.KafkaBrokers(t), group: testenv.Group(t)}
	r.topic = testenv.Topic(t, r.brokers, partitions)
	produceEach(t, r.brokers, r.topic, partitions, 5)
	tool, err := New(r.brokers, r.group, WithSaramaConfig(testenv.SaramaConfig()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tool.Close() })
	r.tool = tool
	if r.plan, err = tool.Plan(t.Context(), Reset{Topic: r.topic, To: ToOffset(to)}); err != nil {
		t.Fatal(err)
	}
	return r
}

// produceEach writes n messages to each of the topic's partitions.
func produceEach(t *testing.T, brokers []string, topic string, partitions int32, n int) {
	t.Helper()
	cfg := testenv.SaramaConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for part := range partitions {
		for range n {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder("x")}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// joinGroup starts a consumer group member that reads nothing, waits until
// the group is Stable with it, and returns its member id. The member runs
// until the test ends; removed from the group, it rejoins.
func joinGroup(t *testing.T, tool *Tool, brokers []string, group, topic string) string {
	t.Helper()
	cfg := testenv.SaramaConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_ = cg.Consume(ctx, []string{topic}, idleHandler{})
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); _ = cg.Close() })

	before, err := tool.Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		g, err := tool.Describe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if g.State == "Stable" {
			for _, m := range g.Members {
				if !hasMember(before, m.ID) {
					return m.ID
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new member never joined group %s: %+v", group, g)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasMember(g *Group, id string) bool {
	for _, m := range g.Members {
		if m.ID == id {
			return true
		}
	}
	return false
}

// idleHandler claims partitions and reads nothing: it only holds the
// membership.
type idleHandler struct{}

func (idleHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (idleHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (idleHandler) ConsumeClaim(s sarama.ConsumerGroupSession, _ sarama.ConsumerGroupClaim) error {
	<-s.Context().Done()
	return nil
}
