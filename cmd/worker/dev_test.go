package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/examples"
	"github.com/eddy-streams/eddy/integration/testenv"
)

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// windowKey is one result of the cascade's stage 2: a customer's window.
type windowKey struct {
	customer string
	start    time.Time
}

// customerTotals are the values stage 2 computes per customer and window.
type customerTotals struct {
	Orders       int64 `json:"orders"`
	Items        int64 `json:"items"`
	RevenueCents int64 `json:"revenue_cents"`
	BigOrders    int64 `json:"big_orders"`
	Countries    int64 `json:"countries"`
}

// cascadeExpect is what the cascade must make of the generated events,
// computed here from the events alone, the way the two pipeline files
// describe it: drop what is not JSON (stage 1's dead letters) and repeated
// order ids (stage 1's dedup), drop qty 0 (its filter), then per customer
// and 5-second window (stage 2) count the orders, add up qty and qty *
// unit_cents, count the orders of 100.00 or more and the distinct
// countries.
type cascadeExpect struct {
	broken, repeats, filtered, enriched int
	windows                             map[windowKey]customerTotals
}

func expectCascade(t *testing.T, evs []examples.Event) cascadeExpect {
	t.Helper()
	e := cascadeExpect{windows: map[windowKey]customerTotals{}}
	seen := map[string]bool{}
	countries := map[windowKey]map[string]bool{}
	for _, ev := range evs {
		var o struct {
			OrderID   string    `json:"order_id"`
			Customer  string    `json:"customer"`
			Country   string    `json:"country"`
			Qty       int64     `json:"qty"`
			UnitCents int64     `json:"unit_cents"`
			TS        time.Time `json:"ts"`
		}
		if json.Unmarshal(ev.Value, &o) != nil {
			e.broken++
			continue
		}
		if seen[o.OrderID] {
			e.repeats++
			continue
		}
		seen[o.OrderID] = true
		if o.Qty <= 0 {
			e.filtered++
			continue
		}
		e.enriched++
		k := windowKey{o.Customer, time.UnixMilli(o.TS.UnixMilli() / 5000 * 5000).UTC()}
		w := e.windows[k]
		w.Orders++
		w.Items += o.Qty
		w.RevenueCents += o.Qty * o.UnitCents
		if o.Qty*o.UnitCents >= 10000 {
			w.BigOrders++
		}
		if countries[k] == nil {
			countries[k] = map[string]bool{}
		}
		countries[k][strings.ToUpper(o.Country)] = true
		w.Countries = int64(len(countries[k]))
		e.windows[k] = w
	}
	return e
}

// printedWindows parses the outputs `worker dev` printed ("→ key=K {json}").
func printedWindows(t *testing.T, out string) (map[windowKey]customerTotals, int) {
	t.Helper()
	got, lines := map[windowKey]customerTotals{}, 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		key, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "→ key="), "  ")
		if !ok || !strings.HasPrefix(sc.Text(), "→ key=") {
			continue
		}
		lines++
		var r struct {
			customerTotals
			Key         string    `json:"key"`
			WindowStart time.Time `json:"window_start"`
			WindowEnd   time.Time `json:"window_end"`
		}
		if err := json.Unmarshal([]byte(rest), &r); err != nil {
			t.Fatalf("printed output %q: %v", sc.Text(), err)
		}
		if r.Key != key || r.WindowEnd.Sub(r.WindowStart) != 5*time.Second {
			t.Errorf("printed output %q: record key %q, window %v to %v", sc.Text(), key, r.WindowStart, r.WindowEnd)
		}
		k := windowKey{r.Key, r.WindowStart.UTC()}
		if prev, dup := got[k]; dup {
			t.Errorf("window %v printed twice: %+v and %+v", k, prev, r.customerTotals)
		}
		got[k] = r.customerTotals
	}
	return got, lines
}

// doneLine reads a stage's "eddy dev: done:" counters.
func doneLine(t *testing.T, out, stage string) (in, outs, filtered, dups, late, poison int) {
	t.Helper()
	m := regexp.MustCompile(`eddy dev: done: ` + regexp.QuoteMeta(stage) +
		`: (\d+) events in, (\d+) out, (\d+) filtered, (\d+) duplicates dropped, (\d+) late, (\d+) poison`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no done line for %s in:\n%s", stage, out)
	}
	n := make([]int, 6)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return n[0], n[1], n[2], n[3], n[4], n[5]
}

// TestDevCascade runs `worker dev -c enrich.yaml -c aggregate.yaml` (the
// cascade example: two stages on one embedded broker, each its own group and
// memory store) for a bounded number of events from a seeded generator, and
// checks that:
//   - the events are the seed's: a new generator with the same seed makes the
//     same events at the same times;
//   - the totals stage 2 printed are exactly those computed here from the
//     generated events (every customer's every window, each once, no other
//     output printed), so nothing was lost, split or counted twice across the
//     hop;
//   - each stage's counters match: stage 1 read every event, dropped the
//     repeats, filtered the empty orders and dead-lettered the broken ones;
//     stage 2 read exactly what stage 1 wrote, with nothing late or repeated;
//   - /readyz answers for both stages and /metrics has both pipelines.
func TestDevCascade(t *testing.T) {
	const events, seed = 1500, 42
	addr := testenv.FreeAddr(t)
	var stderr syncBuffer
	o, err := parseDev([]string{
		"-c", "../../examples/cascade/enrich.yaml", "-c", "../../examples/cascade/aggregate.yaml",
		"-seed", strconv.Itoa(seed), "-events", strconv.Itoa(events), "-rate", "1000", "-print", "1000000", "-http", addr,
	}, &stderr)
	if err != nil {
		t.Fatalf("flags: %v (%s)", err, stderr.String())
	}
	var mu sync.Mutex
	var produced []examples.Event
	o.onProduce = func(ev examples.Event) {
		mu.Lock()
		defer mu.Unlock()
		produced = append(produced, ev)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- dev(ctx, o, &out, zap.NewNop()) }()

	// Wait for every event, then for every window they make to be printed
	// (the last ones close once stage 2's idle timeout lets time pass).
	var want cascadeExpect
	var checkedHTTP bool
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(produced)
		mu.Unlock()
		if n > 0 && !checkedHTTP {
			// The generator starts once both stages are in their groups.
			checkedHTTP = true
			if code, body := get(t, "http://"+addr+PathReady); code != http.StatusOK {
				t.Errorf("%s: %d %s while both stages run", PathReady, code, body)
			}
			_, body := get(t, "http://"+addr+PathMetrics)
			for _, p := range []string{"cascade-enrich", "cascade-aggregate"} {
				if !strings.Contains(body, fmt.Sprintf(`eddy_ready{pipeline=%q} 1`, p)) {
					t.Errorf("/metrics has no eddy_ready 1 for %s", p)
				}
			}
		}
		if n == events && want.windows == nil {
			mu.Lock()
			want = expectCascade(t, produced)
			mu.Unlock()
		}
		if want.windows != nil {
			if _, lines := printedWindows(t, out.String()); lines >= len(want.windows) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("after 60s: %d of %d events produced, stdout:\n%s", n, events, out.String())
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dev: %v\n%s", err, out.String())
	}
	if want.windows == nil {
		t.FailNow()
	}
	stdout := out.String()
	t.Logf("%d events: %d broken, %d repeats, %d empty, %d enriched, %d windows", events,
		want.broken, want.repeats, want.filtered, want.enriched, len(want.windows))
	if want.broken == 0 || want.repeats == 0 || want.filtered == 0 {
		t.Errorf("seed %d makes no broken, repeated or empty order: the test checks less than it should", seed)
	}

	// The seed decides the events: the same seed at the same times again.
	ex, err := examples.Get("cascade")
	if err != nil {
		t.Fatal(err)
	}
	again := ex.New(seed)
	for i, ev := range produced {
		var o struct {
			TS time.Time `json:"ts"`
		}
		_ = json.Unmarshal(ev.Value, &o) // broken events have no time, and their content needs none
		if re := again.Next(o.TS); re.Topic != ev.Topic || re.Key != ev.Key || string(re.Value) != string(ev.Value) {
			t.Fatalf("event %d: seed %d made %s|%s|%s, then %s|%s|%s", i, seed, ev.Topic, ev.Key, ev.Value, re.Topic, re.Key, re.Value)
		}
	}

	got, lines := printedWindows(t, stdout)
	if lines != len(got) {
		t.Errorf("%d outputs printed for %d windows", lines, len(got))
	}
	var keys []windowKey
	for k := range want.windows {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want.windows[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].start.Equal(keys[j].start) {
			return keys[i].start.Before(keys[j].start)
		}
		return keys[i].customer < keys[j].customer
	})
	var wrong int
	for _, k := range keys {
		w, okW := want.windows[k]
		g, okG := got[k]
		if okW && okG && w == g {
			continue
		}
		if wrong++; wrong <= 10 {
			t.Errorf("%s window %s: stage 2 printed %+v (present %v); want %+v (present %v)",
				k.customer, k.start.Format(time.TimeOnly), g, okG, w, okW)
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d windows wrong", wrong, len(keys))
	}

	in, outs, filtered, dups, _, poison := doneLine(t, stdout, "cascade-enrich")
	if in != events || outs != want.enriched || filtered != want.filtered || dups != want.repeats || poison != want.broken {
		t.Errorf("stage 1: %d in, %d out, %d filtered, %d duplicates, %d poison; want %d, %d, %d, %d, %d",
			in, outs, filtered, dups, poison, events, want.enriched, want.filtered, want.repeats, want.broken)
	}
	in, outs, _, dups, late, poison := doneLine(t, stdout, "cascade-aggregate")
	if in != want.enriched || outs != len(want.windows) || dups != 0 || late != 0 || poison != 0 {
		t.Errorf("stage 2: %d in, %d out, %d duplicates, %d late, %d poison; want %d in, %d out, no duplicate, late or poison event",
			in, outs, dups, late, poison, want.enriched, len(want.windows))
	}
}

// TestDevFlags checks how `worker dev` picks what it runs: -c repeated
// runs a cascade with the generator of the first file's folder, -example
// runs an example's embedded pipelines, and the two do not go together.
func TestDevFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		files []string // paths of the pipelines run, upstream first
		gen   string
		err   string // in the error, or the usage message
	}{
		{"default", nil, []string{"examples/" + examples.Default + "/pipeline.yaml"}, examples.Default, ""},
		{"one file", []string{"-c", "../../examples/orders/pipeline.yaml"}, []string{"../../examples/orders/pipeline.yaml"}, "orders", ""},
		{"cascade files", []string{"-c", "../../examples/cascade/enrich.yaml", "-c", "../../examples/cascade/aggregate.yaml"},
			[]string{"../../examples/cascade/enrich.yaml", "../../examples/cascade/aggregate.yaml"}, "cascade", ""},
		{"cascade example", []string{"-example", "cascade"}, []string{"examples/cascade/enrich.yaml", "examples/cascade/aggregate.yaml"}, "cascade", ""},
		{"generator override", []string{"-example", "cascade", "-generator", "orders"}, []string{"examples/cascade/enrich.yaml", "examples/cascade/aggregate.yaml"}, "orders", ""},
		{"both", []string{"-example", "cascade", "-c", "x.yaml"}, nil, "", "-c and -example do not go together"},
		{"unknown example", []string{"-example", "nope"}, nil, "", `no example "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr syncBuffer
			o, err := parseDev(tc.args, &stderr)
			var files []examples.File
			var gen string
			if err == nil {
				files, gen, err = devFiles(o)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.err) {
					t.Fatalf("err %v, stderr %q; want %q", err, stderr.String(), tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, f := range files {
				paths = append(paths, f.Path)
				if len(f.Data) == 0 {
					t.Errorf("%s is empty", f.Path)
				}
			}
			if strings.Join(paths, " ") != strings.Join(tc.files, " ") || gen != tc.gen {
				t.Errorf("runs %v with the %s generator; want %v with %s", paths, gen, tc.files, tc.gen)
			}
		})
	}
}

// TestDevStagesMustDiffer checks that two stages of one dev run cannot
// share a name or a consumer group, and that only the last stage's outputs
// are printed.
func TestDevStagesMustDiffer(t *testing.T) {
	stage := func(name, group, in, out string) examples.File {
		y := fmt.Sprintf("name: %s\nkafka: {group: %q}\nsource: {topics: [%s]}\nsink: {topic: %s}\n", name, group, in, out)
		return examples.File{Path: name + ".yaml", Data: []byte(y)}
	}
	ss, err := devStages([]examples.File{stage("a", "", "raw", "mid"), stage("b", "", "mid", "out")})
	if err != nil {
		t.Fatal(err)
	}
	if ss[0].last || !ss[1].last {
		t.Errorf("last: a %v, b %v; want only b, whose sink nobody reads", ss[0].last, ss[1].last)
	}
	if got := devTopics(ss); strings.Join(got, " ") != "raw mid out" {
		t.Errorf("topics %v; want raw mid out, each once", got)
	}
	join := examples.File{Path: "j.yaml", Data: []byte("name: j\nsource: {topics: [orders]}\nsteps:\n  - join: {with: {topics: [pays]}, on: {left: key, right: key}, within: 1m, late: {topic: jlate}}\nsink: {topic: joined}\n")}
	js, err := devStages([]examples.File{join})
	if err != nil {
		t.Fatal(err)
	}
	if got := devTopics(js); strings.Join(got, " ") != "orders pays joined jlate" {
		t.Errorf("a join's topics %v; want orders pays joined jlate (its other input and late topic created too)", got)
	}
	for _, tc := range []struct {
		name  string
		files []examples.File
		err   string
	}{
		{"same name", []examples.File{stage("a", "", "raw", "mid"), stage("a", "g2", "mid", "out")}, `both pipeline "a"`},
		{"same group", []examples.File{stage("a", "g", "raw", "mid"), stage("b", "g", "mid", "out")}, `share the consumer group "g"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := devStages(tc.files); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err %v; want %q", err, tc.err)
			}
		})
	}
}
