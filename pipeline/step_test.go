package pipeline

import (
	"math"
	"testing"

	"github.com/eddy-streams/eddy/dedup"
)

// IDFor without source.event_id builds the common case itself; it must
// give exactly what dedup.DefaultID gives (the runtime and eddy's tools
// agree on event IDs), or replays would get new event IDs.
func TestIDForMatchesDedupDefaultID(t *testing.T) {
	var src Source
	for _, v := range []Vars{
		{Topic: "orders", Partition: 3, Offset: 1234},
		{Topic: "orders", Partition: 0, Offset: 0},
		{Topic: "t", Partition: math.MaxInt32, Offset: math.MaxInt64},
		{Topic: "", Partition: -1, Offset: -1},
		{Topic: string(make([]byte, 200)), Partition: 7, Offset: 99}, // beyond the stack buffer
		{Topic: "in", Partition: 1, Offset: 5, Headers: map[string]string{dedup.IDHeader: "upstream-id"}},
		{Topic: "in", Partition: 1, Offset: 5, Headers: map[string]string{dedup.IDHeader: ""}},
		{Topic: "in", Partition: 1, Offset: 5, Headers: map[string]string{"other": "x"}},
	} {
		got, err := src.IDFor(&v)
		if want := dedup.DefaultID(v.Topic, v.Partition, v.Offset, v.Headers); err != nil || got != want {
			t.Errorf("IDFor(%.20q/%d/%d, %v) = %q, %v; want %q", v.Topic, v.Partition, v.Offset, v.Headers, got, err, want)
		}
	}
}

// A raw sink has nothing to write for an event without "value": that is
// an error (the event goes to the dead letters), not an empty message.
func TestRawEncodeOfMissingValueFails(t *testing.T) {
	s := Sink{Format: FormatRaw}
	if b, err := s.Encode(map[string]any{"other": "x"}); err == nil {
		t.Fatalf("Encode = %q, nil; want an error naming the field", b)
	}
}
