// Package memory is the in-process statedb.Store: state in Go maps, for
// `worker dev`, tests, and small or disposable state. It honours the whole
// contract (checked by statedbtest.Run, with -race) except durability:
// everything is gone when the process ends.
//
// # Use
//
//	st := memory.New()            // one namespace per Store
//	defer st.Close()
//	claim, err := st.Acquire(ctx, statedb.Partition{Topic: "orders", Partition: 0})
//
// # Layout
//
// One map of partitions; each partition holds its epoch, offset watermark
// and meta, a map of entries (value and expiry), a map of event IDs
// (expiry) and a map of timers (due). Values are copied on the way in and
// out, so neither the caller nor the store can change the other's bytes.
//
// # Atomicity and concurrency
//
// One sync.RWMutex guards the whole store: Acquire and Commit take it
// exclusively, so a commit checks the epoch and applies everything under
// the same lock, and a reader sees a commit entirely or not at all. Load,
// Seen and Due share it. All methods are safe for concurrent use; none
// calls back into user code except the clock given to WithClock.
//
// # Time and expiry
//
// TTLs count on the wall clock (time.Now) or on the clock given to
// WithClock. An expired entry or ID is invisible at once; it is removed
// from memory by the next commit of its partition, which pops a heap of
// expiries ordered by time (no scan). Due scans the partition's timers,
// O(timers) per call: fine for development, not for millions of timers.
//
// # Files
//
// memory.go: the Store, its partitions and the expiry heap.
package memory
