package windows

import (
	"testing"
	"time"
)

func BenchmarkAssign(b *testing.B) {
	specs := []struct {
		name string
		spec Spec
	}{
		{"tumbling", Spec{Kind: Tumbling, Size: time.Minute}},
		{"hopping6", Spec{Kind: Hopping, Size: time.Minute, Advance: 10 * time.Second}},
	}
	for _, s := range specs {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]Window, 0, 8)
			t := int64(1700000000000)
			for b.Loop() {
				buf = s.spec.AppendWindows(buf[:0], t)
				t += 7
			}
		})
	}
	b.Run("session-merge", func(b *testing.B) {
		b.ReportAllocs()
		spec := Spec{Kind: Session, Gap: time.Minute}
		sessions := []Window{{0, 60000}, {200000, 260000}, {400000, 460000}}
		buf := make([]Window, 0, 4)
		var t int64
		for b.Loop() {
			_, buf = spec.MergeSession(buf[:0], sessions, t%500000)
			t += 997
		}
	})
}

// BenchmarkAdd adds one event to count, sum and last.
func BenchmarkAdd(b *testing.B) {
	g := mustAgg(b, []Def{{"n", "count"}, {"total", "sum"}, {"latest", "last"}})
	acc := g.NewAcc()
	args := []any{nil, int64(42), "device-17"}
	b.ReportAllocs()
	t := int64(0)
	for b.Loop() {
		if err := acc.Add(args, t); err != nil {
			b.Fatal(err)
		}
		t++
	}
}

func BenchmarkAddAll(b *testing.B) {
	g := mustAgg(b, allDefs)
	acc := g.NewAcc()
	args := []any{nil, 1.5, int64(3), int64(4), 2.5, "a", "b", "user-1"}
	b.ReportAllocs()
	t := int64(0)
	for b.Loop() {
		if err := acc.Add(args, t); err != nil {
			b.Fatal(err)
		}
		t++
	}
}

func benchAcc(b *testing.B, distinct int) (*Aggregator, *Acc) {
	g := mustAgg(b, allDefs)
	acc := g.NewAcc()
	for i := range max(distinct, 1) {
		args := []any{nil, int64(i), float64(i) / 3, int64(i), int64(i), "first", "last", int64(i)}
		if err := acc.Add(args, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	return g, acc
}

func BenchmarkEncode(b *testing.B) {
	for _, d := range []int{1, 100} {
		_, acc := benchAcc(b, d)
		b.Run(distinctName(d), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				buf = acc.AppendBinary(buf[:0])
			}
			b.ReportMetric(float64(len(buf)), "bytes")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, d := range []int{1, 100} {
		g, acc := benchAcc(b, d)
		enc := acc.AppendBinary(nil)
		b.Run(distinctName(d), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func distinctName(d int) string {
	if d == 1 {
		return "all-funcs"
	}
	return "all-funcs-100-distinct"
}
