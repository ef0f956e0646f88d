package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// BenchmarkQuery is the query load test: one `worker run -query` with
// Redis state holding 1,000 keys' windows, asked over loopback by 8
// clients at once for random keys' windows (b.N queries in all). It
// reports queries/s and the p50 and p99 latency; every answer must be 200.
//
//	go test -run '^$' -bench BenchmarkQuery -benchtime 20000x ./cmd/worker/
func BenchmarkQuery(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	in, out := testenv.Topic(b, brokers, 4), testenv.Topic(b, brokers, 4)
	file := benchPipeline(b, fmt.Sprintf(`name: %s
kafka: {brokers: [%s]}
source: {topics: [%s], event_id: event.id, event_time: event.ts}
state: {backend: redis, redis: {addrs: [%q], key_prefix: %q}}
steps:
  - aggregate: {name: per_user, key: event.user, window: {tumbling: 1h}, values: {n: count(), total: sum(event.v)}}
sink: {topic: %s}
`, testenv.Unique("qbench"), brokers[0], in, testenv.RedisAddr(b), testenv.RedisPrefix(b), out))
	addr := testenv.FreeAddr(b)
	done := make(chan int, 1)
	go func() { done <- run([]string{"run", "-c", file, "-http", addr, "-query"}, io.Discard, io.Discard) }()
	defer func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		<-done
	}()
	const users = 1000
	hour := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	var msgs []*sarama.ProducerMessage
	for i := range 3 * users {
		u := fmt.Sprintf("u%d", i%users)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: in, Key: sarama.StringEncoder(u),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"e%d","user":%q,"v":1,"ts":%d}`, i, u, hour.Add(time.Duration(i)*time.Millisecond).UnixMilli()))})
	}
	cfg := testenv.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := prod.SendMessages(msgs); err != nil {
		b.Fatal(err)
	}
	_ = prod.Close()
	base := "http://" + addr + PathState + "/per_user/"
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := http.Get(base + fmt.Sprintf("u%d", users-1)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("the last key never answered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(4) // 8 clients on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		i := 0
		for pb.Next() {
			i++
			t0 := time.Now()
			resp, err := client.Get(base + fmt.Sprintf("u%d", (i*7919)%users))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	took := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/took.Seconds(), "queries/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// benchPipeline writes a pipeline file for a benchmark.
func benchPipeline(b *testing.B, yaml string) string {
	b.Helper()
	path := b.TempDir() + "/pipeline.yaml"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}
