package examples

import (
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/pipeline"
)

// TestExamples loads every example as `worker dev` would and checks that
// its pipelines are valid, that its generator feeds the first one's source,
// that each later stage of a cascade reads what an earlier stage writes,
// with its own consumer group, and that a seed makes the same events again.
func TestExamples(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			ex, err := Get(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(ex.Pipelines) == 0 {
				t.Fatal("no pipeline")
			}
			var ps []*pipeline.Pipeline
			groups := map[string]bool{}
			for _, f := range ex.Pipelines {
				p, err := pipeline.Parse(f.Path, f.Data, pipeline.WithEnv(func(string) (string, bool) { return "", false }))
				if err != nil {
					t.Fatalf("%s: %v", f.Path, err)
				}
				if groups[p.Spec.Kafka.Group] {
					t.Errorf("%s: group %s is another stage's too", f.Path, p.Spec.Kafka.Group)
				}
				groups[p.Spec.Kafka.Group] = true
				ps = append(ps, p)
			}
			for i, p := range ps[1:] {
				var fed bool
				for _, up := range ps[:i+1] {
					fed = fed || (up.Sink != nil && slices.Contains(p.Spec.Source.Topics, up.Sink.Topics[0]))
				}
				if !fed {
					t.Errorf("%s reads %v, which no earlier stage writes", ex.Pipelines[i+1].Path, p.Spec.Source.Topics)
				}
			}

			now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
			a, b, c := ex.New(7), ex.New(7), ex.New(8)
			same, differ := true, false
			for i := range 200 {
				at := now.Add(time.Duration(i) * 10 * time.Millisecond)
				ea, eb, ec := a.Next(at), b.Next(at), c.Next(at)
				if !slices.Contains(ps[0].Topics(), ea.Topic) {
					t.Fatalf("the generator writes %s, not an input of %s (%v)", ea.Topic, ex.Pipelines[0].Path, ps[0].Topics())
				}
				same = same && ea.Key == eb.Key && string(ea.Value) == string(eb.Value)
				differ = differ || ea.Key != ec.Key || string(ea.Value) != string(ec.Value)
			}
			if !same {
				t.Error("two generators with the same seed made different events")
			}
			if !differ {
				t.Error("generators with different seeds made the same events")
			}
		})
	}
}

// TestCascadeOrders checks the cascade's raw orders: keyed by order id, not
// by the customer stage 1 re-keys them by, and with the repeats, empty and
// broken orders its stage 1 is there to handle.
func TestCascadeOrders(t *testing.T) {
	ex, err := Get("cascade")
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Parse(ex.Pipelines[0].Path, ex.Pipelines[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	g := ex.New(1)
	var repeats, empty, broken int
	seen := map[string]bool{}
	customers := map[string]bool{}
	for i := range 3000 {
		ev := g.Next(time.Now())
		e, err := p.Source.Decode(ev.Value)
		if err != nil {
			broken++
			continue
		}
		id, _ := e["order_id"].(string)
		if ev.Key != id {
			t.Fatalf("event %d: key %q; want the order id %q", i, ev.Key, id)
		}
		if seen[id] {
			repeats++
			continue
		}
		seen[id] = true
		customers[e["customer"].(string)] = true
		if e["qty"] == int64(0) {
			empty++
		}
	}
	t.Logf("3000 events: %d repeats, %d empty, %d broken, %d customers", repeats, empty, broken, len(customers))
	if repeats == 0 || empty == 0 || broken == 0 || len(customers) < 50 {
		t.Errorf("%d repeats, %d empty, %d broken orders, %d customers; want some of each and many customers", repeats, empty, broken, len(customers))
	}
}
