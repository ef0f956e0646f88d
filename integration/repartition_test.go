package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

const repartitionPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source:
  topics: [%s]
  event_id: event.id
  event_time: event.ts
flush: {max_messages: 200, interval: 50ms}
steps:
  - repartition: {name: by-region, key: event.region, partitions: 3}
  - aggregate:
      name: per-region
      key: event.region
      window: {tumbling: 10s}
      values: {n: count(), total: sum(event.v)}
sink: {topic: %s}
`

type regionResult struct {
	Key   string    `json:"key"`
	Start time.Time `json:"window_start"`
	N     int64     `json:"n"`
	Total int64     `json:"total"`
}

// TestAggregateAfterRepartitionIsExactWithAnUnevenBacklog aggregates by
// region events produced keyed by user, through a repartition. The
// backlog is read unevenly on purpose: source partition 0's events, up to
// its closing event far in the future, are all processed before the other
// partitions hold anything. A downstream partition's watermark is the
// minimum of its upstream partitions', so nothing closes until partitions
// 1-3 have reported: every window is exact. With "the greatest event time
// seen" downstream, partition 0's closing event would close every window
// and the other partitions' events would all be late.
func TestAggregateAfterRepartitionIsExactWithAnUnevenBacklog(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	in := testenv.Topic(t, brokers, 4)
	out := testenv.Topic(t, brokers, 3)
	name := testenv.Unique("repart")
	p := loadPipeline(t, repartitionPipeline, name, in, out)
	internal := pipeline.InternalTopic(name, "by-region")
	t.Cleanup(func() { deleteTopics(t, brokers, internal) })

	const t0 = int64(1_700_000_000_000)
	perPart := make([][]*sarama.ProducerMessage, 4)
	ref := map[[2]string]regionResult{}
	for i := range 4000 {
		u := i % 40
		ts := t0 + int64(i)*50
		region := fmt.Sprintf("r%d", (i/7)%5)
		v := int64(i % 13)
		part := u % 4
		perPart[part] = append(perPart[part], &sarama.ProducerMessage{Partition: int32(part), Key: sarama.StringEncoder(fmt.Sprintf("u%d", u)),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"e%d","ts":%d,"region":%q,"v":%d}`, i, ts, region, v))})
		ws := ts - (ts-t0)%10_000
		k := [2]string{region, time.UnixMilli(ws).UTC().Format(time.RFC3339)}
		r := ref[k]
		r.Key, r.Start, r.N, r.Total = region, time.UnixMilli(ws).UTC(), r.N+1, r.Total+v
		ref[k] = r
	}
	closing := t0 + 1_000_000 // its windows never close
	for part := range 4 {
		perPart[part] = append(perPart[part], &sarama.ProducerMessage{Partition: int32(part), Key: sarama.StringEncoder("closer"),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"close%d","ts":%d,"region":"r0","v":0}`, part, closing))})
	}
	produceTo := func(msgs []*sarama.ProducerMessage) {
		t.Helper()
		for _, m := range msgs {
			m.Topic = in
		}
		produceManual(t, brokers, msgs)
	}

	produceTo(perPart[0])
	w, stop := startWorker(t, "w1", p, brokers, testenv.Group(t), memory.New())
	n0 := uint64(len(perPart[0]))
	waitFor(t, 60*time.Second, "partition 0's backlog through both stages", func() bool {
		return w.Stats().In >= 2*n0 // the source records, then the internal ones
	})
	time.Sleep(time.Second) // the downstream tasks flush what they can
	if o := w.Stats().Out; o != 0 {
		t.Fatalf("%d results out before partitions 1-3 reported a watermark: windows closed by partition 0 alone", o)
	}
	// The metrics show the stall: partition 0 has a watermark, the
	// internal partitions none (partitions 1-3 have not reported), and
	// each internal partition has its lag gauge.
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.Collector())
	m := scrape(t, reg)
	if got := m.value("eddy_events_repartitioned_total", ""); got != float64(n0) {
		t.Errorf("eddy_events_repartitioned_total = %v, want %d", got, n0)
	}
	if got := m.value("eddy_partition_watermark_seconds", in+"/0"); got != float64(closing)/1000 {
		t.Errorf("source partition 0's watermark = %v, want %v", got, float64(closing)/1000)
	}
	for part := range 3 {
		tp := fmt.Sprintf("%s/%d", internal, part)
		if m.has("eddy_partition_watermark_seconds", tp) {
			t.Errorf("internal partition %s has a watermark before every upstream partition reported", tp)
		}
		if !m.has("eddy_partition_lag", tp) {
			t.Errorf("no eddy_partition_lag for internal partition %s", tp)
		}
	}
	for part := 1; part < 4; part++ {
		produceTo(perPart[part])
	}
	waitFor(t, 90*time.Second, "every window", func() bool { return w.Stats().Out >= uint64(len(ref)) })
	// Every partition, source and internal, ends at the closing events'
	// time: on the internal ones the minimum over the four upstream.
	waitFor(t, 30*time.Second, "every watermark at the closing time", func() bool {
		m := scrape(t, reg)
		for _, tp := range []string{in + "/0", in + "/1", in + "/2", in + "/3", internal + "/0", internal + "/1", internal + "/2"} {
			if m.value("eddy_partition_watermark_seconds", tp) != float64(closing)/1000 {
				return false
			}
		}
		return true
	})
	if s := w.Stats(); s.Repartitioned != 4004 || s.Markers == 0 || s.In != 2*4004 {
		t.Errorf("stats: %d repartitioned (want 4004), %d markers read, %d in (want %d: markers are not events)", s.Repartitioned, s.Markers, s.In, 2*4004)
	}
	stop()

	got := readRegionResults(t, brokers, out)
	wrong := 0
	for k, want := range ref {
		if g, ok := got[k]; !ok || g.N != want.N || g.Total != want.Total {
			if wrong < 5 {
				t.Errorf("window %v: got %+v (present %v), want n %d total %d", k, g, ok, want.N, want.Total)
			}
			wrong++
		}
	}
	if len(got) != len(ref) || wrong > 0 {
		t.Errorf("%d windows out, %d in the reference, %d wrong or missing", len(got), len(ref), wrong)
	}
	if s := w.Stats(); s.Late != 0 {
		t.Errorf("%d events counted late", s.Late)
	}
}

// readRegionResults reads the committed per-region results of out, one
// per (region, window start); a window with two different results fails
// the test.
func readRegionResults(t *testing.T, brokers []string, out string) map[[2]string]regionResult {
	t.Helper()
	got := map[[2]string]regionResult{}
	for _, m := range testenv.ReadCommitted(t, brokers, out, 30*time.Second) {
		var r regionResult
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("output %s: %v", m.Value, err)
		}
		k := [2]string{r.Key, r.Start.UTC().Format(time.RFC3339)}
		if prev, dup := got[k]; dup && prev != r {
			t.Errorf("window %v: two different results %+v and %+v", k, prev, r)
		}
		got[k] = r
	}
	return got
}

func deleteTopics(t *testing.T, brokers []string, topics ...string) {
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer admin.Close()
	for _, topic := range topics {
		if err := admin.DeleteTopic(topic); err != nil {
			t.Logf("cleanup: deleting %s: %v", topic, err)
		}
	}
}

const repartitionReplayPipeline = `
name: %s
kafka: {brokers: [unused:9092], session_timeout: 6s}
source:
  topics: [%s]
  event_id: event.id
  event_time: event.ts
flush: {max_messages: 1000, interval: 50ms, shutdown_timeout: 5s}
steps:
  - repartition: {name: by-region, key: event.region, partitions: 2}
  - aggregate:
      name: per-region
      key: event.region
      window: {tumbling: 10s}
      values: {n: count(), total: sum(event.v)}
sink: {topic: %s}
`

// TestRepartitionReplayIsDeduplicated makes an upstream task write its
// batch to the internal topic twice: worker A freezes (a flush hook) after
// producing the batch's internal records, before its store commit, and is
// removed from the group; B takes the source partition from the stored
// offset, so it reads the batch again and writes the same records again.
// The reading side always deduplicates internal records: every window is
// exact, nothing counted twice.
func TestRepartitionReplayIsDeduplicated(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	in, out, group := testenv.Topic(t, brokers, 1), testenv.Topic(t, brokers, 2), testenv.Group(t)
	name := testenv.Unique("repreplay")
	p := loadPipeline(t, repartitionReplayPipeline, name, in, out)
	t.Cleanup(func() { deleteTopics(t, brokers, pipeline.InternalTopic(name, "by-region")) })
	store := memory.New() // shared by A and B, as a Redis would be

	const t0 = int64(1_700_000_000_000)
	ref := map[[2]string]regionResult{}
	var batch1, batch2 []*sarama.ProducerMessage
	for i := range 400 {
		ts := t0 + int64(i)*100
		region, v := fmt.Sprintf("r%d", i%3), int64(i%11)
		m := &sarama.ProducerMessage{Key: sarama.StringEncoder("u"), Value: sarama.StringEncoder(
			fmt.Sprintf(`{"id":"e%d","ts":%d,"region":%q,"v":%d}`, i, ts, region, v))}
		if i < 200 {
			batch1 = append(batch1, m)
		} else {
			batch2 = append(batch2, m)
		}
		ws := ts - (ts-t0)%10_000
		k := [2]string{region, time.UnixMilli(ws).UTC().Format(time.RFC3339)}
		r := ref[k]
		r.Key, r.Start, r.N, r.Total = region, time.UnixMilli(ws).UTC(), r.N+1, r.Total+v
		ref[k] = r
	}
	batch2 = append(batch2, &sarama.ProducerMessage{Key: sarama.StringEncoder("u"),
		Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"close","ts":%d,"region":"r0","v":0}`, t0+1_000_000))})

	frozen, release := make(chan struct{}), make(chan struct{})
	var once, releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var armed atomic.Bool
	armed.Store(true)
	hook := func(_ context.Context, part statedb.Partition, s processor.FlushStage) {
		if part.Topic == in && s == processor.BeforeCommit && armed.CompareAndSwap(true, false) {
			once.Do(func() { close(frozen) })
			<-release
		}
	}
	wa, stopA := startWorker(t, "A", p, brokers, group, store, processor.WithInstanceID("repart-a"), processor.WithFlushHook(hook))
	defer stopA()
	waitFor(t, 60*time.Second, "A to hold every partition", func() bool { return wa.Stats().Partitions == 3 })
	produce(t, brokers, in, batch1)
	select {
	case <-frozen:
	case <-time.After(60 * time.Second):
		t.Fatal("worker A never reached the store commit of the source partition")
	}

	removeMember(t, brokers, group, "repart-a")
	wb, stopB := startWorker(t, "B", p, brokers, group, store, processor.WithInstanceID("repart-b"))
	defer stopB()
	produce(t, brokers, in, batch2)
	waitFor(t, 90*time.Second, "every window", func() bool { return wb.Stats().Out+wa.Stats().Out >= uint64(len(ref)) })
	releaseOnce.Do(func() { close(release) })
	time.Sleep(time.Second)
	stopB()
	stopA()

	if d := wb.Stats().Duplicates; d < uint64(len(batch1)) {
		t.Errorf("B dropped %d duplicates, want at least the %d internal records of A's batch written again", d, len(batch1))
	}
	got := readRegionResults(t, brokers, out)
	for k, want := range ref {
		if g := got[k]; g.N != want.N || g.Total != want.Total {
			t.Errorf("window %v: got n %d total %d, want n %d total %d", k, g.N, g.Total, want.N, want.Total)
		}
	}
	if len(got) != len(ref) {
		t.Errorf("%d windows out, want %d", len(got), len(ref))
	}
}

// metrics is one scrape: value by metric name and "<topic>/<partition>"
// ("" for a metric without those labels).
type metrics map[string]map[string]float64

func (m metrics) value(name, tp string) float64 { return m[name][tp] }

func (m metrics) has(name, tp string) bool {
	_, ok := m[name][tp]
	return ok
}

func scrape(t *testing.T, reg *prometheus.Registry) metrics {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := metrics{}
	for _, f := range fams {
		vals := map[string]float64{}
		for _, mt := range f.GetMetric() {
			var topic, part string
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "topic":
					topic = l.GetValue()
				case "partition":
					part = l.GetValue()
				}
			}
			tp := ""
			if topic != "" {
				tp = topic + "/" + part
			}
			switch {
			case mt.Gauge != nil:
				vals[tp] = mt.GetGauge().GetValue()
			case mt.Counter != nil:
				vals[tp] = mt.GetCounter().GetValue()
			}
		}
		out[f.GetName()] = vals
	}
	return out
}
