package main

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// readCommitted returns the records of topic a read_committed consumer is
// given, from each partition's log start to its last stable offset (LSO),
// in partition and offset order. It is how the bench reads a scenario's
// outputs once the scenario's worker has stopped.
//
// It sends its own fetches rather than using a sarama PartitionConsumer:
// the last offsets below the LSO of a transactional topic are commit
// markers, which a consumer never delivers, and a PartitionConsumer does
// not say how far it has fetched (its HighWaterMarkOffset is preloaded at
// ConsumePartition), so a reader built on one can only stop after a quiet
// interval, and stops early when a fetch is slow. Here the position is
// the offset after the last complete batch of each response, markers and
// aborted batches included, and reading ends when it reaches the LSO.
//
// First it waits, until deadline, for each partition's LSO to reach its
// high watermark: the worker has stopped, so an open transaction is one
// whose markers are still being written, and reading to a lower LSO would
// leave its records out. At the deadline it reads to the LSO it has and
// says so.
func readCommitted(client sarama.Client, topic string, deadline time.Time) ([]*sarama.ConsumerMessage, error) {
	if err := client.RefreshMetadata(topic); err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	slices.Sort(parts)
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		first, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("log start of %s/%d: %w", topic, p, err)
		}
		end, err := settledLSO(client, topic, p, deadline)
		if err != nil {
			return nil, err
		}
		r := &committedReader{client: client, topic: topic, p: p, pos: first, end: end, maxBytes: 4 << 20}
		msgs, err := r.read(deadline)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// settledLSO returns the LSO of topic/p once it equals the high watermark
// (no transaction open), or the LSO at the deadline.
func settledLSO(client sarama.Client, topic string, p int32, deadline time.Time) (int64, error) {
	for {
		lso, err := lastStableOffset(client, topic, p)
		if err != nil {
			return 0, fmt.Errorf("last stable offset of %s/%d: %w", topic, p, err)
		}
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest) // read_uncommitted: the high watermark
		if err != nil {
			return 0, fmt.Errorf("high watermark of %s/%d: %w", topic, p, err)
		}
		if lso >= hwm {
			return lso, nil
		}
		if time.Now().After(deadline) {
			logf("NOTE %s/%d: a transaction is still open (last stable offset %d, high watermark %d): reading to %d",
				topic, p, lso, hwm, lso)
			return lso, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lastStableOffset asks topic/p's leader for its LSO (ListOffsets, latest,
// read_committed): the offset below which every transaction is decided.
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

// committedReader reads one partition from pos to end by raw
// read_committed fetches, tracking its position.
type committedReader struct {
	client   sarama.Client
	topic    string
	p        int32
	pos, end int64
	maxBytes int32
}

func (r *committedReader) read(deadline time.Time) ([]*sarama.ConsumerMessage, error) {
	var out []*sarama.ConsumerMessage
	var lastErr error
	for r.pos < r.end {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("reading %s/%d: at offset %d of %d at the deadline (last error: %v)", r.topic, r.p, r.pos, r.end, lastErr)
		}
		blk, err := r.fetch()
		if err != nil {
			// A moved leader or a busy broker: refresh, then fetch again.
			lastErr = err
			_ = r.client.RefreshMetadata(r.topic)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		msgs, next, cut := committedRecords(r.topic, r.p, blk, r.pos, r.end)
		out = append(out, msgs...)
		switch {
		case next > r.pos:
			r.pos = next
		case cut && r.maxBytes < 1<<30:
			r.maxBytes *= 2 // a batch larger than the fetch size
		default:
			time.Sleep(50 * time.Millisecond) // nothing below end yet
		}
	}
	return out, nil
}

func (r *committedReader) fetch() (*sarama.FetchResponseBlock, error) {
	b, err := r.client.Leader(r.topic, r.p)
	if err != nil {
		return nil, err
	}
	req := &sarama.FetchRequest{Version: 11, MaxWaitTime: 100, MinBytes: 1, MaxBytes: r.maxBytes, Isolation: sarama.ReadCommitted}
	req.AddBlock(r.topic, r.p, r.pos, r.maxBytes, -1)
	resp, err := b.Fetch(req)
	if err != nil {
		return nil, err
	}
	blk := resp.GetBlock(r.topic, r.p)
	switch {
	case blk == nil:
		return nil, errors.New("no block in the fetch response")
	case !errors.Is(blk.Err, sarama.ErrNoError):
		return nil, blk.Err
	}
	return blk, nil
}

// committedRecords applies the read_committed rule (KIP-98) to one fetch
// response read from pos: the broker stops at the LSO but leaves aborted
// records in, listing the aborted transactions (producer id, first
// offset) that overlap the response; a transactional data batch of a
// producer is dropped from the first offset of its aborted transaction
// until that producer's abort marker. Control batches (the markers) are
// never delivered. It returns the records in [pos, end), the offset to
// fetch next (after the last complete batch), and whether the response
// held nothing but a batch cut short by the fetch size.
func committedRecords(topic string, p int32, blk *sarama.FetchResponseBlock, pos, end int64) (msgs []*sarama.ConsumerMessage, next int64, cut bool) {
	pending := slices.Clone(blk.AbortedTransactions)
	slices.SortFunc(pending, func(a, b *sarama.AbortedTransaction) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	aborting := map[int64]bool{} // producers inside an aborted transaction
	next = pos
	cut = len(blk.RecordsSet) > 0
	for _, rs := range blk.RecordsSet {
		rb := rs.RecordBatch
		if rb == nil || rb.PartialTrailingRecord {
			continue
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
				delete(aborting, rb.ProducerID)
			}
			continue
		}
		if rb.IsTransactional && aborting[rb.ProducerID] {
			continue
		}
		for _, rec := range rb.Records {
			off := rb.FirstOffset + rec.OffsetDelta
			if off < pos || off >= end {
				continue
			}
			m := &sarama.ConsumerMessage{Topic: topic, Partition: p, Offset: off, Key: rec.Key, Value: rec.Value,
				Timestamp: rb.FirstTimestamp.Add(rec.TimestampDelta), BlockTimestamp: rb.MaxTimestamp}
			for _, h := range rec.Headers {
				m.Headers = append(m.Headers, &sarama.RecordHeader{Key: h.Key, Value: h.Value})
			}
			msgs = append(msgs, m)
		}
	}
	return msgs, next, cut
}

// isAbortMarker reports whether a control record's key (version int16,
// type int16) is an abort marker (type 0; a commit marker is 1).
func isAbortMarker(key []byte) bool {
	return len(key) >= 4 && key[2] == 0 && key[3] == 0
}
