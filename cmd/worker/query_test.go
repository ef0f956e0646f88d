package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// stateAnswer is the body of GET /v1/state/<step>/<key>.
type stateAnswer struct {
	Step    string `json:"step"`
	Key     string `json:"key"`
	Windows []struct {
		Start  time.Time      `json:"window_start"`
		Closed bool           `json:"closed"`
		Result map[string]any `json:"result"`
	} `json:"windows"`
	Error string `json:"error"`
}

func getState(t *testing.T, base, step, key, query string) (int, stateAnswer) {
	t.Helper()
	u := base + PathState + "/" + url.PathEscape(step) + "/" + url.PathEscape(key)
	if query != "" {
		u += "?" + query
	}
	code, body := get(t, u)
	var a stateAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("GET %s: %d, not JSON: %s", u, code, body)
	}
	return code, a
}

// TestQueryAnyWorkerForAnyKey runs two `worker run -query` in one group
// (state in a Redis, then a MariaDB, of the test's own) and asks both, for
// every key, what the aggregate holds: while the input is processed each
// answer is the reference of a prefix of that key's events (its count and
// sum agree), whichever worker owns the key's partition; once it is
// processed both give the reference. Bad requests, and a store outage,
// get JSON errors with their status.
func TestQueryAnyWorkerForAnyKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) (*testenv.Server, string)
	}{
		{"redis", func(t *testing.T) (*testenv.Server, string) {
			rs := testenv.PrivateRedis(t)
			return rs, fmt.Sprintf("state: {backend: redis, redis: {addrs: [%q]}}", rs.Addr())
		}},
		{"mariadb", func(t *testing.T) (*testenv.Server, string) {
			db := testenv.PrivateMariaDB(t)
			return db, fmt.Sprintf("state: {backend: singlestore, singlestore: {dsn: %q, dialect: mysql}}", db.DSN())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, state := tc.store(t)
			queryWorkers(t, srv, state)
		})
	}
}

func queryWorkers(t *testing.T, srv *testenv.Server, state string) {
	brokers := testenv.KafkaBrokers(t)
	in, out, plans := testenv.Topic(t, brokers, 4), testenv.Topic(t, brokers, 4), testenv.Topic(t, brokers, 3)
	file := writePipeline(t, fmt.Sprintf(`name: %s
kafka: {brokers: [%s]}
source: {topics: [%s], event_id: event.id, event_time: event.ts}
%s
flush: {interval: 20ms, max_messages: 50}
tables:
  - {name: plans, topic: %s}
steps:
  - lookup: {table: plans, key: event.user, as: plan, type: left}
  - aggregate: {name: per_user, key: event.user, window: {tumbling: 1h}, values: {n: count(), total: sum(event.v)}}
sink: {topic: %s}
`, testenv.Unique("query"), brokers[0], in, state, plans, out))
	addrs := []string{testenv.FreeAddr(t), testenv.FreeAddr(t)}
	var errs [2]syncBuffer
	done := make(chan int, 2)
	for i, addr := range addrs {
		go func() {
			done <- run([]string{"run", "-c", file, "-http", addr, "-query", "-instance-id", fmt.Sprintf("q%d", i)}, new(syncBuffer), &errs[i])
		}()
	}
	defer func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		for range addrs {
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("worker run exited %d:\n%s\n%s", code, errs[0].String(), errs[1].String())
				}
			case <-time.After(60 * time.Second):
				t.Error("worker run did not stop within 60s of SIGTERM")
			}
		}
	}()
	for _, a := range addrs {
		waitStatus(t, "http://"+a+PathReady, http.StatusOK, "both workers ready")
	}
	// Both in the group: each owns two of the four partitions.
	waitStatus(t, "http://"+addrs[0]+PathState, http.StatusOK, "the query endpoints")

	// 20 users, 30 events each, in one hour-long window: the reference is
	// each user's count and the sum of v over a prefix of their events.
	const users, per = 20, 30
	hour := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	prefix := map[string][]int64{} // user -> sum of v over their first n events
	var msgs []*sarama.ProducerMessage
	for i := range users * per {
		u := fmt.Sprintf("u%d", i%users)
		v := int64(i%7 + 1)
		sums := prefix[u]
		if len(sums) == 0 {
			sums = []int64{0}
		}
		prefix[u] = append(sums, sums[len(sums)-1]+v)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: in, Key: sarama.StringEncoder(u),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"e%d","user":%q,"v":%d,"ts":%d}`, i, u, v, hour.Add(time.Duration(i)*time.Second).UnixMilli()))})
	}
	cfg := testenv.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	// check asks worker w for every user and returns how many are final;
	// every answer must be a prefix of the user's events.
	partial := 0 // answers of a key not yet final
	check := func(w int) (final int) {
		t.Helper()
		for u := range users {
			user := fmt.Sprintf("u%d", u)
			code, a := getState(t, "http://"+addrs[w], "per_user", user, "")
			if code == http.StatusNotFound {
				continue // none of the user's events committed yet
			}
			if code != http.StatusOK || len(a.Windows) != 1 {
				t.Fatalf("worker %d, %s: %d %+v", w, user, code, a)
			}
			n, total := a.Windows[0].Result["n"].(float64), a.Windows[0].Result["total"].(float64)
			if int(n) >= len(prefix[user]) || prefix[user][int(n)] != int64(total) || a.Windows[0].Closed ||
				!a.Windows[0].Start.Equal(hour) || a.Windows[0].Result["key"] != user {
				t.Fatalf("worker %d, %s: n %v total %v (closed %v, start %v); want the sum of v over the first n events (%v)",
					w, user, n, total, a.Windows[0].Closed, a.Windows[0].Start, prefix[user])
			}
			if int(n) == per {
				final++
			} else {
				partial++
			}
		}
		return final
	}
	for i := 0; i < len(msgs); i += 100 {
		if err := prod.SendMessages(msgs[i : i+100]); err != nil {
			t.Fatal(err)
		}
		check(i / 100 % 2) // while it runs, alternately on each worker
	}
	deadline := time.Now().Add(60 * time.Second)
	for check(0) < users || check(1) < users {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the workers do not both answer every user's final count")
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Logf("%d answers of a key whose events were not all processed yet, each a prefix of them", partial)
	base := "http://" + addrs[1]
	// The CLI reads the store directly, and agrees.
	for _, user := range []string{"u3", "u17"} {
		var cli syncBuffer
		if code := run([]string{"state", "get", "-c", file, "-step", "per_user", "-key", user, "-json"}, &cli, &errs[0]); code != 0 {
			t.Fatalf("worker state get: exit %d:\n%s", code, errs[0].String())
		}
		var fromCLI stateAnswer
		if err := json.Unmarshal([]byte(cli.String()), &fromCLI); err != nil {
			t.Fatalf("worker state get -json: %v\n%s", err, cli.String())
		}
		_, fromHTTP := getState(t, base, "per_user", user, "")
		if len(fromCLI.Windows) != 1 || fmt.Sprint(fromCLI.Windows[0].Result) != fmt.Sprint(fromHTTP.Windows[0].Result) {
			t.Errorf("%s: worker state get says %+v, the worker %+v", user, fromCLI, fromHTTP)
		}
	}
	inHour := hour.Add(10 * time.Minute).Format(time.RFC3339)
	for _, c := range []struct {
		step, key, query string
		code             int
		errHas           string
	}{
		{"per_user", "u3", "at=" + inHour, http.StatusOK, ""},
		{"per_user", "u3", "at=" + hour.Add(-time.Minute).Format(time.RFC3339), http.StatusNotFound, "holds no window"},
		{"per_user", "nobody", "", http.StatusNotFound, `no window of key "nobody"`},
		{"nope", "u3", "", http.StatusNotFound, `unknown aggregate step "nope" (have [per_user])`},
		{"per_user", "u3", "at=yesterday", http.StatusBadRequest, "is not an RFC 3339 time"},
	} {
		code, a := getState(t, base, c.step, c.key, c.query)
		if code != c.code || !strings.Contains(a.Error, c.errHas) {
			t.Errorf("%s/%s?%s: %d %q; want %d and an error containing %q", c.step, c.key, c.query, code, a.Error, c.code, c.errHas)
		}
	}
	if code, _ := get(t, base+PathTables+"/nope/k"); code != http.StatusNotFound {
		t.Errorf("an unknown table: %d, want 404", code)
	}
	// A table's rows, from both workers, whoever owns the row's partition
	// of the table topic (3 partitions, the stream 4).
	var rows []*sarama.ProducerMessage
	for u := range users {
		rows = append(rows, &sarama.ProducerMessage{Topic: plans, Key: sarama.StringEncoder(fmt.Sprintf("u%d", u)),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"tier":"t%d"}`, u%3))})
	}
	if err := prod.SendMessages(rows); err != nil {
		t.Fatal(err)
	}
	for w, a := range addrs {
		for u := range users {
			user := fmt.Sprintf("u%d", u)
			waitStatus(t, "http://"+a+PathTables+"/plans/"+user, http.StatusOK, "the table row of "+user)
			_, body := get(t, "http://"+a+PathTables+"/plans/"+user)
			var r struct {
				Row map[string]any `json:"row"`
			}
			if err := json.Unmarshal([]byte(body), &r); err != nil || r.Row["tier"] != fmt.Sprintf("t%d", u%3) {
				t.Errorf("worker %d, plans/%s: %s; want tier t%d", w, user, body, u%3)
			}
		}
	}
	if code, body := get(t, base+PathTables+"/plans/nobody"); code != http.StatusNotFound || !strings.Contains(body, `has no row \"nobody\"`) {
		t.Errorf("a missing row: %d %s; want 404", code, body)
	}

	// The store down: 503, with the reason; back: 200.
	srv.Kill()
	if code, a := getState(t, base, "per_user", "u3", ""); code != http.StatusServiceUnavailable || a.Error == "" {
		t.Errorf("with the store down: %d %+v; want 503 with the reason", code, a)
	}
	srv.Start()
	waitStatus(t, base+PathState+"/per_user/u3", http.StatusOK, "queries after the outage")
}

// waitStatus waits up to a minute for GET url to answer code.
func waitStatus(t *testing.T, url string, code int, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, body := get(t, url)
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s answers %d %s, want %d", what, url, got, body, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStateGetCommandLine: worker state get's mistakes exit 2 before
// anything connects; a memory store cannot be read from outside.
func TestStateGetCommandLine(t *testing.T) {
	file := writePipeline(t, "name: m\nkafka: {brokers: [127.0.0.1:1]}\nsource: {topics: [in]}\nsteps:\n  - aggregate: {name: a, key: key, window: {tumbling: 1m}, values: {n: count()}}\nsink: {topic: out}\n")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"state"}, 2, "usage: worker state get"},
		{[]string{"state", "get", "-c", file}, 2, "-c pipeline.yaml and -key are required"},
		{[]string{"state", "get", "-c", file, "-key", "k"}, 2, "give one of -step and -table"},
		{[]string{"state", "get", "-c", file, "-key", "k", "-step", "a", "-at", "noon"}, 2, `-at: "noon" is not an RFC 3339 time`},
		{[]string{"state", "get", "-c", file, "-key", "k", "-step", "a"}, 1, "state.backend is memory"},
	} {
		var out, errOut syncBuffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, %q%q; want %d and %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.want)
		}
	}
}
