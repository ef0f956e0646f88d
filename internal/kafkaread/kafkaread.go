// Package kafkaread reads what a read_committed consumer of a partition is
// given, exactly up to an end offset: the reader of transactional outputs
// that the tests and the bench share.
//
// It fetches with its own requests rather than through a sarama
// PartitionConsumer because a reader of transactional records cannot tell
// from the records it is given when it is done: the last offsets below the
// last stable offset are commit markers, which are never delivered, and a
// PartitionConsumer does not expose its fetch position (its
// HighWaterMarkOffset is the partition's end from ConsumePartition on,
// before anything was fetched). A reader that stopped after a quiet
// interval returned nothing at all when its first fetch was slow, as it is
// just after a broker restart. Here the position is the offset after the
// last complete batch of each response, markers and aborted batches
// included, and reading ends when it reaches the end offset: exact,
// whatever the timing.
//
// The filtering is the read_committed rule of the Kafka protocol (KIP-98),
// done here and not left to sarama, so that what eddy produced is checked
// against the protocol rather than against the client the workers use:
// the broker lists the aborted transactions overlapping the fetched range
// (producer id and first offset); a transactional data batch of a
// producer is dropped from the first offset of its aborted transaction
// until that producer's abort marker.
package kafkaread

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// LastStableOffset asks topic/p's leader for its last stable offset
// (ListOffsets, latest, read_committed): the offset below which every
// transaction of the partition is decided, the end a read_committed
// consumer sees. An answer that the leader moved or is not known yet (as
// just after a topic is created or a broker restarts) is retried after a
// metadata refresh for up to leaderWait; other errors are returned.
func LastStableOffset(client sarama.Client, topic string, p int32) (int64, error) {
	deadline := time.Now().Add(leaderWait)
	for {
		off, err := lastStableOffset(client, topic, p)
		if err == nil || !leaderMoved(err) || time.Now().After(deadline) {
			return off, err
		}
		_ = client.RefreshMetadata(topic)
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderWait bounds how long LastStableOffset waits for a partition's
// leader to be known.
const leaderWait = 30 * time.Second

// leaderMoved reports whether err says the request went to a broker that
// does not lead the partition (yet): the answer changes once metadata is
// refreshed.
func leaderMoved(err error) bool {
	return errors.Is(err, sarama.ErrNotLeaderForPartition) ||
		errors.Is(err, sarama.ErrLeaderNotAvailable) ||
		errors.Is(err, sarama.ErrUnknownTopicOrPartition) ||
		errors.Is(err, sarama.ErrNotEnoughReplicas) ||
		errors.Is(err, sarama.ErrRequestTimedOut)
}

func lastStableOffset(client sarama.Client, topic string, p int32) (int64, error) {
	b, err := client.Leader(topic, p)
	if err != nil {
		return 0, err
	}
	req := &sarama.OffsetRequest{Version: 2, IsolationLevel: sarama.ReadCommitted}
	req.AddBlock(topic, p, sarama.OffsetNewest, 1)
	resp, err := b.GetAvailableOffsets(req)
	if err != nil {
		return 0, err
	}
	blk := resp.GetBlock(topic, p)
	switch {
	case blk == nil:
		return 0, errors.New("no offset in the ListOffsets response")
	case !errors.Is(blk.Err, sarama.ErrNoError):
		return 0, blk.Err
	}
	return blk.Offset, nil
}

// Committed returns the records of topic/p in [from, end) that a
// read_committed consumer is given: the committed ones, without the
// markers and without the records of aborted transactions. end is
// normally the partition's last stable offset. A failed fetch (a moved
// leader, a restarted broker) is retried after a metadata refresh until
// deadline.
func Committed(client sarama.Client, topic string, p int32, from, end int64, deadline time.Time) ([]*sarama.ConsumerMessage, error) {
	var out []*sarama.ConsumerMessage
	var lastErr error
	maxBytes := int32(4 << 20)
	for pos := from; pos < end; {
		if time.Now().After(deadline) {
			return out, fmt.Errorf("reading %s/%d: at offset %d of %d at the deadline (last error: %v)", topic, p, pos, end, lastErr)
		}
		blk, err := fetch(client, topic, p, pos, maxBytes)
		if err != nil {
			lastErr = err
			_ = client.RefreshMetadata(topic)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		msgs, next, cut := filter(topic, p, blk, pos, end)
		out = append(out, msgs...)
		switch {
		case next > pos:
			pos = next
		case cut && maxBytes < 1<<30:
			maxBytes *= 2 // one batch larger than the fetch size
		default:
			time.Sleep(50 * time.Millisecond) // nothing below end yet
		}
	}
	return out, nil
}

// fetch sends one read_committed fetch of topic/p from pos to the
// partition's leader.
func fetch(client sarama.Client, topic string, p int32, pos int64, maxBytes int32) (*sarama.FetchResponseBlock, error) {
	b, err := client.Leader(topic, p)
	if err != nil {
		return nil, err
	}
	req := &sarama.FetchRequest{Version: 11, MaxWaitTime: 100, MinBytes: 1, MaxBytes: maxBytes, Isolation: sarama.ReadCommitted}
	req.AddBlock(topic, p, pos, maxBytes, -1)
	resp, err := b.Fetch(req)
	if err != nil {
		return nil, err
	}
	blk := resp.GetBlock(topic, p)
	switch {
	case blk == nil:
		return nil, errors.New("no block in the fetch response")
	case !errors.Is(blk.Err, sarama.ErrNoError):
		return nil, blk.Err
	}
	return blk, nil
}

// filter applies the read_committed rule to one fetch response read from
// pos: it returns the records in [pos, end), the offset to fetch next
// (after the last complete batch), and whether the response held nothing
// but a batch cut short by the fetch size.
func filter(topic string, p int32, blk *sarama.FetchResponseBlock, pos, end int64) (msgs []*sarama.ConsumerMessage, next int64, cut bool) {
	pending := slices.Clone(blk.AbortedTransactions)
	slices.SortFunc(pending, func(a, b *sarama.AbortedTransaction) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	aborting := map[int64]bool{} // producers inside an aborted transaction
	next = pos
	cut = len(blk.RecordsSet) > 0
	for _, rs := range blk.RecordsSet {
		rb := rs.RecordBatch
		if rb == nil || rb.PartialTrailingRecord {
			continue // the trailing batch, cut by the fetch size
		}
		cut = false
		last := rb.LastOffset()
		next = max(next, last+1)
		for len(pending) > 0 && pending[0].FirstOffset <= last {
			aborting[pending[0].ProducerID] = true
			pending = pending[1:]
		}
		if rb.Control {
			if len(rb.Records) > 0 && isAbortMarker(rb.Records[0].Key) {
				delete(aborting, rb.ProducerID) // the abort marker ends it
			}
			continue
		}
		if rb.IsTransactional && aborting[rb.ProducerID] {
			continue
		}
		for _, r := range rb.Records {
			if off := rb.FirstOffset + r.OffsetDelta; off >= pos && off < end {
				msgs = append(msgs, message(topic, p, rb, r, off))
			}
		}
	}
	return msgs, next, cut
}

// isAbortMarker reports whether a control record's key (version int16,
// type int16) is an abort marker (type 0; a commit marker is 1).
func isAbortMarker(key []byte) bool {
	return len(key) >= 4 && key[2] == 0 && key[3] == 0
}

// message builds what a sarama consumer delivers for record r.
func message(topic string, p int32, rb *sarama.RecordBatch, r *sarama.Record, off int64) *sarama.ConsumerMessage {
	ts := rb.FirstTimestamp.Add(r.TimestampDelta)
	if rb.LogAppendTime {
		ts = rb.MaxTimestamp
	}
	m := &sarama.ConsumerMessage{
		Topic: topic, Partition: p, Offset: off,
		Key: r.Key, Value: r.Value,
		Timestamp: ts, BlockTimestamp: rb.MaxTimestamp,
	}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return m
}
