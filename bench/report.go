package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Report is the whole run, as written to -out.
type Report struct {
	Run      string      `json:"run"`
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	Command  string      `json:"command"`
	Machine  Machine     `json:"machine"`
	Params   Params      `json:"params"`
	Fill     *FillResult `json:"fill,omitempty"`
	// Scenarios are a to h, in order; with -repeat > 1 each holds the
	// median repetition (by events/s) and every repetition's rate.
	Scenarios []*Result         `json:"scenarios"`
	Ratios    map[string]string `json:"ratios"`
	Latency   *Result           `json:"latency,omitempty"`
	Failover  *FailoverResult   `json:"failover,omitempty"`
}

// Params are the run's flags.
type Params struct {
	Events     int `json:"events"`
	Size       int `json:"size"`
	Keys       int `json:"keys"`
	Partitions int `json:"partitions"`
	Repeat     int `json:"repeat"`
	// MaxMessages is flush.max_messages of b to h (0: the default, 1000).
	MaxMessages int `json:"max_messages,omitempty"`
	// BacklogMessages is flush.backlog_messages of b to h (0: the default).
	BacklogMessages int `json:"backlog_messages,omitempty"`
	// GOGC is the environment's GOGC, which the children inherit.
	GOGC      string   `json:"gogc,omitempty"`
	Scenarios []string `json:"scenarios"`
}

// FillResult is how the topic was filled.
type FillResult struct {
	Topic        string  `json:"topic"`
	Events       int     `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	// ReferenceWindows is the number of windows the aggregate scenarios
	// must emit (the reference their outputs are compared with);
	// OpenWindows those still open when the topic ends, which they never
	// emit (see reference.emitted).
	ReferenceWindows int `json:"reference_windows"`
	OpenWindows      int `json:"open_windows"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemoryGB string `json:"memory_gb"`
	Go       string `json:"go"`
	Kafka    string `json:"kafka"`
	Redis    string `json:"redis"`
	// RedisPersistence is Redis's appendonly and appendfsync at the start
	// of the run, read back from the server (the README recommends yes /
	// everysec); each Redis scenario's Result records its own.
	RedisPersistence string `json:"redis_persistence"`
	MariaDB          string `json:"mariadb"`
	LoadBefore       string `json:"load_before"`
	LoadAfter        string `json:"load_after"`
}

func describeMachine(ctx context.Context, cfg *config) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadAvg(),
		CPUModel: procField("/proc/cpuinfo", "model name"), Kafka: "?", Redis: "?", MariaDB: "?"}
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n float64
		if _, err := fmt.Sscan(strings.TrimSuffix(kb, " kB"), &n); err == nil {
			m.MemoryGB = fmt.Sprintf("%.1f", n/1024/1024)
		}
	}
	dir := os.Getenv("EDDY_SERVICES_DIR")
	if dir == "" {
		dir = "/tmp/eddy-services"
	}
	if b, err := os.ReadFile(filepath.Join(dir, "kafka", "version")); err == nil {
		m.Kafka = strings.TrimSpace(string(b)) + " (make services)"
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: cfg.redis})
	if info, err := rdb.Info(cctx, "server").Result(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
				m.Redis = v
			}
		}
	}
	_ = rdb.Close()
	if p, err := redisPersistence(cctx, cfg.redis); err == nil {
		m.RedisPersistence = p
	}
	if db, err := sql.Open("mysql", cfg.mysql); err == nil {
		_ = db.QueryRowContext(cctx, "SELECT VERSION()").Scan(&m.MariaDB)
		_ = db.Close()
	}
	return m
}

// procField returns the value of the first "name: value" line of a /proc
// file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// summarize keeps the median repetition of each scenario and computes the
// ratios.
func (r *Report) summarize(results map[string][]*Result) {
	r.Scenarios = nil
	for _, s := range throughput {
		rs := results[s]
		if len(rs) == 0 {
			continue
		}
		slices.SortFunc(rs, func(a, b *Result) int {
			switch {
			case a.EventsPerSec < b.EventsPerSec:
				return -1
			case a.EventsPerSec > b.EventsPerSec:
				return 1
			}
			return 0
		})
		med := rs[len(rs)/2]
		if len(rs) > 1 {
			for _, x := range rs {
				med.Runs = append(med.Runs, x.EventsPerSec)
			}
		}
		r.Scenarios = append(r.Scenarios, med)
	}
	r.Ratios = map[string]string{}
	a := r.scenario("a")
	for _, res := range r.Scenarios {
		if a != nil && a.EventsPerSec > 0 {
			res.RatioToA = res.EventsPerSec / a.EventsPerSec
		}
	}
	ratio := func(x, y string) {
		rx, ry := r.scenario(x), r.scenario(y)
		if rx != nil && ry != nil && ry.EventsPerSec > 0 {
			r.Ratios[x+"/"+y] = fmt.Sprintf("%.3f", rx.EventsPerSec/ry.EventsPerSec)
		}
	}
	for _, s := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		ratio(s, "a")
	}
	ratio("d", "c")
	ratio("e", "c")
	ratio("f", "d")
	ratio("d", "g")
	ratio("h", "d")
	ratio("i", "c")
	ratio("c", "b")
}

func (r *Report) scenario(s string) *Result {
	for _, res := range r.Scenarios {
		if res.Scenario == s {
			return res
		}
	}
	return nil
}

func (r *Report) print(w io.Writer) {
	fmt.Fprintf(w, "\neddy bench, run %s: %d events of ~%d bytes, %d keys, %d partitions, repeat %d",
		r.Run, r.Params.Events, r.Params.Size, r.Params.Keys, r.Params.Partitions, r.Params.Repeat)
	if r.Params.BacklogMessages > 0 {
		fmt.Fprintf(w, ", flush.backlog_messages %d", r.Params.BacklogMessages)
	}
	if r.Params.MaxMessages > 0 {
		fmt.Fprintf(w, ", flush.max_messages %d", r.Params.MaxMessages)
	}
	if r.Params.GOGC != "" {
		fmt.Fprintf(w, ", GOGC=%s", r.Params.GOGC)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%d CPUs (%s), %s GB, %s, Kafka %s, Redis %s (%s), MariaDB %s; load %s -> %s\n\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemoryGB, r.Machine.Go, r.Machine.Kafka, r.Machine.Redis,
		r.Machine.RedisPersistence, r.Machine.MariaDB, r.Machine.LoadBefore, r.Machine.LoadAfter)
	if len(r.Scenarios) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tevents/s\t/a\tCPU µs/event\tcores\tstore calls/event\tevents/flush\tflush p50 ms\tflush p99 ms\tcommit p50 ms\tcommit p99 ms\toutputs\talloc B/event\tpeak RSS MB\t")
		for _, s := range r.Scenarios {
			fmt.Fprintf(tw, "%s %s\t%.0f\t%.3f\t%.2f\t%.2f\t%.4f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%.0f\t\n",
				s.Scenario, s.Name, s.EventsPerSec, s.RatioToA, s.CPUPerEventUs, s.CPUCores, s.StoreCallsPerEvent, s.EventsPerFlush,
				s.FlushP50Ms, s.FlushP99Ms, s.CommitP50Ms, s.CommitP99Ms, s.Outputs, s.AllocPerEvent, s.PeakRSSMB)
		}
		_ = tw.Flush()
		for _, s := range r.Scenarios {
			if notes := s.notes(); len(notes) > 0 {
				fmt.Fprintf(w, "%s %s: %s\n", s.Scenario, s.Name, strings.Join(notes, "; "))
			}
		}
		keys := make([]string, 0, len(r.Ratios))
		for k := range r.Ratios {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprint(w, "\nratios:")
		for _, k := range keys {
			fmt.Fprintf(w, "  %s %s", k, r.Ratios[k])
		}
		fmt.Fprintln(w)
	}
	if l := r.Latency; l != nil && l.Latency != nil {
		x := l.Latency
		fmt.Fprintf(w, "\nend-to-end latency (d, emit on_update, transactions %t, %d keys: %.2f outputs/event) at %d events/s (achieved %.0f/s, final lag %d): p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (%d samples; flush p50 %.1f ms p99 %.1f ms; peak RSS %.0f MB)\n",
			x.Transactions, x.Keys, x.OutputsPerEvent, x.TargetRate, x.AchievedRate, x.FinalLag, x.P50Ms, x.P90Ms, x.P99Ms, x.MaxMs, x.Samples, x.FlushP50Ms, x.FlushP99Ms, l.PeakRSSMB)
		fmt.Fprintf(w, "%s\n", unseenLine(x.Unseen, x.Samples))
		if l.RedisPersistence != "" {
			fmt.Fprintf(w, "latency state: Redis %s\n", l.RedisPersistence)
		}
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(w, "\nfailover (two worker processes, Redis state, SIGKILL one; session timeout %d ms, heartbeat %d ms; producer %d events/s):\n",
			f.SessionTimeoutMs, f.HeartbeatMs, f.ProducerRate)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "keys\twindow states\tkill\tdetection ms\tclaimed ms\tfirst flush ms\tall flushed (raw) ms\tafter detection ms\tclaim→flush ms\t")
		for _, s := range f.Sizes {
			for i, k := range s.Kills {
				fmt.Fprintf(tw, "%d\t%d\t%d %s %v\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", s.Keys, s.StateEntries, i+1, k.Victim, k.Partitions,
					k.DetectionMs, k.ClaimMs, k.FirstFlushMs, k.RawMs, k.AfterDetectionMs, k.ClaimToFlushMs)
			}
			fmt.Fprintf(tw, "%d\tmedian\t\t%.0f\t\t\t%.0f\t%.0f\t%.0f\t\n", s.Keys, s.DetectionMs, s.RawMs, s.AfterDetectionMs, s.ClaimToFlushMs)
		}
		_ = tw.Flush()
	}
}

// unseenLine says how many events of the latency run were never seen in an
// output (their latency is not in the percentiles); any is worth a look.
func unseenLine(unseen, samples int) string {
	if unseen == 0 {
		return fmt.Sprintf("events never seen in an output: 0 of %d", samples)
	}
	return fmt.Sprintf("NOTE: events never seen in an output: %d of %d (not in the percentiles above)", unseen, unseen+samples)
}

// notes are what the table does not show of a scenario: the Redis
// persistence it ran with, how its outputs compared with the reference
// and the late events, if any.
func (res *Result) notes() []string {
	var notes []string
	if res.RedisPersistence != "" {
		notes = append(notes, "Redis "+res.RedisPersistence)
	}
	if c := res.OutputsCompared; c != nil {
		notes = append(notes, "outputs compared: "+c.Summary)
	}
	if res.Late > 0 {
		notes = append(notes, fmt.Sprintf("%d late events", res.Late))
	}
	return notes
}
