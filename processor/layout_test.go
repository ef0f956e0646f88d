package processor

import (
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/statedb/memory"
)

// State keys are what the store holds: their layout must not change, or
// a new version would not find the windows an older one left open.
func TestStateKeyLayout(t *testing.T) {
	tk := newBenchTask(t, benchAggregateYAML, memory.New())
	op := tk.ops[0].(*aggOp)
	long := strings.Repeat("g", 200) // beyond stateKey's stack buffer
	for _, tc := range []struct {
		group string
		start int64
		want  string
	}{
		{"u00017", 1_700_000_040_000, "w\x00per_user\x001700000040000\x00u00017"},
		{"", 0, "w\x00per_user\x000\x00"},
		{"a\x00b", -60_000, "w\x00per_user\x00-60000\x00a\x00b"},
		{long, 5, "w\x00per_user\x005\x00" + long},
	} {
		got := op.stateKey(tc.group, tc.start)
		if got != tc.want {
			t.Errorf("stateKey(%.20q, %d) = %q, want %q", tc.group, tc.start, got, tc.want)
		}
		group, start, ok := op.parseKey(got)
		if !ok || group != tc.group || start != tc.start {
			t.Errorf("parseKey(%.30q) = %.20q, %d, %v", got, group, start, ok)
		}
	}
}
