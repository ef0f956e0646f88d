package windows

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

var allDefs = []Def{
	{"n", "count"}, {"total", "sum"}, {"lo", "min"}, {"hi", "max"},
	{"mean", "avg"}, {"first", "first"}, {"last", "last"}, {"distinct", "count_distinct"},
}

// genEvent returns random arguments for allDefs. Numbers mix int64,
// uint64 and floats; floatFrac controls whether floats may have fractions
// (fractional sums are only approximately order-independent).
func genEvent(rng *rand.Rand, floatFrac bool) []any {
	num := func() any {
		switch rng.IntN(6) {
		case 0:
			return nil
		case 1:
			return uint64(rng.IntN(50))
		case 2:
			f := float64(rng.IntN(100) - 50)
			if floatFrac {
				f += rng.Float64()
			}
			return f
		case 3:
			// Near the int64 limits, so sums overflow and come back.
			return int64(math.MaxInt64 - rng.IntN(3))
		case 4:
			return int64(math.MinInt64 + rng.IntN(3))
		}
		return int64(rng.IntN(100) - 50)
	}
	scalar := func() any {
		switch rng.IntN(5) {
		case 0:
			return nil
		case 1:
			return "s" + string(rune('a'+rng.IntN(5)))
		case 2:
			return time.UnixMilli(int64(rng.IntN(5))).UTC()
		case 3:
			return rng.IntN(2) == 0
		}
		return num()
	}
	// min and max take numbers only here (mixing classes is an error).
	return []any{scalar(), num(), num(), num(), num(), scalar(), scalar(), scalar()}
}

func mustAgg(t testing.TB, defs []Def) *Aggregator {
	t.Helper()
	g, err := NewAggregator(defs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestMergeEquivalence is the property the runtime's session merges rely
// on: adding events to one accumulator gives the same state as adding a
// prefix to one, the rest to others, and merging them in order, for every
// function. With integral numbers the states are byte-identical; with
// fractional floats sum and avg agree to rounding.
func TestMergeEquivalence(t *testing.T) {
	g := mustAgg(t, allDefs)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, frac := range []bool{false, true} {
		name := "integral"
		if frac {
			name = "fractional"
		}
		t.Run(name, func(t *testing.T) {
			for iter := range 2000 {
				n := rng.IntN(20)
				events := make([][]any, n)
				times := make([]int64, n)
				for i := range events {
					events[i] = genEvent(rng, frac)
					times[i] = rng.Int64N(10) - 5 // many ties for first/last
				}
				whole := g.NewAcc()
				for i := range events {
					if err := whole.Add(events[i], times[i]); err != nil {
						t.Fatal(err)
					}
				}
				// Split into up to 3 consecutive parts.
				cut1 := rng.IntN(n + 1)
				cut2 := cut1 + rng.IntN(n-cut1+1)
				parts := []*Acc{g.NewAcc(), g.NewAcc(), g.NewAcc()}
				for i := range events {
					p := 0
					if i >= cut2 {
						p = 2
					} else if i >= cut1 {
						p = 1
					}
					if err := parts[p].Add(events[i], times[i]); err != nil {
						t.Fatal(err)
					}
				}
				// Round-trip the parts through the encoding, as the
				// runtime loads them from the store.
				merged, err := g.Decode(parts[0].AppendBinary(nil))
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range parts[1:] {
					d, err := g.Decode(p.AppendBinary(nil))
					if err != nil {
						t.Fatal(err)
					}
					if err := merged.Merge(d); err != nil {
						t.Fatal(err)
					}
				}
				if !frac {
					if a, b := whole.AppendBinary(nil), merged.AppendBinary(nil); !bytes.Equal(a, b) {
						t.Fatalf("iteration %d: whole %v\nmerged %v", iter, whole, merged)
					}
					continue
				}
				rw, rm := whole.Result(), merged.Result()
				for i := range rw {
					if !sameResult(rw[i], rm[i]) {
						t.Fatalf("iteration %d: %s: whole %#v, merged %#v", iter, allDefs[i].Name, rw[i], rm[i])
					}
				}
			}
		})
	}
}

func sameResult(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 {
		return math.Abs(fa-fb) <= 1e-9*math.Max(1, math.Max(math.Abs(fa), math.Abs(fb)))
	}
	return reflect.DeepEqual(a, b)
}

// TestEncodingDeterministic adds the same events in different orders: the
// state (and so its bytes) must not depend on the order where the
// functions are order-independent: count, sum and avg of integers, min and
// max without ties, first and last without equal times, count_distinct.
func TestEncodingDeterministic(t *testing.T) {
	g := mustAgg(t, allDefs)
	rng := rand.New(rand.NewPCG(9, 10))
	for iter := range 500 {
		n := rng.IntN(30) + 1
		events := make([][]any, n)
		for i := range events {
			v := int64(i*7%n) - 3
			w := []any{int64(-1), uint64(2), "x", 3.0, nil}[i%5]
			events[i] = []any{nil, v, v, v, v, v, v, w}
			if i%3 == 0 {
				events[i][1] = nil
			}
		}
		var first []byte
		for range 3 {
			rng.Shuffle(n, func(i, j int) { events[i], events[j] = events[j], events[i] })
			acc := g.NewAcc()
			for _, e := range events {
				// Event time = the value: distinct, so first/last do
				// not depend on arrival order.
				if err := acc.Add(e, e[5].(int64)); err != nil {
					t.Fatal(err)
				}
			}
			b := acc.AppendBinary(nil)
			if first == nil {
				first = b
			} else if !bytes.Equal(first, b) {
				t.Fatalf("iteration %d: order changed the encoding\n%x\n%x", iter, first, b)
			}
		}
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	g := mustAgg(t, allDefs)
	rng := rand.New(rand.NewPCG(11, 12))
	empty := g.NewAcc().AppendBinary(nil)
	if want := []byte{1, 8, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0}; !bytes.Equal(empty, want) {
		t.Fatalf("empty encoding %v, want %v", empty, want)
	}
	for range 1000 {
		acc := g.NewAcc()
		for range rng.IntN(10) {
			if err := acc.Add(genEvent(rng, true), rng.Int64N(1e12)-5e11); err != nil {
				t.Fatal(err)
			}
		}
		b := acc.AppendBinary([]byte("xyz"))[3:]
		d, err := g.Decode(b)
		if err != nil {
			t.Fatalf("Decode(%x): %v", b, err)
		}
		if !reflect.DeepEqual(d.Result(), acc.Result()) {
			t.Fatalf("round trip: %v != %v", d, acc)
		}
		if b2 := d.AppendBinary(nil); !bytes.Equal(b, b2) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, b2)
		}
		// The decoded accumulator does not alias the input.
		for i := range b {
			b[i] = 0xff
		}
		if !reflect.DeepEqual(d.Result(), acc.Result()) {
			t.Fatal("decoded accumulator aliases its input")
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	g := mustAgg(t, []Def{{"n", "count"}, {"total", "sum"}, {"d", "count_distinct"}, {"lo", "min"}})
	acc := g.NewAcc()
	_ = acc.Add([]any{nil, 1.5, "a", "m"}, 0)
	_ = acc.Add([]any{nil, int64(2), "b", "k"}, 0)
	good := acc.AppendBinary(nil)
	if _, err := g.Decode(good); err != nil {
		t.Fatal(err)
	}
	set := func(i int, b byte) []byte {
		c := bytes.Clone(good)
		c[i] = b
		return c
	}
	// good: 01 04 | 01 02 | 02 02 hi lo 01 f(8) c(8) | 08 02 02 's' 'a' 02 's' 'b' | 03 05 01 'k'
	sumAt := 4
	distinctAt := sumAt + 5 + 16
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "truncated at byte 0"},
		{"version", set(0, 2), "unknown version 2"},
		{"count", set(1, 3), "3 aggregates, want 4"},
		{"function", set(2, 2), `aggregate "n" (count): corrupt aggregate state: function sum, want count`},
		{"truncated sum", good[:sumAt+3], `aggregate "total" (sum): corrupt aggregate state: truncated`},
		{"float flag", set(sumAt+4, 7), "float flag 7"},
		{"overlong varint", append([]byte{1, 4, 1, 0x80, 0}, good[3:]...), "bad varint at byte 3"},
		{"varint overflow", append([]byte{1, 4, 1}, bytes.Repeat([]byte{0xff}, 11)...), "bad varint"},
		{"distinct out of order", func() []byte {
			c := bytes.Clone(good)
			c[distinctAt+4], c[distinctAt+7] = 'b', 'a'
			return c
		}(), `aggregate "d" (count_distinct): corrupt aggregate state: distinct values out of order`},
		{"distinct duplicate", set(distinctAt+7, 'a'), "out of order"},
		{"distinct bad tag", set(distinctAt+3, 'z'), "unknown distinct value tag"},
		{"distinct count too big", set(distinctAt+1, 0x7f), "127 distinct values"},
		{"min kind", set(len(good)-3, 99), `aggregate "lo" (min): corrupt aggregate state: value kind 99`},
		{"string too long", set(len(good)-2, 9), "truncated"},
		{"trailing", append(bytes.Clone(good), 0), "1 trailing bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := g.Decode(tt.b)
			if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode(%x) = %v, want ErrCorrupt containing %q", tt.b, err, tt.want)
			}
		})
	}
	t.Run("canonical key checks", func(t *testing.T) {
		for _, k := range []string{"", "b\x02", "i123", "u\x00\x00\x00\x00\x00\x00\x00\x01", "f\x3f\xf0\x00\x00\x00\x00\x00\x00", "f\x7f\xf8\x00\x00\x00\x00\x00\x00", "t\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"} {
			if checkKey(k) == "" {
				t.Errorf("checkKey(%q) accepted a non-canonical key", k)
			}
		}
		for _, v := range []any{true, int64(-5), uint64(math.MaxUint64), 0.25, 1e300, "s", time.Unix(-5, 7)} {
			nv, _ := normalize(v)
			if why := checkKey(string(appendKey(nil, nv))); why != "" {
				t.Errorf("checkKey(key of %v) = %s", v, why)
			}
		}
	})
}

// FuzzDecode: Decode never panics, accepts only canonical encodings (so
// re-encoding reproduces the input), and what it accepts can be used:
// results, JSON, merging.
func FuzzDecode(f *testing.F) {
	g := mustAgg(f, allDefs)
	rng := rand.New(rand.NewPCG(13, 14))
	f.Add(g.NewAcc().AppendBinary(nil))
	for range 20 {
		acc := g.NewAcc()
		for range rng.IntN(6) {
			if err := acc.Add(genEvent(rng, true), rng.Int64N(100)); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(acc.AppendBinary(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		acc, err := g.Decode(b)
		if err != nil {
			if acc != nil {
				t.Fatal("Decode returned an accumulator with an error")
			}
			return
		}
		if b2 := acc.AppendBinary(nil); !bytes.Equal(b, b2) {
			t.Fatalf("accepted a non-canonical encoding\n in %x\nout %x", b, b2)
		}
		js := append([]byte{'{'}, acc.AppendJSONFields(nil)...)
		js = append(js, '}')
		if !json.Valid(js) {
			t.Fatalf("invalid JSON %s", js)
		}
		_ = acc.String()
		if err := acc.Merge(acc.Clone()); err != nil {
			t.Fatalf("merge with its own clone: %v", err)
		}
	})
}
