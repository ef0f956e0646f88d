package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
	redisstore "github.com/eddy-streams/eddy/statedb/redis"
	"github.com/eddy-streams/eddy/statedb/singlestore"
)

// The outage tests' stream: outageEvents events over outageKeys keys, of
// which outagePreload are produced before the worker starts and the rest
// in bursts of outageBurst every outageBurstEvery while the store goes
// down and comes back.
const (
	outageEvents     = 3000
	outageKeys       = 40
	outagePreload    = 900
	outageBurst      = 100
	outageBurstEvery = 200 * time.Millisecond
	outagePartitions = 3
	// outageFlat is how long, once every partition is paused, the
	// worker's committed progress must not move.
	outageFlat = 2500 * time.Millisecond
)

// Log messages of the runtime's retry loop (processor/task.go), matched by
// their fixed part: "<operation> failed; partition paused, retrying" and
// "<operation> recovered; partition resumed".
const (
	pausedLog  = "partition paused"
	resumedLog = "partition resumed"
)

// outageTally is the outage tests' stateful Processor: per key, the number of
// events and the sum of their integer field v, kept in processor.State and
// written into each event as count and sum. It is a Prefetcher, so a batch
// loads its keys in one store round trip.
type outageTally struct{}

func outageTallyKey(key string) string { return "tally:" + key }

func (outageTally) Keys(rec *processor.Record) []string { return []string{outageTallyKey(rec.Key)} }

func (outageTally) Process(ctx context.Context, rec *processor.Record, out processor.Emitter, st processor.State) error {
	v, ok := rec.Event["v"].(int64)
	if !ok {
		return fmt.Errorf("field v is %T, want an integer", rec.Event["v"])
	}
	key := outageTallyKey(rec.Key)
	raw, found, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	var s outageTallyState
	if found {
		if s, err = parseOutageTally(raw); err != nil {
			return fmt.Errorf("state %s: %w", key, err)
		}
	}
	s.Count++
	s.Sum += v
	st.Put(key, s.encode(), 0)
	rec.Event["count"], rec.Event["sum"] = s.Count, s.Sum
	out.Emit(rec)
	return nil
}

// outageTallyState is a key's count and sum, stored as "<count> <sum>".
type outageTallyState struct{ Count, Sum int64 }

func (s outageTallyState) encode() []byte {
	return []byte(strconv.FormatInt(s.Count, 10) + " " + strconv.FormatInt(s.Sum, 10))
}

func parseOutageTally(b []byte) (outageTallyState, error) {
	c, sum, ok := strings.Cut(string(b), " ")
	if !ok {
		return outageTallyState{}, fmt.Errorf("value %q: want \"<count> <sum>\"", b)
	}
	var s outageTallyState
	var err1, err2 error
	s.Count, err1 = strconv.ParseInt(c, 10, 64)
	s.Sum, err2 = strconv.ParseInt(sum, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return outageTallyState{}, fmt.Errorf("value %q: %w", b, err)
	}
	return s, nil
}

const outagePipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source:
  topics: [%s]
  event_id: event.id
dedup: {enabled: true}
flush: {max_messages: 100, interval: 50ms, shutdown_timeout: 20s}
steps:
  - processor: {name: tally}
sink: {topic: %s}
`

// outageBackend starts a private store server and opens stores on it.
type outageBackend struct {
	name  string
	start func(t *testing.T) *testenv.Server
	// open opens a store on srv with short network timeouts, so that a
	// call to a dead server fails within a second. Every store of one
	// server shares one namespace. The test closes it at its end.
	open func(t *testing.T, srv *testenv.Server, log *zap.Logger) statedb.Store
}

var outageBackends = []outageBackend{
	{
		name:  "redis",
		start: func(t *testing.T) *testenv.Server { return testenv.PrivateRedis(t) },
		open: func(t *testing.T, srv *testenv.Server, _ *zap.Logger) statedb.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := redisstore.New(ctx, redisstore.Config{
				Addrs: []string{srv.Addr()}, KeyPrefix: "eddy:outage:",
				DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
			})
			if err != nil {
				t.Fatalf("redis store on %s: %v", srv.Addr(), err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	},
	{
		name:  "mysql",
		start: func(t *testing.T) *testenv.Server { return testenv.PrivateMariaDB(t) },
		open: func(t *testing.T, srv *testenv.Server, log *zap.Logger) statedb.Store {
			cfg, err := mysql.ParseDSN(srv.DSN())
			if err != nil {
				t.Fatal(err)
			}
			cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 500*time.Millisecond, 2*time.Second, 2*time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := singlestore.New(ctx, singlestore.Config{
				DSN: cfg.FormatDSN(), Dialect: singlestore.DialectMySQL, Namespace: "outage",
				SweepInterval: -1, Logger: log,
			})
			if err != nil {
				t.Fatalf("singlestore store (dialect mysql) on %s: %v", srv.Addr(), err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	},
}

// TestStoreOutage takes the state store down in the middle of a stream,
// with events still arriving, and brings it back, while one worker runs a
// stateful pipeline (per-key count and sum) over a 3-partition topic. It
// runs against a private Redis (append-only file, fsync always) and a
// private MariaDB through the SingleStore backend, each taken down with
// SIGKILL (a crash) and with SIGTERM (a clean shutdown).
//
// It proves the failure rules of the flush protocol on real servers:
//   - while the store is down, every partition pauses: the worker reads
//     no more events, and neither its flushes nor the group's committed
//     Kafka offsets move;
//   - each partition logs the pause once and the resumption once, not
//     every retry;
//   - the worker resumes by itself once the store is back, without
//     losing its partitions, and finishes the stream;
//   - the state in the store equals the reference computed from the
//     input (per key: count and sum), nothing lost and nothing counted
//     twice;
//   - every event produced an output with a stable eddy-id; repeats, if
//     any, are identical, and each output carries the count and sum as of
//     its event.
func TestStoreOutage(t *testing.T) {
	downs := []struct {
		name string
		down func(*testenv.Server)
	}{
		{"kill", (*testenv.Server).Kill},
		{"stop", (*testenv.Server).Stop},
	}
	for _, b := range outageBackends {
		for _, d := range downs {
			t.Run(b.name+"/"+d.name, func(t *testing.T) {
				runOutage(t, b, d.down)
			})
		}
	}
}

// outageEvent is one input event, with where it landed.
type outageEvent struct {
	ID        string
	Key       string
	V         int64
	Partition int32
	Offset    int64
}

func outageInput() []*outageEvent {
	evs := make([]*outageEvent, outageEvents)
	for i := range evs {
		evs[i] = &outageEvent{
			ID:  fmt.Sprintf("e%05d", i),
			Key: fmt.Sprintf("k%02d", (i*7)%outageKeys),
			V:   int64((i*31)%97 - 20), // some negative
		}
	}
	return evs
}

func runOutage(t *testing.T, b outageBackend, down func(*testenv.Server)) {
	began := time.Now()
	brokers := testenv.KafkaBrokers(t)
	in := testenv.Topic(t, brokers, outagePartitions)
	out := testenv.Topic(t, brokers, outagePartitions)
	group := testenv.Group(t)
	srv := b.start(t)

	obsCore, logs := observer.New(zapcore.DebugLevel) // "flushed" is a debug line
	log := zap.New(zapcore.NewTee(obsCore, zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)).Core()))
	store := b.open(t, srv, log.Named("store"))

	p, err := pipeline.Parse("outage.yaml", []byte(fmt.Sprintf(outagePipeline, testenv.Unique("outage"), in, out)))
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	w, err := processor.New(p, processor.WithStore(store), processor.WithBrokers(brokers...),
		processor.WithGroup(group), processor.WithLogger(log.Named("worker")),
		processor.WithProcessor("tally", func(map[string]any) (processor.Processor, error) { return outageTally{}, nil }),
		processor.WithRetryBackoff(500*time.Millisecond),
		processor.WithCommitInterval(200*time.Millisecond),
		processor.WithUnreadyAfter(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	kafka := newOutageKafka(t, brokers, in, group)
	evs := outageInput()

	// Before the outage: a first part of the stream, processed and
	// committed.
	kafka.send(t, evs[:outagePreload])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	waitFor(t, 60*time.Second, "the worker to commit a first part of the stream", func() bool {
		return outageSum(kafka.committed(t)) >= outagePreload/3
	})
	// Health: ready (/readyz 200, eddy_ready 1) before the outage.
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.Collector())
	waitFor(t, 30*time.Second, "the worker ready", func() bool {
		return w.Health(context.Background()).Ready && scrape(t, reg).value("eddy_ready", "") == 1
	})

	// The rest of the stream arrives in bursts, during the outage.
	sent := make(chan error, 1)
	firstBurst := make(chan struct{})
	go func() { sent <- kafka.sendBursts(evs[outagePreload:], firstBurst) }()
	select {
	case <-firstBurst:
	case err := <-sent:
		t.Fatalf("producing: %v", err)
	}
	before := w.Stats()
	inputAtDown := outageSum(kafka.ends(t))
	downAt := time.Now()
	down(srv)
	t.Logf("store down after %v, with %d outputs committed, %d events produced",
		time.Since(began).Round(time.Millisecond), before.Out, inputAtDown)

	// Every partition notices and pauses. The Kafka commits of the flushes
	// done before the outage still go out, each the flushed offset + 1, and
	// never further; after that nothing moves.
	waitFor(t, 30*time.Second, "every partition to pause", func() bool {
		return len(outageLogsByPartition(logs, pausedLog)) == outagePartitions
	})
	persisted := outageFlushed(logs)
	waitFor(t, 30*time.Second, "the Kafka commits of the flushes done before the outage", func() bool {
		offs := kafka.committed(t)
		for p, off := range offs {
			next, ok := persisted[p]
			if !ok {
				next = -1 // never flushed: nothing committed
			}
			if off > next {
				t.Fatalf("partition %d: committed offset %d is past the state persisted before the outage (next %d)", p, off, next)
			}
			if off != next {
				return false
			}
		}
		return true
	})
	flat := w.Stats()
	flatOffsets := kafka.committed(t)
	inputAtFlat := outageSum(kafka.ends(t))
	for deadline := time.Now().Add(outageFlat); time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		s, offs := w.Stats(), kafka.committed(t)
		if s.Flushes != flat.Flushes || s.Out != flat.Out || s.In != flat.In {
			t.Fatalf("progress while the store is down: flushes %d -> %d, outputs %d -> %d, events read %d -> %d",
				flat.Flushes, s.Flushes, flat.Out, s.Out, flat.In, s.In)
		}
		if fmt.Sprint(offs) != fmt.Sprint(flatOffsets) {
			t.Fatalf("committed offsets moved while the store is down: %v -> %v", flatOffsets, offs)
		}
	}
	if got := outageLogsByPartition(logs, resumedLog); len(got) != 0 {
		t.Fatalf("partitions logged %q while the store was still down: %v", resumedLog, got)
	}
	// While the store is down the worker is not ready, and says why: the
	// store, and each paused partition with what it is retrying; eddy_ready
	// agrees and every partition has its paused gauge.
	h := w.Health(context.Background())
	m := scrape(t, reg)
	paused := 0
	for _, why := range h.Reasons {
		if strings.HasPrefix(why, "partition "+in+"/") && strings.Contains(why, "paused for") {
			paused++
		}
	}
	if h.Ready || paused != outagePartitions || !slices.ContainsFunc(h.Reasons, func(s string) bool { return strings.HasPrefix(s, "state store unreachable") }) {
		t.Errorf("health during the outage: ready %v, reasons %q; want not ready, the store and %d paused partitions", h.Ready, h.Reasons, outagePartitions)
	}
	if m.value("eddy_ready", "") != 0 || len(m["eddy_partition_paused_seconds"]) != outagePartitions {
		t.Errorf("metrics during the outage: eddy_ready %v, paused gauges %v", m.value("eddy_ready", ""), m["eddy_partition_paused_seconds"])
	}
	inputAtUp := outageSum(kafka.ends(t))
	if inputAtUp <= inputAtFlat {
		t.Fatalf("no events arrived while the store was down (%d before, %d after): the test did not test a live stream",
			inputAtFlat, inputAtUp)
	}
	srv.Start()
	downFor := time.Since(downAt)
	if s := w.Stats(); s.StoreErrors == before.StoreErrors {
		t.Errorf("no store errors counted during the outage (%d)", s.StoreErrors)
	}

	// After: the worker resumes by itself and finishes the stream.
	if err := <-sent; err != nil {
		t.Fatalf("producing: %v", err)
	}
	upAt := time.Now()
	ends := kafka.ends(t)
	waitFor(t, 60*time.Second, "the worker to commit the whole stream", func() bool {
		return fmt.Sprint(kafka.committed(t)) == fmt.Sprint(ends) && w.Stats().Out >= outageEvents
	})
	caughtUp := time.Since(upAt)
	if h := w.Health(context.Background()); !h.Ready || scrape(t, reg).value("eddy_ready", "") != 1 || len(scrape(t, reg)["eddy_partition_paused_seconds"]) != 0 {
		t.Errorf("health after the outage: %+v", h)
	}
	final := w.Stats()
	stop()
	t.Logf("down %v (flat for %v with %d events produced meanwhile); caught up %v after the last event; stats %+v",
		downFor.Round(time.Millisecond), outageFlat, inputAtUp-inputAtDown, caughtUp.Round(time.Millisecond), final)

	if final.Rebalances != before.Rebalances || final.Fenced != 0 {
		t.Errorf("the outage cost the worker its partitions: sessions %d -> %d, fenced %d",
			before.Rebalances, final.Rebalances, final.Fenced)
	}
	if final.Poison != 0 {
		t.Errorf("%d poison events, want 0", final.Poison)
	}
	checkOutageLogs(t, logs)
	ref := outageReference(evs)
	checkOutageState(t, b.open(t, srv, zap.NewNop()), in, ref)
	checkOutageOutputs(t, readAll(t, brokers, out, outageEvents, 60*time.Second), evs, ref)
	t.Logf("%s: whole test %v", t.Name(), time.Since(began).Round(time.Millisecond))
}

// checkOutageLogs: each partition logged the pause once and the
// resumption once, and the worker's group session never failed.
func checkOutageLogs(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, msg := range []string{pausedLog, resumedLog} {
		got := outageLogsByPartition(logs, msg)
		for p := range int32(outagePartitions) {
			if n := got[p]; n != 1 {
				t.Errorf("partition %d logged %q %d times, want once", p, msg, n)
			}
		}
		if len(got) != outagePartitions {
			t.Errorf("%q logged for partitions %v, want 0..%d", msg, got, outagePartitions-1)
		}
	}
	if n := logs.FilterMessageSnippet("consumer group session failed").Len(); n != 0 {
		t.Errorf("the group session failed %d times during the outage", n)
	}
}

// outageLogsByPartition counts the log entries containing msg per partition field.
func outageLogsByPartition(logs *observer.ObservedLogs, msg string) map[int32]int {
	out := map[int32]int{}
	for _, e := range logs.FilterMessageSnippet(msg).All() {
		p, err := strconv.ParseInt(fmt.Sprint(e.ContextMap()["partition"]), 10, 32)
		if err != nil {
			p = -1 // no partition field: counted apart, and fails the check
		}
		out[int32(p)]++
	}
	return out
}

// outageFlushed returns, per partition, the offset after the last one a
// "flushed" log line reported persisted.
func outageFlushed(logs *observer.ObservedLogs) map[int32]int64 {
	out := map[int32]int64{}
	for _, e := range logs.FilterMessage("flushed").All() {
		m := e.ContextMap()
		p, perr := strconv.ParseInt(fmt.Sprint(m["partition"]), 10, 32)
		off, oerr := strconv.ParseInt(fmt.Sprint(m["offset"]), 10, 64)
		if perr != nil || oerr != nil {
			continue
		}
		out[int32(p)] = max(out[int32(p)], off+1)
	}
	return out
}

// outageRef is what the input implies: per partition and key, the final
// count and sum; per event, the count and sum as of that event.
type outageRef struct {
	final   map[int32]map[string]outageTallyState
	atEvent map[string]outageTallyState
}

// outageReference replays the input in the order each partition holds
// it, which is the order the worker sees it.
func outageReference(evs []*outageEvent) outageRef {
	sorted := append([]*outageEvent(nil), evs...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
	ref := outageRef{final: map[int32]map[string]outageTallyState{}, atEvent: map[string]outageTallyState{}}
	for _, e := range sorted {
		keys := ref.final[e.Partition]
		if keys == nil {
			keys = map[string]outageTallyState{}
			ref.final[e.Partition] = keys
		}
		s := keys[e.Key]
		s.Count++
		s.Sum += e.V
		keys[e.Key] = s
		ref.atEvent[e.ID] = s
	}
	return ref
}

// checkOutageState loads every key's tally from a fresh store on the
// server and compares it with the reference.
func checkOutageState(t *testing.T, store statedb.Store, topic string, ref outageRef) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(ref.final) != outagePartitions {
		t.Errorf("the input landed in %d partitions, want %d", len(ref.final), outagePartitions)
	}
	var count, total int64
	for part, keys := range ref.final {
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, processor.StateKey("tally", outageTallyKey(k)))
		}
		got, err := store.Load(ctx, statedb.Partition{Topic: topic, Partition: part}, names)
		if err != nil {
			t.Fatalf("load the state of partition %d: %v", part, err)
		}
		for k, want := range keys {
			raw, ok := got[processor.StateKey("tally", outageTallyKey(k))]
			if !ok {
				t.Errorf("partition %d key %s: no state, want %+v", part, k, want)
				continue
			}
			s, err := parseOutageTally(raw)
			if err != nil {
				t.Errorf("partition %d key %s: %v", part, k, err)
				continue
			}
			if s != want {
				t.Errorf("partition %d key %s: state %+v, want %+v", part, k, s, want)
			}
			count += s.Count
			total += s.Sum
		}
	}
	t.Logf("state: %d events counted over %d partitions, sum %d", count, len(ref.final), total)
}

// checkOutageOutputs: one eddy-id per event, repeats identical, and each
// output holds the count and sum as of its event.
func checkOutageOutputs(t *testing.T, got []*sarama.ConsumerMessage, evs []*outageEvent, ref outageRef) {
	t.Helper()
	byID := map[string]*sarama.ConsumerMessage{} // eddy-id -> first output
	idOf := map[string]string{}                  // event id -> eddy-id
	repeats := 0
	for _, m := range got {
		eid := header(m, processor.IDHeader)
		if eid == "" {
			t.Errorf("output at %d/%d has no %s header", m.Partition, m.Offset, processor.IDHeader)
			continue
		}
		if first, ok := byID[eid]; ok {
			repeats++
			if string(first.Value) != string(m.Value) || string(first.Key) != string(m.Key) {
				t.Errorf("eddy-id %s repeated with another output: %s=%s, then %s=%s",
					eid, first.Key, first.Value, m.Key, m.Value)
			}
			continue
		}
		byID[eid] = m
		var ev struct {
			ID    string `json:"id"`
			K     string `json:"k"`
			V     int64  `json:"v"`
			Count int64  `json:"count"`
			Sum   int64  `json:"sum"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Errorf("output %s: %v", m.Value, err)
			continue
		}
		if prev, ok := idOf[ev.ID]; ok {
			t.Errorf("event %s has two eddy-ids, %s and %s: not stable", ev.ID, prev, eid)
		}
		idOf[ev.ID] = eid
		want, ok := ref.atEvent[ev.ID]
		switch {
		case !ok:
			t.Errorf("output for an unknown event: %s", m.Value)
		case ev.Count != want.Count || ev.Sum != want.Sum:
			t.Errorf("event %s (key %s): output count %d sum %d, want %d and %d",
				ev.ID, ev.K, ev.Count, ev.Sum, want.Count, want.Sum)
		}
		if string(m.Key) != ev.K {
			t.Errorf("event %s: output key %q, want %q", ev.ID, m.Key, ev.K)
		}
	}
	if len(byID) != len(evs) || len(idOf) != len(evs) {
		t.Errorf("%d distinct eddy-ids for %d distinct events in %d outputs, want %d of each",
			len(byID), len(idOf), len(got), len(evs))
	}
	for _, e := range evs {
		if _, ok := idOf[e.ID]; !ok {
			t.Errorf("event %s has no output", e.ID)
			break // one is enough to see it; the count above says how many
		}
	}
	t.Logf("outputs: %d, distinct %d, repeated %d", len(got), len(byID), repeats)
}

// outageKafka produces the input and reads the group's progress.
type outageKafka struct {
	client   sarama.Client
	admin    sarama.ClusterAdmin
	producer sarama.SyncProducer
	topic    string
	group    string
}

func newOutageKafka(t *testing.T, brokers []string, topic, group string) *outageKafka {
	t.Helper()
	cfg := testenv.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner // idempotent: see testenv.SaramaConfig
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	k := &outageKafka{client: client, topic: topic, group: group}
	t.Cleanup(func() { _ = client.Close() })
	if k.admin, err = sarama.NewClusterAdminFromClient(client); err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	if k.producer, err = sarama.NewSyncProducerFromClient(client); err != nil {
		t.Fatalf("kafka producer: %v", err)
	}
	t.Cleanup(func() { _ = k.producer.Close() })
	return k
}

// produce sends evs and records where each landed. It may run on any
// goroutine.
func (k *outageKafka) produce(evs []*outageEvent) error {
	msgs := make([]*sarama.ProducerMessage, len(evs))
	for i, e := range evs {
		v, err := json.Marshal(map[string]any{"id": e.ID, "k": e.Key, "v": e.V})
		if err != nil {
			return err
		}
		msgs[i] = &sarama.ProducerMessage{Topic: k.topic, Key: sarama.StringEncoder(e.Key), Value: sarama.ByteEncoder(v)}
	}
	if err := k.producer.SendMessages(msgs); err != nil {
		return fmt.Errorf("produce %d events from %s: %w", len(evs), evs[0].ID, err)
	}
	for i, m := range msgs {
		evs[i].Partition, evs[i].Offset = m.Partition, m.Offset
	}
	return nil
}

func (k *outageKafka) send(t *testing.T, evs []*outageEvent) {
	t.Helper()
	if err := k.produce(evs); err != nil {
		t.Fatal(err)
	}
}

// sendBursts sends evs in bursts, closing first after the first one.
func (k *outageKafka) sendBursts(evs []*outageEvent, first chan<- struct{}) error {
	tick := time.NewTicker(outageBurstEvery)
	defer tick.Stop()
	for i := 0; i < len(evs); i += outageBurst {
		if err := k.produce(evs[i:min(i+outageBurst, len(evs))]); err != nil {
			return err
		}
		if i == 0 {
			close(first)
		}
		<-tick.C
	}
	return nil
}

// committed returns the group's committed offset per partition (-1: none).
func (k *outageKafka) committed(t *testing.T) map[int32]int64 {
	t.Helper()
	parts := make([]int32, outagePartitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	resp, err := k.admin.ListConsumerGroupOffsets(k.group, map[string][]int32{k.topic: parts})
	if err != nil {
		t.Fatalf("committed offsets of group %s: %v", k.group, err)
	}
	out := map[int32]int64{}
	for _, p := range parts {
		b := resp.GetBlock(k.topic, p)
		if b == nil || !errors.Is(b.Err, sarama.ErrNoError) {
			t.Fatalf("committed offset of group %s on %s/%d: %v", k.group, k.topic, p, b)
		}
		out[p] = b.Offset
	}
	return out
}

// ends returns the end offset of every partition of the input topic.
func (k *outageKafka) ends(t *testing.T) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for p := range int32(outagePartitions) {
		off, err := k.client.GetOffset(k.topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("end offset of %s/%d: %v", k.topic, p, err)
		}
		out[p] = off
	}
	return out
}

// sum adds offsets up, counting "none" (-1) as 0.
func outageSum(offs map[int32]int64) int64 {
	var n int64
	for _, o := range offs {
		n += max(o, 0)
	}
	return n
}
