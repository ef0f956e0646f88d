package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/eddy-streams/eddy/pipeline"
)

func TestAppendEvent(t *testing.T) {
	for _, size := range []int{16, 100, 250} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			b := appendEvent(nil, 42, "u00017", 523, tsBase+42, 1_763_770_430_123_456_789, size)
			ev, err := pipeline.DecodeJSON(b)
			if err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if ev["user"] != "u00017" || ev["v"] != int64(523) || ev["ts"] != int64(tsBase+42) || ev["pt"] != int64(1_763_770_430_123_456_789) {
				t.Errorf("decoded %v", ev)
			}
			if size >= 100 && len(b) != size {
				t.Errorf("%d bytes, want %d (padded)", len(b), size)
			}
		})
	}
}

func TestBucketQuantile(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: []float64{1, 2, 4}})
	for _, v := range []float64{0.5, 1.5, 1.5, 3, 3, 3, 3, 3, 3, 3} { // 1 in (0,1], 2 in (1,2], 7 in (2,4]
		h.Observe(v)
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ q, want float64 }{
		{0.1, 1},               // rank 1: the end of the first bucket
		{0.2, 1.5},             // rank 2: half way through (1,2]
		{0.5, 2 + 2*(5-3)/7.0}, // rank 5: 2/7 into (2,4]
		{1, 4},
	} {
		if got := bucketQuantile(tc.q, m.GetHistogram()); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("q%.2f = %v, want %v", tc.q, got, tc.want)
		}
	}
	qs, n, err := histQuantiles(prometheus.Collector(h), "x", 0.5)
	if err != nil || n != 10 || math.Abs(qs[0]-(2+4/7.0)) > 1e-9 {
		t.Errorf("histQuantiles = %v, %d, %v", qs, n, err)
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if ds[0] != 5 {
		t.Error("percentile sorted its argument")
	}
}

// The tracker gives each event the arrival time of the first output whose
// count includes it.
func TestTracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := &tracker{from: t0.UnixNano(), wins: map[winKey]*winEvents{}}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	ts := int64(1_700_000_040_000)               // window [1_700_000_040_000, +60 s)
	tr.sent("u1", ts, t0.Add(-ms(5)).UnixNano()) // before the warm-up: not sampled
	tr.sent("u1", ts+10, t0.Add(ms(0)).UnixNano())
	tr.sent("u1", ts+20, t0.Add(ms(10)).UnixNano())
	tr.sent("u2", ts, t0.Add(ms(1)).UnixNano())
	tr.output("u1", 1_700_000_040_000, 2, t0.Add(ms(30))) // counts events 1 and 2
	tr.output("u1", 1_700_000_040_000, 1, t0.Add(ms(40))) // an older count (a replay): nothing new
	tr.output("u1", 1_700_000_040_000, 3, t0.Add(ms(50))) // event 3
	tr.output("u9", 1_700_000_040_000, 1, t0.Add(ms(60))) // unknown window
	want := []time.Duration{ms(30), ms(40)}               // event 2 at 30 ms, event 3 at 50-10 ms
	if len(tr.lat) != len(want) || tr.lat[0] != want[0] || tr.lat[1] != want[1] {
		t.Errorf("latencies %v, want %v", tr.lat, want)
	}
	if tr.produced != 3 || tr.outputs != 4 {
		t.Errorf("produced %d (want 3 after the warm-up), outputs %d (want 4)", tr.produced, tr.outputs)
	}
}

// The failover measurement reads the workers' JSON logs as they grow.
func TestWorkerLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.log")
	line := func(ts, msg string, part int) string {
		b, _ := json.Marshal(map[string]any{"level": "info", "ts": ts, "msg": msg, "partition": part})
		return string(b) + "\n"
	}
	write := func(s string) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	p := &workerProc{log: path}
	claimed := line("2026-11-22T00:00:01.000Z", "partition claimed", 1)
	write(line("2026-11-22T00:00:00.500Z", "partition claimed", 0) + claimed[:20]) // the second line half written
	if own := p.owned(); len(own) != 1 {
		t.Fatalf("owned %v after one complete line", own)
	}
	write(claimed[20:] + line("2026-11-22T00:00:02.000Z", "partition released", 0) + "not json\n")
	own := p.owned()
	if _, ok := own[1]; !ok || len(own) != 1 {
		t.Errorf("owned %v, want partition 1 only", own)
	}
	at := time.Date(2026, 11, 22, 0, 0, 1, 0, time.UTC)
	if got := own[1]; !got.Equal(at) {
		t.Errorf("claimed at %v, want %v", got, at)
	}
	if es := p.since(at); len(es) != 2 || es[1].msg != "partition released" {
		t.Errorf("since %v: %v", at, es)
	}
}

func TestUnseenLine(t *testing.T) {
	if got := unseenLine(0, 500); got != "events never seen in an output: 0 of 500" {
		t.Errorf("none unseen: %q", got)
	}
	if got := unseenLine(3, 497); got != "NOTE: events never seen in an output: 3 of 500 (not in the percentiles above)" {
		t.Errorf("3 unseen: %q", got)
	}
}
