package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/internal/kafkaread"
)

// readCommitted returns the records of topic a read_committed consumer is
// given, from each partition's log start to its last stable offset (LSO),
// in partition and offset order. It is how the bench reads a scenario's
// outputs once the scenario's worker has stopped.
//
// Each partition is read by kafkaread.Committed, which tracks its fetch
// position and ends exactly at the LSO (see package kafkaread for why not
// a sarama PartitionConsumer).
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
		msgs, err := kafkaread.Committed(client, topic, p, first, end, deadline)
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
		lso, err := kafkaread.LastStableOffset(client, topic, p)
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
