package processor

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector for the Worker's metrics, all
// labelled with the pipeline's name. Counters are read from the Worker's
// atomic counters at scrape time, so collecting costs the partition tasks
// nothing; flush latency is a histogram observed by each flush.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(w.Collector())
//
// Register it once per Worker.
func (w *Worker) Collector() prometheus.Collector { return &promCollector{w: w} }

type promCollector struct{ w *Worker }

var counterDescs = []struct {
	name, help string
	get        func(*Stats) uint64
}{
	{"eddy_events_in_total", "Records read from source and internal topics (including skipped and duplicates).", func(s *Stats) uint64 { return s.In }},
	{"eddy_events_repartitioned_total", "Records written to internal topics by repartition steps and committed.", func(s *Stats) uint64 { return s.Repartitioned }},
	{"eddy_watermark_markers_total", "Watermark markers read from internal topics.", func(s *Stats) uint64 { return s.Markers }},
	{"eddy_state_rebuilds_total", "Partitions whose missing state (a wiped store) was rebuilt by replaying them from offset 0.", func(s *Stats) uint64 { return s.Rebuilds }},
	{"eddy_table_rows_total", "Table records applied to the store (upserts and deletes).", func(s *Stats) uint64 { return s.TableRows }},
	{"eddy_lookups_total", "Rows looked up by lookup steps.", func(s *Stats) uint64 { return s.Lookups }},
	{"eddy_lookup_misses_total", "Lookups that found no row.", func(s *Stats) uint64 { return s.LookupMisses }},
	{"eddy_events_out_total", "Records produced to the sink and committed.", func(s *Stats) uint64 { return s.Out }},
	{"eddy_events_filtered_total", "Records dropped by filter steps.", func(s *Stats) uint64 { return s.Filtered }},
	{"eddy_events_duplicate_total", "Events dropped because their event ID was seen before.", func(s *Stats) uint64 { return s.Duplicates }},
	{"eddy_events_skipped_total", "Messages at or below the stored offset watermark (applied by an earlier owner).", func(s *Stats) uint64 { return s.Skipped }},
	{"eddy_events_late_total", "Events that arrived after their windows closed.", func(s *Stats) uint64 { return s.Late }},
	{"eddy_events_poison_total", "Events that failed (bad JSON, expression or processor error).", func(s *Stats) uint64 { return s.Poison }},
	{"eddy_dead_letters_total", "Poison events sent to the dead-letter topic.", func(s *Stats) uint64 { return s.DeadLettered }},
	{"eddy_windows_closed_total", "Windows closed by aggregate steps.", func(s *Stats) uint64 { return s.WindowsClosed }},
	{"eddy_not_copartitioned_total", "Sampled aggregate events whose group key hashes to another partition.", func(s *Stats) uint64 { return s.NotCoPartitioned }},
	{"eddy_flushes_total", "Successful flushes (outputs acked, state committed, offset marked).", func(s *Stats) uint64 { return s.Flushes }},
	{"eddy_store_calls_total", "State store calls (acquire, load, seen, timers, commit), one round trip each.", func(s *Stats) uint64 { return s.StoreCalls }},
	{"eddy_store_errors_total", "Failed state store calls and table lookups that were retried (the partition paused meanwhile).", func(s *Stats) uint64 { return s.StoreErrors }},
	{"eddy_produce_errors_total", "Failed produces that were retried (the partition paused meanwhile).", func(s *Stats) uint64 { return s.ProduceErrors }},
	{"eddy_fenced_total", "Partitions given up because a newer owner fenced this worker.", func(s *Stats) uint64 { return s.Fenced }},
	{"eddy_rebalances_total", "Consumer group sessions started.", func(s *Stats) uint64 { return s.Rebalances }},
}

var (
	partitionsDesc = prometheus.NewDesc("eddy_partitions", "Partitions claimed by this worker.", []string{"pipeline"}, nil)
	lagDesc        = prometheus.NewDesc("eddy_partition_lag", "Messages between the next offset to process and the partition's high watermark.",
		[]string{"pipeline", "topic", "partition"}, nil)
	watermarkDesc = prometheus.NewDesc("eddy_partition_watermark_seconds",
		"The partition's event-time watermark (Unix seconds); on an internal topic the minimum over its upstream partitions. Absent until it has one.",
		[]string{"pipeline", "topic", "partition"}, nil)
	readyDesc  = prometheus.NewDesc("eddy_ready", "1 while the worker is ready, as /readyz answers: a group member, its store answering, no partition paused too long.", []string{"pipeline"}, nil)
	pausedDesc = prometheus.NewDesc("eddy_partition_paused_seconds", "How long the partition has been paused, by what is being retried (produce, state commit, ...); absent when it is not paused.",
		[]string{"pipeline", "topic", "partition", "cause"}, nil)
)

func newFlushHistogram(pipelineName string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:        "eddy_flush_seconds",
		Help:        "Duration of a flush: produce and wait for acks, commit state, mark the offset.",
		ConstLabels: prometheus.Labels{"pipeline": pipelineName},
		Buckets:     prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
	})
}

func (c *promCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range counterDescs {
		ch <- prometheus.NewDesc(d.name, d.help, []string{"pipeline"}, nil)
	}
	ch <- partitionsDesc
	ch <- lagDesc
	ch <- watermarkDesc
	ch <- readyDesc
	ch <- pausedDesc
	c.w.flushHist.Describe(ch)
}

func (c *promCollector) Collect(ch chan<- prometheus.Metric) {
	name := c.w.p.Spec.Name
	s := c.w.Stats()
	for _, d := range counterDescs {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(d.name, d.help, []string{"pipeline"}, nil),
			prometheus.CounterValue, float64(d.get(&s)), name)
	}
	ch <- prometheus.MustNewConstMetric(partitionsDesc, prometheus.GaugeValue, float64(s.Partitions), name)
	ready := 0.0
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if c.w.Health(ctx).Ready {
		ready = 1
	}
	cancel()
	ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready, name)
	c.w.mu.Lock()
	for p, t := range c.w.tasks {
		part := strconv.Itoa(int(p.Partition))
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(t.lag()), name, p.Topic, part)
		if ps := t.paused.Load(); ps != nil {
			ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, time.Since(ps.since).Seconds(), name, p.Topic, part, ps.cause)
		}
		if wm := t.wmNow.Load(); wm != math.MinInt64 {
			ch <- prometheus.MustNewConstMetric(watermarkDesc, prometheus.GaugeValue, float64(wm)/1000, name, p.Topic, part)
		}
	}
	c.w.mu.Unlock()
	c.w.flushHist.Collect(ch)
}
