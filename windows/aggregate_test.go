package windows

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNewAggregator(t *testing.T) {
	tests := []struct {
		name string
		defs []Def
		want string
	}{
		{"all functions", []Def{{"a", "count"}, {"b", "sum"}, {"c", "min"}, {"d", "max"}, {"e", "avg"}, {"f", "first"}, {"g", "last"}, {"h", "count_distinct"}}, ""},
		{"none", nil, "no aggregates"},
		{"unknown function", []Def{{"n", "count"}, {"total", "summ"}}, `aggregate "total": unknown function "summ"`},
		{"case matters", []Def{{"n", "COUNT"}}, `unknown function "COUNT"`},
		{"empty name", []Def{{"", "sum"}}, "aggregate 0 (sum): name is empty"},
		{"duplicate name", []Def{{"x", "sum"}, {"x", "max"}}, `aggregate "x": name used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewAggregator(tt.defs)
			if tt.want == "" {
				if err != nil || len(g.Defs()) != len(tt.defs) {
					t.Fatalf("NewAggregator = %v, %v", g, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewAggregator error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

type ev struct {
	v any
	t int64
}

// run adds events to a one-aggregate accumulator and returns its result
// or the first error.
func run(t *testing.T, fn string, events []ev) (any, error) {
	t.Helper()
	g, err := NewAggregator([]Def{{Name: "x", Func: fn}})
	if err != nil {
		t.Fatal(err)
	}
	acc := g.NewAcc()
	for _, e := range events {
		if err := acc.Add([]any{e.v}, e.t); err != nil {
			return acc.Result()[0], err
		}
	}
	return acc.Result()[0], nil
}

func vals(vs ...any) []ev {
	events := make([]ev, len(vs))
	for i, v := range vs {
		events[i] = ev{v, int64(i)}
	}
	return events
}

func TestAggregateResults(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	t1 := t0.Add(time.Hour)
	tests := []struct {
		name   string
		fn     string
		events []ev
		want   any
		err    error // errors.Is target for the last Add
	}{
		{"count empty", "count", nil, int64(0), nil},
		{"count counts nils and anything", "count", vals(nil, 1, "a", []any{1}, map[string]any{}), int64(5), nil},

		{"sum empty", "sum", nil, nil, nil},
		{"sum only nils", "sum", vals(nil, nil), nil, nil},
		{"sum ints", "sum", vals(int64(1), int64(2), nil, int64(-4)), int64(-1), nil},
		{"sum converts small int types", "sum", vals(1, int32(2), uint8(3), int8(-1)), int64(5), nil},
		{"sum uint64", "sum", vals(uint64(7), int64(-2)), int64(5), nil},
		{"sum with a float is float", "sum", vals(int64(1), 2.5), 3.5, nil},
		{"sum of integral floats is float", "sum", vals(1.0, 2.0), 3.0, nil},
		{"sum overflow becomes float", "sum", vals(int64(math.MaxInt64), int64(1)), 9223372036854775808.0, nil},
		{"sum back in range is int again", "sum", vals(int64(math.MaxInt64), int64(1), int64(-2)), int64(math.MaxInt64 - 1), nil},
		{"sum negative overflow", "sum", vals(int64(math.MinInt64), int64(-1)), -9223372036854775809.0, nil},
		{"sum big uints", "sum", vals(uint64(math.MaxUint64), uint64(math.MaxUint64)), 2 * 18446744073709551615.0, nil},
		{"sum exact across overflow with floats", "sum", vals(int64(math.MaxInt64), 1.0, int64(-math.MaxInt64)), 1.0, nil},
		{"sum compensated", "sum", vals(1e16, 1.5, -1e16), 1.5, nil},
		{"sum json.Number", "sum", vals(json.Number("3"), json.Number("0.5"), json.Number("18446744073709551615")), 18446744073709551618.5, nil},
		{"sum string is an error", "sum", vals(int64(1), "2"), int64(1), ErrUnsupportedType},
		{"sum bool is an error", "sum", vals(true), nil, ErrUnsupportedType},
		{"sum NaN is an error", "sum", vals(1.0, math.NaN()), 1.0, ErrNotFinite},
		{"sum Inf is an error", "sum", vals(math.Inf(1)), nil, ErrNotFinite},
		{"sum list is an error", "sum", vals([]any{1}), nil, ErrUnsupportedType},
		{"sum bad json.Number", "sum", vals(json.Number("x")), nil, ErrUnsupportedType},

		{"avg empty", "avg", vals(nil), nil, nil},
		{"avg ints is float", "avg", vals(int64(1), int64(2)), 1.5, nil},
		{"avg mixed", "avg", vals(int64(1), 2.0, nil, 0.5), 3.5 / 3, nil},
		{"avg exact with huge ints", "avg", vals(int64(math.MaxInt64), int64(math.MaxInt64)), float64(math.MaxInt64), nil},
		{"avg string is an error", "avg", vals("x"), nil, ErrUnsupportedType},

		{"min empty", "min", nil, nil, nil},
		{"min ints", "min", vals(int64(3), nil, int64(-2), int64(5)), int64(-2), nil},
		{"min mixed keeps winner type float", "min", vals(int64(3), 2.5, uint64(4)), 2.5, nil},
		{"min mixed keeps winner type uint", "min", vals(3.5, uint64(3), int64(4)), uint64(3), nil},
		{"min tie keeps earlier", "min", vals(1.0, int64(1)), 1.0, nil},
		{"min exact beyond float precision", "min", vals(float64(1<<53), int64(1<<53+1)), float64(1 << 53), nil},
		{"min negative int vs uint", "min", vals(uint64(math.MaxUint64), int64(-1)), int64(-1), nil},
		{"min strings bytewise", "min", vals("b", "B", "a"), "B", nil},
		{"min times", "min", vals(t1, t0), t0, nil},
		{"min bools", "min", vals(true, false), false, nil},
		{"min string after number is an error", "min", vals(int64(1), "a"), int64(1), ErrMixedTypes},
		{"min number after string is an error", "min", vals("a", 1.5), "a", ErrMixedTypes},
		{"min time after number is an error", "min", vals(int64(1), t0), int64(1), ErrMixedTypes},
		{"min map is an error", "min", vals(map[string]any{}), nil, ErrUnsupportedType},

		{"max ints and floats", "max", vals(int64(3), 3.5, int64(-9), uint64(2)), 3.5, nil},
		{"max int beyond float", "max", vals(float64(1<<62), int64(1<<62+1)), int64(1<<62 + 1), nil},
		{"max big uint", "max", vals(1e19, uint64(math.MaxUint64)), uint64(math.MaxUint64), nil},
		{"max float above uint range", "max", vals(uint64(math.MaxUint64), 1e20), 1e20, nil},
		{"max tie keeps earlier", "max", vals(int64(2), 2.0, uint64(2)), int64(2), nil},
		{"max negative fraction vs zero uint", "max", vals(uint64(0), -0.5), uint64(0), nil},
		{"max fraction above int", "max", vals(int64(2), 2.5), 2.5, nil},
		{"max strings", "max", vals("apple", "b", "ab"), "b", nil},
		{"max unicode by code point", "max", vals("z", "é"), "é", nil},
		{"max times", "max", vals(t0, t1), t1, nil},

		{"first empty", "first", vals(nil), nil, nil},
		{"first by event time", "first", []ev{{"b", 5}, {"a", 3}, {"c", 4}}, "a", nil},
		{"first tie keeps earliest arrival", "first", []ev{{"x", 3}, {"y", 3}}, "x", nil},
		{"first skips nil", "first", []ev{{nil, 1}, {"y", 3}}, "y", nil},
		{"first any types", "first", []ev{{"s", 5}, {int64(4), 4}, {true, 3}}, true, nil},
		{"first time value", "first", []ev{{t0, 1}}, t0, nil},
		{"first list is an error", "first", []ev{{[]any{}, 1}}, nil, ErrUnsupportedType},
		{"last by event time", "last", []ev{{"b", 5}, {"a", 3}, {"c", 4}}, "b", nil},
		{"last tie takes latest arrival", "last", []ev{{"x", 3}, {"y", 3}}, "y", nil},
		{"last negative times", "last", []ev{{"x", -3}, {"y", -5}}, "x", nil},

		{"count_distinct empty", "count_distinct", nil, int64(0), nil},
		{"count_distinct strings", "count_distinct", vals("a", "b", "a", nil), int64(2), nil},
		{"count_distinct numbers by value", "count_distinct", vals(int64(1), 1.0, uint64(1), json.Number("1"), float32(1)), int64(1), nil},
		{"count_distinct string is not number", "count_distinct", vals(int64(1), "1"), int64(2), nil},
		{"count_distinct zero and minus zero", "count_distinct", vals(0.0, math.Copysign(0, -1), int64(0)), int64(1), nil},
		{"count_distinct big values", "count_distinct", vals(uint64(math.MaxUint64), 18446744073709551615.0, 1e300, 0.5, int64(math.MinInt64)), int64(5), nil},
		{"count_distinct times and bools", "count_distinct", vals(t0, t0.In(time.FixedZone("x", 3600)), t1, true, false, true), int64(4), nil},
		{"count_distinct NaN is an error", "count_distinct", vals(math.NaN()), int64(0), ErrNotFinite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(t, tt.fn, tt.events)
			if tt.err != nil {
				var ae *AggregateError
				if !errors.Is(err, tt.err) || !errors.As(err, &ae) || ae.Name != "x" || ae.Func != tt.fn ||
					!strings.Contains(err.Error(), `aggregate "x" (`+tt.fn+`)`) {
					t.Fatalf("error = %v, want %v naming the aggregate", err, tt.err)
				}
			} else if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("result = %#v (%T), want %#v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}

func TestAddMismatchedArgs(t *testing.T) {
	g, _ := NewAggregator([]Def{{"n", "count"}, {"s", "sum"}})
	acc := g.NewAcc()
	if err := acc.Add([]any{nil}, 0); err == nil || !strings.Contains(err.Error(), "got 1 aggregate arguments, want 2") {
		t.Fatalf("Add with 1 argument: %v", err)
	}
	if got := acc.Result()[0]; got != int64(0) {
		t.Fatalf("count after rejected Add = %v", got)
	}
}

// TestAddAtomic checks that an event rejected by one aggregate changes
// none of them.
func TestAddAtomic(t *testing.T) {
	g, err := NewAggregator([]Def{
		{"n", "count"}, {"s", "sum"}, {"lo", "min"}, {"a", "avg"},
		{"f", "first"}, {"l", "last"}, {"d", "count_distinct"}, {"hi", "max"},
	})
	if err != nil {
		t.Fatal(err)
	}
	acc := g.NewAcc()
	if err := acc.Add([]any{nil, int64(2), int64(2), int64(2), "x", "x", "x", int64(2)}, 10); err != nil {
		t.Fatal(err)
	}
	before := acc.AppendBinary(nil)
	bad := [][]any{
		// max gets a string after a number: rejected by the last aggregate.
		{nil, int64(3), int64(1), int64(3), "y", "y", "y", "3"},
		// sum gets a string: rejected by the second.
		{nil, "3", int64(1), int64(3), "y", "y", "y", int64(3)},
		// count_distinct gets a list.
		{nil, int64(3), int64(1), int64(3), "y", "y", []any{"y"}, int64(3)},
	}
	for i, args := range bad {
		if err := acc.Add(args, 5); err == nil {
			t.Fatalf("bad event %d accepted", i)
		}
		if after := acc.AppendBinary(nil); string(after) != string(before) {
			t.Fatalf("bad event %d changed the state: %v", i, acc)
		}
	}
	want := []any{int64(1), int64(2), int64(2), 2.0, "x", "x", int64(1), int64(2)}
	if got := acc.Result(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Result = %#v, want %#v", got, want)
	}
}

func TestMergeMixedTypesAtomic(t *testing.T) {
	g, _ := NewAggregator([]Def{{"n", "count"}, {"lo", "min"}})
	a, b := g.NewAcc(), g.NewAcc()
	if err := a.Add([]any{nil, int64(1)}, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Add([]any{nil, "a"}, 0); err != nil {
		t.Fatal(err)
	}
	before := a.AppendBinary(nil)
	err := a.Merge(b)
	var ae *AggregateError
	if !errors.Is(err, ErrMixedTypes) || !errors.As(err, &ae) || ae.Name != "lo" {
		t.Fatalf("Merge = %v", err)
	}
	if string(a.AppendBinary(nil)) != string(before) {
		t.Fatalf("failed Merge changed the accumulator: %v", a)
	}
	other, _ := NewAggregator([]Def{{"n", "count"}, {"hi", "max"}})
	if err := a.Merge(other.NewAcc()); err == nil {
		t.Fatal("Merge of different definitions accepted")
	}
	renamed, _ := NewAggregator([]Def{{"events", "count"}, {"smallest", "min"}})
	if err := a.Merge(renamed.NewAcc()); err != nil {
		t.Fatalf("Merge of renamed definitions: %v", err)
	}
}

func TestMergeSelf(t *testing.T) {
	g, _ := NewAggregator([]Def{{"n", "count"}, {"s", "sum"}, {"a", "avg"}, {"d", "count_distinct"}, {"l", "last"}})
	acc := g.NewAcc()
	for i, v := range []any{int64(1), 2.5, int64(3)} {
		if err := acc.Add([]any{nil, v, v, v, v}, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := acc.Merge(acc); err != nil {
		t.Fatal(err)
	}
	want := []any{int64(6), 13.0, 6.5 / 3, int64(3), int64(3)}
	if got := acc.Result(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Result = %#v, want %#v", got, want)
	}
}

func TestClone(t *testing.T) {
	g, _ := NewAggregator([]Def{{"n", "count"}, {"d", "count_distinct"}})
	a := g.NewAcc()
	_ = a.Add([]any{nil, "x"}, 0)
	b := a.Clone()
	_ = b.Add([]any{nil, "y"}, 0)
	if ra, rb := a.Result(), b.Result(); ra[0] != int64(1) || ra[1] != int64(1) || rb[0] != int64(2) || rb[1] != int64(2) {
		t.Fatalf("clone not independent: %v %v", ra, rb)
	}
}

func TestAppendJSONFields(t *testing.T) {
	g, _ := NewAggregator([]Def{
		{"n", "count"}, {"total", "sum"}, {"avg", "avg"}, {"first \"name\"", "first"},
		{"at", "last"}, {"big", "max"}, {"tiny", "min"}, {"none", "min"}, {"flag", "max"},
	})
	acc := g.NewAcc()
	t0 := time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.FixedZone("x", 7200))
	add := func(args ...any) {
		t.Helper()
		if err := acc.Add(args, 1); err != nil {
			t.Fatal(err)
		}
	}
	add(nil, int64(1), 1.5, "a\x00\"\\\n\u2028\xff<", t0, uint64(math.MaxUint64), 1e-7, nil, true)
	add(nil, int64(2), 2.5, "b", t0, uint64(1), 2e-7, nil, false)
	b := append([]byte{'{'}, acc.AppendJSONFields(nil)...)
	b = append(b, '}')
	want := `{"n":2,"total":3,"avg":2,"first \"name\"":"a\u0000\"\\\n\u2028\ufffd<","at":"2024-05-06T05:08:09.123Z","big":18446744073709551615,"tiny":1e-7,"none":null,"flag":true}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	// The number formatting matches encoding/json's.
	for _, f := range []float64{0, 1, -2.5, 1e20, 1e21, 123456789.125, 1e-6, 1.5e-7, -3e-300, 1e300} {
		std, _ := json.Marshal(f)
		if got := appendJSONFloat(nil, f); string(got) != string(std) {
			t.Errorf("appendJSONFloat(%v) = %s, encoding/json %s", f, got, std)
		}
	}
}

func TestAccString(t *testing.T) {
	g, _ := NewAggregator([]Def{{"n", "count"}, {"s", "sum"}})
	acc := g.NewAcc()
	_ = acc.Add([]any{nil, int64(4)}, 0)
	if got := acc.String(); got != "{n:1 s:4}" {
		t.Fatalf("String = %q", got)
	}
}
