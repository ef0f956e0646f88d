package testenv

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestPrivateKafkaKeepsAcknowledgedRecords produces to a private broker,
// takes it down (SIGKILL, then SIGTERM) and starts it again: the address
// stays, the broker refuses connections while down, and every
// acknowledged record is back after each restart, as are the group's
// committed offsets.
func TestPrivateKafkaKeepsAcknowledgedRecords(t *testing.T) {
	began := time.Now()
	k := PrivateKafka(t, KafkaConfig{})
	t.Logf("kafka %s up on %s in %v", k.Version(), k.Addr(), time.Since(began).Round(time.Millisecond))
	addr := k.Addr()
	topic := Topic(t, k.Brokers(), 2)
	group := Group(t)

	produce := func(t *testing.T, from, n int) {
		t.Helper()
		p, err := sarama.NewSyncProducer(k.Brokers(), SaramaConfig())
		if err != nil {
			t.Fatalf("producer: %v", err)
		}
		defer func() { _ = p.Close() }()
		var msgs []*sarama.ProducerMessage
		for i := from; i < from+n; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i)),
				Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))})
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("produce %d records: %v", n, err)
		}
	}
	count := func(t *testing.T) int64 {
		t.Helper()
		c, err := sarama.NewClient(k.Brokers(), SaramaConfig())
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		defer func() { _ = c.Close() }()
		var n int64
		for p := range int32(2) {
			off, err := c.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				t.Fatalf("end offset %d: %v", p, err)
			}
			n += off
		}
		return n
	}
	commit := func(t *testing.T, off int64) {
		t.Helper()
		c, err := sarama.NewClient(k.Brokers(), SaramaConfig())
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		defer func() { _ = c.Close() }()
		coord, err := c.Coordinator(group)
		if err != nil {
			t.Fatalf("coordinator of %s: %v", group, err)
		}
		req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group,
			ConsumerGroupGeneration: -1, RetentionTime: -1}
		req.AddBlock(topic, 0, off, 0, "")
		resp, err := coord.CommitOffset(req)
		if err != nil {
			t.Fatalf("commit offset %d: %v", off, err)
		}
		if kerr := resp.Errors[topic][0]; !errors.Is(kerr, sarama.ErrNoError) {
			t.Fatalf("commit offset %d: %v", off, kerr)
		}
	}
	committed := func(t *testing.T) int64 {
		t.Helper()
		admin, err := sarama.NewClusterAdmin(k.Brokers(), SaramaConfig())
		if err != nil {
			t.Fatalf("admin: %v", err)
		}
		defer func() { _ = admin.Close() }()
		// A restarted broker's group coordinator answers "still loading
		// offsets" (retriable) until it has read __consumer_offsets back.
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
			if err == nil && resp.Err != sarama.ErrNoError {
				err = resp.Err
			}
			if err == nil {
				if b := resp.GetBlock(topic, 0); b != nil && b.Err == sarama.ErrNoError {
					return b.Offset
				} else if b != nil {
					err = b.Err
				}
			}
			if !errors.Is(err, sarama.ErrOffsetsLoadInProgress) || time.Now().After(deadline) {
				t.Fatalf("committed offsets: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	downs := []struct {
		name string
		down func()
	}{{"kill", k.Kill}, {"stop", k.Stop}}
	for i, d := range downs {
		t.Run(d.name, func(t *testing.T) {
			produce(t, i*100, 100)
			commit(t, int64(i+1)*7)
			at := time.Now()
			d.down()
			if k.Running() || !refused(addr) {
				t.Fatalf("after %s: running %v, %s refused %v", d.name, k.Running(), addr, refused(addr))
			}
			k.Start()
			t.Logf("%s: down and up again in %v", d.name, time.Since(at).Round(time.Millisecond))
			if got, want := count(t), int64(100*(i+1)); got != want {
				t.Errorf("after %s and Start: %d records, want %d", d.name, got, want)
			}
			if got, want := committed(t), int64(i+1)*7; got != want {
				t.Errorf("after %s and Start: committed offset %d, want %d", d.name, got, want)
			}
		})
	}
}
