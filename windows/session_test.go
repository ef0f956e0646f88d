package windows

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestMergeSession(t *testing.T) {
	spec := Spec{Kind: Session, Gap: 10 * msec}
	tests := []struct {
		name         string
		sessions     []Window
		t            int64
		wantMerged   Window
		wantAbsorbed []Window
	}{
		{"first event", nil, 5, Window{5, 15}, nil},
		{"inside without change", []Window{{0, 15}}, 3, Window{0, 15}, []Window{{0, 15}}},
		{"at start", []Window{{0, 15}}, 0, Window{0, 15}, []Window{{0, 15}}},
		{"extends end", []Window{{0, 15}}, 12, Window{0, 22}, []Window{{0, 15}}},
		{"last ms before end", []Window{{0, 15}}, 14, Window{0, 24}, []Window{{0, 15}}},
		{"exactly at end starts a new session", []Window{{0, 15}}, 15, Window{15, 25}, nil},
		{"extends start (out of order)", []Window{{20, 30}}, 12, Window{12, 30}, []Window{{20, 30}}},
		{"one ms within gap before start", []Window{{20, 30}}, 11, Window{11, 30}, []Window{{20, 30}}},
		{"exactly gap before start is a new session", []Window{{20, 30}}, 10, Window{10, 20}, nil},
		{"bridges two", []Window{{20, 30}, {0, 15}}, 14, Window{0, 30}, []Window{{0, 15}, {20, 30}}},
		{"bridges adjacent sessions", []Window{{0, 15}, {15, 40}}, 10, Window{0, 40}, []Window{{0, 15}, {15, 40}}},
		{"bridges two of three", []Window{{40, 55}, {0, 15}, {20, 35}}, 34, Window{20, 55}, []Window{{20, 35}, {40, 55}}},
		{"between, touching neither", []Window{{0, 15}, {35, 45}}, 15, Window{15, 25}, nil},
		{"negative times", []Window{{-30, -15}}, -20, Window{-30, -10}, []Window{{-30, -15}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.sessions)
			merged, absorbed := spec.MergeSession(nil, in, tt.t)
			if merged != tt.wantMerged || !slices.Equal(absorbed, tt.wantAbsorbed) {
				t.Fatalf("MergeSession(%v, %d) = %v, %v; want %v, %v", tt.sessions, tt.t, merged, absorbed, tt.wantMerged, tt.wantAbsorbed)
			}
			if !slices.Equal(in, tt.sessions) {
				t.Fatalf("MergeSession modified its input: %v", in)
			}
		})
	}
}

// TestMergeSessionMatchesDefinition feeds random out-of-order events
// through MergeSession and compares the sessions with the definition:
// sort the events, split where consecutive events are Gap or more apart,
// session = [first, last+Gap). It also checks that the accumulators the
// runtime would keep (one per session, merged on absorb) count the events
// of each session.
func TestMergeSessionMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	agg, err := NewAggregator([]Def{{Name: "n", Func: "count"}, {Name: "lo", Func: "min"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, gap := range []int64{1, 3, 10} {
		spec := Spec{Kind: Session, Gap: msecs(gap)}
		t.Run(spec.Gap.String(), func(t *testing.T) {
			for range 300 {
				events := make([]int64, rng.IntN(30)+1)
				for i := range events {
					events[i] = rng.Int64N(100) - 50
				}
				open := map[Window]*Acc{}
				var sessions, absorbed []Window
				for _, ev := range events {
					sessions = sessions[:0]
					for w := range open {
						sessions = append(sessions, w)
					}
					var merged Window
					merged, absorbed = spec.MergeSession(absorbed[:0], sessions, ev)
					acc := agg.NewAcc()
					for _, w := range absorbed {
						if err := acc.Merge(open[w]); err != nil {
							t.Fatal(err)
						}
						delete(open, w)
					}
					if err := acc.Add([]any{nil, ev}, ev); err != nil {
						t.Fatal(err)
					}
					open[merged] = acc
				}

				sorted := slices.Clone(events)
				slices.Sort(sorted)
				want := map[Window]int64{}
				start, n := sorted[0], int64(1)
				for i := 1; i <= len(sorted); i++ {
					if i == len(sorted) || sorted[i]-sorted[i-1] >= gap {
						want[Window{start, sorted[i-1] + gap}] = n
						if i < len(sorted) {
							start, n = sorted[i], 0
						}
					}
					n++
				}
				if len(open) != len(want) {
					t.Fatalf("events %v: sessions %v, want %v", events, keys(open), want)
				}
				for w, acc := range open {
					res := acc.Result()
					if res[0] != want[w] || res[1] != w.Start {
						t.Fatalf("events %v: session %v has count %v min %v, want %v, %d (all: %v)", events, w, res[0], res[1], want[w], w.Start, want)
					}
				}
			}
		})
	}
}

func keys(m map[Window]*Acc) []Window {
	var ws []Window
	for w := range m {
		ws = append(ws, w)
	}
	return ws
}
