// Package windows is eddy's event-time logic: which windows an event falls
// in, when a window closes, which events are late, and the aggregate
// functions computed per (key, window). It is pure: no I/O, no clocks, no
// goroutines. The runtime (package processor) keeps each accumulator in
// the state store as the bytes of [Acc.AppendBinary], keyed by operator,
// key and window, and each open window as a store timer due at
// [Spec.CloseTime].
//
// # Time
//
// Time is event time in Unix milliseconds (int64) everywhere. Windows are
// half-open intervals [Start, End): an event at End belongs to the next
// window, not this one. Only times in [MinTime, MaxTime] (about ±146
// million years around 1970) are accepted; [CheckTime] rejects the rest.
// Negative times (before 1970) are handled like any other.
//
// # Tumbling windows
//
// Fixed-size, non-overlapping windows aligned to the Unix epoch: every
// window starts at a multiple of Size, so 1-day windows are UTC days.
// Each event is in exactly one window. Size 10:
//
//	time     -10       0        10        20
//	windows   [-10,0)  [0,10)   [10,20)   [20,30)
//	event 9 -> [0,10)   event 10 -> [10,20)   event -1 -> [-10,0)
//
// # Hopping windows
//
// Fixed-size windows that start every Advance (Advance <= Size), so they
// overlap and an event is in about Size/Advance of them, all updated.
// Size 10, Advance 5:
//
//	[-5,5)    [0,10)    [5,15)    [10,20)
//	event 7  -> [0,10) [5,15)
//	event 10 -> [5,15) [10,20)
//
// Size need not be a multiple of Advance (Size 10, Advance 4: an event is
// in two or three windows). Advance equal to Size is a tumbling window.
// An event may fall in at most [MaxWindowsPerEvent] windows.
//
// # Session windows
//
// A session groups a key's events whose consecutive gaps are less than
// Gap: it ends after Gap of inactivity. A session whose first event is at
// f and last at l is the window [f, l+Gap): the event's own window is
// [t, t+Gap), and sessions are the unions of overlapping event windows.
// Gap 10:
//
//	events 0 3 9      -> one session [0,19)
//	event 19          -> a new session [19,29): 19-9 = 10 is not < 10
//	event 14 arriving -> bridges them: [0,29)
//
// An event closer than Gap to two sessions merges them into one (their
// accumulators are merged, see [Acc.Merge]); an event inside a session
// changes nothing but its aggregates. [Spec.MergeSession] does the
// bookkeeping. Ending a session at l+Gap (not at l, as Kafka Streams
// does) makes a session close like any window: when the watermark
// passes End + Grace, no event still to come can extend it.
//
// # Watermark, grace and lateness
//
// Each partition has a [Watermark]: the greatest event time seen minus the
// allowed lateness (out-of-orderness), never decreasing; math.MinInt64
// before the first event. A window closes when the watermark reaches
// End + Grace ([Spec.Closed], [Spec.CloseTime]): its result is final, the
// runtime emits it (emit mode on_close) and forgets its state. Grace 5,
// window [0,10): the window still takes events while the watermark is 14
// and closes when it reaches 15.
//
// An event is late when it could only update closed windows
// ([Spec.LateEvent]): for tumbling windows, when its window is closed;
// for hopping windows, when all of its windows are (otherwise it updates
// the open ones only, see [Spec.AppendOpenWindows]). For sessions an
// event is late when t + Grace < watermark: a closed session is gone, and
// an event that old might belong to it, so it must not start a new
// session beside it. Late events are counted, and dropped or sent to the
// late topic, never added. An event with t >= watermark is never late.
//
// # Aggregates
//
// An [Aggregator] is built from [Def]s (result name and function); its
// [Acc] accumulates one (key, window). Arguments are the values a JSON
// decode and CEL produce: nil, bool, int64, uint64, float64, string and
// time.Time (other integer and float types and json.Number are
// converted). A nil argument (missing or null field) is ignored by every
// function but count. Lists, maps, NaN and infinities are errors.
//
//	count           number of events, int64 (counts events, like COUNT(*))
//	sum             int64 if every value was an integer and the exact
//	                total fits int64; float64 if any value was a float or
//	                the total does not fit. Integer totals are exact (128-bit)
//	                and independent of order; float parts use compensated
//	                summation. nil when there were no values.
//	min, max        numbers compare numerically across int64, uint64 and
//	                float64 (exactly: int 2^53+1 > float 2^53), the winner
//	                keeps its own type; strings compare bytewise (Unicode
//	                code point order); timestamps by time; false < true.
//	                Mixing classes (a string after a number) is an error.
//	                On a tie the earlier value stays. nil when no values.
//	avg             float64, the exact sum over the number of values;
//	                nil when no values.
//	first, last     the value of the event with the smallest (first) or
//	                greatest (last) event time; on equal times first keeps
//	                the earliest arrival and last takes the latest.
//	count_distinct  exact number of distinct values, int64. Numbers are
//	                compared by value, so 1, 1.0 and uint 1 are one value;
//	                the string "1" is another. State grows with the
//	                number of distinct values.
//
// A value a function cannot take (a string in sum, a list anywhere) makes
// [Acc.Add] return an [*AggregateError] naming the aggregate, and leaves
// the whole accumulator unchanged: an event is added to all aggregates or
// to none, and the runtime sends a rejected event to the dead-letter
// topic. Results are returned in definition order ([Acc.Result]) or as
// JSON members ([Acc.AppendJSONFields]).
//
// # State encoding
//
// [Acc.AppendBinary] writes a compact, versioned, deterministic encoding:
// the same state gives the same bytes, whatever the order of the events
// that built it. [Aggregator.Decode] accepts exactly those bytes and
// returns an error, never a panic, for anything else. The encoding names
// each aggregate's function but not its name: renaming aggregates keeps
// the state of open windows, changing their functions or number makes
// old states fail to decode.
//
// # Concurrency
//
// [Spec], [Window] and [Aggregator] are immutable values, safe for
// concurrent use. [Acc] and [Watermark] are not: the partition task that
// owns them uses them from its one goroutine.
package windows
