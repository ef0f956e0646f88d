package windows

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// WatermarkSize is the length of a watermark's binary encoding.
const WatermarkSize = 17

const watermarkVersion = 1

// Watermark tracks the event-time watermark of one partition: the maximum
// event time observed minus the allowed lateness (out-of-orderness), never
// moving backwards. Before any event it is math.MinInt64, which closes
// nothing.
//
// Create it with [NewWatermark]; the zero value is not ready for use. A
// Watermark is not safe for concurrent use: the partition task owns it.
type Watermark struct {
	lateness int64 // ms, >= 0
	max      int64 // greatest event time observed, or math.MinInt64
	current  int64 // the watermark, or math.MinInt64
}

// NewWatermark returns a watermark that trails the greatest observed event
// time by allowedLateness (truncated to whole milliseconds; a negative
// value counts as zero).
func NewWatermark(allowedLateness time.Duration) *Watermark {
	return &Watermark{
		lateness: max(0, ms(allowedLateness)),
		max:      math.MinInt64,
		current:  math.MinInt64,
	}
}

// Observe records an event time (Unix ms) and reports whether the
// watermark advanced. Times outside [MinTime, MaxTime] are ignored: the
// runtime rejects such events (see [CheckTime]) and they must not drag the
// watermark to the end of time.
func (w *Watermark) Observe(t int64) bool {
	if t < MinTime || t > MaxTime {
		return false
	}
	if t > w.max {
		w.max = t
	}
	return w.Advance(t - w.lateness)
}

// Advance moves the watermark to at least to and reports whether it moved.
// The runtime uses it to let time pass on an idle partition (for example to
// wall-clock time minus the lateness once no event arrived for the idle
// timeout); events observed later cannot move the watermark back.
func (w *Watermark) Advance(to int64) bool {
	if to <= w.current {
		return false
	}
	w.current = to
	return true
}

// Current returns the watermark: max event time seen minus the allowed
// lateness, or a later time set by [Watermark.Advance]; math.MinInt64
// before anything was observed or advanced.
func (w *Watermark) Current() int64 { return w.current }

// MaxEventTime returns the greatest event time observed, or math.MinInt64.
func (w *Watermark) MaxEventTime() int64 { return w.max }

// AppendBinary appends the watermark's WatermarkSize-byte encoding (a
// version byte, then the maximum event time and the watermark as
// big-endian int64s) to dst. The allowed lateness is configuration and is
// not encoded. Encoding cannot fail, so this is not the error-returning
// encoding.BinaryAppender.
func (w *Watermark) AppendBinary(dst []byte) []byte {
	dst = append(dst, watermarkVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(w.max))
	return binary.BigEndian.AppendUint64(dst, uint64(w.current))
}

// UnmarshalBinary restores a watermark written by [Watermark.AppendBinary],
// keeping the allowed lateness w was created with. data must be exactly
// WatermarkSize bytes. On error w is unchanged.
func (w *Watermark) UnmarshalBinary(data []byte) error {
	if len(data) != WatermarkSize {
		return fmt.Errorf("windows: watermark: encoding is %d bytes, want %d", len(data), WatermarkSize)
	}
	if data[0] != watermarkVersion {
		return fmt.Errorf("windows: watermark: unknown encoding version %d", data[0])
	}
	mx := int64(binary.BigEndian.Uint64(data[1:9]))
	cur := int64(binary.BigEndian.Uint64(data[9:17]))
	if mx != math.MinInt64 && (mx < MinTime || mx > MaxTime) {
		return fmt.Errorf("windows: watermark: max event time %d out of range", mx)
	}
	w.max, w.current = mx, cur
	return nil
}
