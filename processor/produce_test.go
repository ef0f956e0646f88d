package processor

import (
	"errors"
	"fmt"
	"testing"

	"github.com/IBM/sarama"
)

// TestTooLargeKnowsBothRefusals: a record is refused for its size by the
// broker (MESSAGE_TOO_LARGE) or, above Producer.MaxMessageBytes, by
// sarama before anything is sent; other configuration errors are not
// about size.
func TestTooLargeKnowsBothRefusals(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{sarama.ErrMessageSizeTooLarge, true},
		{fmt.Errorf("produce: %w", sarama.ErrMessageSizeTooLarge), true},
		{sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes: 2097163 > 1000000"), true},
		{sarama.ConfigurationError("Producer.Retry.Max must be >= 0"), false},
		{sarama.ErrNotLeaderForPartition, false},
		{errors.New("message too large"), false},
	} {
		if got := tooLarge(tc.err); got != tc.want {
			t.Errorf("tooLarge(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestProduceCausesNameEachError: a failed produce's log line says what
// the records failed with, per topic, not only how many failed.
func TestProduceCausesNameEachError(t *testing.T) {
	big := sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes: 2097163 > 1000000")
	err := fmt.Errorf("transaction produce: %w", sarama.ProducerErrors{
		{Msg: &sarama.ProducerMessage{Topic: "dlq"}, Err: big},
		{Msg: &sarama.ProducerMessage{Topic: "out"}, Err: sarama.ErrOutOfOrderSequenceNumber},
		{Msg: &sarama.ProducerMessage{Topic: "out"}, Err: sarama.ErrOutOfOrderSequenceNumber},
	})
	want := "1× dlq: kafka: invalid configuration (" + string(big) + "); 2× out: " + sarama.ErrOutOfOrderSequenceNumber.Error()
	if got := produceCauses(err); got != want {
		t.Errorf("produceCauses = %q\nwant %q", got, want)
	}
	if got := produceCauses(errors.New("broker down")); got != "" {
		t.Errorf("produceCauses of a plain error = %q, want empty", got)
	}
}
