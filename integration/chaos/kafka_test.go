//go:build chaos

package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/internal/kafkaread"
)

// kafka is the test's view of the cluster: one client and one admin.
type kafka struct {
	brokers []string
	client  sarama.Client
	admin   sarama.ClusterAdmin
}

func newKafka(brokers []string) (*kafka, error) {
	cfg := testenv.SaramaConfig()
	// The outputs are transactional: read what read_committed consumers see.
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	return &kafka{brokers: brokers, client: client, admin: admin}, nil
}

func (k *kafka) close() { _ = k.admin.Close() } // closes the client too

// ends returns each partition's last stable offset: its high-water mark
// (the next offset) once every transaction on it is decided.
func (k *kafka) ends(topic string, parts int32) (map[int32]int64, error) {
	out := map[int32]int64{}
	for p := range parts {
		off, err := kafkaread.LastStableOffset(k.client, topic, p)
		if err != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
		}
		out[p] = off
	}
	return out, nil
}

// offsets describes each partition of topic as "p: earliest..LSO (HWM)":
// a last stable offset behind the high-water mark is a transaction still
// open on the partition. Failure messages about missing outputs carry it.
func (k *kafka) offsets(topic string, parts int32) string {
	var b []byte
	for p := range parts {
		first, ferr := k.client.GetOffset(topic, p, sarama.OffsetOldest)
		lso, lerr := kafkaread.LastStableOffset(k.client, topic, p)
		hwm, herr := k.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err := errors.Join(ferr, lerr, herr); err != nil {
			b = fmt.Appendf(b, " %d: %v;", p, err)
			continue
		}
		b = fmt.Appendf(b, " %d: %d..%d (%d);", p, first, lso, hwm)
	}
	return fmt.Sprintf("%s offsets, earliest..last stable (high-water):%s", topic, b)
}

// committed returns the group's committed offset of each partition (-1:
// none).
func (k *kafka) committed(group, topic string, parts int32) (map[int32]int64, error) {
	ps := make([]int32, parts)
	for i := range ps {
		ps[i] = int32(i)
	}
	resp, err := k.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	if !errors.Is(resp.Err, sarama.ErrNoError) {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, resp.Err)
	}
	out := map[int32]int64{}
	for _, p := range ps {
		b := resp.GetBlock(topic, p)
		if b == nil {
			out[p] = -1
			continue
		}
		if !errors.Is(b.Err, sarama.ErrNoError) {
			return nil, fmt.Errorf("committed offset of %s/%d in group %s: %w", topic, p, group, b.Err)
		}
		out[p] = b.Offset
	}
	return out, nil
}

// readTopic reads every committed record of topic below the given end
// offsets (from ends), as a read_committed consumer sees them
// (kafkaread.Committed).
func (k *kafka) readTopic(topic string, ends map[int32]int64, timeout time.Duration) ([]*sarama.ConsumerMessage, error) {
	parts := make([]int32, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	deadline := time.Now().Add(timeout)
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		start, err := k.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("earliest offset of %s/%d: %w", topic, p, err)
		}
		msgs, err := kafkaread.Committed(k.client, topic, p, start, ends[p], deadline)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// watchOutputs sends the partition of every record written to topic to ch
// (dropping it when ch is full) until ctx ends. It polls with a short
// fetch wait, so that it learns of an output within milliseconds of its
// acknowledgement.
func watchOutputs(ctx context.Context, brokers []string, topic string, parts int32, ch chan<- int32) error {
	cfg := testenv.SaramaConfig()
	cfg.Consumer.MaxWaitTime = 10 * time.Millisecond
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		return fmt.Errorf("output watcher: %w", err)
	}
	var pcs []sarama.PartitionConsumer
	stop := func() {
		for _, pc := range pcs {
			_ = pc.Close()
		}
		_ = c.Close()
	}
	for p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			stop()
			return fmt.Errorf("output watcher: %s/%d: %w", topic, p, err)
		}
		pcs = append(pcs, pc)
		go func() {
			for range pc.Messages() {
				select {
				case ch <- p:
				default:
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return nil
}
