package pipeline

import (
	"slices"
	"testing"
)

// TestKindsTableIsComplete checks that every step kind has each part of
// its definition, in StepKind order, and that Kind recognises it.
func TestKindsTableIsComplete(t *testing.T) {
	one := map[StepKind]StepConfig{
		FilterStep:    {Filter: "true"},
		SetStep:       {Set: FieldExprs{{Name: "a", Expr: "1"}}},
		MapStep:       {Map: FieldExprs{{Name: "a", Expr: "1"}}},
		KeyStep:       {Key: "event.user"},
		ProcessorStep: {Processor: &ProcessorConfig{Name: "p"}},
		AggregateStep: {Aggregate: &AggregateConfig{}},
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
	if got, want := kindNames(), []string{"filter", "set", "map", "key", "processor", "aggregate"}; !slices.Equal(got, want) {
		t.Errorf("kind names %q, want %q", got, want)
	}
	if got := StepKind(0).String(); got != "StepKind(0)" {
		t.Errorf("StepKind(0).String() = %q", got)
	}
	if got := (&StepConfig{}).Kind(); got != 0 {
		t.Errorf("an empty step's kind is %s, want none", got)
	}
}
