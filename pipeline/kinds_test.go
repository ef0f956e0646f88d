package pipeline

import (
	"slices"
	"strings"
	"testing"
)

// TestKindsTableIsComplete checks that every step kind has each part of
// its definition, in StepKind order, and that Kind recognises it.
func TestKindsTableIsComplete(t *testing.T) {
	one := map[StepKind]StepConfig{
		FilterStep:      {Filter: "true"},
		SetStep:         {Set: FieldExprs{{Name: "a", Expr: "1"}}},
		MapStep:         {Map: FieldExprs{{Name: "a", Expr: "1"}}},
		KeyStep:         {Key: "event.user"},
		ProcessorStep:   {Processor: &ProcessorConfig{Name: "p"}},
		AggregateStep:   {Aggregate: &AggregateConfig{}},
		RepartitionStep: {Repartition: &RepartitionConfig{Key: "event.k"}},
	}
	for i, k := range StepKinds() {
		d := &kinds[i]
		if d.kind != k || k != StepKind(i+1) {
			t.Errorf("kinds[%d] is %d, want StepKind %d", i, d.kind, i+1)
		}
		if d.name == "" || d.set == nil || d.check == nil || d.compile == nil {
			t.Errorf("kind %d (%q): name, set, check and compile are all required", k, d.name)
		}
		sc, ok := one[k]
		if !ok {
			t.Errorf("kind %s: no example config in this test", k)
			continue
		}
		if got := sc.Kind(); got != k {
			t.Errorf("a step with only its %s field set: Kind() = %s", k, got)
		}
	}
	if got, want := kindNames(), []string{"filter", "set", "map", "key", "processor", "aggregate", "repartition"}; !slices.Equal(got, want) {
		t.Errorf("kind names %q, want %q", got, want)
	}
	if got := StepKind(0).String(); got != "StepKind(0)" {
		t.Errorf("StepKind(0).String() = %q", got)
	}
	if got := (&StepConfig{}).Kind(); got != 0 {
		t.Errorf("an empty step's kind is %s, want none", got)
	}
}

func TestRepartitionConfig(t *testing.T) {
	const head = "name: shop\nkafka: {brokers: [k:9092]}\nsource: {topics: [orders]}\nsink: {topic: out}\nsteps:\n"
	p, err := Parse("p.yaml", []byte(head+"  - filter: 'true'\n  - repartition: {key: event.region}\n  - aggregate: {key: key, window: {tumbling: 1m}, values: {n: count()}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Steps[1].Repartition
	if r == nil || r.Name != "step1" || r.Topic != "eddy-shop-step1" || r.Router != "hash" || r.Partitions != 0 || r.Key.Text != "event.region" {
		t.Fatalf("repartition = %+v", r)
	}
	st := p.Stages()
	if len(st) != 2 || st[0].First != 0 || st[0].End != 2 || st[0].Repartition != r || st[0].Internal ||
		st[1].First != 2 || st[1].End != 3 || !st[1].Internal || st[1].Topics[0] != "eddy-shop-step1" || st[1].Repartition != nil {
		t.Errorf("stages = %+v", st)
	}
	if got := p.Topics(); !slices.Equal(got, []string{"orders", "eddy-shop-step1"}) {
		t.Errorf("topics = %v", got)
	}

	for src, want := range map[string]string{
		"  - repartition: {name: a}\n":                  "steps[0].repartition.key: required field missing",
		"  - repartition: {key: key, router: random}\n": `steps[0].repartition.router: "random" is not replay-stable: use round-robin`,
		"  - repartition: {key: key, partitions: -1}\n": "steps[0].repartition.partitions: must not be negative, got -1",
		"  - repartition: {key: key, name: x}\n  - aggregate: {name: x, key: key, window: {tumbling: 1m}, values: {n: count()}}\n": `steps[1].aggregate.name: duplicate step name "x"`,
		"  - repartition: {key: 'event.a +'}\n": "steps[0].repartition.key",
	} {
		_, err := Parse("p.yaml", []byte(head+src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", src, err, want)
		}
	}
	// The internal topic may not be the sink.
	_, err = Parse("p.yaml", []byte("name: shop\nkafka: {brokers: [k:9092]}\nsource: {topics: [orders]}\nsink: {topic: eddy-shop-x}\nsteps:\n  - repartition: {name: x, key: key}\n"))
	if err == nil || !strings.Contains(err.Error(), `its internal topic "eddy-shop-x" is a sink topic`) {
		t.Errorf("internal topic = sink: %v", err)
	}
}
