package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
)

// zombiePipeline counts events per user in a one-hour tumbling window and
// emits every update (on_update): name, source topic, state, transactions,
// sink topic.
const zombiePipeline = `
name: %s
kafka: {brokers: [unused:9092], session_timeout: 6s, transactions: %t}
source:
  topics: [%s]
  event_time: event.ts
state: %s
flush: {max_messages: 1, interval: 20ms, shutdown_timeout: 5s}
steps:
  - aggregate:
      name: clicks
      key: event.user
      window: {tumbling: 1h}
      emit: on_update
      values: {n: count()}
sink: {topic: %s}
`

// TestZombieCannotPublishAStaleUpdate freezes worker A (by a flush hook, at
// BeforeProduce) with a buffered on_update output for (K, W); removes A
// from the group (static member removal), so that B takes the partition
// and publishes newer updates for (K, W); then lets A go on. A must be
// fenced: the last record for (K, W) that a read_committed consumer sees
// is B's (n = 2), not A's stale n = 1. With kafka.transactions: false the
// test fails (A's stale update is the last record).
func TestZombieCannotPublishAStaleUpdate(t *testing.T) {
	for _, b := range aggBackends {
		t.Run(b.name, func(t *testing.T) { testZombie(t, b, true) })
	}
}

func testZombie(t *testing.T, b aggBackend, transactions bool) {
	brokers := testenv.KafkaBrokers(t)
	in, out, group := testenv.Topic(t, brokers, 1), testenv.Topic(t, brokers, 1), testenv.Group(t)
	p := loadPipeline(t, zombiePipeline, testenv.Unique("zombie"), transactions, in, b.state(t), out)
	prod := newSyncProducer(t, brokers)
	const key = "K"
	ts := int64(1_700_000_000_000) // one window W for every event
	send := func(v int) {
		t.Helper()
		msg := fmt.Sprintf(`{"user":%q,"ts":%d,"v":%d}`, key, ts+int64(v), v)
		if err := prod.send(in, []*sarama.ProducerMessage{{Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(msg)}}); err != nil {
			t.Fatal(err)
		}
	}

	// A freezes at its first BeforeProduce with outputs, until released.
	frozen, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var armed atomic.Bool
	armed.Store(true)
	hook := func(_ context.Context, _ statedb.Partition, s processor.FlushStage) {
		if s == processor.BeforeProduce && armed.CompareAndSwap(true, false) {
			once.Do(func() { close(frozen) })
			<-release // ignores the flush's context: a frozen process does too
		}
	}
	log := func(name string) processor.Option {
		return processor.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(name))
	}
	wa, stopA := startWorker(t, "A", p, brokers, group, openStore(t, p),
		processor.WithInstanceID("zombie-a"), processor.WithFlushHook(hook), log("A"))
	defer stopA()
	send(1)
	select {
	case <-frozen:
	case <-time.After(60 * time.Second):
		t.Fatal("worker A never reached BeforeProduce with the update of event 1 buffered")
	}

	// A is frozen with (K, W, n=1) buffered. Remove it from the group.
	removeMember(t, brokers, group, "zombie-a")

	// B takes the partition, replays event 1 and processes event 2.
	_, stopB := startWorker(t, "B", p, brokers, group, openStore(t, p), processor.WithInstanceID("zombie-b"), log("B"))
	defer stopB()
	send(2)
	waitLast(t, brokers, out, key, 2, "B's update n=2")

	// Release A: its flush must not publish n=1 after B's n=2.
	releaseOnce.Do(func() { close(release) })
	deadline := time.Now().Add(60 * time.Second)
	for wa.Stats().Fenced == 0 {
		if time.Now().After(deadline) {
			t.Fatal("worker A was not fenced within 60s of its release")
		}
		time.Sleep(20 * time.Millisecond)
	}
	last, all := lastUpdate(t, brokers, out, key)
	if last != 2 {
		t.Fatalf("last read_committed record for (%s, W) has n=%d, want B's n=2 (a zombie published a stale update); all: %v", key, last, all)
	}
	// Every update carries its version (the source offset of the batch's
	// last event); they increase along the partition.
	msgs := testenv.ReadCommitted(t, brokers, out, 30*time.Second)
	prev := int64(-1)
	for _, m := range msgs {
		v := headerOf(m, processor.VersionHeader)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("output at offset %d: %s header %q: %v", m.Offset, processor.VersionHeader, v, err)
		}
		if n < prev {
			t.Errorf("output at offset %d: version %d after %d", m.Offset, n, prev)
		}
		prev = n
	}
}

func headerOf(m *sarama.ConsumerMessage, k string) string {
	for _, h := range m.Headers {
		if string(h.Key) == k {
			return string(h.Value)
		}
	}
	return ""
}

// lastUpdate is the n of the last read_committed record for key, and all
// the n values in order.
func lastUpdate(t *testing.T, brokers []string, topic, key string) (int64, []int64) {
	t.Helper()
	var all []int64
	for _, m := range testenv.ReadCommitted(t, brokers, topic, 30*time.Second) {
		if string(m.Key) != key {
			continue
		}
		var v struct {
			N int64 `json:"n"`
		}
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatalf("output at offset %d: %v", m.Offset, err)
		}
		all = append(all, v.N)
	}
	if len(all) == 0 {
		return 0, nil
	}
	return all[len(all)-1], all
}

// waitLast polls the output until the last record for key has n = want.
func waitLast(t *testing.T, brokers []string, topic, key string, want int64, what string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		last, all := lastUpdate(t, brokers, topic, key)
		if last == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: updates %v", what, all)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
