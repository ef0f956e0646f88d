// Package statedb defines the Store interface that keeps eddy's state
// outside the worker, and its contract.
//
// # Ownership and fencing
//
// Each source partition has an epoch in the store. A worker that is assigned
// a partition calls Acquire, which bumps the epoch and returns the partition's
// offset watermark: the last offset whose effects are persisted. Every flush
// is one Commit carrying that epoch; a commit whose epoch is no longer the
// current one fails with ErrFenced and changes nothing, so a worker that lost
// its partition (a zombie) can never overwrite its successor's state.
//
// # Backends
//
// statedb/memory (in-process, for dev and tests), statedb/redis (one Lua
// script per commit over keys sharing the partition's hash tag) and
// statedb/singlestore (one transaction per commit; MySQL-compatible). The
// conformance suite in statedb/statedbtest runs the same contract against
// each of them.
package statedb
