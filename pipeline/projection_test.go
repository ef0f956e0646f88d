package pipeline

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// projections are the field sets the differential tests decode with.
var projections = []*Projection{
	NewProjection(nil),
	NewProjection([]string{"a"}),
	NewProjection([]string{"a", "s", "n"}),
	NewProjection([]string{"x", "é", "a\"b"}),
}

// checkProjection compares pr.Decode(b) with DecodeJSON(b) restricted to
// pr's fields: the same values, and the same error when there is one.
func checkProjection(t *testing.T, pr *Projection, b []byte) {
	t.Helper()
	got, err := pr.Decode(b)
	full, ferr := DecodeJSON(b)
	if (err == nil) != (ferr == nil) || (err != nil && err.Error() != ferr.Error()) {
		t.Fatalf("Projection%v.Decode(%q): error %v; DecodeJSON's %v", pr.Fields(), b, err, ferr)
	}
	if err != nil {
		return
	}
	want := map[string]any{}
	for _, f := range pr.Fields() {
		if v, ok := full[f]; ok {
			want[f] = v
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Projection%v.Decode(%q) = %#v; DecodeJSON restricted gives %#v", pr.Fields(), b, got, want)
	}
}

func FuzzProjection(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1,"b":[1,2.5,"x",null,true,{"c":-0}],"s":"\u00e9"}`, `{"a":1,"a":2}`,
		`{"b":1e400,"a":1}`, `{"b":"\ud800\u0041","a":"x"}`, "{\"b\":\"\xff\",\"a\":1}", `{"b":01}`,
		`{"b":{"c":[` + strings.Repeat("[", 20) + `]}}`, `{"a\u0022b":1,"\u00e9":2}`, `{"b":"\x01"}`,
		`{"b":123456789012345678901234567890,"n":-12.5e-3}`, `{"a":1} x`, `{"b":[1,]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, pr := range projections {
			checkProjection(t, pr, b)
		}
	})
}

// TestProjectionMatchesDecodeJSON runs the differential check over 20,000
// generated documents, a third of them valid and the rest broken by one
// random edit (a byte removed, inserted or replaced, or the input cut),
// so that every error path of the skipped fields is compared too.
func TestProjectionMatchesDecodeJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 19))
	var valid, invalid int
	for n := 0; n < 20000; n++ {
		b := []byte(genJSONObject(rng, 0))
		if n%3 != 0 && len(b) > 0 {
			i := rng.IntN(len(b))
			switch rng.IntN(4) {
			case 0:
				b = append(b[:i], b[i+1:]...)
			case 1:
				b = append(b[:i], append([]byte{"{}[]\",:\\0e.-1tn \x01\xff"[rng.IntN(17)]}, b[i:]...)...)
			case 2:
				b[i] = "{}[]\",:\\0e.-1tn \x01\xff"[rng.IntN(17)]
			case 3:
				b = b[:i]
			}
		}
		if _, err := DecodeJSON(b); err == nil {
			valid++
		} else {
			invalid++
		}
		for _, pr := range projections {
			checkProjection(t, pr, b)
		}
	}
	if valid < 5000 || invalid < 5000 {
		t.Fatalf("%d valid and %d invalid documents: the generator no longer covers both", valid, invalid)
	}
}

var genKeys = []string{"a", "b", "s", "n", "x", "é", `a\"b`, `\u0061`, "zz"}

func genJSONObject(rng *rand.Rand, depth int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := 0, rng.IntN(6); i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s"%s" : %s`, []string{"", " ", "\n"}[rng.IntN(3)], genKeys[rng.IntN(len(genKeys))], genJSONValue(rng, depth+1))
	}
	b.WriteByte('}')
	return b.String()
}

func genJSONValue(rng *rand.Rand, depth int) string {
	k := rng.IntN(10)
	if depth > 3 && k < 2 {
		k += 2
	}
	switch k {
	case 0:
		return genJSONObject(rng, depth)
	case 1:
		items := make([]string, rng.IntN(4))
		for i := range items {
			items[i] = genJSONValue(rng, depth+1)
		}
		return "[" + strings.Join(items, ", ") + "]"
	case 2, 3:
		return []string{"0", "-0", "12", "-7", "9223372036854775808", "18446744073709551616", "1.5", "-2.25e3", "1e400", "1E-400",
			"123456789012345678901234567890", "0.000000000000000000000000001", "3.0"}[rng.IntN(13)]
	case 4, 5, 6:
		return []string{`""`, `"x"`, `"\n\t\\\/"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, "\"\xc3\"", `"é"`, `"a\"b"`}[rng.IntN(8)]
	case 7:
		return "true"
	case 8:
		return "false"
	}
	return "null"
}

func BenchmarkProjectionDecode(b *testing.B) {
	pr := NewProjection([]string{"user_id", "ts", "price"})
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pr.Decode(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}
