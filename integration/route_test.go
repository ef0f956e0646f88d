package integration_test

import (
	"fmt"
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
