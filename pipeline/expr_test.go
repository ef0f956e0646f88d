package pipeline

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// exprPipeline compiles one set step holding the given expressions (as
// fields e0, e1, ...) and returns the compiled expressions.
func compileExprs(t *testing.T, exprs ...string) []*Expr {
	t.Helper()
	var b strings.Builder
	b.WriteString("name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink: {topic: out}\nsteps:\n  - set:\n")
	for i, e := range exprs {
		fmt.Fprintf(&b, "      e%d: %q\n", i, e)
	}
	p, err := Parse("expr.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	out := make([]*Expr, len(exprs))
	for i, f := range p.Steps[0].Fields {
		out[i] = f.Expr
	}
	return out
}

func testVars() *Vars {
	return &Vars{
		Event: map[string]any{
			"id":      "ev-1",
			"qty":     int64(3),
			"price":   2.5,
			"big":     uint64(1 << 63),
			"user_id": int64(42),
			"name":    "ada",
			"ts":      "2024-05-01T12:00:00Z",
			"ms":      int64(1714564800000),
			"tags":    []any{"a", "b"},
			"geo":     map[string]any{"country": "fr", "zip": int64(75001)},
			"nothing": nil,
		},
		Key:       "k1",
		Topic:     "clicks",
		Partition: 7,
		Offset:    1234,
		Timestamp: time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC),
		Headers:   map[string]string{"source": "web"},
	}
}

func TestExprBool(t *testing.T) {
	tests := []struct {
		expr    string
		want    bool
		wantErr string
	}{
		{expr: "event.price > 0", want: true},
		{expr: "event.qty > 2", want: true},
		{expr: "event.qty == 3.0", want: true}, // int and double compare
		{expr: "event.price < event.qty", want: true},
		{expr: `event.name.startsWith("a") && headers["source"] == "web"`, want: true},
		{expr: `key == "k1" && topic == "clicks" && partition == 7 && offset == 1234`, want: true},
		{expr: `timestamp > timestamp("2024-05-01T12:00:00Z")`, want: true},
		{expr: `has(event.geo.country) && !has(event.geo.city)`, want: true},
		{expr: `"b" in event.tags`, want: true},
		{expr: `event.?missing.orValue(1) == 1`, want: true},
		{expr: `math.greatest(1, 5) == 5`, want: true},
		{expr: `sets.contains([1, 2, 3], [2])`, want: true},
		{expr: `base64.encode(b"hi") == "aGk="`, want: true},
		{expr: "event.missing > 0", wantErr: "no such key: missing"},
		{expr: "event.name", wantErr: "result is string, want bool"},
		{expr: "event.price * event.qty > 1.0", wantErr: "no such overload"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e := compileExprs(t, tt.expr)[0]
			got, err := e.Bool(testVars())
			if tt.wantErr != "" {
				checkEvalError(t, err, e, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Bool: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Bool = %v, want %v", got, tt.want)
			}
		})
	}
}

// checkEvalError asserts err is an *EvalError that names e's expression,
// field and line, and whose cause contains want.
func checkEvalError(t *testing.T, err error, e *Expr, want string) {
	t.Helper()
	var ee *EvalError
	if !errors.As(err, &ee) {
		t.Fatalf("error = %v (%T), want an *EvalError", err, err)
	}
	if ee.Field != e.Field || ee.Expr != e.Text || ee.Line != e.Line || ee.File != "expr.yaml" {
		t.Fatalf("EvalError = %+v, want field %s, expr %q, line %d", ee, e.Field, e.Text, e.Line)
	}
	msg := err.Error()
	for _, part := range []string{e.Field, fmt.Sprintf("%q", e.Text), fmt.Sprintf("expr.yaml:%d", e.Line), want} {
		if !strings.Contains(msg, part) {
			t.Fatalf("error %q does not contain %q", msg, part)
		}
	}
}

func TestExprString(t *testing.T) {
	tests := []struct {
		expr, want, wantErr string
	}{
		{expr: "event.id", want: "ev-1"},
		{expr: "event.user_id", want: "42"},
		{expr: "event.big", want: "9223372036854775808"},
		{expr: "string(event.qty) + ':' + event.name", want: "3:ada"},
		{expr: "event.geo.zip", want: "75001"},
		{expr: "event.price", wantErr: "result is double, want string or int"},
		{expr: "event.nope", wantErr: "no such key: nope"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e := compileExprs(t, tt.expr)[0]
			got, err := e.String(testVars())
			if tt.wantErr != "" {
				checkEvalError(t, err, e, tt.wantErr)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("String = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestExprTime(t *testing.T) {
	want := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		expr    string
		want    time.Time
		wantErr string
	}{
		{expr: "timestamp(event.ts)", want: want},
		{expr: "event.ms", want: want},
		{expr: "timestamp", want: want.Add(time.Second)},
		{expr: "timestamp(event.ts) + duration('90s')", want: want.Add(90 * time.Second)},
		{expr: "event.name", wantErr: "result is string, want timestamp or int"},
		{expr: "timestamp(event.name)", wantErr: "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e := compileExprs(t, tt.expr)[0]
			got, err := e.Time(testVars())
			if tt.wantErr != "" {
				checkEvalError(t, err, e, tt.wantErr)
				return
			}
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Fatalf("Time = %v, %v; want %v (UTC)", got, err, tt.want)
			}
		})
	}
}

func TestExprValue(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		expr    string
		want    any
		wantErr string
	}{
		{expr: "event.qty * 2", want: int64(6)}, // ints stay ints
		{expr: "event.price * 2.0", want: 5.0},
		{expr: "event.price * double(event.qty)", want: 7.5},
		{expr: "event.qty / 2", want: int64(1)}, // integer division
		{expr: "double(event.qty) / 2.0", want: 1.5},
		{expr: "event.big + 1u", want: uint64(1<<63 + 1)},
		{expr: "event.name.upperAscii()", want: "ADA"},
		{expr: "event.nothing", want: nil},
		{expr: "event.qty > 1", want: true},
		{expr: `b"\x01\x02"`, want: []byte{1, 2}},
		{expr: "timestamp(event.ts)", want: ts},
		{expr: "duration('1m30s')", want: 90 * time.Second},
		{expr: "[1, 'a', 2.5, [true]]", want: []any{int64(1), "a", 2.5, []any{true}}},
		{expr: "event.tags", want: []any{"a", "b"}},
		{expr: "event.geo", want: map[string]any{"country": "fr", "zip": int64(75001)}},
		{expr: "{'a': 1, 2: 'two', true: 3u}", want: map[string]any{"a": int64(1), "2": "two", "true": uint64(3)}},
		{expr: "headers", want: map[string]any{"source": "web"}},
		{expr: "event.tags.map(t, t + '!')", want: []any{"a!", "b!"}},
		{expr: "event.?geo.country", want: "fr"},
		{expr: "event.?geo.city", want: nil},
		{expr: "event.price * event.qty", wantErr: "no such overload (operand types do not match, e.g. int * double: convert with double(x) or int(x))"},
		{expr: "event.absent", wantErr: "no such key: absent"},
		{expr: "{1.5: 'x'}", wantErr: "cannot be a JSON object key"},
		{expr: "type(1)", wantErr: "cannot be converted"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e := compileExprs(t, tt.expr)[0]
			got, err := e.Value(testVars())
			if tt.wantErr != "" {
				checkEvalError(t, err, e, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Value: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Value = %#v (%T), want %#v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}

// A map or list taken from the event is a copy: changing the result does
// not change the event, and storing the event in itself makes no cycle.
func TestExprValueDoesNotAlias(t *testing.T) {
	e := compileExprs(t, "event")[0]
	v := testVars()
	got, err := e.Value(v)
	if err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	m["geo"].(map[string]any)["country"] = "de"
	m["tags"].([]any)[0] = "z"
	if v.Event["geo"].(map[string]any)["country"] != "fr" || v.Event["tags"].([]any)[0] != "a" {
		t.Fatalf("changing the result changed the event: %v", v.Event)
	}
	v.Event["self"] = got
	if _, err := EncodeJSON(v.Event); err != nil {
		t.Fatalf("event holding a copy of itself does not encode: %v", err)
	}
}

func parseSteps(t *testing.T, steps string) *Pipeline {
	t.Helper()
	src := "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink: {topic: out}\nsteps:\n" + steps
	p, err := Parse("steps.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return p
}

func TestStepApply(t *testing.T) {
	p := parseSteps(t, `  - filter: event.qty > 1
  - set: {qty: event.qty + 1, old_qty: event.qty, total: event.price * double(event.qty)}
  - map: {user: event.user_id, qty: event.qty, old: event.old_qty, total: event.total}
  - key: event.user
  - filter: event.qty > 100
  - processor: {name: geo, config: {db: /geo.mmdb, size: 10}}
`)
	v := testVars()
	want := []struct {
		keep  bool
		event map[string]any
		key   string
	}{
		{keep: true, event: testVars().Event, key: "k1"},
		{keep: true, event: func() map[string]any {
			m := testVars().Event
			m["qty"], m["old_qty"], m["total"] = int64(4), int64(3), 7.5 // every field saw qty 3
			return m
		}(), key: "k1"},
		{keep: true, event: map[string]any{"user": int64(42), "qty": int64(4), "old": int64(3), "total": 7.5}, key: "k1"},
		{keep: true, event: map[string]any{"user": int64(42), "qty": int64(4), "old": int64(3), "total": 7.5}, key: "42"},
		{keep: false, event: map[string]any{"user": int64(42), "qty": int64(4), "old": int64(3), "total": 7.5}, key: "42"},
	}
	for i, w := range want {
		t.Run(p.Steps[i].Kind.String(), func(t *testing.T) {
			keep, err := p.Steps[i].Apply(v)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if keep != w.keep || v.Key != w.key || !reflect.DeepEqual(v.Event, w.event) {
				t.Fatalf("step %d: keep %v key %q event %v; want %v %q %v", i, keep, v.Key, v.Event, w.keep, w.key, w.event)
			}
		})
	}
	t.Run("processor", func(t *testing.T) {
		st := p.Steps[5]
		if _, err := st.Apply(v); !errors.Is(err, ErrNotStateless) {
			t.Fatalf("Apply(processor) = %v, want ErrNotStateless", err)
		}
		var cfg struct {
			DB   string `yaml:"db"`
			Size int    `yaml:"size"`
		}
		if err := st.Processor.Decode(&cfg); err != nil || cfg.DB != "/geo.mmdb" || cfg.Size != 10 {
			t.Fatalf("Decode = %+v, %v", cfg, err)
		}
		if !reflect.DeepEqual(st.Processor.Config, map[string]any{"db": "/geo.mmdb", "size": 10}) {
			t.Fatalf("Config = %#v", st.Processor.Config)
		}
	})
	t.Run("set on error leaves the event alone", func(t *testing.T) {
		p := parseSteps(t, "  - set: {a: 1, b: event.nope}\n")
		v := testVars()
		before := testVars().Event
		_, err := p.Steps[0].Apply(v)
		var ee *EvalError
		if !errors.As(err, &ee) || ee.Field != "steps[0].set.b" || ee.Line != 6 {
			t.Fatalf("error = %#v, want an EvalError for steps[0].set.b on line 6", err)
		}
		if !reflect.DeepEqual(v.Event, before) {
			t.Fatalf("event changed on error: %v", v.Event)
		}
	})
}

func TestSourceSinkHelpers(t *testing.T) {
	plain := parseSteps(t, "")
	withExprs, err := Parse("x.yaml", []byte(`name: t
kafka: {brokers: [k:9092]}
source: {topics: [in], format: raw, event_id: "topic + '/' + string(offset)", event_time: "timestamp('2020-01-01T00:00:00Z')"}
sink: {topic: out, key: "event.value + '!'", format: raw}
`))
	if err != nil {
		t.Fatal(err)
	}
	v := testVars()
	t.Run("defaults", func(t *testing.T) {
		id, err := plain.Source.IDFor(v)
		if err != nil || id != "clicks-7-1234" {
			t.Fatalf("IDFor = %q, %v", id, err)
		}
		ts, err := plain.Source.TimeFor(v)
		if err != nil || !ts.Equal(v.Timestamp) {
			t.Fatalf("TimeFor = %v, %v", ts, err)
		}
		k, err := plain.Sink.KeyFor(v)
		if err != nil || k != "k1" {
			t.Fatalf("KeyFor = %q, %v", k, err)
		}
		ev, err := plain.Source.Decode([]byte(`{"a":1}`))
		if err != nil || !reflect.DeepEqual(ev, map[string]any{"a": int64(1)}) {
			t.Fatalf("Decode = %v, %v", ev, err)
		}
		b, err := plain.Sink.Encode(map[string]any{"a": 1.0})
		if err != nil || string(b) != `{"a":1.0}` {
			t.Fatalf("Encode = %s, %v", b, err)
		}
	})
	t.Run("expressions and raw", func(t *testing.T) {
		ev, err := withExprs.Source.Decode([]byte("hello"))
		if err != nil || !reflect.DeepEqual(ev, map[string]any{"value": "hello"}) {
			t.Fatalf("Decode(raw) = %v, %v", ev, err)
		}
		v := testVars()
		v.Event = ev
		id, err := withExprs.Source.IDFor(v)
		if err != nil || id != "clicks/1234" {
			t.Fatalf("IDFor = %q, %v", id, err)
		}
		ts, err := withExprs.Source.TimeFor(v)
		if err != nil || !ts.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("TimeFor = %v, %v", ts, err)
		}
		k, err := withExprs.Sink.KeyFor(v)
		if err != nil || k != "hello!" {
			t.Fatalf("KeyFor = %q, %v", k, err)
		}
		b, err := withExprs.Sink.Encode(ev)
		if err != nil || string(b) != "hello" {
			t.Fatalf("Encode(raw) = %q, %v", b, err)
		}
		if _, err := withExprs.Sink.Encode(map[string]any{"value": int64(1)}); err == nil {
			t.Fatal("Encode(raw) of an int value succeeded")
		}
	})
}

// Exprs are shared by all partition goroutines; each has its own Vars.
func TestExprConcurrent(t *testing.T) {
	p := parseSteps(t, "  - set: {n: event.qty * 2, s: event.name + string(event.qty)}\n")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				v := &Vars{Event: map[string]any{"qty": int64(i + g), "name": "x"}}
				if _, err := p.Steps[0].Apply(v); err != nil {
					errs <- err
					return
				}
				if v.Event["n"] != int64(2*(i+g)) || v.Event["s"] != fmt.Sprintf("x%d", i+g) {
					errs <- fmt.Errorf("goroutine %d: got %v", g, v.Event)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// The Expr benchmarks run each expression with its fast path ("fast") and
// through the CEL interpreter alone ("cel"), on the same event.

func benchBoth(b *testing.B, e *Expr, run func(*Expr)) {
	for _, bc := range []struct {
		name string
		e    *Expr
	}{{"fast", e}, {"cel", celOnly(e)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				run(bc.e)
			}
		})
	}
}

func BenchmarkExprBool(b *testing.B) {
	p := parseStepsB(b, "  - filter: event.price > 0.0 && event.country == 'fr'\n")
	v := &Vars{Event: map[string]any{"price": 9.5, "country": "fr", "user_id": "u1"}}
	benchBoth(b, p.Steps[0].Filter, func(e *Expr) {
		if ok, err := e.Bool(v); err != nil || !ok {
			b.Fatal(ok, err)
		}
	})
}

func BenchmarkExprValue(b *testing.B) {
	p := parseStepsB(b, "  - set: {total: event.price * double(event.qty)}\n")
	v := &Vars{Event: map[string]any{"price": 9.5, "qty": int64(3)}}
	benchBoth(b, p.Steps[0].Fields[0].Expr, func(e *Expr) {
		if x, err := e.Value(v); err != nil || x != 28.5 {
			b.Fatal(x, err)
		}
	})
}

func BenchmarkExprString(b *testing.B) {
	p := parseStepsB(b, "  - key: event.user_id\n")
	v := &Vars{Event: map[string]any{"user_id": "u-123"}}
	benchBoth(b, p.Steps[0].Key, func(e *Expr) {
		if s, err := e.String(v); err != nil || s != "u-123" {
			b.Fatal(s, err)
		}
	})
}

func BenchmarkExprTime(b *testing.B) {
	for _, bc := range []struct{ name, expr string }{{"millis", "event.ts"}, {"rfc3339", "timestamp(event.at)"}} {
		b.Run(bc.name, func(b *testing.B) {
			e := compileExprs(&testing.T{}, bc.expr)[0]
			v := &Vars{Event: map[string]any{"ts": int64(1795299950123), "at": "2026-11-21T22:25:50.123Z"}}
			benchBoth(b, e, func(e *Expr) {
				if tm, err := e.Time(v); err != nil || tm.UnixMilli() != 1795299950123 {
					b.Fatal(tm, err)
				}
			})
		})
	}
}

func parseStepsB(b *testing.B, steps string) *Pipeline {
	b.Helper()
	src := "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink: {topic: out}\nsteps:\n" + steps
	p, err := Parse("bench.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	return p
}
