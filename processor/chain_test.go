package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
	"github.com/eddy-streams/eddy/windows"
)

const chainYAML = `
name: chain
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_time: event.ts, watermark: {allowed_lateness: 30s}}
flush: {max_messages: 300, interval: 5ms, shutdown_timeout: 2s}
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
sink: {topic: out}
`

type hourly struct {
	Key     string `json:"key"`
	Start   string `json:"window_start"`
	N       int64  `json:"n"`
	Total   int64  `json:"total"`
	Minutes int64  `json:"minutes"`
}

// chained runs 1,200 users' events over 3 hours (out of order by less than
// the allowed lateness), then one event an hour later, through per-minute
// then per-hour aggregates on one partition, with a new owner taking over
// at each offset in restarts, and compares the hourly results with a
// reference computed from the input.
func chained(t *testing.T, restarts []int) {
	const users, perUser, hours = 1_200, 3, 3
	const hour = int64(time.Hour / time.Millisecond)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	rng := rand.New(rand.NewPCG(3, 4))
	type e struct {
		ev
		order int64
	}
	var in []e
	for u := range users {
		for range perUser {
			tm := t0 + rng.Int64N(hours*hour)
			in = append(in, e{ev{fmt.Sprintf("u%04d", u), tm, rng.Int64N(50)}, tm + rng.Int64N(20_000)})
		}
	}
	sort.SliceStable(in, func(i, j int) bool { return in[i].order < in[j].order })
	evs := make([]ev, 0, len(in)+1)
	want := map[[2]string]hourly{}
	mins := map[[2]string]map[int64]bool{}
	for _, x := range in {
		evs = append(evs, x.ev)
		h := t0 + (x.ts-t0)/hour*hour
		k := [2]string{x.user, ts(h)}
		r := want[k]
		r.Key, r.Start = x.user, ts(h)
		r.N++
		r.Total += x.v
		want[k] = r
		if mins[k] == nil {
			mins[k] = map[int64]bool{}
		}
		mins[k][x.ts/60_000] = true
	}
	for k, m := range mins {
		r := want[k]
		r.Minutes = int64(len(m))
		want[k] = r
	}
	evs = append(evs, ev{"closer", t0 + (hours+1)*hour + 60_000, 0})

	store := memory.New()
	got := map[[2]string]hourly{}
	bounds := append(append([]int{0}, restarts...), len(evs))
	for i := 0; i+1 < len(bounds); i++ {
		h := newHarnessYAML(t, chainYAML, store)
		go func() {
			for o := bounds[i]; o < bounds[i+1]; o++ {
				h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: int64(o), Key: []byte(evs[o].user), Value: []byte(evs[o].json())}
			}
		}()
		h.waitMarked(int64(bounds[i+1]))
		h.stop()
		if err := <-h.done; err != nil {
			t.Fatalf("task: %v", err)
		}
		h.done <- nil
		for _, m := range h.prod.sent {
			b, _ := m.Value.Encode()
			var r hourly
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			k := [2]string{r.Key, r.Start}
			if prev, ok := got[k]; ok && prev != r {
				t.Errorf("%v emitted twice: %+v, %+v", k, prev, r)
			}
			got[k] = r
		}
	}
	bad := 0
	for k, w := range want {
		if g := got[k]; g != w {
			if bad++; bad <= 5 {
				t.Errorf("%v: got %+v, want %+v", k, g, w)
			}
		}
	}
	if bad > 0 || len(got) != len(want) {
		t.Errorf("%d of %d hourly results wrong or missing; %d emitted", bad, len(want), len(got))
	}
	// Left open: the closing event's minute window (its result, which
	// would open an hour window, is not out yet).
	left, err := store.Due(context.Background(), statedb.Partition{Topic: "in"}, "", 1<<62, 100)
	if err != nil || len(left) != 1 {
		t.Errorf("%d timers left (%v), want the closing event's minute window", len(left), err)
	}
}

// A downstream aggregate closes its windows by the partition's watermark,
// in the same flush as the upstream windows that feed it, and with more
// than 1,000 open windows per step neither step's timers hide the other's.
func TestChainedAggregatesAreExact(t *testing.T) { chained(t, nil) }

// The same with two owner changes mid-stream: the new owner finds both
// steps' windows and timers, and the partition's watermark.
func TestChainedAggregatesAcrossRestarts(t *testing.T) { chained(t, []int{1_000, 2_500}) }

const layoutYAML = `
name: layout
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_time: event.ts}
flush: {max_messages: 10, interval: 5ms, shutdown_timeout: 2s}
steps:
  - %s
sink: {topic: out}
`

// oldState commits state as an eddy before layout 2 left it: offset 9,
// metadata with only an aggregate's own watermark under its step name.
func oldState(t *testing.T, wm int64) statedb.Store {
	t.Helper()
	st := memory.New()
	ctx := context.Background()
	part := statedb.Partition{Topic: "in"}
	c, err := st.Acquire(ctx, part)
	if err != nil {
		t.Fatal(err)
	}
	w := windows.NewWatermark(0)
	w.Observe(wm)
	meta := encodeMeta(map[string][]byte{"clicks": w.AppendBinary(nil)})
	if err := st.Commit(ctx, &statedb.Commit{Partition: part, Epoch: c.Epoch, Offset: 9, Meta: meta,
		Puts: []statedb.Entry{{Key: "seen-k", Value: []byte("1")}}}); err != nil {
		t.Fatal(err)
	}
	return st
}

// A custom processor's keys are scoped per step now: state written before
// would silently read as absent, so a worker with processor steps refuses
// it, naming the step and the way out, unless told it may upgrade.
func TestOldStateIsRefusedWithProcessorSteps(t *testing.T) {
	yaml := fmt.Sprintf(layoutYAML, "processor: {name: count}")
	count := WithProcessor("count", func(map[string]any) (Processor, error) {
		return ProcessorFunc(func(_ context.Context, r *Record, out Emitter, _ State) error { out.Emit(r); return nil }), nil
	})
	h := newHarnessYAML(t, yaml, oldState(t, 5_000), count)
	var err error
	select {
	case err = <-h.done:
		h.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("the task took over the old state instead of refusing it")
	}
	if !errors.Is(err, errOldLayout) {
		t.Fatalf("task ended with %v, want errOldLayout", err)
	}
	for _, s := range []string{"steps[0]", `"count"`, "WithStateUpgrade", "Upgrading"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}

	h = newHarnessYAML(t, yaml, oldState(t, 5_000), count, WithStateUpgrade())
	h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: 10, Key: []byte("k"), Value: []byte(`{"ts":6000}`)}
	h.waitMarked(11)
	if h.prod.count() != 1 {
		t.Errorf("%d outputs with WithStateUpgrade, want 1", h.prod.count())
	}
}

// An aggregate's keys did not change: old state carries over, and the
// aggregate's own stored watermark becomes the partition's (an event
// behind it is late).
func TestOldAggregateStateCarriesItsWatermark(t *testing.T) {
	yaml := fmt.Sprintf(layoutYAML, "aggregate: {name: clicks, key: key, window: {tumbling: 1s}, values: {n: count()}, late: {topic: late}}")
	h := newHarnessYAML(t, yaml, oldState(t, 5_000))
	h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: 10, Key: []byte("k"), Value: []byte(`{"ts":1000}`)}
	h.waitMarked(11)
	if n := h.w.Stats().Late; n != 1 {
		t.Errorf("%d late events, want 1: the restored watermark (5s) is past [1s,2s)", n)
	}
}
