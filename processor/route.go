package processor

import (
	"bytes"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/route"
)

// partitioner places every record the worker produces: the sink topic's
// by its router (sink.router), every other topic's (dead letters, late
// events) by hash. Each choice is a function of the record's key and its
// eddy-id header only (package route), so a record produced again after a
// crash or a replay goes to the partition of its first copy. Multicast
// records arrive with their partition set (multicast in output.go).
func (w *Worker) partitioner() sarama.PartitionerConstructor {
	sinkTopic, policy := "", route.Hash
	if w.p.Sink != nil {
		sinkTopic, policy = w.p.Sink.Topic, w.p.Sink.Router
	}
	hash, _ := route.NewPlacer(route.Hash)
	sinkRouter := routed{hash, false}
	if policy != route.Multicast {
		if pl, err := route.NewPlacer(policy); err == nil { // validation admits known policies only
			sinkRouter = routed{pl, policy == route.RoundRobin}
		}
	}
	internal := map[string]bool{}
	for _, s := range w.stages[1:] {
		internal[s.Topics[0]] = true
	}
	return func(topic string) sarama.Partitioner {
		switch {
		case internal[topic]:
			return sarama.NewManualPartitioner(topic) // repartOp and the markers choose
		case topic != sinkTopic:
			return routed{hash, false}
		case policy == route.Multicast:
			return sarama.NewManualPartitioner(topic)
		}
		return sinkRouter
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
