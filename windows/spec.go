package windows

import (
	"fmt"
	"math"
	"time"
)

// Event times are Unix milliseconds. Only times in [MinTime, MaxTime]
// (about ±146 million years) are assigned to windows: within that range no
// window bound or close time can overflow an int64. Check event times with
// [CheckTime] before using them.
const (
	MinTime int64 = -1 << 62
	MaxTime int64 = 1<<62 - 1
)

// MaxWindowsPerEvent bounds how many hopping windows one event may fall in
// (Size / Advance, rounded up). Every window an event falls in is one state
// update, so a larger ratio is almost certainly a configuration mistake.
const MaxWindowsPerEvent = 10000

// CheckTime reports an error when t (Unix ms) is outside [MinTime, MaxTime].
func CheckTime(t int64) error {
	if t < MinTime || t > MaxTime {
		return fmt.Errorf("windows: event time %d ms is outside the supported range [%d, %d]", t, MinTime, MaxTime)
	}
	return nil
}

// Kind is a window type.
type Kind uint8

// The window types. The zero Kind is invalid.
const (
	Tumbling Kind = iota + 1
	Hopping
	Session
)

// String returns the kind's configuration name: "tumbling", "hopping" or
// "session".
func (k Kind) String() string {
	switch k {
	case Tumbling:
		return "tumbling"
	case Hopping:
		return "hopping"
	case Session:
		return "session"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind is the inverse of [Kind.String].
func ParseKind(s string) (Kind, error) {
	switch s {
	case "tumbling":
		return Tumbling, nil
	case "hopping":
		return Hopping, nil
	case "session":
		return Session, nil
	}
	return 0, fmt.Errorf("windows: unknown window kind %q (want tumbling, hopping or session)", s)
}

// Window is the half-open event-time interval [Start, End) in Unix
// milliseconds.
type Window struct {
	Start, End int64
}

// Contains reports whether Start <= t < End.
func (w Window) Contains(t int64) bool { return w.Start <= t && t < w.End }

// String formats w as "[Start,End)".
func (w Window) String() string { return fmt.Sprintf("[%d,%d)", w.Start, w.End) }

// Spec describes how events are grouped into windows. A Spec is a plain
// value: call [Spec.Validate] once after building it; the other methods
// assume a valid Spec (on an invalid one they return no windows rather than
// panic). All durations must be whole milliseconds.
type Spec struct {
	Kind Kind
	// Size is the length of tumbling and hopping windows.
	Size time.Duration
	// Advance is the hop of hopping windows: a window starts at every
	// multiple of Advance. It must be zero (or equal to Size) for tumbling
	// windows. Size need not be a multiple of Advance; when it is not, an
	// event falls in either floor(Size/Advance) or ceil(Size/Advance)
	// windows depending on its time.
	Advance time.Duration
	// Gap is the inactivity gap of session windows.
	Gap time.Duration
	// Grace is how long after its End a window still accepts events, in
	// event time (measured by the watermark). Zero closes a window as soon
	// as the watermark reaches its End.
	Grace time.Duration
}

// Validate checks s and returns an error naming the first bad field.
func (s Spec) Validate() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"size", s.Size}, {"advance", s.Advance}, {"gap", s.Gap}, {"grace", s.Grace}} {
		if f.d < 0 {
			return fmt.Errorf("windows: %s: must not be negative (got %v)", f.name, f.d)
		}
		if f.d%time.Millisecond != 0 {
			return fmt.Errorf("windows: %s: must be a whole number of milliseconds (got %v)", f.name, f.d)
		}
	}
	switch s.Kind {
	case Tumbling:
		if s.Size <= 0 {
			return fmt.Errorf("windows: size: must be positive for tumbling windows (got %v)", s.Size)
		}
		if s.Advance != 0 && s.Advance != s.Size {
			return fmt.Errorf("windows: advance: must be zero or equal to size for tumbling windows (got %v, size %v)", s.Advance, s.Size)
		}
		if s.Gap != 0 {
			return fmt.Errorf("windows: gap: must be zero for tumbling windows (got %v)", s.Gap)
		}
	case Hopping:
		if s.Size <= 0 {
			return fmt.Errorf("windows: size: must be positive for hopping windows (got %v)", s.Size)
		}
		if s.Advance <= 0 || s.Advance > s.Size {
			return fmt.Errorf("windows: advance: must be positive and at most size %v for hopping windows (got %v)", s.Size, s.Advance)
		}
		if n := (s.Size + s.Advance - 1) / s.Advance; n > MaxWindowsPerEvent {
			return fmt.Errorf("windows: advance: size %v / advance %v puts each event in %d windows, more than %d", s.Size, s.Advance, n, MaxWindowsPerEvent)
		}
		if s.Gap != 0 {
			return fmt.Errorf("windows: gap: must be zero for hopping windows (got %v)", s.Gap)
		}
	case Session:
		if s.Gap <= 0 {
			return fmt.Errorf("windows: gap: must be positive for session windows (got %v)", s.Gap)
		}
		if s.Size != 0 {
			return fmt.Errorf("windows: size: must be zero for session windows (got %v)", s.Size)
		}
		if s.Advance != 0 {
			return fmt.Errorf("windows: advance: must be zero for session windows (got %v)", s.Advance)
		}
	default:
		return fmt.Errorf("windows: kind: unknown window kind %d", uint8(s.Kind))
	}
	return nil
}

// ms converts a duration to whole milliseconds.
func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }

// floorDiv is a / b rounded towards negative infinity; b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// Assign returns the tumbling or hopping windows that contain t, in
// ascending order of Start. Windows are aligned to the Unix epoch: a
// tumbling window starts at a multiple of Size, a hopping window at a
// multiple of Advance. Session windows are not assigned this way (see
// [Spec.MergeSession]): Assign returns nil for them, and for t outside
// [MinTime, MaxTime].
func (s Spec) Assign(t int64) []Window {
	return s.AppendWindows(nil, t)
}

// AppendWindows is [Spec.Assign] appending to dst; it does not allocate
// when dst has room.
func (s Spec) AppendWindows(dst []Window, t int64) []Window {
	size := ms(s.Size)
	if size <= 0 || t < MinTime || t > MaxTime {
		return dst
	}
	switch s.Kind {
	case Tumbling:
		start := floorDiv(t, size) * size
		return append(dst, Window{start, start + size})
	case Hopping:
		adv := ms(s.Advance)
		if adv <= 0 || adv > size {
			return dst
		}
		last := floorDiv(t, adv) * adv
		// Starts are the multiples of adv in (t-size, last].
		n := (last-t+size-1)/adv + 1
		for start := last - (n-1)*adv; start <= last; start += adv {
			dst = append(dst, Window{start, start + size})
		}
		return dst
	}
	return dst
}

// AppendOpenWindows is [Spec.AppendWindows] keeping only the windows that
// are not closed at watermark wm: the windows an event at t must update.
// For hopping windows some of an event's windows may already be closed
// while others are open; the event updates the open ones only.
func (s Spec) AppendOpenWindows(dst []Window, t, wm int64) []Window {
	n := len(dst)
	dst = s.AppendWindows(dst, t)
	out := dst[:n]
	for _, w := range dst[n:] {
		if !s.Closed(w, wm) {
			out = append(out, w)
		}
	}
	return out
}

// CloseTime is the watermark at which w closes: w.End + Grace. The runtime
// uses it as the Due of the window's store timer. It saturates at
// math.MaxInt64 rather than overflow.
func (s Spec) CloseTime(w Window) int64 {
	g := ms(s.Grace)
	if w.End > math.MaxInt64-g {
		return math.MaxInt64
	}
	return w.End + g
}

// Closed reports whether w is closed at watermark wm, that is wm >=
// w.End + Grace. A closed window is final: its result can be emitted and
// its state deleted, and no event updates it any more.
func (s Spec) Closed(w Window, wm int64) bool {
	return wm >= s.CloseTime(w)
}

// LateEvent reports whether an event at t is late at watermark wm: it may
// update no open window, so the runtime counts it as late and drops it (or
// sends it to the late topic).
//
//   - Tumbling and hopping: every window containing t is closed.
//   - Session: t + Grace < wm. A closed session has been emitted and
//     forgotten, and such an event could be within the gap of one, so it
//     must not start or extend a session; an event with t + Grace >= wm can
//     only touch sessions that are still open. (For sessions Grace is
//     therefore how far an event may lag the watermark.)
//
// Times outside [MinTime, MaxTime] are always late.
func (s Spec) LateEvent(t, wm int64) bool {
	if t < MinTime || t > MaxTime {
		return true
	}
	switch s.Kind {
	case Tumbling, Hopping:
		var buf [1]Window
		// The window with the greatest End is the last one; its start is
		// the latest multiple of the hop.
		ws := s.lastWindow(buf[:0], t)
		if len(ws) == 0 {
			return true
		}
		return s.Closed(ws[0], wm)
	case Session:
		return t+ms(s.Grace) < wm
	}
	return true
}

// lastWindow appends the window containing t with the greatest Start.
func (s Spec) lastWindow(dst []Window, t int64) []Window {
	size := ms(s.Size)
	if size <= 0 {
		return dst
	}
	hop := size
	if s.Kind == Hopping {
		hop = ms(s.Advance)
		if hop <= 0 || hop > size {
			return dst
		}
	}
	start := floorDiv(t, hop) * hop
	return append(dst, Window{start, start + size})
}
