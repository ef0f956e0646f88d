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
	"github.com/eddy-streams/eddy/processor"
)

// LatencyResult is the end-to-end latency scenario's measurement.
type LatencyResult struct {
	TargetRate   int     `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	Seconds      int     `json:"seconds"`
	WarmupSec    int     `json:"warmup_seconds"`
	Samples      int     `json:"samples"`
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
}

const latencyWarmup = 3 * time.Second

// latencyYAML is d's pipeline with emit on_update, so that every batch
// emits the windows it changed, and max(event.pt) in each result: the
// produce time of the newest event the output reflects. Event time is the
// produce time, so windows close as the wall clock passes.
func latencyYAML(brokers []string, topic, out string) string {
	return fmt.Sprintf(`name: bench-latency
kafka: {brokers: %q}
source: {topics: [%s], event_time: event.ts}
steps:
  - aggregate:
      name: per_user
      key: event.user
      window: {tumbling: 1m}
      values: {n: count(), total: sum(event.v), pt: max(event.pt)}
      emit: on_update
sink: {topic: %s}
`, brokers, topic, out)
}

// runLatency runs d's pipeline with on_update emission over a fresh topic
// fed at cfg.rate events/s, and measures output arrival minus pt.
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
	p, err := pipeline.Parse("bench-latency.yaml", []byte(latencyYAML(cfg.brokers, in, out)))
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, "redis", tag)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	w, err := processor.New(p, processor.WithStore(cs), processor.WithBrokers(cfg.brokers...),
		processor.WithGroup("eddybench-"+cfg.run+"-"+tag))
	if err != nil {
		return nil, err
	}
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

	// The output reader: arrival time minus pt.
	consumer, err := sarama.NewConsumer(cfg.brokers, saramaConfig())
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	type sample struct{ pt, at int64 }
	var (
		mu      sync.Mutex
		samples []sample
		last    time.Time
	)
	for part := range int32(cfg.partitions) {
		pc, err := consumer.ConsumePartition(out, part, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("read %s/%d: %w", out, part, err)
		}
		defer pc.Close()
		go func() {
			var v struct {
				PT int64 `json:"pt"`
			}
			for m := range pc.Messages() {
				at := time.Now()
				if err := json.Unmarshal(m.Value, &v); err != nil {
					continue
				}
				mu.Lock()
				samples = append(samples, sample{pt: v.PT, at: at.UnixNano()})
				last = at
				mu.Unlock()
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
	var pc pacer
	pctx, stopProducer := context.WithTimeout(ctx, time.Duration(cfg.latencySeconds)*time.Second)
	defer stopProducer()
	started := time.Now()
	if err := pc.run(pctx, cfg.brokers, in, cfg.rate, cfg.size, func(int) (string, int, int64) {
		return userKey(rnd.IntN(cfg.keys)), rnd.IntN(1000), time.Now().UnixMilli()
	}); err != nil {
		return nil, err
	}
	produced := time.Since(started)
	// Drain: until no output came for 2 s (or 30 s in all).
	drain := time.Now().Add(30 * time.Second)
	for time.Now().Before(drain) {
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		quiet := time.Since(last)
		mu.Unlock()
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

	mu.Lock()
	defer mu.Unlock()
	from := started.Add(latencyWarmup).UnixNano()
	var lat []time.Duration
	for _, s := range samples {
		if s.pt >= from {
			lat = append(lat, time.Duration(s.at-s.pt))
		}
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("latency: no output after the warm-up (%d outputs in all)", len(samples))
	}
	lr := &LatencyResult{
		TargetRate: cfg.rate, AchievedRate: float64(pc.acked.Load()) / produced.Seconds(),
		Seconds: cfg.latencySeconds, WarmupSec: int(latencyWarmup / time.Second),
		Samples: len(lat), Outputs: len(samples),
		P50Ms: ms(percentile(lat, 50)), P90Ms: ms(percentile(lat, 90)), P99Ms: ms(percentile(lat, 99)), MaxMs: ms(percentile(lat, 100)),
		FlushP50Ms: qs[0] * 1000, FlushP99Ms: qs[1] * 1000, FinalLag: stats.Lag,
		Produced: pc.acked.Load(), ProduceFails: pc.failed.Load(),
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
