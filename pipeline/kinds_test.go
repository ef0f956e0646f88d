package pipeline

import (
	"slices"
	"strings"
	"testing"
	"time"
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
		JoinStep:        {Join: &JoinConfig{}},
		LookupStep:      {Lookup: &LookupConfig{}},
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
	if got, want := kindNames(), []string{"filter", "set", "map", "key", "processor", "aggregate", "repartition", "join", "lookup"}; !slices.Equal(got, want) {
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

// TestJoinConfig: a join splits the pipeline into the stage before it
// (routed, tagged left), a stage for its other input (routed, tagged
// right) and the stage that runs the join on their one internal topic,
// whose watermark comes from both.
func TestJoinConfig(t *testing.T) {
	src := `name: shop
kafka: {brokers: [k:9092]}
source: {topics: [orders], event_time: event.ts}
steps:
  - filter: event.total > 0
  - join:
      name: paid
      with: {topics: [payments], event_id: event.pid, event_time: event.at}
      on: {left: event.id, right: event.order}
      within: 10m
      grace: 5s
      type: left
      select: {order: left.id, amount: right.amount}
  - set: {late: false}
sink: {topic: out}
`
	p, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	j := p.Steps[1].Join
	if j == nil || j.Name != "paid" || j.Topic != "eddy-shop-paid" || j.Within != 10*time.Minute || j.Grace != 5*time.Second ||
		j.Type != JoinLeft || j.LeftKey.Text != "event.id" || j.RightKey.Text != "event.order" || len(j.Select) != 2 ||
		!slices.Equal(j.With.Topics, []string{"payments"}) || j.With.EventID.Text != "event.pid" || j.With.Start != StartEarliest {
		t.Fatalf("join = %+v", j)
	}
	if !j.Emits(SideLeft) || j.Emits(SideRight) {
		t.Errorf("a left join emits unmatched left events only")
	}
	st := p.Stages()
	if len(st) != 3 {
		t.Fatalf("%d stages, want 3: %+v", len(st), st)
	}
	if s := st[0]; s.First != 0 || s.End != 1 || s.Repartition == nil || s.Repartition.Side != SideLeft ||
		s.Repartition.Key != j.LeftKey || s.Repartition.Topic != j.Topic || s.Source != &p.Source {
		t.Errorf("stage 0 = %+v", s)
	}
	if s := st[1]; s.First != 1 || s.End != 1 || s.Repartition == nil || s.Repartition.Side != SideRight ||
		s.Repartition.Key != j.RightKey || s.Source != &j.With || !slices.Equal(s.Topics, []string{"payments"}) {
		t.Errorf("stage 1 (the join's other input) = %+v", s)
	}
	if s := st[2]; s.First != 1 || s.End != 3 || !s.Internal || s.Repartition != nil || !slices.Equal(s.Upstream, []int{0, 1}) ||
		!slices.Equal(s.Topics, []string{"eddy-shop-paid"}) {
		t.Errorf("stage 2 (the join) = %+v", s)
	}
	if got := p.Topics(); !slices.Equal(got, []string{"orders", "payments", "eddy-shop-paid"}) {
		t.Errorf("Topics() = %v", got)
	}

	bad := `name: shop
kafka: {brokers: [k:9092]}
source: {topics: [orders]}
steps:
  - join:
      with: {topics: [orders], start: latest}
      on: {left: event.id}
      within: 0s
      type: sideways
      select: {x: left.id + 1, y: lft.id}
sink: {topic: out}
`
	_, err = Parse("p.yaml", []byte(bad))
	for _, want := range []string{
		`p.yaml:6:39: steps[0].join.with.start: a join's input starts where source.start says`,
		`p.yaml:6:23: steps[0].join.with.topics[0]: topic "orders" is also a source topic: a self-join is not supported`,
		`steps[0].join.on.right: required field missing`,
		`p.yaml:8:15: steps[0].join.within: must be greater than 0, got 0s`,
		`p.yaml:9:13: steps[0].join.type: "sideways" is not one of inner, left, right, outer`,
		`p.yaml:10:35: steps[0].join.select.y: undeclared reference to 'lft' (did you mean 'left'?)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors %v\nwant one with %q", err, want)
		}
	}
}

// TestTablesAndLookups: each table adds a stage of its own that reads its
// topic (no steps); a lookup names a table, defaults to inner and to a
// field named after the table; mistakes name their field.
func TestTablesAndLookups(t *testing.T) {
	src := `name: shop
kafka: {brokers: [k:9092]}
source: {topics: [clicks]}
tables:
  - {name: profiles, topic: user-profiles}
steps:
  - lookup: {table: profiles, key: event.user}
  - lookup: {table: profiles, key: event.referrer, type: left, as: ref}
sink: {topic: out}
`
	p, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tables) != 1 || p.Tables[0].Name != "profiles" || p.Tables[0].Topic != "user-profiles" || p.Tables[0].Format != FormatJSON {
		t.Fatalf("tables = %+v", p.Tables)
	}
	l0, l1 := p.Steps[0].Lookup, p.Steps[1].Lookup
	if l0.Table != p.Tables[0] || l0.Type != JoinInner || l0.As != "profiles" || l0.Key.Text != "event.user" || l1.Type != JoinLeft || l1.As != "ref" {
		t.Errorf("lookups = %+v, %+v", l0, l1)
	}
	st := p.Stages()
	if len(st) != 2 || st[1].Table != p.Tables[0] || !slices.Equal(st[1].Topics, []string{"user-profiles"}) || st[1].First != st[1].End || st[0].End != 2 {
		t.Errorf("stages = %+v", st)
	}
	if got := p.Topics(); !slices.Equal(got, []string{"clicks", "user-profiles"}) {
		t.Errorf("Topics() = %v", got)
	}

	bad := `name: shop
kafka: {brokers: [k:9092]}
source: {topics: [clicks], start: latest}
tables:
  - {name: profiles, topic: clicks}
  - {name: profiles, topic: t2}
steps:
  - lookup: {table: users, key: event.user, type: outer}
sink: {topic: t2}
`
	_, err = Parse("p.yaml", []byte(bad))
	for _, want := range []string{
		`p.yaml:3:35: source.start: tables are read from their earliest offset`,
		`p.yaml:5:29: tables[0].topic: topic "clicks" is also a source topic`,
		`p.yaml:6:12: tables[1].name: table "profiles" is also tables[0]`,
		`p.yaml:8:21: steps[0].lookup.table: no table "users" (tables: profiles, profiles)`,
		`p.yaml:8:51: steps[0].lookup.type: a lookup is inner or left, got "outer"`,
		`p.yaml:9:15: sink.topic: topic "t2" is tables[1]'s topic`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors %v\nwant one with %q", err, want)
		}
	}
}
