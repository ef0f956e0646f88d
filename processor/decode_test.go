package processor

import (
	"math"
	"testing"

	"github.com/eddy-streams/eddy/dedup"
)

// defaultID builds the common case itself; it must give exactly what
// dedup.DefaultID gives, or replays would get new event IDs.
func TestDefaultIDMatchesDedup(t *testing.T) {
	for _, rec := range []Record{
		{Topic: "orders", Partition: 3, Offset: 1234},
		{Topic: "orders", Partition: 0, Offset: 0},
		{Topic: "t", Partition: math.MaxInt32, Offset: math.MaxInt64},
		{Topic: "", Partition: -1, Offset: -1},
		{Topic: string(make([]byte, 200)), Partition: 7, Offset: 99}, // beyond the stack buffer
		{Topic: "in", Partition: 1, Offset: 5, Headers: map[string]string{IDHeader: "upstream-id"}},
		{Topic: "in", Partition: 1, Offset: 5, Headers: map[string]string{IDHeader: ""}},
		{Topic: "in", Partition: 1, Offset: 5, Headers: map[string]string{"other": "x"}},
	} {
		got, want := defaultID(&rec), dedup.DefaultID(rec.Topic, rec.Partition, rec.Offset, rec.Headers)
		if got != want {
			t.Errorf("defaultID(%.20q/%d/%d, %v) = %q, want %q", rec.Topic, rec.Partition, rec.Offset, rec.Headers, got, want)
		}
	}
}
