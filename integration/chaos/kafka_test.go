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
		off, err := testenv.LastStableOffset(k.client, topic, p)
		if err != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
		}
		out[p] = off
	}
	return out, nil
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
// offsets (from ends). Transaction markers and aborted records occupy
// offsets but are never delivered: a partition is done at the record just
// below its end, or once the consumer has fetched up to the end and been
// idle for a while (what is left below it are markers).
func (k *kafka) readTopic(topic string, ends map[int32]int64, timeout time.Duration) ([]*sarama.ConsumerMessage, error) {
	c, err := sarama.NewConsumerFromClient(k.client)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	defer c.Close()
	var out []*sarama.ConsumerMessage
	parts := make([]int32, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	deadline := time.After(timeout)
	for _, p := range parts {
		end := ends[p]
		start, err := k.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("earliest offset of %s/%d: %w", topic, p, err)
		}
		if start >= end {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, start)
		if err != nil {
			return nil, fmt.Errorf("consume %s/%d: %w", topic, p, err)
		}
		idle := time.NewTicker(300 * time.Millisecond)
		got := false
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				if m.Offset < end {
					out = append(out, m)
				}
				got = true
				done = m.Offset >= end-1
			case <-idle.C:
				done = !got && pc.HighWaterMarkOffset() >= end
				got = false
			case err := <-pc.Errors():
				_ = pc.Close()
				return nil, fmt.Errorf("consume %s/%d: %w", topic, p, err)
			case <-deadline:
				_ = pc.Close()
				return nil, fmt.Errorf("reading %s/%d: offset %d not reached within %s", topic, p, end-1, timeout)
			}
		}
		idle.Stop()
		_ = pc.Close()
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
