package secure

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// Topic creates a topic with a unique name and the given number of
// partitions through a secure listener (brokers, with cfg: e.g. from
// kafkaconf.New), waits until every partition has a leader, and deletes
// it when the test ends. Making topics through the listener under test
// keeps a test on one broker even where the PLAINTEXT one is elsewhere
// (testenv's containers).
func Topic(t testing.TB, brokers []string, cfg *sarama.Config, partitions int32) string {
	t.Helper()
	name := testenv.Unique("eddy_secure")
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatalf("kafka admin over %v: %v", brokers, err)
	}
	defer func() { _ = admin.Close() }()
	if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s over %v: %v", name, brokers, err)
	}
	t.Cleanup(func() {
		admin, err := sarama.NewClusterAdmin(brokers, cfg)
		if err != nil {
			t.Errorf("cleanup: kafka admin: %v", err)
			return
		}
		defer func() { _ = admin.Close() }()
		if err := admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			t.Errorf("cleanup: delete topic %s: %v", name, err)
		}
	})
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatalf("kafka client over %v: %v", brokers, err)
	}
	defer func() { _ = client.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := leaders(client, name, partitions)
		if err == nil {
			return name
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: metadata not visible within 30s: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func leaders(client sarama.Client, topic string, partitions int32) error {
	if err := client.RefreshMetadata(topic); err != nil {
		return err
	}
	ps, err := client.Partitions(topic)
	if err != nil {
		return err
	}
	if int32(len(ps)) != partitions {
		return fmt.Errorf("%d of %d partitions visible", len(ps), partitions)
	}
	for _, p := range ps {
		if _, err := client.Leader(topic, p); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
	}
	return nil
}
