package memory_test

import (
	"testing"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
	"github.com/eddy-streams/eddy/statedb/statedbtest"
)

// BenchmarkStore runs the shared statedb benchmarks. The memory store makes
// no round trips, so only entries/s is reported.
func BenchmarkStore(b *testing.B) {
	statedbtest.Bench(b, func(b *testing.B) statedb.Store {
		st := memory.New()
		b.Cleanup(func() { _ = st.Close() })
		return st
	})
}
