package testenv

import (
	"slices"
	"testing"
	"time"

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

	next, msgs, partialOnly := filterCommitted("t", 0, blk, 0, 100)
	if want := []int64{0, 1, 5, 7, 9}; !slices.Equal(offsetsOf(msgs), want) {
		t.Errorf("delivered offsets %v, want %v", offsetsOf(msgs), want)
	}
	if next != 10 || partialOnly {
		t.Errorf("next %d, partial only %v; want 10, false (the cut batch is fetched again)", next, partialOnly)
	}

	// Read from 1 with end 6: offset 0 and the records from 6 on are not
	// returned, the position still moves past the whole response.
	next, msgs, _ = filterCommitted("t", 0, blk, 1, 6)
	if want := []int64{1, 5}; !slices.Equal(offsetsOf(msgs), want) {
		t.Errorf("from 1 to 6: delivered offsets %v, want %v", offsetsOf(msgs), want)
	}
	if next != 10 {
		t.Errorf("from 1 to 6: next %d, want 10", next)
	}

	// A response holding only a cut batch asks for a larger fetch.
	only := &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{trailing}}
	if next, msgs, partialOnly := filterCommitted("t", 0, only, 10, 100); next != 10 || len(msgs) != 0 || !partialOnly {
		t.Errorf("cut batch only: next %d, %d records, partial only %v; want 10, 0, true", next, len(msgs), partialOnly)
	}
}

// TestReadCommittedSkipsMarkersAndAbortedRecords writes committed and
// aborted transactions to a real broker, the last one aborted, and reads
// back exactly the committed records: reading ends at the last stable
// offset (or fails at its 30 s deadline) though no record is delivered at
// the offsets just below it.
func TestReadCommittedSkipsMarkersAndAbortedRecords(t *testing.T) {
	brokers := KafkaBrokers(t)
	topic := Topic(t, brokers, 1)
	cfg := SaramaConfig()
	cfg.Producer.Transaction.ID = Unique("eddy_testenv_txn")
	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prod.Close() }()
	txn := func(commit bool, values ...string) {
		t.Helper()
		if err := prod.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
				t.Fatal(err)
			}
		}
		end := prod.CommitTxn
		if !commit {
			end = prod.AbortTxn
		}
		if err := end(); err != nil {
			t.Fatal(err)
		}
	}
	txn(true, "a0", "a1")
	txn(false, "b0", "b1")
	txn(true, "c0")
	txn(false, "d0")

	var got []string
	for _, m := range ReadCommitted(t, brokers, topic, 30*time.Second) {
		got = append(got, string(m.Value))
	}
	if want := []string{"a0", "a1", "c0"}; !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
}
