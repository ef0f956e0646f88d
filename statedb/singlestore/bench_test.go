package singlestore

import (
	"testing"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/statedbtest"
)

// BenchmarkStore runs the shared backend benchmarks (Commit of 1, 100 and
// 1,000 entries plus as many IDs; Load of 1,000 keys; Seen of 1,000 IDs) on
// MariaDB, each store with one connection, as one partition task uses it.
// roundtrips/op is the server's count of statements per call (each is one
// round trip, arguments being interpolated); entries/s is entries (or keys,
// or IDs) per second. The sweep is off.
func BenchmarkStore(b *testing.B) {
	var counter stmtCounter
	statedbtest.Bench(b, func(b *testing.B) statedb.Store {
		s := newTestStore(b, Config{MaxOpenConns: 1})
		counter.add(s)
		return s
	}, statedbtest.WithRoundTrips(counter.count))
}
