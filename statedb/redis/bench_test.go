package redis_test

import (
	"testing"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/statedbtest"
)

// BenchmarkStore runs the shared statedb benchmarks against the Redis of
// testenv, counting round trips with a go-redis hook: roundtrips/op must
// read 1 for every Commit and Load, whatever the number of entries.
func BenchmarkStore(b *testing.B) {
	o := sharedOpener(b)
	statedbtest.Bench(b, func(b *testing.B) statedb.Store { return o.store(b) },
		statedbtest.WithRoundTrips(o.trips.n.Load))
}

// BenchmarkStoreAOFAlways runs the same benchmarks against a private
// redis-server with appendonly yes and appendfsync always, the setting
// under which an acknowledged commit survives a power loss: the cost of
// one fsync per commit.
func BenchmarkStoreAOFAlways(b *testing.B) {
	srv := startServer(b, aofAlways...)
	o := newOpener(b, srv.addr, uniquePrefix)
	statedbtest.Bench(b, func(b *testing.B) statedb.Store { return o.store(b) },
		statedbtest.WithRoundTrips(o.trips.n.Load))
}
