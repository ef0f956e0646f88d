package statedb

import "context"

// Inspector is an optional interface of a Store: it reads a partition's
// ownership record without claiming the partition. Operator tools use it
// (`worker offsets show|reset` prints each partition's offset watermark
// next to Kafka's committed offset); the runtime never does.
//
// The memory, redis and singlestore backends implement it; check with a
// type assertion:
//
//	if in, ok := store.(statedb.Inspector); ok {
//		c, err := in.Inspect(ctx, p)
//	}
//
// The contract, checked by statedbtest.Run for every store that implements
// it:
//   - Inspect returns the partition's current epoch, its offset watermark
//     (the Offset of the last successful Commit) and that commit's Meta
//     (nil when empty), exactly what the next Acquire would return except
//     that Acquire bumps the epoch.
//   - Inspect changes nothing: the epoch stays, so a live owner is not
//     fenced by it and its next Commit succeeds.
//   - A partition never acquired gives Epoch 0 and Offset NoOffset; one
//     acquired but never committed gives its epoch and NoOffset.
//   - It is one network round trip and safe for concurrent use, also
//     while the partition's owner commits (it then sees the state before
//     or after a commit, never part of one).
type Inspector interface {
	// Inspect reads p's epoch, offset watermark and metadata.
	Inspect(ctx context.Context, p Partition) (Claim, error)
}
