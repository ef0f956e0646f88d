package testenv

import (
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

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
