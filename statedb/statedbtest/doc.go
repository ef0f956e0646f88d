// Package statedbtest is the conformance suite of the statedb.Store
// contract: every backend's tests call Run, and its benchmarks call Bench,
// so that memory, Redis and SingleStore are held to the same rules and
// measured the same way.
//
// # Using it
//
//	func TestConformance(t *testing.T) {
//		statedbtest.Run(t, func(t *testing.T) statedb.Store {
//			st := mybackend.New(...) // a fresh, empty namespace
//			t.Cleanup(func() { st.Close() })
//			return st
//		}, statedbtest.WithReopen(reopen))
//	}
//
// Options: WithReopen (reopen or restart between commits), WithClock (a
// backend with a fake clock: TTLs are checked to the millisecond, without
// sleeping) and WithRoundTrips (a round-trip counter: Run checks one round
// trip per call, Bench reports roundtrips/op).
//
// # What Run checks
//
// The subtests are grouped by topic and named as the contract reads:
// Acquire (new partitions, strictly rising epochs, offset and meta of the
// last commit), Commit (all-or-nothing visibility; stale, future and
// never-acquired epochs rejected with nothing changed; canceled contexts;
// deletes, also of a key put in the same commit), Load (1000 keys
// byte-exact with missing ones absent, empty and nil values, 1 MiB values,
// no aliasing of caller or store memory), Keys (keys, IDs and timer keys
// with separators, braces, case and space variants, unicode, NUL and
// invalid UTF-8), TTL (entries and IDs expire, others stay; a put without
// TTL makes a key permanent), Timers (order, limit, inclusive until,
// moving, clearing), Isolation (partitions, look-alike topics,
// namespaces), Concurrency (16 partitions at once; two owners racing; a new
// owner sees exactly its fenced predecessor's last commit), Reopen (nothing
// committed is lost, fencing survives) and, with WithRoundTrips,
// RoundTrips.
//
// # Time
//
// Without WithClock the TTL subtest waits for a 1.5 s TTL to pass on the
// backend's own clock, polling; the whole suite takes a few seconds per
// backend.
package statedbtest
