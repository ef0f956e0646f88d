package testenv

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/internal/kafkaread"
)

// topicTimeout bounds creating a topic and waiting for its metadata.
const topicTimeout = 30 * time.Second

// SaramaConfig returns a sarama configuration for tests, one that works
// with Kafka 3.9 and 4.x brokers (protocol version 3.6): an idempotent
// producer (a send retried after a lost response must not write a test's
// input twice) that waits for all in-sync replicas and returns successes,
// one request in flight per broker connection (which idempotence needs), and
// consumers that start at the oldest offset of a partition without a
// committed offset, with auto-commit off (tests commit per batch, as the
// runtime does). Each call returns a new value the caller may change.
func SaramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "eddy-test"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Return.Errors = true
	return cfg
}

// Topic creates a topic with a unique name, the given number of partitions
// and one replica on brokers, waits until its metadata (a leader for every
// partition) is visible, and deletes it when the test ends.
func Topic(t testing.TB, brokers []string, partitions int32) string {
	t.Helper()
	return TopicWith(t, brokers, SaramaConfig(), partitions)
}

// TopicWith is Topic through a client configured with cfg (a secure
// listener's SASL or TLS settings, for example).
func TopicWith(t testing.TB, brokers []string, cfg *sarama.Config, partitions int32) string {
	t.Helper()
	name := Unique("eddy_" + testName(t, 80))
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatalf("kafka admin for %v: %v", brokers, err)
	}
	defer func() { _ = admin.Close() }()
	err = admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
	if err != nil {
		t.Fatalf("create topic %s (%d partitions): %v", name, partitions, err)
	}
	t.Cleanup(func() { deleteTopic(t, brokers, cfg, name) })
	if err := waitTopic(brokers, cfg, name, partitions); err != nil {
		t.Fatalf("topic %s: %v", name, err)
	}
	return name
}

// waitTopic polls metadata until name has partitions partitions, each with
// a leader.
func waitTopic(brokers []string, cfg *sarama.Config, name string, partitions int32) error {
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer func() { _ = client.Close() }()
	deadline := time.Now().Add(topicTimeout)
	for {
		err := topicReady(client, name, partitions)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("metadata not visible within %s: %w", topicTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func topicReady(client sarama.Client, name string, partitions int32) error {
	if err := client.RefreshMetadata(name); err != nil {
		return err
	}
	ps, err := client.Partitions(name)
	if err != nil {
		return err
	}
	if int32(len(ps)) != partitions {
		return fmt.Errorf("%d of %d partitions visible", len(ps), partitions)
	}
	for _, p := range ps {
		if _, err := client.Leader(name, p); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
	}
	return nil
}

func deleteTopic(t testing.TB, brokers []string, cfg *sarama.Config, name string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Errorf("cleanup: kafka admin: %v", err)
		return
	}
	defer func() { _ = admin.Close() }()
	if err := admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("cleanup: delete topic %s: %v", name, err)
	}
}

// Group returns a unique consumer group id for the calling test.
func Group(t testing.TB) string {
	t.Helper()
	return Unique("eddy_" + testName(t, 80))
}

// ReadCommitted reads every committed record of topic below its last
// stable offsets at the time of the call, as a read_committed consumer sees
// them, sorted by partition and offset (kafkaread.Committed reads each
// partition).
func ReadCommitted(t testing.TB, brokers []string, topic string, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(brokers, SaramaConfig())
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer func() { _ = client.Close() }()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	deadline := time.Now().Add(timeout)
	var all []*sarama.ConsumerMessage
	for _, p := range parts {
		lso, err := kafkaread.LastStableOffset(client, topic, p)
		if err != nil {
			t.Fatalf("last stable offset of %s/%d: %v", topic, p, err)
		}
		first, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("earliest offset of %s/%d: %v", topic, p, err)
		}
		msgs, err := kafkaread.Committed(client, topic, p, first, lso, deadline)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, msgs...)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Partition != all[j].Partition {
			return all[i].Partition < all[j].Partition
		}
		return all[i].Offset < all[j].Offset
	})
	return all
}
