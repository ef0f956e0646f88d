package eddytest

import (
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/processor"
)

// Event is a record to put on a topic a pipeline reads.
type Event struct {
	// Topic defaults to the first pipeline's first source topic.
	Topic string
	// Partition, when set, places the event; else its key does (murmur2,
	// as Kafka's producers do), else it goes to the next partition in
	// turn.
	Partition *int32
	// Key is the record key; "" sends none.
	Key string
	// Value is the record value as it is on the topic; nil is a tombstone.
	Value []byte
	// Time is the record timestamp (what the pipeline's event time is
	// when source.event_time is not set); zero: the previous event's, or
	// DefaultTime for the first.
	Time time.Time
	// Headers are the record headers.
	Headers map[string]string
}

// Record is a record a pipeline wrote.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string // "" when it has none
	Value     []byte // nil for a tombstone
	Time      time.Time
	Headers   map[string]string
}

// ID is the record's eddy-id header: the same on every replay.
func (r Record) ID() string { return r.Headers[processor.IDHeader] }

// Error is the reason a dead letter or late event carries
// (processor.HeaderError).
func (r Record) Error() string { return r.Headers[processor.HeaderError] }

func recordOf(m *sarama.ConsumerMessage) Record {
	r := Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: m.Value, Time: m.Timestamp}
	if len(m.Headers) > 0 {
		r.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			r.Headers[string(h.Key)] = string(h.Value)
		}
	}
	return r
}

// Result is what a run's pipelines wrote.
type Result struct {
	// Outputs are the records of the sink topics that no pipeline of the
	// run reads (in a cascade, the last stage's).
	Outputs []Record
	// DeadLetters are the records of the dead-letter topics; Late those of
	// the late topics of aggregates and joins.
	DeadLetters, Late []Record
	// Topics holds every output topic's records, by topic: the above and a
	// cascade's intermediate topics.
	Topics map[string][]Record
	// Stats are each pipeline's worker's counters at the end.
	Stats []processor.Stats
}
