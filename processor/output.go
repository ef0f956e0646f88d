package processor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/route"
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

// VersionHeader is the header of every emit: on_update output: the source
// offset (decimal) of the last event of the batch that produced it. For a
// (key, window) its outputs' versions increase with the events they
// include, whichever worker produced them: a consumer that cannot read
// with read_committed keeps, per (key, window), the record with the
// highest version.
const VersionHeader = "eddy-version"

// opValues are the eddy-op header values, by Op.
var opValues = [...][]byte{OpInsert: []byte("insert"), OpUpdate: []byte("update"), OpDelete: []byte("delete")}

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
	return hashID(b)
}

// hashID turns an output ID's input into the ID: the hex of the first 16
// bytes of its SHA-256.
func hashID(b []byte) string {
	sum := sha256.Sum256(b)
	var id [32]byte
	hex.Encode(id[:], sum[:16])
	return string(id[:])
}

// sink buffers the batch's final records for the sink topic.
//
// The batch's messages, headers, encoders and key and ID bytes are carved
// out of a few allocations per batch rather than made per record: a
// *sarama.ByteEncoder is a sarama.Encoder (its method set includes
// ByteEncoder's), so pointing into a slab of them needs no boxing, and a
// key as bytes is never copied again by the partitioner or the record
// encoder (a StringEncoder is, on every Encode). The slabs live until the
// flush has produced the messages; nothing writes to them after sink.
//
// An error ends the batch: only when the schema registry of a registry
// format did not answer until the claim ended.
func (t *task) sink(ctx context.Context, recs []*Record) error {
	sk := t.w.p.Sink
	if sk == nil || len(recs) == 0 {
		return nil
	}
	var nth map[string]int
	msgs := make([]sarama.ProducerMessage, len(recs))
	encs := make([]sarama.ByteEncoder, 2*len(recs))
	hdrBuf := make([]sarama.RecordHeader, 0, len(recs))
	idKey := []byte(IDHeader)
	versionKey := []byte(VersionHeader)
	opKey := []byte(OpHeader)
	// Keys and IDs (32 bytes); a part taken before it grew keeps the old
	// array, whose contents do not change.
	bytes := make([]byte, 0, len(recs)*(32+len(recs[0].Key)+8))
	for i, r := range recs {
		key := r.Key
		if sk.Key != nil {
			k, err := sk.Key.String(t.bind(r))
			if err != nil {
				t.poison(r, "sink.key", err)
				continue
			}
			key = k
		}
		val, err := t.encodeValue(ctx, sk, r.Event)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errFenced) || errors.Is(err, errPermanent) {
				return err
			}
			t.poison(r, "sink.encode", err)
			continue
		}
		id := r.outID
		if id == "" {
			if nth == nil {
				nth = map[string]int{}
			}
			id = outputID(t.w.p.Spec.Name, "out", r.ID, nth[r.ID])
			nth[r.ID]++
		}
		b0 := len(bytes)
		bytes = append(bytes, id...)
		h0 := len(hdrBuf)
		hdrBuf = append(hdrBuf, sarama.RecordHeader{Key: idKey, Value: bytes[b0:len(bytes):len(bytes)]})
		if r.versioned {
			b0 = len(bytes)
			bytes = strconv.AppendInt(bytes, r.version, 10)
			hdrBuf = append(hdrBuf, sarama.RecordHeader{Key: versionKey, Value: bytes[b0:len(bytes):len(bytes)]})
		}
		if r.op != OpNone {
			hdrBuf = append(hdrBuf, sarama.RecordHeader{Key: opKey, Value: opValues[r.op]})
		}
		for k, v := range r.Headers {
			if !strings.HasPrefix(k, "eddy-") {
				hdrBuf = append(hdrBuf, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
			}
		}
		m := &msgs[i]
		m.Topic, m.Headers = sk.Topics[0], hdrBuf[h0:len(hdrBuf):len(hdrBuf)]
		encs[2*i] = val
		m.Value = &encs[2*i]
		if key != "" {
			b0 = len(bytes)
			bytes = append(bytes, key...)
			encs[2*i+1] = bytes[b0:len(bytes):len(bytes)]
			m.Key = &encs[2*i+1]
		}
		switch {
		case len(sk.Topics) > 1:
			t.topicCopies(m, id)
		case sk.Router == route.Multicast:
			t.multicast(m, id)
		default:
			t.out = append(t.out, m)
		}
		if t.w.o.onOutput != nil {
			r.Key = key
			r.outID = id
			t.emitted = append(t.emitted, r)
		} else {
			t.emitted = append(t.emitted, nil)
		}
	}
	return nil
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
	t.w.stats.dlq.Add(1)
	t.redirect(r, t.w.p.Spec.DeadLetter.Topic, "dlq", step, err.Error())
}

// late handles an event that arrived after every window it belongs to
// closed: counted, and sent to the step's late topic when it has one.
func (t *task) late(r *Record, step, topic string, tm, wm int64) {
	t.w.stats.late.Add(1)
	if topic == "" {
		return
	}
	t.redirect(r, topic, "late", step, fmt.Sprintf("late: event time %s is behind the partition's watermark %s at step %s",
		time.UnixMilli(tm).UTC().Format(time.RFC3339Nano), time.UnixMilli(wm).UTC().Format(time.RFC3339Nano), step))
}

// redirect buffers r's source message (its original key and value) for
// topic, with headers saying what happened (why) at step and where it came
// from, and an output ID of kind made from its event ID: the dead-letter
// and late paths.
func (t *task) redirect(r *Record, topic, kind, step, why string) {
	hdr := func(k, v string) sarama.RecordHeader { return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	m := &sarama.ProducerMessage{
		Topic: topic,
		Value: sarama.ByteEncoder(r.raw),
		Headers: []sarama.RecordHeader{
			hdr(IDHeader, outputID(t.w.p.Spec.Name, kind, r.ID, 0)),
			hdr(HeaderError, why),
			hdr(HeaderStep, step),
			hdr(HeaderTopic, r.Topic),
			hdr(HeaderPartition, strconv.FormatInt(int64(r.Partition), 10)),
			hdr(HeaderOffset, strconv.FormatInt(r.Offset, 10)),
			hdr(HeaderEventID, r.ID),
			hdr(HeaderPipeline, t.w.p.Spec.Name),
		},
	}
	if r.srcKey != nil {
		m.Key = sarama.ByteEncoder(r.srcKey)
	}
	t.out = append(t.out, m)
}
