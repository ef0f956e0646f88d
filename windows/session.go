package windows

import "slices"

// SessionWindow is the session an event at t forms on its own:
// [t, t+Gap).
func (s Spec) SessionWindow(t int64) Window {
	return Window{t, t + ms(s.Gap)}
}

// MergeSession places an event at t among a key's open sessions.
//
// sessions are the key's open session windows, in any order, pairwise
// disjoint (as MergeSession produces them). The event's own window
// [t, t+Gap) is merged with every session it overlaps; merged is the
// union, and absorbed (appended to dst, ascending by Start) lists the
// overlapped sessions. The runtime merges the accumulators of the absorbed
// sessions into one, adds the event, stores it under merged and deletes
// the absorbed sessions' entries and timers.
//
// The cases, with Gap 10:
//
//	event inside [0,15) at 3:       merged [0,15)   absorbed [0,15)
//	event after  [0,15) at 12:      merged [0,22)   absorbed [0,15)
//	event before [20,30) at 12:     merged [12,30)  absorbed [20,30)
//	bridge [0,15) [20,30) at 14:    merged [0,30)   absorbed [0,15) [20,30)
//	new session at 15 (= End):      merged [15,25)  absorbed none
//
// When the event falls inside a session without moving its bounds,
// absorbed is that one session and equals merged. Events exactly Gap
// apart do not share a session: two events belong together only when
// they are less than Gap apart.
func (s Spec) MergeSession(dst, sessions []Window, t int64) (merged Window, absorbed []Window) {
	merged = s.SessionWindow(t)
	n := len(dst)
	for _, w := range sessions {
		if w.Start < merged.End && t < w.End {
			dst = append(dst, w)
		}
	}
	// Overlapping the event's window is enough: sessions are disjoint and
	// the union of the event's window with sessions overlapping it is an
	// interval, so no second pass is needed.
	for _, w := range dst[n:] {
		merged.Start = min(merged.Start, w.Start)
		merged.End = max(merged.End, w.End)
	}
	if len(dst)-n > 1 {
		slices.SortFunc(dst[n:], func(a, b Window) int {
			switch {
			case a.Start < b.Start:
				return -1
			case a.Start > b.Start:
				return 1
			}
			return 0
		})
	}
	return merged, dst
}
