package integration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb/memory"
)

const createTopicsPipeline = `
name: %s
kafka: {brokers: [unused:9092], create_topics: %t}
source: {topics: [%s]}
dead_letter: {topic: %s}
sink: {topic: %s}
`

// TestMissingOutputTopicsFailTheStart: a worker whose dead-letter topic
// does not exist (the broker does not create topics) stops at start-up
// with a message naming the field, the topic and the way out, instead of
// pausing a partition at its first dead letter; with kafka.create_topics
// it creates the topic, with the source's partition count, and runs.
func TestMissingOutputTopicsFailTheStart(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	in, out := testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 1)
	dlq := testenv.Unique("missing-dlq")
	t.Cleanup(func() { deleteTopics(t, brokers, dlq) })
	run := func(create bool) error {
		p := loadPipeline(t, createTopicsPipeline, testenv.Unique("topics"), create, in, dlq, out)
		w, err := processor.New(p, processor.WithStore(memory.New()), processor.WithBrokers(brokers...),
			processor.WithGroup(testenv.Group(t)), processor.WithLogger(zaptest.NewLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		select {
		case err := <-done:
			return err
		case <-time.After(8 * time.Second):
			cancel()
			<-done
			return nil // running
		}
	}
	err := run(false)
	if err == nil || !strings.Contains(err.Error(), `dead_letter.topic: topic "`+dlq+`" does not exist on the cluster`) ||
		!strings.Contains(err.Error(), "worker topics create") || !strings.Contains(err.Error(), "kafka.create_topics") {
		t.Fatalf("start with a missing dead-letter topic: %v", err)
	}
	if err := run(true); err != nil {
		t.Fatalf("with kafka.create_topics: %v", err)
	}
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ts, err := admin.DescribeTopics([]string{dlq})
	if err != nil || len(ts) != 1 || ts[0].Err != sarama.ErrNoError || len(ts[0].Partitions) != 3 {
		t.Fatalf("created dead-letter topic: %+v, %v; want 3 partitions (the source's)", ts, err)
	}
}
