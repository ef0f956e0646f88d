package integration_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb/memory"
)

const tooLargePipeline = `
name: %s
kafka: {brokers: [unused:9092], transactions: %t}
source: {topics: [%s], event_id: event.id}
dead_letter: {topic: %s}
flush: {max_messages: 100, interval: 50ms}
steps:
  - set: {seen: true}
sink: {topic: %s}
`

// TestRecordsTooLargeForTheirTopicDoNotStopThePartition: the sink and
// dead-letter topics accept records of at most 20,000 bytes (the source
// takes more). A malformed event of 50 kB is a dead letter too large for
// its topic: it is sent with its value cut, and headers give its size and
// hash. A good event whose output is 30 kB is dead-lettered (then cut).
// The partition goes on: every other event is out, every offset
// committed. With and without transactions.
func TestRecordsTooLargeForTheirTopicDoNotStopThePartition(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	small := func() string {
		name := testenv.Unique("small")
		limit := "20000"
		if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
			ConfigEntries: map[string]*string{"max.message.bytes": &limit}}, false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.DeleteTopic(name) })
		return name
	}
	for _, txn := range []bool{true, false} {
		t.Run(fmt.Sprintf("transactions=%t", txn), func(t *testing.T) {
			in, out, dlq := testenv.Topic(t, brokers, 1), small(), small()
			waitFor(t, 30*time.Second, "the small topics", func() bool {
				ts, err := admin.DescribeTopics([]string{out, dlq})
				return err == nil && len(ts) == 2 && len(ts[0].Partitions) == 1 && len(ts[1].Partitions) == 1
			})
			var msgs []*sarama.ProducerMessage
			for i := range 20 {
				v := fmt.Sprintf(`{"id":"e%d"}`, i)
				switch i {
				case 5:
					v = `{"id":"bad` + strings.Repeat("x", 50_000) // not JSON, 50 kB
				case 12:
					v = fmt.Sprintf(`{"id":"e%d","blob":%q}`, i, strings.Repeat("y", 30_000))
				}
				msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)})
			}
			produce(t, brokers, in, msgs)
			p := loadPipeline(t, tooLargePipeline, testenv.Unique("toolarge"), txn, in, dlq, out)
			group := testenv.Group(t)
			w, stop := startWorker(t, "w", p, brokers, group, memory.New())
			defer stop()
			waitFor(t, 30*time.Second, "18 outputs", func() bool { return w.Stats().Out >= 18 })
			waitFor(t, 60*time.Second, "every offset committed", func() bool {
				return committedOffsets(t, brokers, group, in)[0] == 20
			})
			stop()
			if got := len(testenv.ReadCommitted(t, brokers, out, 30*time.Second)); got != 18 {
				t.Errorf("%d outputs, want 18", got)
			}
			if st := w.Stats(); st.Out != 18 || st.DeadLettered != 2 {
				t.Errorf("stats: %d out, %d dead-lettered; want 18 and 2 (the output too large for its topic is a dead letter, not an output)", st.Out, st.DeadLettered)
			}
			dead := testenv.ReadCommitted(t, brokers, dlq, 30*time.Second)
			if len(dead) != 2 {
				t.Fatalf("%d dead letters, want 2", len(dead))
			}
			sizes := map[string]bool{}
			for _, m := range dead {
				size := header(m, processor.HeaderTruncatedSize)
				sizes[size] = true
				if len(m.Value) != 1024 || len(header(m, processor.HeaderTruncatedSHA256)) != 64 {
					t.Errorf("dead letter of %d bytes, sha %q: want the first 1024 bytes and a SHA-256", len(m.Value), header(m, processor.HeaderTruncatedSHA256))
				}
			}
			if !sizes["50010"] || len(sizes) != 2 {
				t.Errorf("dead letters of original sizes %v, want the 50,010-byte event and the 30 kB output", sizes)
			}
			for _, m := range dead {
				if header(m, processor.HeaderOutputTopic) == out && !strings.Contains(header(m, processor.HeaderError), "too large for topic "+out) {
					t.Errorf("the dead-lettered output's error: %q", header(m, processor.HeaderError))
				}
			}
		})
	}
}

// TestRecordsLargerThanTheProducersLimitDoNotStopThePartition: a 2 MB
// malformed event on a source topic that allows 3 MB is a dead letter
// larger than the worker's producer sends at all (sarama's
// Producer.MaxMessageBytes, 1 MB, checked before anything is sent, and
// not the broker's MESSAGE_TOO_LARGE): it too is sent with its value cut,
// and the partition goes on. With and without transactions.
func TestRecordsLargerThanTheProducersLimitDoNotStopThePartition(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, txn := range []bool{true, false} {
		t.Run(fmt.Sprintf("transactions=%t", txn), func(t *testing.T) {
			in, limit := testenv.Unique("large-in"), strconv.Itoa(3<<20)
			if err := admin.CreateTopic(in, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
				ConfigEntries: map[string]*string{"max.message.bytes": &limit}}, false); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = admin.DeleteTopic(in) })
			out, dlq := testenv.Topic(t, brokers, 1), testenv.Topic(t, brokers, 1)
			cfg := testenv.SaramaConfig()
			cfg.Producer.MaxMessageBytes = 4 << 20
			prod, err := sarama.NewSyncProducer(brokers, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			big := `{"id":"big` + strings.Repeat("x", 2<<20)
			for i := range 10 {
				v := fmt.Sprintf(`{"id":"e%d"}`, i)
				if i == 4 {
					v = big
				}
				if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: in, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)}); err != nil {
					t.Fatal(err)
				}
			}
			p := loadPipeline(t, tooLargePipeline, testenv.Unique("large"), txn, in, dlq, out)
			group := testenv.Group(t)
			_, stop := startWorker(t, "w", p, brokers, group, memory.New())
			defer stop()
			waitFor(t, 60*time.Second, "every offset committed", func() bool {
				return committedOffsets(t, brokers, group, in)[0] == 10
			})
			stop()
			if got := len(testenv.ReadCommitted(t, brokers, out, 30*time.Second)); got != 9 {
				t.Errorf("%d outputs, want 9", got)
			}
			dead := testenv.ReadCommitted(t, brokers, dlq, 30*time.Second)
			if len(dead) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dead))
			}
			if m := dead[0]; header(m, processor.HeaderTruncatedSize) != strconv.Itoa(len(big)) || len(m.Value) != 1024 {
				t.Errorf("dead letter of %d bytes, original size %q: want the first 1024 bytes of the %d-byte event",
					len(m.Value), header(m, processor.HeaderTruncatedSize), len(big))
			}
		})
	}
}
