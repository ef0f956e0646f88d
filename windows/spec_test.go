package windows

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

const msec = time.Millisecond

func msecs(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string // substring of the error; "" for valid
	}{
		{"tumbling", Spec{Kind: Tumbling, Size: time.Minute}, ""},
		{"tumbling advance equals size", Spec{Kind: Tumbling, Size: time.Minute, Advance: time.Minute}, ""},
		{"tumbling with grace", Spec{Kind: Tumbling, Size: time.Minute, Grace: time.Second}, ""},
		{"tumbling zero size", Spec{Kind: Tumbling}, "size: must be positive"},
		{"tumbling advance", Spec{Kind: Tumbling, Size: time.Minute, Advance: time.Second}, "advance: must be zero or equal to size"},
		{"tumbling gap", Spec{Kind: Tumbling, Size: time.Minute, Gap: time.Second}, "gap: must be zero"},
		{"hopping", Spec{Kind: Hopping, Size: time.Minute, Advance: 10 * time.Second}, ""},
		{"hopping not a multiple", Spec{Kind: Hopping, Size: 10 * msec, Advance: 4 * msec}, ""},
		{"hopping advance equals size", Spec{Kind: Hopping, Size: time.Minute, Advance: time.Minute}, ""},
		{"hopping zero advance", Spec{Kind: Hopping, Size: time.Minute}, "advance: must be positive"},
		{"hopping advance above size", Spec{Kind: Hopping, Size: time.Second, Advance: time.Minute}, "advance: must be positive and at most size"},
		{"hopping zero size", Spec{Kind: Hopping, Advance: time.Second}, "size: must be positive"},
		{"hopping too many windows", Spec{Kind: Hopping, Size: time.Hour, Advance: msec}, "more than 10000"},
		{"hopping at the window limit", Spec{Kind: Hopping, Size: 10 * time.Second, Advance: msec}, ""},
		{"session", Spec{Kind: Session, Gap: time.Minute, Grace: time.Second}, ""},
		{"session zero gap", Spec{Kind: Session}, "gap: must be positive"},
		{"session size", Spec{Kind: Session, Gap: time.Minute, Size: time.Minute}, "size: must be zero"},
		{"session advance", Spec{Kind: Session, Gap: time.Minute, Advance: time.Minute}, "advance: must be zero"},
		{"no kind", Spec{Size: time.Minute}, "kind: unknown"},
		{"negative grace", Spec{Kind: Tumbling, Size: time.Minute, Grace: -time.Second}, "grace: must not be negative"},
		{"sub-millisecond size", Spec{Kind: Tumbling, Size: 1500 * time.Microsecond}, "size: must be a whole number of milliseconds"},
		{"sub-millisecond grace", Spec{Kind: Session, Gap: time.Second, Grace: time.Nanosecond}, "grace: must be a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range []Kind{Tumbling, Hopping, Session} {
		t.Run(k.String(), func(t *testing.T) {
			got, err := ParseKind(k.String())
			if err != nil || got != k {
				t.Fatalf("ParseKind(%q) = %v, %v", k.String(), got, err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		if _, err := ParseKind("sliding"); err == nil || !strings.Contains(err.Error(), `"sliding"`) {
			t.Fatalf("ParseKind(sliding) error = %v", err)
		}
	})
}

func TestAssign(t *testing.T) {
	tumble := Spec{Kind: Tumbling, Size: 10 * msec}
	hop := Spec{Kind: Hopping, Size: 10 * msec, Advance: 5 * msec}
	odd := Spec{Kind: Hopping, Size: 10 * msec, Advance: 4 * msec}
	day := Spec{Kind: Tumbling, Size: 24 * time.Hour}
	tests := []struct {
		name string
		spec Spec
		t    int64
		want []Window
	}{
		{"tumbling start", tumble, 0, []Window{{0, 10}}},
		{"tumbling last ms", tumble, 9, []Window{{0, 10}}},
		{"tumbling end belongs to next", tumble, 10, []Window{{10, 20}}},
		{"tumbling -1", tumble, -1, []Window{{-10, 0}}},
		{"tumbling -10", tumble, -10, []Window{{-10, 0}}},
		{"tumbling -11", tumble, -11, []Window{{-20, -10}}},
		{"tumbling UTC day", day, 1700000000123, []Window{{1699920000000, 1700006400000}}},
		{"tumbling MaxTime", tumble, MaxTime, []Window{{MaxTime - MaxTime%10, MaxTime - MaxTime%10 + 10}}},
		{"tumbling MinTime", tumble, MinTime, []Window{{MinTime - (10 + MinTime%10), MinTime - (10 + MinTime%10) + 10}}},
		{"hopping middle", hop, 7, []Window{{0, 10}, {5, 15}}},
		{"hopping on boundary", hop, 10, []Window{{5, 15}, {10, 20}}},
		{"hopping zero", hop, 0, []Window{{-5, 5}, {0, 10}}},
		{"hopping -1", hop, -1, []Window{{-10, 0}, {-5, 5}}},
		{"hopping -5", hop, -5, []Window{{-10, 0}, {-5, 5}}},
		{"hopping -6", hop, -6, []Window{{-15, -5}, {-10, 0}}},
		{"hopping non-multiple three", odd, 8, []Window{{0, 10}, {4, 14}, {8, 18}}},
		{"hopping non-multiple two", odd, 10, []Window{{4, 14}, {8, 18}}},
		{"hopping non-multiple negative", odd, -1, []Window{{-8, 2}, {-4, 6}}},
		{"session assigns nothing", Spec{Kind: Session, Gap: 10 * msec}, 5, nil},
		{"invalid spec assigns nothing", Spec{Kind: Tumbling}, 5, nil},
		{"out of range", tumble, MaxTime + 1, nil},
		{"out of range negative", tumble, math.MinInt64, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.spec.Assign(tt.t)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Assign(%d) = %v, want %v", tt.t, got, tt.want)
			}
		})
	}
}

// TestAssignHoppingBruteForce checks hopping assignment against the
// definition: every window [k*adv, k*adv+size) containing t, ascending.
func TestAssignHoppingBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sa := range [][2]int64{{10, 5}, {10, 4}, {10, 3}, {10, 10}, {7, 1}, {1, 1}, {100, 33}} {
		spec := Spec{Kind: Hopping, Size: time.Duration(sa[0]) * msec, Advance: time.Duration(sa[1]) * msec}
		t.Run(spec.Size.String()+"/"+spec.Advance.String(), func(t *testing.T) {
			size, adv := sa[0], sa[1]
			for range 2000 {
				ts := rng.Int64N(2000) - 1000
				var want []Window
				for k := int64(-1100); k <= 1100; k++ {
					if w := (Window{k * adv, k*adv + size}); w.Contains(ts) {
						want = append(want, w)
					}
				}
				got := spec.Assign(ts)
				if !slices.Equal(got, want) {
					t.Fatalf("Assign(%d) = %v, want %v", ts, got, want)
				}
				// The count is floor or ceil of size/adv.
				if n := int64(len(got)); n != size/adv && n != (size+adv-1)/adv {
					t.Fatalf("Assign(%d): %d windows", ts, n)
				}
			}
		})
	}
}

func TestAppendWindowsNoAlloc(t *testing.T) {
	tumble := Spec{Kind: Tumbling, Size: time.Minute}
	hop := Spec{Kind: Hopping, Size: time.Minute, Advance: 10 * time.Second}
	buf := make([]Window, 0, 8)
	for _, spec := range []Spec{tumble, hop} {
		t.Run(spec.Kind.String(), func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				buf = spec.AppendWindows(buf[:0], 1700000000123)
			})
			if allocs != 0 {
				t.Fatalf("AppendWindows allocates %v times", allocs)
			}
			if len(buf) == 0 {
				t.Fatal("no windows")
			}
		})
	}
}

func TestClosedAndLate(t *testing.T) {
	tumble := Spec{Kind: Tumbling, Size: 10 * msec, Grace: 5 * msec}
	hop := Spec{Kind: Hopping, Size: 10 * msec, Advance: 5 * msec, Grace: 2 * msec}
	sess := Spec{Kind: Session, Gap: 10 * msec, Grace: 3 * msec}
	w := Window{0, 10}

	t.Run("CloseTime", func(t *testing.T) {
		if got := tumble.CloseTime(w); got != 15 {
			t.Fatalf("CloseTime = %d, want 15", got)
		}
		if got := tumble.CloseTime(Window{0, math.MaxInt64 - 1}); got != math.MaxInt64 {
			t.Fatalf("CloseTime saturates: got %d", got)
		}
	})

	closed := []struct {
		name string
		spec Spec
		w    Window
		wm   int64
		want bool
	}{
		{"before any event", tumble, w, math.MinInt64, false},
		{"at end", tumble, w, 10, false},
		{"one before end+grace", tumble, w, 14, false},
		{"exactly end+grace", tumble, w, 15, true},
		{"after", tumble, w, 100, true},
		{"no grace at end", Spec{Kind: Tumbling, Size: 10 * msec}, w, 10, true},
		{"no grace before end", Spec{Kind: Tumbling, Size: 10 * msec}, w, 9, false},
		{"session window", sess, Window{3, 20}, 23, true},
		{"session window open", sess, Window{3, 20}, 22, false},
	}
	for _, tt := range closed {
		t.Run("Closed/"+tt.name, func(t *testing.T) {
			if got := tt.spec.Closed(tt.w, tt.wm); got != tt.want {
				t.Fatalf("Closed(%v, %d) = %v, want %v", tt.w, tt.wm, got, tt.want)
			}
		})
	}

	late := []struct {
		name  string
		spec  Spec
		t, wm int64
		want  bool
	}{
		{"tumbling open", tumble, 3, 14, false},
		{"tumbling exactly at end+grace", tumble, 3, 15, true},
		{"tumbling last ms at end+grace", tumble, 9, 15, true},
		{"tumbling next window open", tumble, 10, 15, false},
		{"tumbling ahead of watermark", tumble, 100, 50, false},
		{"tumbling negative", tumble, -1, 5, true},
		{"tumbling negative open", tumble, -1, 4, false},
		{"tumbling before any event", tumble, MinTime, math.MinInt64, false},
		// Event 7 is in [0,10) (closes at 12) and [5,15) (closes at 17).
		{"hopping both open", hop, 7, 11, false},
		{"hopping one closed", hop, 7, 12, false},
		{"hopping last closes", hop, 7, 16, false},
		{"hopping all closed", hop, 7, 17, true},
		{"session at watermark", sess, 20, 20, false},
		{"session within grace", sess, 17, 20, false},
		{"session exactly grace behind", sess, 16, 19, false},
		{"session beyond grace", sess, 16, 20, true},
		{"out of range", tumble, MaxTime + 1, 0, true},
	}
	for _, tt := range late {
		t.Run("LateEvent/"+tt.name, func(t *testing.T) {
			if got := tt.spec.LateEvent(tt.t, tt.wm); got != tt.want {
				t.Fatalf("LateEvent(%d, %d) = %v, want %v", tt.t, tt.wm, got, tt.want)
			}
		})
	}
}

// TestLateEventMatchesOpenWindows checks, for tumbling and hopping specs,
// that an event is late exactly when it has no open window.
func TestLateEventMatchesOpenWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	specs := []Spec{
		{Kind: Tumbling, Size: 10 * msec, Grace: 3 * msec},
		{Kind: Hopping, Size: 10 * msec, Advance: 5 * msec},
		{Kind: Hopping, Size: 10 * msec, Advance: 3 * msec, Grace: 7 * msec},
	}
	for _, spec := range specs {
		t.Run(spec.Kind.String()+spec.Advance.String(), func(t *testing.T) {
			for range 5000 {
				ts, wm := rng.Int64N(200)-100, rng.Int64N(200)-100
				open := spec.AppendOpenWindows(nil, ts, wm)
				for _, w := range open {
					if spec.Closed(w, wm) || !w.Contains(ts) {
						t.Fatalf("AppendOpenWindows(%d, %d) returned %v", ts, wm, w)
					}
				}
				if late := spec.LateEvent(ts, wm); late != (len(open) == 0) {
					t.Fatalf("LateEvent(%d, %d) = %v with open windows %v", ts, wm, late, open)
				}
			}
		})
	}
}

func TestCheckTime(t *testing.T) {
	for _, tc := range []struct {
		t  int64
		ok bool
	}{{0, true}, {MinTime, true}, {MaxTime, true}, {MinTime - 1, false}, {MaxTime + 1, false}, {math.MaxInt64, false}} {
		if err := CheckTime(tc.t); (err == nil) != tc.ok {
			t.Errorf("CheckTime(%d) = %v, want ok=%v", tc.t, err, tc.ok)
		}
	}
}

// FuzzAssign checks hopping and tumbling assignment over the whole time
// range, extremes included: every window contains t, starts are the
// consecutive multiples of the hop, no window is missing at either end,
// and an event is late exactly when none of its windows is open.
func FuzzAssign(f *testing.F) {
	f.Add(int64(10), int64(5), int64(7), int64(3), int64(0))
	f.Add(int64(86400000), int64(1), int64(MinTime), int64(0), int64(MinTime))
	f.Add(int64(7), int64(3), int64(MaxTime), int64(100), int64(MaxTime))
	f.Fuzz(func(t *testing.T, size, adv, ts, grace, wm int64) {
		const maxMs = int64(math.MaxInt64 / int64(time.Millisecond))
		size = 1 + abs(size)%maxMs
		adv = 1 + abs(adv)%size
		grace = abs(grace) % maxMs
		if (size+adv-1)/adv > MaxWindowsPerEvent {
			adv = (size + MaxWindowsPerEvent - 1) / MaxWindowsPerEvent
		}
		spec := Spec{Kind: Hopping, Size: msecs(size), Advance: msecs(adv), Grace: msecs(grace)}
		if err := spec.Validate(); err != nil {
			t.Fatal(err)
		}
		ws := spec.Assign(ts)
		if ts < MinTime || ts > MaxTime {
			if len(ws) != 0 || !spec.LateEvent(ts, wm) {
				t.Fatalf("out-of-range %d assigned %v", ts, ws)
			}
			return
		}
		if n := int64(len(ws)); n != size/adv && n != (size+adv-1)/adv {
			t.Fatalf("Assign(%d) with %d/%d: %d windows", ts, size, adv, n)
		}
		for i, w := range ws {
			if !w.Contains(ts) || w.End-w.Start != size || floorDiv(w.Start, adv)*adv != w.Start {
				t.Fatalf("Assign(%d) with %d/%d: bad window %v", ts, size, adv, w)
			}
			if i > 0 && w.Start-ws[i-1].Start != adv {
				t.Fatalf("Assign(%d) with %d/%d: windows %v", ts, size, adv, ws)
			}
		}
		if ws[0].Start-adv+size > ts || ws[len(ws)-1].Start+adv <= ts {
			t.Fatalf("Assign(%d) with %d/%d: a window is missing from %v", ts, size, adv, ws)
		}
		open := spec.AppendOpenWindows(nil, ts, wm)
		if spec.LateEvent(ts, wm) != (len(open) == 0) {
			t.Fatalf("LateEvent(%d, %d) disagrees with open windows %v", ts, wm, open)
		}
	})
}

func abs(x int64) int64 {
	if x < 0 {
		if x == math.MinInt64 {
			return math.MaxInt64
		}
		return -x
	}
	return x
}
