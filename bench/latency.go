package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
)

// LatencyResult is the end-to-end latency scenario's measurement.
type LatencyResult struct {
	TargetRate   int     `json:"target_rate"`
	Keys         int     `json:"keys"`
	AchievedRate float64 `json:"achieved_rate"`
	Seconds      int     `json:"seconds"`
	WarmupSec    int     `json:"warmup_seconds"`
	// Samples is the events produced after the warm-up whose effect was
	// seen in an output; Unseen those it was not (by the end of the drain).
	Samples      int     `json:"samples"`
	Unseen       int     `json:"unseen"`
	P50Ms        float64 `json:"p50_ms"`
	P90Ms        float64 `json:"p90_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	Outputs      int     `json:"outputs"`
	FlushP50Ms   float64 `json:"flush_p50_ms"`
	FlushP99Ms   float64 `json:"flush_p99_ms"`
	FinalLag     int64   `json:"final_lag"`
	Produced     int64   `json:"produced"`
	ProduceFails int64   `json:"produce_failures"`
	// OutputsPerEvent is the pipeline's outputs (Stats.Out) per event.
	OutputsPerEvent float64 `json:"outputs_per_event"`
	// Transactions is the pipeline's kafka.transactions.
	Transactions bool `json:"transactions"`
}

const (
	latencyWarmup = 3 * time.Second
	latencyWindow = windowMs // the tumbling window of latencyYAML (aggregateStep's)
)

// latencyYAML is d's pipeline with emit on_update, so that every batch
// emits the windows it changed with their current count. Event time is
// the produce time, so windows close as the wall clock passes.
func latencyYAML(brokers []string, topic, out string, txn bool) string {
	return fmt.Sprintf(`name: bench-latency
kafka: {brokers: %q, transactions: %t}
source: {topics: [%s], event_time: event.ts}
steps:
%s
      emit: on_update
sink: {topic: %s}
`, brokers, txn, topic, aggregateStep, out)
}

// tracker matches outputs to the events they count. Per (key, window) it
// keeps the produce times of the window's events in the order they were
// produced, which is their order in the key's partition; an output of
// that window with count n shows the first n of them. An event's latency
// is the arrival of the first output that counts it minus its produce
// time. Safe for concurrent use.
type tracker struct {
	mu       sync.Mutex
	from     int64 // Unix ns: events produced before are not sampled
	wins     map[winKey]*winEvents
	lat      []time.Duration
	outputs  int
	last     time.Time
	produced int // events produced at or after from
}

type winKey struct {
	key   string
	start int64
}

type winEvents struct {
	pts  []int64
	seen int // the first seen events have been counted by an output
}

func (t *tracker) sent(user string, ts, pt int64) {
	k := winKey{user, ts - ts%latencyWindow}
	t.mu.Lock()
	w := t.wins[k]
	if w == nil {
		w = &winEvents{}
		t.wins[k] = w
	}
	w.pts = append(w.pts, pt)
	if pt >= t.from {
		t.produced++
	}
	t.mu.Unlock()
}

func (t *tracker) output(key string, start int64, n int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.outputs++
	t.last = at
	w := t.wins[winKey{key, start}]
	if w == nil {
		return
	}
	for ; w.seen < n && w.seen < len(w.pts); w.seen++ {
		if pt := w.pts[w.seen]; pt >= t.from {
			t.lat = append(t.lat, at.Sub(time.Unix(0, pt)))
		}
	}
}

// runLatency runs d's pipeline with on_update emission over a fresh topic
// fed at cfg.rate events/s, and measures each event's end-to-end latency.
func runLatency(ctx context.Context, cfg *config) (*Result, error) {
	if cfg.rate <= 0 {
		return nil, fmt.Errorf("latency: -rate %d must be positive", cfg.rate)
	}
	k, err := newKafka(cfg.brokers)
	if err != nil {
		return nil, err
	}
	defer k.close()
	tag := "latency" + newRunID()
	in, out := "eddybench-"+cfg.run+"-"+tag, "eddybench-"+cfg.run+"-out-"+tag
	for _, t := range []string{in, out} {
		if err := k.createTopic(t, cfg.partitions); err != nil {
			return nil, err
		}
	}
	p, err := pipeline.Parse("bench-latency.yaml", []byte(latencyYAML(cfg.brokers, in, out, cfg.latencyTxn)))
	if err != nil {
		return nil, err
	}
	w, cs, err := newBenchWorker(ctx, cfg, p, "redis", tag)
	if err != nil {
		return nil, err
	}
	defer cs.Close()
	wctx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	werr := make(chan error, 1)
	go func() { werr <- w.Run(wctx) }()
	deadline := time.Now().Add(time.Minute)
	for w.Stats().Partitions < cfg.partitions {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("latency: worker claimed %d of %d partitions within a minute", w.Stats().Partitions, cfg.partitions)
		}
		time.Sleep(10 * time.Millisecond)
	}

	started := time.Now()
	tr := &tracker{from: started.Add(latencyWarmup).UnixNano(), wins: map[winKey]*winEvents{}}
	// The output reader.
	// read_committed, as consumers of transactional outputs must: an
	// output counts once its transaction is committed.
	rcfg := saramaConfig()
	rcfg.Consumer.IsolationLevel = sarama.ReadCommitted
	consumer, err := sarama.NewConsumer(cfg.brokers, rcfg)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	for part := range int32(cfg.partitions) {
		pc, err := consumer.ConsumePartition(out, part, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("read %s/%d: %w", out, part, err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				at := time.Now()
				var v struct {
					Key   string `json:"key"`
					N     int    `json:"n"`
					Start string `json:"window_start"`
				}
				if err := json.Unmarshal(m.Value, &v); err != nil {
					continue
				}
				start, err := time.Parse(time.RFC3339Nano, v.Start)
				if err != nil {
					continue
				}
				tr.output(v.Key, start.UnixMilli(), v.N, at)
			}
		}()
	}

	prof := &profiler{path: cfg.cpuprofile}
	if err := prof.start(); err != nil {
		return nil, err
	}
	defer prof.stop()
	var mem memDelta
	mem.start()
	rnd := rand.New(rand.NewPCG(3, 4))
	pc := pacer{onSend: tr.sent}
	pctx, stopProducer := context.WithTimeout(ctx, time.Duration(cfg.latencySeconds)*time.Second)
	defer stopProducer()
	if err := pc.run(pctx, cfg.brokers, in, cfg.rate, cfg.size, func(int) (string, int, int64) {
		return userKey(rnd.IntN(cfg.latencyKeys)), rnd.IntN(1000), time.Now().UnixMilli()
	}); err != nil {
		return nil, err
	}
	produced := time.Since(started)
	// Drain: until no output came for 2 s (or 30 s in all).
	drain := time.Now().Add(30 * time.Second)
	for time.Now().Before(drain) {
		time.Sleep(200 * time.Millisecond)
		tr.mu.Lock()
		quiet := time.Since(tr.last)
		tr.mu.Unlock()
		if quiet > 2*time.Second {
			break
		}
	}
	prof.stop()
	stats := w.Stats()
	qs, _, err := histQuantiles(w.Collector(), "eddy_flush_seconds", 0.5, 0.99)
	if err != nil {
		return nil, err
	}
	stopWorker()
	<-werr

	tr.mu.Lock()
	defer tr.mu.Unlock()
	lat := tr.lat
	if len(lat) == 0 {
		return nil, fmt.Errorf("latency: no event after the warm-up was seen in an output (%d outputs in all)", tr.outputs)
	}
	lr := &LatencyResult{
		TargetRate: cfg.rate, Keys: cfg.latencyKeys, Transactions: cfg.latencyTxn, AchievedRate: float64(pc.acked.Load()) / produced.Seconds(),
		Seconds: cfg.latencySeconds, WarmupSec: int(latencyWarmup / time.Second),
		Samples: len(lat), Unseen: tr.produced - len(lat), Outputs: tr.outputs,
		P50Ms: ms(percentile(lat, 50)), P90Ms: ms(percentile(lat, 90)), P99Ms: ms(percentile(lat, 99)), MaxMs: ms(percentile(lat, 100)),
		FlushP50Ms: qs[0] * 1000, FlushP99Ms: qs[1] * 1000, FinalLag: stats.Lag,
		Produced: pc.acked.Load(), ProduceFails: pc.failed.Load(),
	}
	if stats.In > 0 {
		lr.OutputsPerEvent = float64(stats.Out) / float64(stats.In)
	}
	res := &Result{Events: int64(stats.In), Seconds: produced.Seconds(), EventsPerSec: lr.AchievedRate,
		StoreCalls: stats.StoreCalls, Calls: cs.calls(), Flushes: stats.Flushes, Outputs: stats.Out,
		FlushP50Ms: lr.FlushP50Ms, FlushP99Ms: lr.FlushP99Ms, Latency: lr}
	if stats.In > 0 {
		res.StoreCallsPerEvent = float64(stats.StoreCalls) / float64(stats.In)
		mem.fill(res, int64(stats.In))
	}
	return res, nil
}
