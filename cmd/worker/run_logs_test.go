package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// TestRunLogsOnlyJSONThroughAStoreOutage runs `worker run` with its state
// in a Redis, then a MariaDB, that is killed for a few seconds mid-run
// and started again: every line the worker writes to stderr, the store
// client's own among them, is a JSON object, and the outage is reported,
// not once per retry.
func TestRunLogsOnlyJSONThroughAStoreOutage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) (*testenv.Server, string) // the server and the state section
		// clientLines: the client is known to log on a lost connection
		// (go-redis does; go-sql-driver/mysql mostly returns errors).
		clientLines bool
	}{
		{"redis", func(t *testing.T) (*testenv.Server, string) {
			rs := testenv.PrivateRedis(t)
			return rs, fmt.Sprintf("state: {backend: redis, redis: {addrs: [%q]}}", rs.Addr())
		}, true},
		{"mariadb", func(t *testing.T) (*testenv.Server, string) {
			db := testenv.PrivateMariaDB(t)
			return db, fmt.Sprintf("state: {backend: singlestore, singlestore: {dsn: %q, dialect: mysql}}", db.DSN())
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, state := tc.store(t)
			runThroughOutage(t, srv, state, tc.clientLines)
		})
	}
}

func runThroughOutage(t *testing.T, srv *testenv.Server, state string, clientLines bool) {
	brokers := testenv.KafkaBrokers(t)
	in, out := testenv.Topic(t, brokers, 2), testenv.Topic(t, brokers, 2)
	file := writePipeline(t, fmt.Sprintf(`name: %s
kafka: {brokers: [%s]}
source: {topics: [%s], event_id: event.id, event_time: event.ts}
%s
flush: {interval: 50ms}
steps:
  - aggregate: {key: key, window: {tumbling: 1s}, values: {n: count()}}
sink: {topic: %s}
`, testenv.Unique("logs"), brokers[0], in, state, out))
	addr := testenv.FreeAddr(t)
	var stdout, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"run", "-c", file, "-http", addr, "-unready-after", "1s"}, &stdout, &errs)
	}()
	base := "http://" + addr
	waitReady := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if code, _ := get(t, base+PathReady); code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz never answered %d:\n%s", what, want, errs.b.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitReady(http.StatusOK, "start")
	send := func(from, to int) {
		t.Helper()
		var evs []string
		for i := from; i < to; i++ {
			evs = append(evs, fmt.Sprintf(`{"id":"e%d","ts":%d}`, i, time.Now().UnixMilli()))
		}
		produceLines(t, brokers, in, evs)
	}
	send(0, 50)
	srv.Kill()
	send(50, 100) // the partitions pause on the store
	waitReady(http.StatusServiceUnavailable, "the outage")
	time.Sleep(3 * time.Second)
	srv.Start()
	waitReady(http.StatusOK, "after the outage")
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("worker run exited %d:\n%s", code, errs.b.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker run did not stop within 60s of SIGTERM")
	}
	lines, client := 0, 0
	sc := bufio.NewScanner(strings.NewReader(errs.b.String()))
	for sc.Scan() {
		lines++
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("stderr line %d is not JSON: %s", lines, sc.Text())
			continue
		}
		if m["msg"] == "client library" {
			client++
		}
	}
	if clientLines && client == 0 {
		t.Errorf("no line of the store client's own in the worker's log: it wrote its plain-text lines elsewhere (stderr, unformatted)")
	}
	if !strings.Contains(errs.b.String(), "partition paused") {
		t.Errorf("the outage is not in the log:\n%s", errs.b.String())
	}
	t.Logf("%d log lines, all JSON; %d from the store client", lines, client)
}

// produceLines produces each line as a record, keyed k<i mod 4>.
func produceLines(t *testing.T, brokers []string, topic string, lines []string) {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i, l := range lines {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i%4)), Value: sarama.StringEncoder(l)})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}
