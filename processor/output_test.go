package processor

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/statedb/memory"
	"github.com/eddy-streams/eddy/windows"
)

// Output IDs must never change between versions: a replay after an
// upgrade must produce the same eddy-id headers, or downstream
// deduplication lets the replayed outputs through. refOutputID is the
// definition.
func refOutputID(pipelineName, kind, eventID string, n int) string {
	h := sha256.New()
	h.Write([]byte(pipelineName + "\x00" + kind + "\x00" + eventID + "\x00" + strconv.Itoa(n)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func TestOutputIDIsStable(t *testing.T) {
	long := strings.Repeat("k", 300) // beyond outputID's stack buffer
	for _, tc := range []struct {
		name                 string
		pipeline, kind, evID string
		n                    int
	}{
		{"sink output", "orders", "out", "orders-3-1234", 0},
		{"second output of an event", "orders", "out", "orders-3-1234", 1},
		{"window result", "clicks", "per_user/final", "u00017\x001700000040000\x001700000100000", 0},
		{"update", "clicks", "per_user/update", "u00017\x001700000040000", 987654321},
		{"empty parts", "", "", "", 0},
		{"long key", "p", "agg/final", long, 0},
		{"negative n", "p", "out", "e", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := outputID(tc.pipeline, tc.kind, tc.evID, tc.n), refOutputID(tc.pipeline, tc.kind, tc.evID, tc.n)
			if got != want {
				t.Errorf("outputID = %s, want %s", got, want)
			}
		})
	}
	// A value computed outside Go (Python's hashlib), so that a change of
	// the definition itself is caught too.
	if got, want := outputID("orders", "out", "orders-0-0", 0), "fd13058d246253ef34a7b8136cb9755d"; got != want {
		t.Errorf("outputID = %q, want %q", got, want)
	}
}

// Window results build their ID input themselves; it must be the one
// outputID hashes.
func TestWindowResultIDs(t *testing.T) {
	tk := newBenchTask(t, benchAggregateYAML, memory.New())
	op := tk.ops[0].(*aggOp)
	tk.last = 4242
	w := windows.Window{Start: 1_700_000_040_000, End: 1_700_000_100_000}
	for _, tc := range []struct {
		kind, want string
	}{
		{"final", refOutputID("bench", "per_user/final", "u00017\x001700000040000\x001700000100000", 0)},
		{"update", refOutputID("bench", "per_user/update", "u00017\x001700000040000", 4242)},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			r := op.result(tk.ctxs[0], "u00017", w, op.fns.NewAcc(), tc.kind)
			if r.ID != tc.want || r.outID != tc.want {
				t.Errorf("ID %s (outID %s), want %s", r.ID, r.outID, tc.want)
			}
		})
	}
}

func BenchmarkOutputID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = outputID("clicks", "per_user/final", "u00017\x001700000040000\x001700000100000", 0)
	}
}
