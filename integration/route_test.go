package integration_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/route"
	"github.com/eddy-streams/eddy/statedb/memory"
)

const routedPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source:
  topics: [%s]
  event_id: event.id
flush: {max_messages: 100, interval: 50ms}
steps:
  - key: event.k
sink:
  topic: %s
  router: %s
`

// TestSinkRoutersArePlacedAndReplayStable runs each sink router over 300
// events into a 6-partition topic, twice, the second run a replay (a new
// group and a fresh store: every output again, with the same IDs). Every
// output must sit on the partition its policy gives for its key and ID,
// and the replayed copy on the partition of the first: what a reader that
// deduplicates per partition needs to catch it.
func TestSinkRoutersArePlacedAndReplayStable(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const events, parts = 300, 6
	in := testenv.Topic(t, brokers, 3)
	var msgs []*sarama.ProducerMessage
	for i := range events {
		k := fmt.Sprintf("k%d", i%30)
		msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(k),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"e-%d","k":%q}`, i, k))})
	}
	produce(t, brokers, in, msgs)

	for _, policy := range route.Policies() {
		t.Run(string(policy), func(t *testing.T) {
			out := testenv.Topic(t, brokers, parts)
			p := loadPipeline(t, routedPipeline, testenv.Unique("routed"), in, out, policy)
			for run := range 2 {
				w, stop := startWorker(t, fmt.Sprintf("run%d", run), p, brokers, testenv.Group(t), memory.New(),
					processor.WithCommitInterval(100*time.Millisecond))
				waitFor(t, 60*time.Second, "every event processed", func() bool { return w.Stats().Out >= events })
				stop()
			}
			copies := 1
			if policy == route.Multicast {
				copies = parts
			}
			got := testenv.ReadCommitted(t, brokers, out, 30*time.Second)
			if len(got) != 2*events*copies {
				t.Fatalf("%d outputs, want %d (%d events, %d copies each, 2 runs)", len(got), 2*events*copies, events, copies)
			}
			r, _ := route.New(policy)
			at := map[string]int32{} // eddy-id -> partition of its first copy
			per := make([]int, parts)
			for _, m := range got {
				id := header(m, processor.IDHeader)
				if prev, ok := at[id]; ok && prev != m.Partition {
					t.Errorf("output %s on partition %d, its replayed copy on %d", id, prev, m.Partition)
				}
				at[id] = m.Partition
				per[m.Partition]++
				if policy == route.Multicast {
					continue // the copies' IDs are checked below
				}
				if want := r.Route(nil, m.Key, id, parts)[0]; m.Partition != want {
					t.Errorf("output %s with key %s on partition %d, want %d", id, m.Key, m.Partition, want)
				}
			}
			if len(at) != events*copies {
				t.Errorf("%d distinct output IDs, want %d", len(at), events*copies)
			}
			if policy == route.Multicast {
				// Each copy's ID ends with its partition: CopyID(id, p).
				for id, p := range at {
					if suffix := fmt.Sprintf("#%d", p); len(id) < len(suffix) || id[len(id)-len(suffix):] != suffix {
						t.Errorf("multicast copy %s on partition %d", id, p)
					}
				}
			}
			for p, n := range per {
				if n == 0 {
					t.Errorf("partition %d got no output: %v", p, per)
				}
			}
			t.Logf("%s: outputs per partition %v", policy, per)
		})
	}
}

const topicsPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source:
  topics: [%s]
  event_id: event.id
flush: {max_messages: 100, interval: 50ms}
dead_letter: {topic: %s, router: round-robin}
steps:
  - filter: event.n > 0
  - key: event.k
sink:
  topics: [%s, %s]
  router: %s
`

// TestSinkTopicsAndDeadLetterRouter: a sink multicast to two topics
// (sink.topics) puts a copy of every output on each, placed there by the
// sink's router (consistent-hash, then multicast on top), each copy with
// its own ID; the dead-letter topic places its records by its own router
// (round-robin by ID). Run twice, the second a replay, each copy lands on
// the partition of its first.
func TestSinkTopicsAndDeadLetterRouter(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const events, bad = 300, 60 // every 5th event has no n: a CEL error, a dead letter
	in := testenv.Topic(t, brokers, 3)
	var msgs []*sarama.ProducerMessage
	for i := range events {
		k := fmt.Sprintf("k%d", i%30)
		v := fmt.Sprintf(`{"id":"e-%d","k":%q,"n":%d}`, i, k, i+1)
		if i%5 == 0 {
			v = fmt.Sprintf(`{"id":"e-%d","k":%q}`, i, k)
		}
		msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(v)})
	}
	produce(t, brokers, in, msgs)

	for _, policy := range []route.Policy{route.ConsistentHash, route.Multicast} {
		t.Run(string(policy), func(t *testing.T) {
			a, b, dl := testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 4), testenv.Topic(t, brokers, 5)
			p := loadPipeline(t, topicsPipeline, testenv.Unique("topics"), in, dl, a, b, policy)
			for run := range 2 {
				w, stop := startWorker(t, fmt.Sprintf("run%d", run), p, brokers, testenv.Group(t), memory.New(),
					processor.WithCommitInterval(100*time.Millisecond))
				waitFor(t, 60*time.Second, "every event processed", func() bool { return w.Stats().In >= events })
				stop()
			}
			r, _ := route.New(policy)
			sinkIDs := map[string]bool{}
			for _, tp := range []struct {
				topic string
				parts int32
			}{{a, 3}, {b, 4}} {
				got := testenv.ReadCommitted(t, brokers, tp.topic, 30*time.Second)
				copies := 1
				if policy == route.Multicast {
					copies = int(tp.parts)
				}
				if want := 2 * (events - bad) * copies; len(got) != want {
					t.Fatalf("%s: %d outputs, want %d", tp.topic, len(got), want)
				}
				at := map[string]int32{}
				for _, m := range got {
					id := header(m, processor.IDHeader)
					if prev, ok := at[id]; ok && prev != m.Partition {
						t.Errorf("%s: output %s on partition %d, its replayed copy on %d", tp.topic, id, prev, m.Partition)
					}
					at[id] = m.Partition
					sinkIDs[id] = true
					suffix := "@" + tp.topic
					if policy == route.Multicast {
						suffix += fmt.Sprintf("#%d", m.Partition)
					} else if want := r.Route(nil, m.Key, id, tp.parts)[0]; m.Partition != want {
						t.Errorf("%s: output %s with key %s on partition %d, want %d", tp.topic, id, m.Key, m.Partition, want)
					}
					if !strings.HasSuffix(id, suffix) {
						t.Errorf("%s: copy ID %s on partition %d, want a suffix %s", tp.topic, id, m.Partition, suffix)
					}
				}
				if len(at) != (events-bad)*copies {
					t.Errorf("%s: %d distinct IDs, want %d", tp.topic, len(at), (events-bad)*copies)
				}
			}
			want := (events - bad) * (3 + 4)
			if policy != route.Multicast {
				want = (events - bad) * 2
			}
			if len(sinkIDs) != want {
				t.Errorf("%d distinct IDs over both sink topics, want %d: a copy shares its ID with another", len(sinkIDs), want)
			}

			dead := testenv.ReadCommitted(t, brokers, dl, 30*time.Second)
			if len(dead) != 2*bad {
				t.Fatalf("%d dead letters, want %d", len(dead), 2*bad)
			}
			rr, _ := route.New(route.RoundRobin)
			per := make([]int, 5)
			for _, m := range dead {
				id := header(m, processor.IDHeader)
				if want := rr.Route(nil, m.Key, id, 5)[0]; m.Partition != want {
					t.Errorf("dead letter %s on partition %d, round-robin says %d", id, m.Partition, want)
				}
				per[m.Partition]++
			}
			for p, n := range per {
				if n == 0 {
					t.Errorf("dead-letter partition %d got nothing: %v", p, per)
				}
			}
		})
	}
}
