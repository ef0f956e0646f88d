package processor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/pipeline"
)

// Headers of dead-lettered events.
const (
	HeaderError     = "eddy-error"
	HeaderStep      = "eddy-step"
	HeaderTopic     = "eddy-source-topic"
	HeaderPartition = "eddy-source-partition"
	HeaderOffset    = "eddy-source-offset"
	HeaderEventID   = "eddy-event-id"
	HeaderPipeline  = "eddy-pipeline"
)

// outputID is the deterministic ID of the n-th output derived from the
// event with ID eventID: the same on every replay of that event. It is the
// hex of the first 16 bytes of SHA-256(pipelineName 0 kind 0 eventID 0 n),
// n in decimal; the input is assembled in a stack buffer, so the result
// string is the only allocation (for inputs up to 256 bytes).
func outputID(pipelineName, kind, eventID string, n int) string {
	var stack [256]byte
	b := append(stack[:0], pipelineName...)
	b = append(b, 0)
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, eventID...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(n), 10)
	sum := sha256.Sum256(b)
	var id [32]byte
	hex.Encode(id[:], sum[:16])
	return string(id[:])
}

// sink buffers the batch's final records for the sink topic.
func (t *task) sink(recs []*Record) {
	sk := t.w.p.Sink
	if sk == nil || len(recs) == 0 {
		return
	}
	nth := map[string]int{}
	for _, r := range recs {
		key := r.Key
		if sk.Key != nil {
			k, err := sk.Key.String(t.bind(r))
			if err != nil {
				t.poison(r, "sink.key", err)
				continue
			}
			key = k
		}
		val, err := encodeValue(sk.Format, r.Event)
		if err != nil {
			t.poison(r, "sink.encode", err)
			continue
		}
		id := r.outID
		if id == "" {
			id = outputID(t.w.p.Spec.Name, "out", r.ID, nth[r.ID])
			nth[r.ID]++
		}
		hdrs := make([]sarama.RecordHeader, 0, len(r.Headers)+1)
		hdrs = append(hdrs, sarama.RecordHeader{Key: []byte(IDHeader), Value: []byte(id)})
		for k, v := range r.Headers {
			if !strings.HasPrefix(k, "eddy-") {
				hdrs = append(hdrs, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
			}
		}
		m := &sarama.ProducerMessage{Topic: sk.Topic, Value: sarama.ByteEncoder(val), Headers: hdrs}
		if key != "" {
			m.Key = sarama.StringEncoder(key)
		}
		t.out = append(t.out, m)
		if t.w.o.onOutput != nil {
			r.Key = key
			r.outID = id
			t.emitted = append(t.emitted, r)
		} else {
			t.emitted = append(t.emitted, nil)
		}
	}
}

// poison handles an event that failed at step: it goes to the dead-letter
// topic with its original key and value and headers saying what failed and
// where it came from, or, with no dead-letter topic, is counted and logged.
// Either way the partition goes on, and the event's offset is committed
// with the batch: the dead letter is produced before that commit.
func (t *task) poison(r *Record, step string, err error) {
	t.w.stats.poison.Add(1)
	t.log.Warn("poison event", zap.String("step", step), zap.Int64("offset", r.Offset),
		zap.String("event_id", r.ID), zap.Error(err))
	if t.w.p.Spec.DeadLetter == nil {
		return
	}
	dlq := t.w.p.Spec.DeadLetter.Topic
	t.w.stats.dlq.Add(1)
	part, off := strconv.FormatInt(int64(r.Partition), 10), strconv.FormatInt(r.Offset, 10)
	hdr := func(k, v string) sarama.RecordHeader { return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	m := &sarama.ProducerMessage{
		Topic: dlq,
		Value: sarama.ByteEncoder(r.raw),
		Headers: []sarama.RecordHeader{
			hdr(IDHeader, outputID(t.w.p.Spec.Name, "dlq", r.ID, 0)),
			hdr(HeaderError, err.Error()),
			hdr(HeaderStep, step),
			hdr(HeaderTopic, r.Topic),
			hdr(HeaderPartition, part),
			hdr(HeaderOffset, off),
			hdr(HeaderEventID, r.ID),
			hdr(HeaderPipeline, t.w.p.Spec.Name),
		},
	}
	if r.srcKey != nil {
		m.Key = sarama.ByteEncoder(r.srcKey)
	}
	t.out = append(t.out, m)
}

// decodeValue turns a source message value into an event.
func decodeValue(f pipeline.Format, b []byte) (map[string]any, error) {
	if f == pipeline.FormatRaw {
		return map[string]any{"value": string(b)}, nil
	}
	return pipeline.DecodeJSON(b)
}

// encodeValue turns an event into a sink message value.
func encodeValue(f pipeline.Format, ev map[string]any) ([]byte, error) {
	if f == pipeline.FormatRaw {
		switch v := ev["value"].(type) {
		case string:
			return []byte(v), nil
		case []byte:
			return v, nil
		case nil:
			return nil, nil
		default:
			return nil, fmt.Errorf("sink.format raw: field value is a %T, want a string or bytes", v)
		}
	}
	return pipeline.EncodeJSON(ev)
}
