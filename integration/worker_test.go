package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// produce writes msgs to topic with the Java-compatible partitioner and
// waits for every ack.
func produce(t *testing.T, brokers []string, topic string, msgs []*sarama.ProducerMessage) {
	t.Helper()
	cfg := testenv.SaramaConfig() // an idempotent producer
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < len(msgs); i += 1000 {
		batch := msgs[i:min(i+1000, len(msgs))]
		for _, m := range batch {
			m.Topic = topic
		}
		if err := p.SendMessages(batch); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads every committed message of topic from the start until want messages
// arrived and nothing more came for quiet, or until timeout.
func readAll(t *testing.T, brokers []string, topic string, want int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := testenv.SaramaConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted // outputs are transactional
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *sarama.ConsumerMessage, 1024)
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				out <- m
			}
		}()
	}
	var got []*sarama.ConsumerMessage
	deadline := time.After(timeout)
	quiet := 2 * time.Second
	for {
		wait := time.Hour
		if len(got) >= want {
			wait = quiet
		}
		select {
		case m := <-out:
			got = append(got, m)
		case <-time.After(wait):
			return got
		case <-deadline:
			return got
		}
	}
}

func header(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

func loadPipeline(t *testing.T, yaml string, args ...any) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Parse("test.yaml", []byte(fmt.Sprintf(yaml, args...)))
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	return p
}

// startWorker runs a worker until the returned stop function is called;
// stop waits for the graceful shutdown (flush, commit, leave). opts come
// after the defaults and override them.
func startWorker(t *testing.T, name string, p *pipeline.Pipeline, brokers []string, group string, store statedb.Store, opts ...processor.Option) (w *processor.Worker, stop func()) {
	t.Helper()
	w, err := processor.New(p, append([]processor.Option{processor.WithStore(store), processor.WithBrokers(brokers...),
		processor.WithGroup(group), processor.WithLogger(zaptest.NewLogger(t).Named(name)),
		processor.WithCommitInterval(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx); err != nil {
			t.Errorf("worker %s: %v", name, err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return w, stop
}

const statelessPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source:
  topics: [%s]
  event_id: event.id
flush: {max_messages: 200, interval: 50ms}
steps:
  - filter: event.n >= 0
  - set: {double: event.n * 2, worker_key: key}
  - key: event.k
sink:
  topic: %s
`

// TestWorkersShareAPartitionedTopic runs two workers of one group over a
// 6-partition topic, stops one mid-stream, and checks that every input
// yields exactly one output, with per-key order kept.
func TestWorkersShareAPartitionedTopic(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	in := testenv.Topic(t, brokers, 6)
	out := testenv.Topic(t, brokers, 6)
	group := testenv.Group(t)
	p := loadPipeline(t, statelessPipeline, testenv.Unique("p"), in, out)
	store := memory.New()

	const keys, perKey = 60, 100
	var msgs []*sarama.ProducerMessage
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			id := fmt.Sprintf("e-%d-%d", k, i)
			v := fmt.Sprintf(`{"id":%q,"k":"k%d","n":%d}`, id, k, i)
			msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder("k" + strconv.Itoa(k)), Value: sarama.StringEncoder(v)})
		}
	}
	total := len(msgs)

	// Both members must hold partitions before the first half is written:
	// a worker that joins late can find the first one has already drained
	// everything, and there would be nothing left for it to share.
	w1, stop1 := startWorker(t, "w1", p, brokers, group, store)
	w2, stop2 := startWorker(t, "w2", p, brokers, group, store)
	waitFor(t, 60*time.Second, "both workers to hold partitions", func() bool {
		s1, s2 := w1.Stats(), w2.Stats()
		return s1.Partitions > 0 && s2.Partitions > 0 && s1.Partitions+s2.Partitions == 6
	})
	produce(t, brokers, in, msgs[:total/2])
	waitFor(t, 60*time.Second, "both workers to process", func() bool {
		return w1.Stats().Out > 0 && w2.Stats().Out > 0
	})
	produce(t, brokers, in, msgs[total/2:])
	stop2() // mid-stream: w1 must take over w2's partitions where it stopped
	waitFor(t, 60*time.Second, "the survivor to finish", func() bool {
		return w1.Stats().Out+w2.Stats().Out >= uint64(total)
	})
	stop1()

	if inputs := readAll(t, brokers, in, total, 30*time.Second); len(inputs) != total {
		t.Fatalf("the input topic holds %d messages, want %d: the test's producer duplicated some", len(inputs), total)
	}
	// Transaction markers occupy offsets: count the committed records up
	// to the last stable offsets instead of adding up end offsets.
	if n := len(testenv.ReadCommitted(t, brokers, out, 30*time.Second)); n != total {
		t.Errorf("the output topic holds %d committed records, want %d", n, total)
	}
	got := readAll(t, brokers, out, total, 30*time.Second)
	if len(got) != total {
		t.Errorf("output has %d messages, want exactly %d (one per input)", len(got), total)
	}
	seen := map[string]bool{}
	where := map[string]string{}
	last := map[string]int64{}
	for _, m := range got {
		var ev struct {
			ID     string `json:"id"`
			K      string `json:"k"`
			N      int64  `json:"n"`
			Double int64  `json:"double"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("output %s: %v", m.Value, err)
		}
		at := fmt.Sprintf("partition %d offset %d", m.Partition, m.Offset)
		if seen[ev.ID] {
			t.Errorf("event %s output twice: at %s and %s", ev.ID, where[ev.ID], at)
		}
		where[ev.ID] = at
		seen[ev.ID] = true
		if ev.Double != 2*ev.N {
			t.Errorf("event %s: double = %d, want %d", ev.ID, ev.Double, 2*ev.N)
		}
		if string(m.Key) != ev.K {
			t.Errorf("event %s: output key %q, want %q", ev.ID, m.Key, ev.K)
		}
		if header(m, processor.IDHeader) == "" {
			t.Errorf("event %s: no %s header", ev.ID, processor.IDHeader)
		}
		// Outputs of one key land in one partition; read in offset order
		// they must keep the input order.
		if prev, ok := last[ev.K]; ok && ev.N <= prev {
			t.Errorf("key %s: n=%d after n=%d: order broken", ev.K, ev.N, prev)
		}
		last[ev.K] = ev.N
	}
	if len(seen) != total {
		t.Errorf("%d distinct events in the output, want %d", len(seen), total)
	}
	s1, s2 := w1.Stats(), w2.Stats()
	t.Logf("w1: in %d out %d skipped %d; w2: in %d out %d", s1.In, s1.Out, s1.Skipped, s2.In, s2.Out)
	if s2.Out == 0 || s1.Out == 0 {
		t.Errorf("work was not shared: w1 out %d, w2 out %d", s1.Out, s2.Out)
	}
}

// TestPoisonEventsGoToTheDeadLetterTopic feeds bad JSON and an event whose
// expression fails between good events: both land in the dead-letter topic
// with their headers, and every good event is processed.
func TestPoisonEventsGoToTheDeadLetterTopic(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	in := testenv.Topic(t, brokers, 1)
	out := testenv.Topic(t, brokers, 1)
	dlq := testenv.Topic(t, brokers, 1)
	p := loadPipeline(t, `
name: %s
kafka: {brokers: [unused:9092]}
source: {topics: [%s]}
dead_letter: {topic: %s}
steps:
  - set: {total: event.qty * event.price}
sink: {topic: %s}
`, testenv.Unique("p"), in, dlq, out)

	values := []string{
		`{"qty": 1, "price": 10}`,
		`{"qty": 2, "pri`, // offset 1: not JSON
		`{"qty": 3, "price": 30}`,
		`{"qty": 4}`, // offset 3: no price
		`{"qty": 5, "price": 50}`,
	}
	var msgs []*sarama.ProducerMessage
	for _, v := range values {
		msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)})
	}
	produce(t, brokers, in, msgs)
	w, stop := startWorker(t, "w", p, brokers, testenv.Group(t), memory.New())
	waitFor(t, 60*time.Second, "all events", func() bool { s := w.Stats(); return s.Out+s.Poison >= 5 })
	stop()

	good := readAll(t, brokers, out, 3, 20*time.Second)
	if len(good) != 3 {
		t.Fatalf("%d outputs, want 3", len(good))
	}
	for i, want := range []int64{10, 90, 250} {
		var ev map[string]any
		_ = json.Unmarshal(good[i].Value, &ev)
		if ev["total"] != float64(want) {
			t.Errorf("output %d: total %v, want %d", i, ev["total"], want)
		}
	}
	bad := readAll(t, brokers, dlq, 2, 20*time.Second)
	if len(bad) != 2 {
		t.Fatalf("%d dead letters, want 2", len(bad))
	}
	for i, c := range []struct {
		offset, step string
		value        string
	}{{"1", "decode", values[1]}, {"3", "steps[0].set.total", values[3]}} {
		m := bad[i]
		if string(m.Value) != c.value {
			t.Errorf("dead letter %d: value %q, want the original %q", i, m.Value, c.value)
		}
		if string(m.Key) != "k" {
			t.Errorf("dead letter %d: key %q, want the original", i, m.Key)
		}
		for h, want := range map[string]string{
			processor.HeaderTopic: in, processor.HeaderPartition: "0",
			processor.HeaderOffset: c.offset, processor.HeaderStep: c.step,
		} {
			if got := header(m, h); got != want {
				t.Errorf("dead letter %d: header %s = %q, want %q", i, h, got, want)
			}
		}
		if header(m, processor.HeaderError) == "" {
			t.Errorf("dead letter %d: empty %s header", i, processor.HeaderError)
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
