package windows

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestWatermark(t *testing.T) {
	type step struct {
		op           string // "observe" or "advance"
		t            int64
		wantAdvanced bool
		wantCurrent  int64
	}
	tests := []struct {
		name     string
		lateness time.Duration
		steps    []step
	}{
		{"no lateness", 0, []step{
			{"observe", 100, true, 100},
			{"observe", 90, false, 100},
			{"observe", 100, false, 100},
			{"observe", 101, true, 101},
		}},
		{"lateness trails max", 5 * msec, []step{
			{"observe", 100, true, 95},
			{"observe", 98, false, 95},
			{"observe", 103, true, 98},
		}},
		{"negative times", 5 * msec, []step{
			{"observe", -100, true, -105},
			{"observe", -50, true, -55},
		}},
		{"advance for idleness", 5 * msec, []step{
			{"observe", 100, true, 95},
			{"advance", 200, true, 200},
			{"observe", 150, false, 200},
			{"advance", 150, false, 200},
			{"observe", 206, true, 201},
		}},
		{"advance before any event", 0, []step{
			{"advance", 10, true, 10},
			{"observe", 5, false, 10},
		}},
		{"out of range ignored", 0, []step{
			{"observe", 7, true, 7},
			{"observe", math.MaxInt64, false, 7},
			{"observe", MaxTime + 1, false, 7},
			{"observe", MaxTime, true, MaxTime},
		}},
		{"sub-millisecond lateness truncated", 1500 * time.Microsecond, []step{
			{"observe", 10, true, 9},
		}},
		{"negative lateness is zero", -time.Second, []step{
			{"observe", 10, true, 10},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWatermark(tt.lateness)
			if w.Current() != math.MinInt64 || w.MaxEventTime() != math.MinInt64 {
				t.Fatalf("fresh watermark: current %d max %d", w.Current(), w.MaxEventTime())
			}
			for i, s := range tt.steps {
				var adv bool
				if s.op == "observe" {
					adv = w.Observe(s.t)
				} else {
					adv = w.Advance(s.t)
				}
				if adv != s.wantAdvanced || w.Current() != s.wantCurrent {
					t.Fatalf("step %d %s(%d): advanced %v current %d; want %v %d", i, s.op, s.t, adv, w.Current(), s.wantAdvanced, s.wantCurrent)
				}
			}
		})
	}
}

func TestWatermarkBinary(t *testing.T) {
	t.Run("round trip keeps max and watermark", func(t *testing.T) {
		w := NewWatermark(5 * msec)
		w.Observe(100)
		w.Advance(120)
		b := w.AppendBinary([]byte("prefix"))
		if len(b) != len("prefix")+WatermarkSize || !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("AppendBinary = %x", b)
		}
		r := NewWatermark(5 * msec)
		if err := r.UnmarshalBinary(b[len("prefix"):]); err != nil {
			t.Fatal(err)
		}
		if r.Current() != 120 || r.MaxEventTime() != 100 {
			t.Fatalf("restored current %d max %d", r.Current(), r.MaxEventTime())
		}
		// Lateness comes from the new instance, and the watermark never
		// goes back.
		if r.Observe(110) || r.Current() != 120 {
			t.Fatalf("after Observe(110): current %d", r.Current())
		}
		if !r.Observe(130) || r.Current() != 125 {
			t.Fatalf("after Observe(130): current %d", r.Current())
		}
	})
	t.Run("fresh round trip", func(t *testing.T) {
		r := NewWatermark(0)
		r.Observe(5)
		if err := r.UnmarshalBinary(NewWatermark(0).AppendBinary(nil)); err != nil {
			t.Fatal(err)
		}
		if r.Current() != math.MinInt64 || r.MaxEventTime() != math.MinInt64 {
			t.Fatalf("restored fresh: current %d max %d", r.Current(), r.MaxEventTime())
		}
	})
	good := NewWatermark(0).AppendBinary(nil)
	bad := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "0 bytes"},
		{"short", good[:16], "16 bytes"},
		{"long", append(good[:17:17], 0), "18 bytes"},
		{"version", append([]byte{9}, good[1:]...), "version 9"},
		{"max out of range", append([]byte{1, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, good[9:]...), "out of range"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWatermark(0)
			w.Observe(42)
			err := w.UnmarshalBinary(tt.b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("UnmarshalBinary = %v, want error containing %q", err, tt.want)
			}
			if w.Current() != 42 || w.MaxEventTime() != 42 {
				t.Fatalf("failed UnmarshalBinary changed the watermark: %d %d", w.Current(), w.MaxEventTime())
			}
		})
	}
}
