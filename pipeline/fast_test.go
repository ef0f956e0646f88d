package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
)

// celOnly returns a copy of e without its fast path: the interpreter alone.
func celOnly(e *Expr) *Expr {
	c := *e
	c.fast = nil
	return &c
}

func TestCompileFastShapes(t *testing.T) {
	fast := []string{
		`event.user`, `event.v > 500`, `event.v % 10 != 0`, `event.qty * event.price`,
		`event.geo.country == "fr"`, `event["user-id"]`, `!(event.ok) || event.n <= 3`,
		`-event.v + 1`, `event.a + "-" + event.b`, `2.5 * event.x`,
		`timestamp(event.ts)`, `double(event.qty) * event.price`, `string(event.n)`,
	}
	slow := []string{
		`has(event.user)`, `size(event)`, `key`, `event.user.startsWith("a")`, `uint(event.v)`,
		`event.v > 2u`, `event.?user.orValue("x")`, `"user" in event`, `event.v ? 1 : 2`,
		`event.tags[0]`, `duration(event.d)`, `event.ts.getHours()`,
	}
	for i, e := range compileExprs(t, fast...) {
		if e.fast == nil {
			t.Errorf("%s: no fast path", fast[i])
		}
	}
	for i, e := range compileExprs(t, slow...) {
		if e.fast != nil {
			t.Errorf("%s: fast path %#v, want none", slow[i], e.fast)
		}
	}
}

func TestEventRefs(t *testing.T) {
	tests := []struct {
		expr   string
		fields []string // nil: the whole event
	}{
		{`event.user`, []string{"user"}},
		{`event.v * 2 > event.limit`, []string{"limit", "v"}},
		{`has(event.geo.zip) && event.geo.country == "fr"`, []string{"geo"}},
		{`event["user-id"] + event.?name.orValue("")`, []string{"name", "user-id"}},
		{`key + topic`, []string{}},
		{`event.tags.exists(t, t == event.want)`, []string{"tags", "want"}},
		{`size(event)`, nil},
		{`"user" in event`, nil},
		{`event[key]`, nil},
		{`[event][0].user`, nil},
		{`[1].map(event, event + 1) == [2]`, nil},
		{`event.items.map(i, i.price).exists(p, p > 0)`, []string{"items"}},
	}
	exprs := make([]string, len(tests))
	for i, tt := range tests {
		exprs[i] = tt.expr
	}
	for i, e := range compileExprs(t, exprs...) {
		fields, all := e.EventFields()
		want := tests[i].fields
		if all != (want == nil) || (want != nil && !slices.Equal(fields, want) && !(len(fields) == 0 && len(want) == 0)) {
			t.Errorf("%s: EventFields() = %v, %v; want %v (nil: all)", tests[i].expr, fields, all, want)
		}
	}
}

func TestPipelineEventFields(t *testing.T) {
	tests := []struct {
		name, spec string
		fields     []string // nil: the whole event
	}{
		{"aggregate", `source: {topics: [in], event_time: event.ts, event_id: event.id}
steps:
  - filter: event.v > 0
  - aggregate: {name: a, key: event.user, window: {tumbling: 1m}, values: {n: count(), t: sum(event.v)}}
  - filter: event.window_start != null
sink: {topic: out}`, []string{"id", "ts", "user", "v"}},
		{"map", `source: {topics: [in]}
steps:
  - map: {u: event.user}
sink: {topic: out}`, []string{"user"}},
		{"to the sink", `source: {topics: [in]}
steps:
  - filter: event.v > 0
sink: {topic: out}`, nil},
		{"processor", `source: {topics: [in]}
steps:
  - processor: {name: p}
  - aggregate: {name: a, key: event.user, window: {tumbling: 1m}, values: {n: count()}}
sink: {topic: out}`, nil},
		{"whole event read", `source: {topics: [in]}
steps:
  - aggregate: {name: a, key: string(size(event)), window: {tumbling: 1m}, values: {n: count()}}
sink: {topic: out}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("p.yaml", []byte("name: t\nkafka: {brokers: [k:9092]}\n"+tt.spec+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			fields, all := p.EventFields(p.Stages()[0])
			if all != (tt.fields == nil) || !slices.Equal(fields, tt.fields) {
				t.Errorf("EventFields = %v, %v; want %v (nil: all)", fields, all, tt.fields)
			}
		})
	}
}

// TestFastMatchesCEL is the differential test of the fast path: random
// expressions of the shapes it evaluates, over random events of every
// value type (missing fields, nulls, uints, lists, maps, extreme ints and
// doubles), evaluated as each of Bool, String, Time and Value with and
// without the fast path: the same results and the same errors.
func TestFastMatchesCEL(t *testing.T) {
	env, err := newCELEnv()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(19, 2026))
	var compiled, fastAnswers, evals int
	answered := map[fkind]int{}
	for n := 0; n < 4000; n++ {
		text := genExpr(rng, 3)
		if n%10 == 0 { // event_time's usual form, often enough to be counted
			text = "timestamp(" + genExpr(rng, 1) + ")"
		}
		e := testExpr(env, text)
		if e == nil {
			continue // does not type-check (e.g. 1 + "a"): never a pipeline's expression
		}
		if e.fast == nil {
			t.Fatalf("%s: no fast path for a generated expression", text)
		}
		compiled++
		ref := celOnly(e)
		for k := 0; k < 25; k++ {
			v := &Vars{Event: genEvent(rng)}
			if x, ok := e.fast.eval(v.Event); ok {
				fastAnswers++
				answered[x.k]++
			}
			evals++
			check := func(method string, got, want any, gerr, werr error) {
				t.Helper()
				if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
					t.Fatalf("%s.%s on %v: error %v, CEL's %v", text, method, v.Event, gerr, werr)
				}
				if gerr == nil && !sameValue(got, want) {
					t.Fatalf("%s.%s on %v = %#v, CEL gives %#v", text, method, v.Event, got, want)
				}
			}
			b1, e1 := e.Bool(v)
			b2, e2 := ref.Bool(v)
			check("Bool", b1, b2, e1, e2)
			s1, e1 := e.String(v)
			s2, e2 := ref.String(v)
			check("String", s1, s2, e1, e2)
			t1, e1 := e.Time(v)
			t2, e2 := ref.Time(v)
			check("Time", t1, t2, e1, e2)
			x1, e1 := e.Value(v)
			x2, e2 := ref.Value(v)
			check("Value", x1, x2, e1, e2)
		}
	}
	// The test proves something only if the fast path answered often.
	for _, k := range []fkind{fInt, fDouble, fString, fBool, fTime} {
		if answered[k] < 100 {
			t.Errorf("the fast path answered %d evaluations of kind %d: the generator no longer exercises it", answered[k], k)
		}
	}
	if compiled < 2000 || fastAnswers < evals/5 {
		t.Fatalf("%d expressions compiled, the fast path answered %d of %d evaluations: the generator no longer exercises it", compiled, fastAnswers, evals)
	}
	t.Logf("%d expressions, %d evaluations, %d answered by the fast path (by kind: %v)", compiled, evals, fastAnswers, answered)
}

// testExpr compiles text as compile.go's checker does, or returns nil.
func testExpr(env *cel.Env, text string) *Expr {
	ast, iss := env.Compile(text)
	if iss.Err() != nil {
		return nil
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil
	}
	root := ast.NativeRep().Expr()
	fields, all := eventRefs(root)
	return &Expr{Text: text, Field: "f", prg: prg, display: text, fields: fields, allFields: all, fast: compileFast(root)}
}

func sameValue(a, b any) bool {
	if fa, ok := a.(float64); ok {
		if fb, ok := b.(float64); ok && math.IsNaN(fa) && math.IsNaN(fb) {
			return true
		}
		if fb, ok := b.(float64); ok {
			return fa == fb && math.Signbit(fa) == math.Signbit(fb)
		}
	}
	return reflect.DeepEqual(a, b)
}

var (
	genFields = []string{"event.a", "event.b", "event.c", `event["d"]`, "event.m.x", "event.t"}
	genLits   = []string{
		"0", "1", "-1", "2", "3", "10", "9223372036854775807", "-9223372036854775808", "4611686018427387904",
		"0.0", "-0.0", "1.5", "-2.5", "1e308", "3.0",
		`""`, `"a"`, `"b"`, `"1"`, "true", "false", `"2026-12-04T21:30:00Z"`, `"2026-12-04T21:30:00.123+02:00"`,
	}
	genBinary = []string{"+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||"}
)

func genExpr(rng *rand.Rand, depth int) string {
	if depth == 0 || rng.IntN(3) == 0 {
		if rng.IntN(3) > 0 {
			return genFields[rng.IntN(len(genFields))]
		}
		return genLits[rng.IntN(len(genLits))]
	}
	switch rng.IntN(6) {
	case 0:
		return "!(" + genExpr(rng, depth-1) + ")"
	case 1:
		if rng.IntN(2) == 0 {
			return "-(" + genExpr(rng, depth-1) + ")"
		}
		return []string{"double", "int", "string", "timestamp"}[rng.IntN(4)] + "(" + genExpr(rng, depth-1) + ")"
	}
	op := genBinary[rng.IntN(len(genBinary))]
	return fmt.Sprintf("(%s %s %s)", genExpr(rng, depth-1), op, genExpr(rng, depth-1))
}

func genScalar(rng *rand.Rand) (any, bool) {
	switch rng.IntN(12) {
	case 0, 1, 2:
		return []int64{0, 1, -1, 2, 3, 10, 7, math.MaxInt64, math.MinInt64, 1 << 62, -(1 << 62), 3037000500}[rng.IntN(12)], true
	case 3, 4:
		return []float64{0, math.Copysign(0, -1), 1.5, -2.5, 3, 1e308, -1e308, 0.1, math.Inf(1), math.NaN()}[rng.IntN(10)], true
	case 5, 6:
		return []string{"", "a", "b", "1", strings.Repeat("z", 3), "2026-12-04T21:30:00Z", "2026-12-04T21:30:00.5-07:00",
			"2026-12-04 21:30:00Z", "2026-13-04T21:30:00Z", "0000-01-01T00:00:00Z", "2026-12-04T21:30:60Z", "12"}[rng.IntN(12)], true
	case 7:
		return rng.IntN(2) == 0, true
	case 8:
		return nil, true
	case 9:
		return uint64(rng.IntN(3)), true
	case 10:
		return []any{int64(1), "x"}, true
	}
	return nil, false // missing
}

func genEvent(rng *rand.Rand) map[string]any {
	ev := map[string]any{}
	for _, f := range []string{"a", "b", "c", "d"} {
		if v, ok := genScalar(rng); ok {
			ev[f] = v
		}
	}
	if rng.IntN(4) > 0 { // t: mostly a timestamp's text, valid or not
		ev["t"] = []string{"2026-12-04T21:30:00Z", "2026-12-04T21:30:00.123456789+05:30", "1970-01-01T00:00:00Z",
			"9999-12-31T23:59:59Z", "2026-02-30T00:00:00Z", "2026-12-04T21:30Z", "2026-12-04t21:30:00z"}[rng.IntN(7)]
	}
	switch rng.IntN(3) {
	case 0:
		if v, ok := genScalar(rng); ok {
			ev["m"] = map[string]any{"x": v}
		} else {
			ev["m"] = map[string]any{}
		}
	case 1:
		ev["m"] = "not a map"
	}
	return ev
}
