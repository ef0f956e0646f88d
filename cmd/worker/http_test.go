package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// metric returns the value of the first sample of name in a Prometheus
// text exposition, or -1.
func metric(body, name string) float64 {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a worker.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestEndpointsAndMovingMetrics runs `worker dev` with its HTTP endpoints
// and checks /healthz, /readyz and that /metrics' counters grow while
// events flow.
func TestEndpointsAndMovingMetrics(t *testing.T) {
	addr := testenv.FreeAddr(t)
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"dev", "-duration", "12s", "-rate", "200", "-print", "0", "-http", addr, "-log-level", "warn"}, &out, &errs)
	}()
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _ := get(t, base+PathReady); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			code, body := get(t, base+PathReady)
			t.Fatalf("%s never became ready: %d %s", PathReady, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get(t, base+PathHealth); code != http.StatusOK {
		t.Errorf("%s: %d", PathHealth, code)
	}
	_, first := get(t, base+PathMetrics)
	time.Sleep(2 * time.Second)
	_, second := get(t, base+PathMetrics)
	for _, name := range []string{"eddy_events_in_total", "eddy_flushes_total", "eddy_store_calls_total", "eddy_flush_seconds_count"} {
		a, b := metric(first, name), metric(second, name)
		if a < 0 || b <= a {
			t.Errorf("%s did not grow while events flowed: %v then %v", name, a, b)
		}
	}
	if metric(second, "eddy_partitions") != 6 {
		t.Errorf("eddy_partitions = %v, want 6", metric(second, "eddy_partitions"))
	}
	if !strings.Contains(second, `eddy_partition_lag{partition="0",pipeline="clicks",topic="clicks"}`) {
		t.Errorf("no per-partition lag in /metrics")
	}
	if code := <-done; code != 0 {
		t.Fatalf("worker dev exited %d: %s", code, errs.b.String())
	}
}
