package testenv

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"
)

// FetchCommitted returns the records of topic/p in [from, end) that a
// read_committed consumer delivers: the committed ones, without the
// commit and abort markers and without the records of aborted
// transactions. end is normally the partition's last stable offset
// (LastStableOffset).
//
// It fetches with its own requests rather than through a sarama
// PartitionConsumer because a reader of transactional records cannot tell
// from the records it is given when it is done: the last offsets below end
// are markers (never delivered), and a PartitionConsumer does not expose
// its fetch position (its HighWaterMarkOffset is the partition's end from
// the start, before anything was fetched). A reader that stopped after a
// quiet interval returned nothing at all when its first fetch was slow, as
// it is just after a broker restart. Here the position is the next offset
// after the last batch of each response, and reading ends when it reaches
// end: exact, whatever the timing.
//
// The filtering is the read_committed rule of the Kafka protocol (KIP-98),
// done here and not left to sarama so that tests check the outputs against
// the protocol rather than against the client the workers use: the broker
// lists the aborted transactions overlapping the fetched range (producer
// id and first offset); a transactional data batch is dropped when its
// producer has an aborted transaction that started at or before the batch,
// until that producer's abort marker.
func FetchCommitted(client sarama.Client, topic string, p int32, from, end int64, deadline time.Time) ([]*sarama.ConsumerMessage, error) {
	var out []*sarama.ConsumerMessage
	maxBytes := int32(4 << 20)
	for pos := from; pos < end; {
		if time.Now().After(deadline) {
			return out, fmt.Errorf("reading %s/%d: at offset %d of %d at the deadline", topic, p, pos, end)
		}
		blk, err := fetchCommittedBlock(client, topic, p, pos, maxBytes)
		if err != nil {
			// A restarted broker or a moved leader answers with a
			// retriable error for a while: refresh and fetch again.
			_ = client.RefreshMetadata(topic)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		next, msgs, partialOnly := filterCommitted(topic, p, blk, pos, end)
		out = append(out, msgs...)
		switch {
		case next > pos:
			pos = next
		case partialOnly && maxBytes < 1<<30:
			maxBytes *= 2 // one batch larger than the fetch size
		default:
			// Nothing below end yet (end is past what the broker has).
			time.Sleep(100 * time.Millisecond)
		}
	}
	return out, nil
}

// fetchCommittedBlock sends one read_committed fetch of topic/p from pos
// to the partition's leader.
func fetchCommittedBlock(client sarama.Client, topic string, p int32, pos int64, maxBytes int32) (*sarama.FetchResponseBlock, error) {
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
	if blk == nil {
		return nil, errors.New("no block in the fetch response")
	}
	if !errors.Is(blk.Err, sarama.ErrNoError) {
		return nil, blk.Err
	}
	return blk, nil
}

// filterCommitted applies the read_committed rule to one fetch response
// read from pos: it returns the offset to fetch next, the delivered
// records below end, and whether the response held only an incomplete
// batch.
func filterCommitted(topic string, p int32, blk *sarama.FetchResponseBlock, pos, end int64) (int64, []*sarama.ConsumerMessage, bool) {
	aborted := append([]*sarama.AbortedTransaction(nil), blk.AbortedTransactions...)
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].FirstOffset < aborted[j].FirstOffset })
	open := map[int64]bool{} // producers inside an aborted transaction
	next := pos
	partialOnly := len(blk.RecordsSet) > 0
	var out []*sarama.ConsumerMessage
	for _, rs := range blk.RecordsSet {
		rb := rs.RecordBatch
		if rb == nil || rb.PartialTrailingRecord {
			continue // the trailing batch, cut by the fetch size
		}
		partialOnly = false
		last := rb.LastOffset()
		for len(aborted) > 0 && aborted[0].FirstOffset <= last {
			open[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		next = max(next, last+1)
		if rb.Control {
			if len(rb.Records) > 0 && controlType(rb.Records[0].Key) == 0 {
				delete(open, rb.ProducerID) // the abort marker ends it
			}
			continue
		}
		if rb.IsTransactional && open[rb.ProducerID] {
			continue
		}
		for _, r := range rb.Records {
			off := rb.FirstOffset + r.OffsetDelta
			if off < pos || off >= end {
				continue
			}
			out = append(out, consumerMessage(topic, p, rb, r, off))
		}
	}
	return next, out, partialOnly
}

// controlType is the type of a control record from its key (version
// int16, type int16): 0 abort, 1 commit, -1 unreadable.
func controlType(key []byte) int {
	if len(key) < 4 {
		return -1
	}
	return int(int16(key[2])<<8 | int16(key[3]))
}

// consumerMessage builds what a sarama consumer delivers for record r.
func consumerMessage(topic string, p int32, rb *sarama.RecordBatch, r *sarama.Record, off int64) *sarama.ConsumerMessage {
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
