package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
)

const wipedPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source: {topics: [%s], event_id: event.id, event_time: event.ts}
state: {backend: redis, redis: {addrs: [%q], key_prefix: %q}, missing: %s}
dedup: {enabled: true}
flush: {max_messages: 50, interval: 50ms}
steps:
  - aggregate: {name: per-key, key: key, window: {tumbling: 10s}, values: {n: count(), total: sum(event.v)}}
sink: {topic: %s}
`

// TestWipedStoreIsRebuiltNotContinued wipes the pipeline's Redis state
// mid-stream (every key, as a restart without persistence or a failover
// to an empty replica would) while the group keeps its committed offsets.
// The worker must not go on with empty state: it rebuilds by replaying
// the partitions from offset 0, and every window is emitted with its
// complete result; a window emitted twice carries the same values under
// the same eddy-id, never a partial count. With state.missing: pause the
// partitions wait instead, the worker unready, saying what to do.
func TestWipedStoreIsRebuiltNotContinued(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	addr := testenv.RedisAddr(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	wipe := func(prefix string) int {
		t.Helper()
		n := 0
		iter := rdb.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
		for iter.Next(context.Background()) {
			rdb.Del(context.Background(), iter.Val())
			n++
		}
		return n
	}
	const t0 = int64(1_700_000_000_000)
	events := func(from, to int) []*sarama.ProducerMessage {
		var msgs []*sarama.ProducerMessage
		for i := from; i < to; i++ {
			k := fmt.Sprintf("k%d", i%5)
			msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(k),
				Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"e%d","ts":%d,"v":%d}`, i, t0+int64(i)*100, i%7))})
		}
		return msgs
	}
	type win struct{ n, total int64 }
	ref := map[string]win{}
	for i := range 1000 {
		k := fmt.Sprintf("k%d|%d", i%5, (int64(i)*100)/10_000)
		w := ref[k]
		w.n, w.total = w.n+1, w.total+int64(i%7)
		ref[k] = w
	}

	t.Run("rebuild", func(t *testing.T) {
		in, out := testenv.Topic(t, brokers, 2), testenv.Topic(t, brokers, 2)
		prefix := testenv.RedisPrefix(t)
		p := loadPipeline(t, wipedPipeline, testenv.Unique("wiped"), in, addr, prefix, "rebuild", out)
		w, stop := startWorker(t, "w", p, brokers, testenv.Group(t), openStore(t, p))
		defer stop()
		produce(t, brokers, in, events(0, 500)) // windows 0-4 close, 5 open
		waitFor(t, 60*time.Second, "the first windows", func() bool { return w.Stats().Out >= 20 })
		time.Sleep(500 * time.Millisecond) // their offsets committed
		if n := wipe(prefix); n == 0 {
			t.Fatal("nothing to wipe")
		}
		produce(t, brokers, in, events(500, 1000))
		var closers []*sarama.ProducerMessage // one per partition: every window before closes
		for part := range int32(2) {
			closers = append(closers, &sarama.ProducerMessage{Topic: in, Partition: part, Key: sarama.StringEncoder(fmt.Sprintf("close%d", part)),
				Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"close%d","ts":%d,"v":0}`, part, t0+10_000_000))})
		}
		produceManual(t, brokers, closers)
		got := map[string]string{}
		waitFor(t, 45*time.Second, "every window", func() bool {
			byWin := map[string]string{}
			for _, m := range testenv.ReadCommitted(t, brokers, out, 30*time.Second) {
				var r struct {
					Key   string    `json:"key"`
					Start time.Time `json:"window_start"`
					N     int64     `json:"n"`
					Total int64     `json:"total"`
				}
				if err := json.Unmarshal(m.Value, &r); err != nil {
					t.Fatal(err)
				}
				k := fmt.Sprintf("%s|%d", r.Key, (r.Start.UnixMilli()-t0)/10_000)
				v := fmt.Sprintf("%d/%d", r.N, r.Total)
				id := header(m, processor.IDHeader)
				if prev, ok := got[id]; ok && prev != v {
					t.Fatalf("window %s emitted as %s, then under the same eddy-id as %s: a partial result after the wipe", k, prev, v)
				}
				got[id] = v
				byWin[k] = v
			}
			if len(byWin) < len(ref) {
				return false
			}
			for k, want := range ref {
				if byWin[k] != fmt.Sprintf("%d/%d", want.n, want.total) {
					t.Fatalf("window %s: %s, want %d/%d", k, byWin[k], want.n, want.total)
				}
			}
			return true
		})
		if s := w.Stats(); s.Rebuilds == 0 {
			t.Errorf("no partition rebuilt (stats %+v)", s)
		}
	})

	t.Run("pause", func(t *testing.T) {
		in, out := testenv.Topic(t, brokers, 2), testenv.Topic(t, brokers, 2)
		prefix := testenv.RedisPrefix(t)
		p := loadPipeline(t, wipedPipeline, testenv.Unique("wipedp"), in, addr, prefix, "pause", out)
		group := testenv.Group(t)
		w, stop := startWorker(t, "w", p, brokers, group, openStore(t, p))
		defer stop()
		produce(t, brokers, in, events(0, 500))
		waitFor(t, 60*time.Second, "the first windows", func() bool { return w.Stats().Out >= 20 })
		time.Sleep(500 * time.Millisecond)
		wipe(prefix)
		before := w.Stats().Out
		produce(t, brokers, in, events(500, 1000))
		waitFor(t, 60*time.Second, "the worker unready, saying what to do", func() bool {
			for _, why := range w.Health(context.Background()).Reasons {
				if strings.Contains(why, "worker offsets reset --to-earliest") && strings.Contains(why, "state.missing: start_empty") {
					return true
				}
			}
			return false
		})
		time.Sleep(time.Second)
		if got := w.Stats().Out; got != before {
			t.Errorf("%d outputs after the wipe with state.missing: pause (%d before)", got, before)
		}
	})
}
