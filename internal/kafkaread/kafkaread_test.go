package kafkaread

import (
	"fmt"
	"slices"
	"testing"

	"github.com/IBM/sarama"
)

// batch builds a record batch of n records from offset first.
func batch(first int64, pid int64, txn bool, n int) *sarama.Records {
	rb := &sarama.RecordBatch{FirstOffset: first, ProducerID: pid, IsTransactional: txn, LastOffsetDelta: int32(n - 1)}
	for i := range n {
		rb.Records = append(rb.Records, &sarama.Record{OffsetDelta: int64(i), Value: []byte{byte(first) + byte(i)}})
	}
	return &sarama.Records{RecordBatch: rb}
}

// marker builds a commit (1) or abort (0) marker of pid at offset off.
func marker(off, pid int64, kind byte) *sarama.Records {
	rb := &sarama.RecordBatch{FirstOffset: off, ProducerID: pid, IsTransactional: true, Control: true,
		Records: []*sarama.Record{{Key: []byte{0, 0, 0, kind}}}}
	return &sarama.Records{RecordBatch: rb}
}

func offsetsOf(msgs []*sarama.ConsumerMessage) []int64 {
	var out []int64
	for _, m := range msgs {
		out = append(out, m.Offset)
	}
	return out
}

func TestFilterCommitted(t *testing.T) {
	// pid 1 commits 0-1; pid 2's transaction 3-4 interleaved with pid 1's
	// 5 is aborted (marker 6); pid 2's next transaction 7 commits, pid 3
	// writes 9 without a transaction; 10 is cut by the fetch size.
	blk := &sarama.FetchResponseBlock{
		AbortedTransactions: []*sarama.AbortedTransaction{{ProducerID: 2, FirstOffset: 3}},
		RecordsSet: []*sarama.Records{
			batch(0, 1, true, 2), marker(2, 1, 1),
			batch(3, 2, true, 2), batch(5, 1, true, 1), marker(6, 2, 0),
			batch(7, 2, true, 1), marker(8, 2, 1),
			batch(9, 3, false, 1),
		},
	}
	trailing := batch(10, 3, false, 1)
	trailing.RecordBatch.PartialTrailingRecord = true
	blk.RecordsSet = append(blk.RecordsSet, trailing)

	msgs, next, partialOnly := filter("t", 0, blk, 0, 100)
	if want := []int64{0, 1, 5, 7, 9}; !slices.Equal(offsetsOf(msgs), want) {
		t.Errorf("delivered offsets %v, want %v", offsetsOf(msgs), want)
	}
	if next != 10 || partialOnly {
		t.Errorf("next %d, partial only %v; want 10, false (the cut batch is fetched again)", next, partialOnly)
	}

	// Read from 1 with end 6: offset 0 and the records from 6 on are not
	// returned, the position still moves past the whole response.
	msgs, next, _ = filter("t", 0, blk, 1, 6)
	if want := []int64{1, 5}; !slices.Equal(offsetsOf(msgs), want) {
		t.Errorf("from 1 to 6: delivered offsets %v, want %v", offsetsOf(msgs), want)
	}
	if next != 10 {
		t.Errorf("from 1 to 6: next %d, want 10", next)
	}

	// A response holding only a cut batch asks for a larger fetch.
	only := &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{trailing}}
	if msgs, next, partialOnly := filter("t", 0, only, 10, 100); next != 10 || len(msgs) != 0 || !partialOnly {
		t.Errorf("cut batch only: next %d, %d records, partial only %v; want 10, 0, true", next, len(msgs), partialOnly)
	}
}

// filter delivers committed and non-transactional records, not
// aborted ones or markers, and moves the position past every complete
// batch.
func TestFilterPositionAndRecords(t *testing.T) {
	rec := func(delta int64, v string) *sarama.Record {
		return &sarama.Record{OffsetDelta: delta, Key: []byte("k"), Value: []byte(v),
			Headers: []*sarama.RecordHeader{{Key: []byte("eddy-id"), Value: []byte(v)}}}
	}
	marker := func(abort bool) []*sarama.Record {
		k := []byte{0, 0, 0, 1}
		if abort {
			k[3] = 0
		}
		return []*sarama.Record{{Key: k, Value: []byte{0, 0, 0, 0, 0, 0}}}
	}
	batch := func(first int64, pid int64, txn, control bool, recs ...*sarama.Record) *sarama.Records {
		return &sarama.Records{RecordBatch: &sarama.RecordBatch{FirstOffset: first, LastOffsetDelta: int32(len(recs) - 1),
			ProducerID: pid, IsTransactional: txn, Control: control, Records: recs}}
	}
	blk := &sarama.FetchResponseBlock{
		AbortedTransactions: []*sarama.AbortedTransaction{{ProducerID: 2, FirstOffset: 3}},
		RecordsSet: []*sarama.Records{
			batch(0, 1, true, false, rec(0, "c0"), rec(1, "c1")), // committed at 2
			batch(2, 1, true, true, marker(false)...),
			batch(3, 2, true, false, rec(0, "a3"), rec(1, "a4")), // aborted at 5
			batch(5, 2, true, true, marker(true)...),
			batch(6, 3, false, false, rec(0, "n6")), // not transactional
			batch(7, 1, true, false, rec(0, "c7")),  // committed by a later marker
			{RecordBatch: &sarama.RecordBatch{FirstOffset: 8, PartialTrailingRecord: true}},
		},
	}
	values := func(ms []*sarama.ConsumerMessage) []string {
		var vs []string
		for _, m := range ms {
			vs = append(vs, fmt.Sprintf("%d:%s", m.Offset, m.Value))
		}
		return vs
	}
	for _, tc := range []struct {
		name       string
		pos, end   int64
		want       []string
		next       int64
		partialOut bool
	}{
		{"all", 0, 100, []string{"0:c0", "1:c1", "6:n6", "7:c7"}, 8, false},
		{"to the end", 0, 7, []string{"0:c0", "1:c1", "6:n6"}, 8, false},
		{"from inside a batch", 1, 100, []string{"1:c1", "6:n6", "7:c7"}, 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, next, cut := filter("t", 0, blk, tc.pos, tc.end)
			if got := values(msgs); !slices.Equal(got, tc.want) || next != tc.next || cut != tc.partialOut {
				t.Errorf("got %v, next %d, cut %t; want %v, next %d, cut %t", got, next, cut, tc.want, tc.next, tc.partialOut)
			}
		})
	}
	// A response holding only a batch cut by the fetch size: the position
	// stays, and the caller fetches more bytes.
	only := &sarama.FetchResponseBlock{RecordsSet: blk.RecordsSet[6:]}
	if msgs, next, cut := filter("t", 0, only, 8, 100); len(msgs) != 0 || next != 8 || !cut {
		t.Errorf("partial only: %d records, next %d, cut %t", len(msgs), next, cut)
	}
	m, _, _ := filter("t", 0, blk, 0, 1)
	if len(m) != 1 || string(m[0].Headers[0].Value) != "c0" || m[0].Partition != 0 || m[0].Topic != "t" {
		t.Errorf("record 0: %+v", m)
	}
}

// TestLeaderMoved: the answers of a broker that does not lead the
// partition yet are retried; a refused or malformed request is not.
func TestLeaderMoved(t *testing.T) {
	for _, err := range []error{sarama.ErrNotLeaderForPartition, sarama.ErrLeaderNotAvailable,
		sarama.ErrUnknownTopicOrPartition, fmt.Errorf("wrapped: %w", sarama.ErrNotLeaderForPartition)} {
		if !leaderMoved(err) {
			t.Errorf("leaderMoved(%v) = false, want true", err)
		}
	}
	for _, err := range []error{sarama.ErrTopicAuthorizationFailed, sarama.ErrInvalidRequest, sarama.ErrOutOfBrokers} {
		if leaderMoved(err) {
			t.Errorf("leaderMoved(%v) = true, want false", err)
		}
	}
}
