package pipeline

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDecodeJSONNumbers(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"0", int64(0)},
		{"-0", int64(0)},
		{"42", int64(42)},
		{"-17", int64(-17)},
		{"123456789012345678", int64(123456789012345678)}, // 18 digits: fast path
		{"9223372036854775807", int64(math.MaxInt64)},
		{"-9223372036854775808", int64(math.MinInt64)},
		{"9223372036854775808", uint64(1 << 63)}, // above int64: uint64
		{"18446744073709551615", uint64(math.MaxUint64)},
		{"18446744073709551616", 18446744073709551616.0}, // above uint64: float64
		{"-9223372036854775809", -9223372036854775809.0},
		{"10.0", 10.0}, // written with a fraction: a double
		{"2.5", 2.5},
		{"-0.001", -0.001},
		{"1e3", 1000.0}, // an exponent: a double
		{"1E-2", 0.01},
		{"6.02e+23", 6.02e23},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := DecodeJSON([]byte(`{"n": ` + tt.in + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := m["n"]; got != tt.want {
				t.Fatalf("n = %#v (%T), want %#v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}

func TestDecodeJSONValues(t *testing.T) {
	in := `  {"s": "a\"b\\c\/d\n\t\u00e9\ud83d\ude00", "utf8": "héllo 世界", "bad": "` + "\xff" + `x",
	"lone": "\ud800x", "t": true, "f": false, "z": null, "empty": {}, "list": [], "dup": 1, "dup": 2,
	"nested": {"a": [1, 2.5, "x", [null], {"b": -3}]}}  `
	got, err := DecodeJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"s": "a\"b\\c/d\n\té😀", "utf8": "héllo 世界", "bad": "\uFFFDx", "lone": "\uFFFDx",
		"t": true, "f": false, "z": nil, "empty": map[string]any{}, "list": []any{}, "dup": int64(2),
		"nested": map[string]any{"a": []any{int64(1), 2.5, "x", []any{nil}, map[string]any{"b": int64(-3)}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
	ref, err := refDecodeJSON([]byte(in))
	if err != nil || !reflect.DeepEqual(got, ref) {
		t.Fatalf("encoding/json disagrees: %#v, %v", ref, err)
	}
}

func TestDecodeJSONOutOfRange(t *testing.T) {
	// encoding/json accepts 1e400 as a json.Number; DecodeJSON rejects a
	// number no float64 can hold.
	_, err := DecodeJSON([]byte(`{"a": [1e400]}`))
	if err == nil || !strings.Contains(err.Error(), "number 1e400 out of range") {
		t.Fatalf("error = %v, want out of range", err)
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty input"},
		{"   ", "empty input"},
		{"[1, 2]", "not an object"},
		{`"x"`, "not an object"},
		{"42", "not an object"},
		{"{", "want a string key"},
		{`{"a" 1}`, "want ':'"},
		{`{"a": 1,}`, "want a string key"},
		{`{"a": 1} x`, "unexpected data after the object"},
		{`{"a": 1}{}`, "unexpected data after the object"},
		{`{"a": tru}`, "invalid literal"},
		{`{"a": 01}`, "want ',' or '}'"},
		{`{"a": 1.}`, "digits expected after '.'"},
		{`{"a": 1e}`, "digits expected in the exponent"},
		{`{"a": -}`, "invalid number"},
		{`{"a": "x`, "unterminated string"},
		{"{\"a\": \"x\ny\"}", "invalid control character"},
		{`{"a": "\q"}`, "invalid escape"},
		{`{"a": "\u12"}`, "invalid \\u escape"},
		{`{"a": [1 2]}`, "want ',' or ']'"},
		{`{"a": +1}`, "invalid character"},
		{strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1), "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 20)], func(t *testing.T) {
			_, err := DecodeJSON([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeJSON(%q) error = %v, want %q", tt.in, err, tt.want)
			}
			if _, refErr := refDecodeJSON([]byte(tt.in)); refErr == nil {
				t.Fatalf("encoding/json accepts %q", tt.in)
			}
		})
	}
}

// refDecodeJSON is DecodeJSON's specification written with encoding/json.
func refDecodeJSON(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, strconv.ErrSyntax // null is not an object
	}
	if rest := bytes.TrimLeft(b[d.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, strconv.ErrSyntax
	}
	out := convertNumbers(m).(map[string]any)
	if hasOutOfRange(out) {
		return nil, strconv.ErrRange
	}
	return out, nil
}

type outOfRange struct{}

var errOutOfRange = outOfRange{}

func hasOutOfRange(v any) bool {
	switch x := v.(type) {
	case outOfRange:
		return true
	case map[string]any:
		for _, item := range x {
			if hasOutOfRange(item) {
				return true
			}
		}
	case []any:
		for _, item := range x {
			if hasOutOfRange(item) {
				return true
			}
		}
	}
	return false
}

func convertNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, item := range x {
			x[k] = convertNumbers(item)
		}
	case []any:
		for i, item := range x {
			x[i] = convertNumbers(item)
		}
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n
			}
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				return n
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errOutOfRange // DecodeJSON rejects what float64 cannot hold
		}
		return f
	}
	return v
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":[1,2.5,"x",null,true,{"b":-0}]}`, `{"s":"\u00e9\ud83d\ude00\n"}`,
		`{"n":18446744073709551615}`, `{"n":1e400}`, `{"a":"\ud800\u0041"}`, "{\"a\":\"\xff\"}", `{"a":01}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeJSON(b)
		want, refErr := refDecodeJSON(b)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("DecodeJSON(%q): error %v, encoding/json error %v", b, err, refErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeJSON(%q) = %#v, encoding/json gives %#v", b, got, want)
		}
		if err == nil {
			// What decodes, encodes and decodes back to the same values.
			enc, err := EncodeJSON(got)
			if err != nil {
				t.Fatalf("EncodeJSON(%#v): %v", got, err)
			}
			again, err := DecodeJSON(enc)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip of %q via %s = %#v, %v", b, enc, again, err)
			}
		}
	})
}

func TestEncodeJSON(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 500, time.UTC)
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"empty", map[string]any{}, `{}`},
		{"sorted keys", map[string]any{"b": 1, "a": int64(2), "c": uint64(3)}, `{"a":2,"b":1,"c":3}`},
		{"floats keep a fraction", map[string]any{"a": 10.0, "b": 2.5, "c": math.Copysign(0, -1), "d": 1e21, "e": 1e-7, "f": float32(1.5)}, `{"a":10.0,"b":2.5,"c":-0.0,"d":1e+21,"e":1e-7,"f":1.5}`},
		{"strings", map[string]any{"s": "q\"b\\n\n\t\x01<>&é\u2028", "bad": "\xffx"}, `{"bad":"\ufffdx","s":"q\"b\\n\n\t\u0001<>&é\u2028"}`},
		{"nested", map[string]any{"l": []any{nil, true, "x", map[string]any{"k": []any{}}}}, `{"l":[null,true,"x",{"k":[]}]}`},
		{"time and duration", map[string]any{"t": ts, "d": 90 * time.Second, "ms": 1500 * time.Millisecond}, `{"d":"90s","ms":"1.5s","t":"2024-05-01T12:00:00.0000005Z"}`},
		{"bytes", map[string]any{"b": []byte("hi")}, `{"b":"aGk="}`},
		{"string maps and lists", map[string]any{"h": map[string]string{"x": "1"}, "l": []string{"a"}}, `{"h":{"x":"1"},"l":["a"]}`},
		{"other types via encoding/json", map[string]any{"s": struct{ A int }{1}}, `{"s":{"A":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeJSON(tt.in)
			if err != nil || string(got) != tt.want {
				t.Fatalf("EncodeJSON = %s, %v; want %s", got, err, tt.want)
			}
			var any map[string]any
			if err := json.Unmarshal(got, &any); err != nil {
				t.Fatalf("encoding/json rejects %s: %v", got, err)
			}
		})
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), func() {}} {
		if _, err := EncodeJSON(map[string]any{"x": bad}); err == nil || !strings.Contains(err.Error(), `field "x"`) {
			t.Errorf("EncodeJSON(%v) error = %v, want an error naming the field", bad, err)
		}
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	if _, err := EncodeJSON(cyclic); err == nil {
		t.Error("EncodeJSON of a cyclic map succeeded")
	}
}

var benchEvent = []byte(`{"id":"7f3e9a52-1c2b-4e8a-9d1f-3b5c7a9e2d41","user_id":"u-48213","ts":"2024-05-01T12:00:00.123Z",` +
	`"url":"https://shop.example.com/products/12345?ref=home","price":19.99,"qty":2,"country":"fr",` +
	`"device":{"type":"mobile","os":"android","version":14},"tags":["sale","new"],"session":1714564800123}`)

func BenchmarkDecodeJSON(b *testing.B) {
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeJSON(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeJSONStdlib is the encoding/json way (UseNumber plus
// conversion), for comparison.
func BenchmarkDecodeJSONStdlib(b *testing.B) {
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := refDecodeJSON(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeJSON(b *testing.B) {
	m, err := DecodeJSON(benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeJSON(m); err != nil {
			b.Fatal(err)
		}
	}
}
