package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/backends"
)

// partitionOf is the partition of key among n partitions under the
// Java-compatible murmur2 partitioner (Kafka's default, and eddy's).
func partitionOf(t *testing.T, key string, n int32) int32 {
	t.Helper()
	p, err := sarama.NewMurmur2Partitioner("").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
	if err != nil {
		t.Fatalf("murmur2 partition of %q: %v", key, err)
	}
	return p
}

// syncProducer is a producer for test input that reports errors instead of
// failing the test, so that a feeder goroutine may use it. Messages are
// partitioned by the murmur2 hash of their key.
type syncProducer struct {
	p sarama.SyncProducer
}

func newSyncProducer(t *testing.T, brokers []string) *syncProducer {
	t.Helper()
	cfg := testenv.SaramaConfig()
	// Idempotent, one request in flight per broker (testenv.SaramaConfig):
	// a retried batch is neither written twice nor overtakes the next one.
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatalf("producer for %v: %v", brokers, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &syncProducer{p: p}
}

// send writes msgs to topic, in order, and waits for every ack.
func (s *syncProducer) send(topic string, msgs []*sarama.ProducerMessage) error {
	for _, m := range msgs {
		m.Topic = topic
	}
	if err := s.p.SendMessages(msgs); err != nil {
		return fmt.Errorf("produce %d messages to %s: %w", len(msgs), topic, err)
	}
	return nil
}

// readTopic reads every committed record of topic up to the last stable
// offsets it has when called, sorted by partition and offset, as a
// read_committed consumer sees them (testenv.ReadCommitted: outputs are
// transactional, and their markers occupy offsets). The topic must be
// quiet (its writers stopped) for the result to be complete.
func readTopic(t *testing.T, brokers []string, topic string, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	return testenv.ReadCommitted(t, brokers, topic, timeout)
}

// partitionEnds returns the end offset (the next offset to be written) of
// each partition of topic.
func partitionEnds(t *testing.T, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	client, err := sarama.NewClient(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer func() { _ = client.Close() }()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	ends := map[int32]int64{}
	for _, p := range parts {
		if ends[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p, err)
		}
	}
	return ends
}

// openStore opens the store the pipeline's state section selects, as the
// worker binary does, and closes it when the test ends.
func openStore(t *testing.T, p *pipeline.Pipeline) statedb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := backends.Open(ctx, p, nil)
	if err != nil {
		t.Fatalf("open the %s store: %v", p.Spec.State.Backend, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// storedOffsets reads each partition's offset watermark (the last offset
// whose effects are persisted) without claiming it.
func storedOffsets(ctx context.Context, st statedb.Store, topic string, parts int32) (map[int32]int64, error) {
	in, ok := st.(statedb.Inspector)
	if !ok {
		return nil, fmt.Errorf("store %T does not implement statedb.Inspector", st)
	}
	out := map[int32]int64{}
	for p := range parts {
		c, err := in.Inspect(ctx, statedb.Partition{Topic: topic, Partition: p})
		if err != nil {
			return nil, err
		}
		out[p] = c.Offset
	}
	return out, nil
}

// waitStored polls the store until every partition's offset watermark has
// reached want[p] (an offset; NoOffset or absent: nothing to wait for).
func waitStored(t *testing.T, st statedb.Store, topic string, parts int32, want map[int32]int64, timeout time.Duration, what string) {
	t.Helper()
	var last map[int32]int64
	var lastErr error
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		last, lastErr = storedOffsets(ctx, st, topic, parts)
		cancel()
		if lastErr == nil {
			done := true
			for p, off := range want {
				if last[p] < off {
					done = false
				}
			}
			if done {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: stored offsets %v, want at least %v (last error: %v)",
				timeout, what, last, want, lastErr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// removeMember removes the static member instance from group (the worker
// with that instance id), as a frozen worker's session would end: the
// group rebalances without it.
func removeMember(t *testing.T, brokers []string, group, instance string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	if _, err := admin.RemoveMemberFromConsumerGroup(group, []string{instance}); err != nil {
		t.Fatalf("remove %s from group %s: %v", instance, group, err)
	}
}
