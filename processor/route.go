package processor

import (
	"bytes"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/route"
)

// partitioner places every record the worker produces: on a sink topic
// by sink.router, on a dead-letter or late topic by that section's router
// (validation gives one topic one router), on any other topic by hash.
// Each choice is a function of the record's key and its eddy-id header
// only (package route), so a record produced again after a crash or a
// replay goes to the partition of its first copy. Records on internal
// topics and multicast records arrive with their partition set
// (repartOp, multicast).
func (w *Worker) partitioner() sarama.PartitionerConstructor {
	policies := map[string]route.Policy{}
	for _, u := range w.p.Outputs() {
		policies[u.Topic] = u.Router
	}
	for _, s := range w.stages {
		if s.Internal {
			policies[s.Topics[0]] = route.Multicast // repartOp and the markers choose
		}
	}
	hash, _ := route.NewPlacer(route.Hash)
	return func(topic string) sarama.Partitioner {
		policy, ok := policies[topic]
		switch {
		case policy == route.Multicast:
			return sarama.NewManualPartitioner(topic)
		case ok && policy != route.Hash:
			if pl, err := route.NewPlacer(policy); err == nil { // validation admits known policies only
				return routed{pl, policy == route.RoundRobin}
			}
		}
		return routed{hash, false}
	}
}

// routed is a sarama.Partitioner over a route.Placer. The eddy-id header
// is read only when the placement needs it (byID, or a keyless record):
// for a keyed record routed by hash, placing it allocates nothing.
type routed struct {
	p    route.Placer
	byID bool
}

func (r routed) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	var key []byte
	if m.Key != nil {
		k, err := m.Key.Encode()
		if err != nil {
			return 0, fmt.Errorf("encoding the key: %w", err)
		}
		key = k
	}
	var id string
	if key == nil || r.byID {
		for _, h := range m.Headers {
			if bytes.Equal(h.Key, idHeaderBytes) {
				id = string(h.Value)
				break
			}
		}
	}
	return r.p.Place(key, id, n), nil
}

// RequiresConsistency: a record waits for its partition's leader rather
// than going to another partition.
func (routed) RequiresConsistency() bool { return true }

var idHeaderBytes = []byte(IDHeader)

// topicCopies turns m, a sink record with output ID id, into one copy per
// sink topic (sink.topics), each with an ID of its own (route.TopicCopyID)
// and placed by the sink's router: a multicast router copies it again to
// every partition of its topic.
func (t *task) topicCopies(m *sarama.ProducerMessage, id string) {
	for _, topic := range t.w.p.Sink.Topics {
		c := *m
		c.Topic = topic
		cid := route.TopicCopyID(id, topic)
		c.Headers = append([]sarama.RecordHeader{{Key: idHeaderBytes, Value: []byte(cid)}}, m.Headers[1:]...)
		if t.w.p.Sink.Router == route.Multicast {
			t.multicast(&c, cid)
		} else {
			t.out = append(t.out, &c)
		}
	}
}

// multicast turns m, a sink record with output ID id, into one copy per
// partition of the sink topic, each with its partition set and an ID of
// its own (route.CopyID), so that a reader deduplicating by ID keeps every
// copy. The partition count is the sink topic's when the task started.
func (t *task) multicast(m *sarama.ProducerMessage, id string) {
	for p := range t.partitions(m.Topic) {
		c := *m
		c.Partition = p
		c.Headers = append([]sarama.RecordHeader{{Key: idHeaderBytes, Value: []byte(route.CopyID(id, p))}}, m.Headers[1:]...)
		t.out = append(t.out, &c)
	}
}
