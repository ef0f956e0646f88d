package integration_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
)

// The chain tests run the most common rollup, per-minute results summed
// per hour by a second aggregate, on real Kafka with every backend, and
// compare the hourly results with a reference computed here from the
// input alone. They fail on a runtime whose downstream aggregate closes
// windows by the times of the records that reach it (the last hour never
// closes) or whose operators see each other's timers (with more than
// 1,000 open windows on a partition, upstream windows close late and
// their results reach the downstream step late).

const chainPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source:
  topics: [%s]
  event_time: event.ts
  watermark: {allowed_lateness: 30s}
state: %s
flush: {max_messages: 400, interval: 20ms, shutdown_timeout: 15s}
steps:
  - aggregate:
      name: per_minute
      key: event.user
      window: {tumbling: 1m}
      values: {n: count(), total: sum(event.v)}
  - aggregate:
      name: per_hour
      key: event.key
      window: {tumbling: 1h}
      values: {n: sum(event.n), total: sum(event.total), minutes: count()}
sink: {topic: %s}
`

// chainT0 is the start of the input's first hour.
var chainT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

const (
	chainHours  = 3
	chainPerKey = 4 // events per user
	hourMs      = int64(time.Hour / time.Millisecond)
)

// chainInput makes users*chainPerKey events over chainHours hours, out of
// order by up to 20 s (less than the allowed lateness, so none is late),
// and then per partition one event an hour past the rest, which moves the
// partition's watermark past every hour of the data.
func chainInput(t *testing.T, users int, parts int32) []aggEvent {
	rng := rand.New(rand.NewPCG(7, uint64(users)))
	type ev struct {
		aggEvent
		order int64
	}
	var evs []ev
	for u := range users {
		for range chainPerKey {
			ts := chainT0 + rng.Int64N(chainHours*hourMs)
			evs = append(evs, ev{aggEvent{User: fmt.Sprintf("u%05d", u), TS: ts, V: rng.Int64N(100)}, ts + rng.Int64N(20_000)})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].order < evs[j].order })
	out := make([]aggEvent, 0, len(evs)+int(parts))
	for _, e := range evs {
		out = append(out, e.aggEvent)
	}
	closeAt := chainT0 + (chainHours+1)*hourMs + 60_000
	for p := range parts {
		for i := 0; ; i++ {
			k := fmt.Sprintf("closer-%d", i)
			if partitionOf(t, k, parts) == p {
				out = append(out, aggEvent{User: k, TS: closeAt, V: 0})
				break
			}
		}
	}
	return out
}

// hourResult is one (user, hour) result of the chain.
type hourResult struct {
	Key     string    `json:"key"`
	Start   time.Time `json:"window_start"`
	End     time.Time `json:"window_end"`
	N       int64     `json:"n"`
	Total   int64     `json:"total"`
	Minutes int64     `json:"minutes"`
}

// chainReference is the hourly results of the data (the closing events'
// windows never close): per user and hour, the events' count and sum and
// the number of distinct minutes they fall in.
func chainReference(evs []aggEvent) map[[2]string]hourResult {
	ref := map[[2]string]hourResult{}
	minutes := map[[2]string]map[int64]bool{}
	for _, e := range evs {
		if e.TS >= chainT0+chainHours*hourMs {
			continue // a closing event
		}
		h := chainT0 + (e.TS-chainT0)/hourMs*hourMs
		k := [2]string{e.User, time.UnixMilli(h).UTC().Format(time.RFC3339)}
		r := ref[k]
		r.Key, r.Start, r.End = e.User, time.UnixMilli(h).UTC(), time.UnixMilli(h+hourMs).UTC()
		r.N++
		r.Total += e.V
		ref[k] = r
		if minutes[k] == nil {
			minutes[k] = map[int64]bool{}
		}
		minutes[k][e.TS/60_000] = true
	}
	for k, m := range minutes {
		r := ref[k]
		r.Minutes = int64(len(m))
		ref[k] = r
	}
	return ref
}

type chainCase struct {
	users   int
	parts   int32
	restart bool
}

func TestChainedAggregates(t *testing.T) {
	backends := append([]aggBackend{{"memory", func(*testing.T) string { return "{backend: memory}" }}}, aggBackends...)
	cases := []chainCase{
		{users: 1_500, parts: 1},                // 1,500 open windows per step on one partition
		{users: 4_400, parts: 4},                // 1,100 per partition
		{users: 1_500, parts: 1, restart: true}, // a worker stopped mid-stream, another finishing
		{users: 4_400, parts: 4, restart: true},
	}
	for _, b := range backends {
		for _, c := range cases {
			name := fmt.Sprintf("%s/%dpartitions/%dusers", b.name, c.parts, c.users)
			if c.restart {
				name += "/restart"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				testChain(t, b, c)
			})
		}
	}
}

func testChain(t *testing.T, b aggBackend, c chainCase) {
	brokers := testenv.KafkaBrokers(t)
	in, out := testenv.Topic(t, brokers, c.parts), testenv.Topic(t, brokers, c.parts)
	p := loadPipeline(t, chainPipeline, testenv.Unique("chain"), in, b.state(t), out)
	store := openStore(t, p) // the memory store is shared by the workers; others open their own
	group := testenv.Group(t)
	prod := newSyncProducer(t, brokers)
	evs := chainInput(t, c.users, c.parts)
	ref := chainReference(evs)

	start := func(name string) func() {
		st := store
		if b.name != "memory" {
			st = openStore(t, p)
		}
		_, stop := startWorker(t, name, p, brokers, group, st,
			processor.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(name)))
		return stop
	}
	ends := func() map[int32]int64 {
		e := partitionEnds(t, brokers, in)
		for p := range e {
			e[p]--
		}
		return e
	}
	if c.restart {
		half := len(evs) / 2
		if err := prod.send(in, aggMessages(evs[:half])); err != nil {
			t.Fatal(err)
		}
		stop := start("a")
		waitStored(t, store, in, c.parts, ends(), 60*time.Second, "worker a to persist the first half")
		stop()
		// Windows of both steps are open in the store: worker b must find
		// them, with the partition's watermark.
		if err := prod.send(in, aggMessages(evs[half:])); err != nil {
			t.Fatal(err)
		}
		stop = start("b")
		waitStored(t, store, in, c.parts, ends(), 60*time.Second, "worker b to persist the rest")
		stop()
	} else {
		if err := prod.send(in, aggMessages(evs)); err != nil {
			t.Fatal(err)
		}
		stop := start("w")
		waitStored(t, store, in, c.parts, ends(), 60*time.Second, "the worker to persist every input")
		stop()
	}

	got := map[[2]string]hourResult{}
	byID := map[string]hourResult{}
	for _, m := range readTopic(t, brokers, out, 30*time.Second) {
		var r hourResult
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("output %d/%d: %s: %v", m.Partition, m.Offset, m.Value, err)
		}
		id := header(m, processor.IDHeader)
		if prev, ok := byID[id]; ok && prev != r {
			t.Errorf("eddy-id %s carries two results: %+v and %+v", id, prev, r)
		}
		byID[id] = r
		k := [2]string{r.Key, r.Start.UTC().Format(time.RFC3339)}
		if prev, ok := got[k]; ok && prev != r {
			t.Errorf("hour %v emitted twice with different results: %+v and %+v", k, prev, r)
		}
		got[k] = r
	}
	var missing, wrong, extra []string
	for k, want := range ref {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprint(k))
		case g.N != want.N || g.Total != want.Total || g.Minutes != want.Minutes || !g.End.Equal(want.End):
			wrong = append(wrong, fmt.Sprintf("%v: got %+v, want %+v", k, g, want))
		}
	}
	for k := range got {
		if _, ok := ref[k]; !ok {
			extra = append(extra, fmt.Sprint(k))
		}
	}
	lastHour := time.UnixMilli(chainT0 + (chainHours-1)*hourMs).UTC().Format(time.RFC3339)
	inLast := 0
	for k := range got {
		if k[1] == lastHour {
			inLast++
		}
	}
	t.Logf("%d events, %d hourly results (%d distinct ids), reference %d, %d in the last hour", len(evs), len(got), len(byID), len(ref), inLast)
	for _, l := range []struct {
		what string
		keys []string
	}{{"missing", missing}, {"wrong", wrong}, {"unexpected", extra}} {
		if len(l.keys) > 0 {
			slices.Sort(l.keys)
			t.Errorf("%d hourly results %s, e.g. %v", len(l.keys), l.what, l.keys[:min(5, len(l.keys))])
		}
	}
	if inLast == 0 {
		t.Error("no result for the last hour of the data")
	}
	// Every window of the data closed: what is left open per partition
	// is the closing event's minute window (its result, which would open
	// an hour window, is not out yet).
	for part := range c.parts {
		left, err := store.Due(t.Context(), statedb.Partition{Topic: in, Partition: part}, "", math.MaxInt64, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 {
			t.Errorf("partition %d: %d timers left, want 1 (the closing event's minute): %v", part, len(left), left[:min(4, len(left))])
		}
	}
}
