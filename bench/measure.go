package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// histQuantiles reads the histogram called name from c and returns its
// quantiles qs, interpolated linearly within buckets (as Prometheus's
// histogram_quantile does), in seconds, and its count.
func histQuantiles(c prometheus.Collector, name string, qs ...float64) ([]float64, uint64, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, 0, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		out := make([]float64, len(qs))
		for i, q := range qs {
			out[i] = bucketQuantile(q, h)
		}
		return out, h.GetSampleCount(), nil
	}
	return nil, 0, fmt.Errorf("no histogram %s", name)
}

func bucketQuantile(q float64, h *dto.Histogram) float64 {
	n := h.GetSampleCount()
	if n == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	lower, prev := 0.0, uint64(0)
	for _, b := range h.GetBucket() {
		c := b.GetCumulativeCount()
		if float64(c) >= rank {
			inBucket := float64(c - prev)
			if inBucket == 0 {
				return b.GetUpperBound()
			}
			return lower + (b.GetUpperBound()-lower)*(rank-float64(prev))/inBucket
		}
		lower, prev = b.GetUpperBound(), c
	}
	return lower // beyond the last bucket: its bound is all we know
}

// percentile returns the p-th percentile (0..100) of ds by nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// peakRSSMB returns the process's peak resident set size (VmHWM) in MiB.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// loadAvg returns the 1, 5 and 15 minute load averages as /proc/loadavg
// shows them.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// clockTick is USER_HZ, the unit of CPU times in /proc (100 on Linux).
const clockTick = 100

// services are the processes whose CPU time a scenario reports, by a
// fragment of their command line.
var serviceMatch = []struct{ name, match string }{
	{"kafka", "kafka.Kafka"},
	{"redis", "redis-server"},
	{"mariadb", "mariadbd"},
}

// cpuSample is the CPU time used so far by the services and by the whole
// machine.
type cpuSample struct {
	services  map[string]time.Duration
	busy, all uint64 // /proc/stat jiffies: not idle, total
}

func sampleCPU() cpuSample {
	s := cpuSample{services: map[string]time.Duration{}}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid := d.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			continue
		}
		for _, m := range serviceMatch {
			if !strings.Contains(string(cmd), m.match) {
				continue
			}
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				continue
			}
			// Fields after the command (which may hold spaces): state is
			// field 3, utime 14, stime 15.
			rest := string(stat)
			if i := strings.LastIndexByte(rest, ')'); i >= 0 {
				rest = rest[i+1:]
			}
			f := strings.Fields(rest)
			if len(f) > 12 {
				u, _ := strconv.ParseUint(f[11], 10, 64)
				st, _ := strconv.ParseUint(f[12], 10, 64)
				s.services[m.name] += time.Duration(u+st) * time.Second / clockTick
			}
			break
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			s.all += n
			if i != 3 && i != 4 { // idle, iowait
				s.busy += n
			}
		}
	}
	return s
}

// serviceCPU fills res with what the services and the machine used
// between from and now, per event.
func serviceCPU(res *Result, from cpuSample, events int64) {
	to := sampleCPU()
	res.ServiceCPUPerEventUs = map[string]float64{}
	for name, t := range to.services {
		if t0, ok := from.services[name]; ok {
			res.ServiceCPUPerEventUs[name] = float64(t-t0) / float64(time.Microsecond) / float64(events)
		}
	}
	if to.all > from.all {
		res.MachineBusy = float64(to.busy-from.busy) / float64(to.all-from.all)
	}
}
