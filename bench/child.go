package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/internal/kafkaread"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
)

// Result is what one scenario measured.
type Result struct {
	Scenario string `json:"scenario"`
	Name     string `json:"name"`
	Events   int64  `json:"events"`
	// Seconds is the time from the first event processed to the last
	// event's offset persisted (for a: marked).
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	// RatioToA is EventsPerSec over a's (filled in by the parent).
	RatioToA float64 `json:"ratio_to_a,omitempty"`

	StoreCalls         uint64            `json:"store_calls"`
	StoreCallsPerEvent float64           `json:"store_calls_per_event"`
	Calls              map[string]uint64 `json:"calls_by_method,omitempty"`
	Flushes            uint64            `json:"flushes"`
	EventsPerFlush     float64           `json:"events_per_flush"`
	FlushP50Ms         float64           `json:"flush_p50_ms"`
	FlushP99Ms         float64           `json:"flush_p99_ms"`
	FlushMeanMs        float64           `json:"flush_mean_ms"`
	CommitP50Ms        float64           `json:"commit_p50_ms"`
	CommitP99Ms        float64           `json:"commit_p99_ms"`

	Outputs       uint64 `json:"outputs"`
	Filtered      uint64 `json:"filtered,omitempty"`
	Duplicates    uint64 `json:"duplicates,omitempty"`
	Late          uint64 `json:"late,omitempty"`
	WindowsClosed uint64 `json:"windows_closed,omitempty"`
	// OutputTopic is where a pipeline scenario wrote its outputs (the
	// parent reads it to compare them, for c to h).
	OutputTopic string `json:"output_topic,omitempty"`
	// OutputsCompared is how an aggregate scenario's outputs (c to h)
	// compared by content with the reference computed from the fill.
	OutputsCompared *Comparison `json:"outputs_compared,omitempty"`

	// CPUPerEventUs is the process's CPU time (user + system, all
	// threads) over the measured interval per event: what the worker
	// costs, less sensitive than events/s to other load on the machine.
	CPUPerEventUs float64 `json:"cpu_us_per_event"`
	CPUCores      float64 `json:"cpu_cores"`
	// ServiceCPUPerEventUs is the CPU time the Kafka broker, Redis and
	// MariaDB processes used over the interval, per event (they serve
	// other clients too: the machine is shared); MachineBusy the share of
	// all CPUs that was busy.
	ServiceCPUPerEventUs map[string]float64 `json:"service_cpu_us_per_event,omitempty"`
	MachineBusy          float64            `json:"machine_busy"`

	PeakRSSMB      float64 `json:"peak_rss_mb"`
	AllocPerEvent  float64 `json:"alloc_bytes_per_event"`
	MallocPerEvent float64 `json:"mallocs_per_event"`
	GCCycles       uint32  `json:"gc_cycles"`

	// RedisPersistence is Redis's appendonly and appendfsync as the
	// scenario ran, read back from the server just before it (scenarios
	// with Redis state only: d, f, g, h and latency; h sets appendfsync
	// always for its run).
	RedisPersistence string `json:"redis_persistence,omitempty"`

	Latency *LatencyResult `json:"latency,omitempty"`
	// Runs holds every repetition's events/s when -repeat > 1.
	Runs []float64 `json:"runs_events_per_sec,omitempty"`
}

// runChild runs cfg.scenario in this process and writes its Result.
func runChild(ctx context.Context, cfg *config) error {
	var (
		res *Result
		err error
	)
	switch cfg.scenario {
	case "a":
		res, err = runConsume(ctx, cfg)
	case "b", "c", "d", "e", "f", "g", "h", "i":
		res, err = runPipeline(ctx, cfg)
	case "latency":
		res, err = runLatency(ctx, cfg)
	default:
		err = fmt.Errorf("-scenario %q cannot run in a child", cfg.scenario)
	}
	if err != nil {
		return err
	}
	res.Scenario, res.Name = cfg.scenario, scenarioNames[cfg.scenario]
	res.PeakRSSMB = peakRSSMB()
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(cfg.result, b, 0o644)
}

// profiler writes a CPU profile between start and stop, if asked to.
type profiler struct {
	path string
	f    *os.File
}

func (p *profiler) start() error {
	if p.path == "" || p.f != nil {
		return nil
	}
	f, err := os.Create(p.path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	p.f = f
	return nil
}

func (p *profiler) stop() {
	if p.f == nil {
		return
	}
	pprof.StopCPUProfile()
	_ = p.f.Close()
	p.f = nil
}

// memDelta measures allocations and CPU time between two points.
type memDelta struct {
	before   runtime.MemStats
	cpu      time.Duration
	at       time.Time
	services cpuSample
}

func (m *memDelta) start() {
	runtime.ReadMemStats(&m.before)
	m.cpu, m.at = cpuTime(), time.Now()
	m.services = sampleCPU()
}

func (m *memDelta) fill(res *Result, events int64) {
	cpu, wall := cpuTime()-m.cpu, time.Since(m.at)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	res.AllocPerEvent = float64(after.TotalAlloc-m.before.TotalAlloc) / float64(events)
	res.MallocPerEvent = float64(after.Mallocs-m.before.Mallocs) / float64(events)
	res.GCCycles = after.NumGC - m.before.NumGC
	res.CPUPerEventUs = float64(cpu) / float64(time.Microsecond) / float64(events)
	res.CPUCores = cpu.Seconds() / wall.Seconds()
	serviceCPU(res, m.services, events)
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func unique(prefix string) string { return prefix + "-" + newRunID() }

// runtimeSaramaConfig is the consumer configuration of processor.Worker
// (worker.go saramaConfig) for the raw baseline, so that a and the
// pipelines read the same way.
func runtimeSaramaConfig() (*sarama.Config, error) {
	v, err := sarama.ParseKafkaVersion(pipeline.DefaultKafkaVersion)
	if err != nil {
		return nil, err
	}
	cfg := sarama.NewConfig()
	cfg.ClientID = "eddy"
	cfg.Version = v
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	cfg.ChannelBufferSize = 1000 // max(256, flush.max_messages)
	cfg.Consumer.MaxProcessingTime = time.Second
	return cfg, cfg.Validate()
}

// rawHandler consumes without processing: it counts messages, marks the
// offset once per batch (up to 1,000 messages, or when the claim's buffer
// is empty) and lets a committer goroutine commit every second, as the
// runtime does.
type rawHandler struct {
	total      int64
	n          atomic.Int64
	bytes      atomic.Int64
	start, end atomic.Int64 // Unix ns
	cpu0, cpu1 atomic.Int64 // process CPU time at the first and the last message
	done       chan struct{}
	once       sync.Once
}

func (h *rawHandler) Setup(sess sarama.ConsumerGroupSession) error {
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sess.Context().Done():
				return
			case <-t.C:
				sess.Commit()
			}
		}
	}()
	return nil
}

func (h *rawHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	sess.Commit()
	return nil
}

func (h *rawHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	msgs := claim.Messages()
	batch := 0
	for m := range msgs {
		batch++
		h.bytes.Add(int64(len(m.Value)))
		n := h.n.Add(1)
		if n == 1 {
			h.cpu0.Store(int64(cpuTime()))
			h.start.Store(time.Now().UnixNano())
		}
		if batch >= 1000 || len(msgs) == 0 || n == h.total {
			sess.MarkMessage(m, "")
			batch = 0
		}
		if n == h.total {
			h.end.Store(time.Now().UnixNano())
			h.cpu1.Store(int64(cpuTime()))
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

// runConsume is scenario a: the raw consumer group over the whole topic.
func runConsume(ctx context.Context, cfg *config) (*Result, error) {
	k, err := newKafka(cfg.brokers)
	if err != nil {
		return nil, err
	}
	defer k.close()
	_, total, err := endOffsets(k.client, cfg.topic)
	if err != nil {
		return nil, err
	}
	scfg, err := runtimeSaramaConfig()
	if err != nil {
		return nil, err
	}
	group, err := sarama.NewConsumerGroup(cfg.brokers, unique("eddybench-"+cfg.run+"-a"), scfg)
	if err != nil {
		return nil, err
	}
	defer group.Close()
	go func() {
		for err := range group.Errors() {
			logf("a: consumer group: %v", err)
		}
	}()
	h := &rawHandler{total: total, done: make(chan struct{})}
	prof := &profiler{path: cfg.cpuprofile}
	if err := prof.start(); err != nil {
		return nil, err
	}
	defer prof.stop()
	var mem memDelta
	mem.start()
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := group.Consume(cctx, []string{cfg.topic}, h); err != nil && cctx.Err() == nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case err := <-errc:
		cancel()
		return nil, fmt.Errorf("consume: %w", err)
	case <-time.After(cfg.timeout):
		cancel()
		return nil, fmt.Errorf("read %d of %d messages within %s", h.n.Load(), total, cfg.timeout)
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	prof.stop()
	res := &Result{Events: total}
	mem.fill(res, total)
	cancel()
	<-errc
	d := time.Duration(h.end.Load() - h.start.Load())
	res.Seconds = d.Seconds()
	res.EventsPerSec = float64(total) / d.Seconds()
	cpu := time.Duration(h.cpu1.Load() - h.cpu0.Load())
	res.CPUPerEventUs = float64(cpu) / float64(time.Microsecond) / float64(total)
	res.CPUCores = cpu.Seconds() / d.Seconds()
	return res, nil
}

// pipelineYAML is the pipeline of a throughput scenario; maxMessages > 0
// and backlogMessages > 0 set its flush.max_messages and
// flush.backlog_messages.
func pipelineYAML(s string, brokers []string, topic, out string, maxMessages, backlogMessages int) string {
	// g is d with the outputs not fenced: one shared idempotent producer
	// instead of a transactional producer per partition task.
	name := "bench-" + s
	if s == "i" {
		// The internal topic is eddy-<name>-hop: one per run (out ends
		// with the run's and the child's ids), removed by cleanupRun.
		name = strings.TrimPrefix(out, "eddy")
	}
	head := fmt.Sprintf("name: %s\nkafka: {brokers: %q, transactions: %t}\n", name, brokers, s != "g")
	var flush []string
	if maxMessages > 0 {
		flush = append(flush, fmt.Sprintf("max_messages: %d", maxMessages))
	}
	if backlogMessages > 0 {
		flush = append(flush, fmt.Sprintf("backlog_messages: %d", backlogMessages))
	}
	if len(flush) > 0 {
		head += "flush: {" + strings.Join(flush, ", ") + "}\n"
	}
	switch s {
	case "b":
		return head + fmt.Sprintf(`source: {topics: [%s]}
steps:
  - filter: event.v %% 10 != 0
  - set: {total: event.v * 2, big: event.v > 500}
  - key: event.user
sink: {topic: %s}
`, topic, out)
	case "f":
		return head + fmt.Sprintf(`source: {topics: [%s], event_time: event.ts, event_id: event.id}
dedup: {enabled: true, ttl: 10m}
steps:
%s
sink: {topic: %s}
`, topic, aggregateStep, out)
	case "i":
		return head + fmt.Sprintf(`source: {topics: [%s], event_time: event.ts}
steps:
  - repartition: {name: hop, key: event.user}
%s
sink: {topic: %s}
`, topic, aggregateStep, out)
	default: // c, d, e, g, h
		return head + fmt.Sprintf(`source: {topics: [%s], event_time: event.ts}
steps:
%s
sink: {topic: %s}
`, topic, aggregateStep, out)
	}
}

// aggregateStep is the aggregation of scenarios c to h and of the latency
// run (which adds emit: on_update): counts and sums per user and minute.
const aggregateStep = `  - aggregate:
      name: per_user
      key: event.user
      window: {tumbling: 1m}
      values: {n: count(), total: sum(event.v)}`

// newBenchWorker opens backend's store for tag, wraps it to count its
// calls, and makes a Worker of p over it in group eddybench-<run>-<tag>.
// Closing the countingStore closes the store.
func newBenchWorker(ctx context.Context, cfg *config, p *pipeline.Pipeline, backend, tag string) (*processor.Worker, *countingStore, error) {
	st, err := openStore(ctx, cfg, backend, tag)
	if err != nil {
		return nil, nil, err
	}
	cs := &countingStore{Store: st}
	w, err := processor.New(p, processor.WithStore(cs), processor.WithBrokers(cfg.brokers...),
		processor.WithGroup("eddybench-"+cfg.run+"-"+tag), processor.WithLogger(zap.NewNop())) // as before the default logger: the bench prints its own lines
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return w, cs, nil
}

// waitStored waits until the store holds, for each partition of topic in
// last, an offset watermark of at least last[partition], calling check
// (the deadline, the worker's health) between polls.
func waitStored(ctx context.Context, cs *countingStore, topic string, last map[int32]int64, check func() error) error {
	for part, want := range last {
		for {
			c, err := cs.Inspect(ctx, statedb.Partition{Topic: topic, Partition: part})
			if err != nil {
				return fmt.Errorf("inspect %s/%d: %w", topic, part, err)
			}
			if c.Offset >= want {
				break
			}
			if err := check(); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

func scenarioBackend(s string) string {
	switch s {
	case "d", "f", "g", "h", "latency":
		return "redis"
	case "e":
		return "mariadb"
	}
	return "memory"
}

// runPipeline is scenarios b to h: the runtime over the whole topic. h is
// d's pipeline; the parent sets Redis's appendfsync around it.
func runPipeline(ctx context.Context, cfg *config) (*Result, error) {
	k, err := newKafka(cfg.brokers)
	if err != nil {
		return nil, err
	}
	defer k.close()
	ends, total, err := endOffsets(k.client, cfg.topic)
	if err != nil {
		return nil, err
	}
	tag := cfg.scenario + newRunID()
	out := "eddybench-" + cfg.run + "-out-" + tag
	if err := k.createTopic(out, cfg.partitions); err != nil {
		return nil, err
	}
	p, err := pipeline.Parse("bench-"+cfg.scenario+".yaml", []byte(pipelineYAML(cfg.scenario, cfg.brokers, cfg.topic, out, cfg.maxMessages, cfg.backlogMessages)))
	if err != nil {
		return nil, err
	}
	w, cs, err := newBenchWorker(ctx, cfg, p, scenarioBackend(cfg.scenario), tag)
	if err != nil {
		return nil, err
	}
	defer cs.Close()
	prof := &profiler{path: cfg.cpuprofile}
	defer prof.stop()
	var mem memDelta

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(cctx) }()
	deadline := time.Now().Add(cfg.timeout)
	check := func() error {
		select {
		case err := <-errc:
			return fmt.Errorf("worker stopped: %v", err)
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			s := w.Stats()
			return fmt.Errorf("processed %d of %d events within %s (lag %d)", s.In, total, cfg.timeout, s.Lag)
		}
		return nil
	}
	for w.Stats().In == 0 {
		if err := check(); err != nil {
			return nil, err
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := prof.start(); err != nil {
		return nil, err
	}
	mem.start()
	for w.Stats().In < uint64(total) {
		if err := check(); err != nil {
			return nil, err
		}
		time.Sleep(time.Millisecond)
	}
	// Every partition's last offset persisted.
	last := map[int32]int64{}
	for part, end := range ends {
		if end > 0 {
			last[part] = end - 1
		}
	}
	if err := waitStored(ctx, cs, cfg.topic, last, check); err != nil {
		return nil, err
	}
	// Behind a repartition (i): every internal partition's last record
	// persisted too. Once the source partitions are, every internal
	// transaction is committed; the last record of a partition is then
	// just below its last transaction's marker, at LSO-2.
	for _, st := range p.Stages()[1:] {
		last := map[int32]int64{}
		for part := range int32(cfg.partitions) {
			lso, err := kafkaread.LastStableOffset(k.client, st.Topics[0], part)
			if err != nil {
				return nil, err
			}
			if lso > 0 {
				last[part] = lso - 2
			}
		}
		if err := waitStored(ctx, cs, st.Topics[0], last, check); err != nil {
			return nil, err
		}
	}
	took := time.Since(start)
	prof.stop()
	res := &Result{Events: total, Seconds: took.Seconds(), EventsPerSec: float64(total) / took.Seconds()}
	mem.fill(res, total)
	stats := w.Stats()
	qs, _, err := histQuantiles(w.Collector(), "eddy_flush_seconds", 0.5, 0.99)
	if err != nil {
		return nil, err
	}
	res.FlushP50Ms, res.FlushP99Ms = qs[0]*1000, qs[1]*1000
	res.StoreCalls = stats.StoreCalls
	res.StoreCallsPerEvent = float64(stats.StoreCalls) / float64(total)
	res.Calls = cs.calls()
	res.Flushes = stats.Flushes
	if stats.Flushes > 0 {
		res.EventsPerFlush = float64(total) / float64(stats.Flushes)
		res.FlushMeanMs = ms(stats.FlushTime) / float64(stats.Flushes)
	}
	cd := cs.commitDurations()
	res.CommitP50Ms, res.CommitP99Ms = ms(percentile(cd, 50)), ms(percentile(cd, 99))
	res.Outputs, res.Filtered, res.Duplicates, res.WindowsClosed = stats.Out, stats.Filtered, stats.Duplicates, stats.WindowsClosed
	res.Late, res.OutputTopic = stats.Late, out

	cancel()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			logf("%s: worker: %v", cfg.scenario, err)
		}
	case <-time.After(30 * time.Second):
		logf("%s: worker did not stop within 30s", cfg.scenario)
	}
	return res, nil
}
