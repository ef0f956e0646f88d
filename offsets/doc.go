// Package offsets is eddy's offset tooling: it shows, per source partition,
// where a pipeline's consumer group stands in Kafka next to what its state
// store holds, and it moves the group's committed offsets to replay a topic
// from a chosen point. `worker offsets show` and `worker offsets reset` are
// its command-line faces.
//
// # Two offsets per partition
//
// For every source partition P there are two positions, and they are not
// the same thing:
//
//   - Kafka's committed group offset C: where a worker that claims P starts
//     reading. The runtime commits it after each flush, but only to save
//     work: it may lag behind.
//   - The store's offset watermark W: the last offset of P whose effects
//     (state, event IDs) are persisted, written in the same atomic commit as
//     the state. It is the truth. A worker that claims P skips every
//     message at or below W, and if C is past W+1 it rewinds the group to
//     W+1 (the store lost commits, or someone moved C forward), so nothing
//     is left out.
//
// After a clean stop C = W+1. C may also trail W+1: between Kafka commits,
// and after a replay of offsets at or below W (skipping needs no flush, so
// nothing is committed until a message above W is processed).
// [Tool.Status] reads both (W through [statedb.Inspector], which does not
// bump P's epoch, so inspecting never fences a live worker), with the log
// start and end offsets, the lag (log end − the next offset the runtime
// will process: W+1 where the store has a watermark, else C; at least the
// log start), and the group's state and members.
//
// # Reset
//
// [Tool.Plan] works out, for some or all partitions of one source topic,
// the new committed offset ([ToEarliest], [ToLatest], [ToTime]: the first
// offset whose timestamp is at or after the time, [ToOffset]: clamped to the
// log) and what a replay from there will do given W ([Move.Replay]).
// [Tool.Apply] commits the new offsets with one OffsetCommit request to the
// group coordinator, as a client outside the group, and reads them back to
// check them.
//
// Kafka accepts such a commit only while the group has no members: Apply
// refuses with an [*ActiveGroupError] naming the live members unless
// forced. Stop the workers first; they leave the group when they stop. (A
// static member, kafka.instance_id, stays in the group for the session
// timeout after its worker stops.) Forcing removes the listed members from
// the group (a LeaveGroup on their behalf, Kafka >= 2.4), waits for the
// group to empty and commits. Running workers notice within a heartbeat,
// drop their unflushed batches (harmless: they are read again and skipped
// or processed once, see below) and rejoin, resuming from the new offsets.
// If a worker rejoins before the commit lands, Kafka rejects the commit
// with nothing changed, and Apply removes the members again and retries;
// after three refused attempts it fails, having changed no offset.
// Stopping the workers is the reliable way.
//
// # Replay: what a reset does and does not do
//
// A reset only moves Kafka's committed offsets. It does not touch the state
// store: the partitions' watermarks, state and recorded event IDs stay as
// they are, and they absorb the replay:
//
//   - Offsets at or below W are read again and skipped: their effects are
//     already in state. A replay never double-counts.
//   - Offsets above W are processed, once, as if for the first time; with
//     dedup enabled, an event whose ID is already recorded (a producer's
//     retry, say) is dropped as a duplicate as usual.
//   - Moving the offset forward past W+1 (for example --to-latest to drop a
//     backlog) skips the events in between on purpose: Apply commits the
//     new offset and then moves the store's watermark W to new - 1
//     (Replay.Advance; the state itself is untouched), so the worker that
//     claims the partition starts there. Without a writable store a
//     forward reset skips nothing where the store has a watermark: the
//     worker rewinds the group to W+1 (Replay.Rewind). On a partition the
//     store has no record of, a forward reset leaves the events out
//     (Replay.Never).
//
// So a reset does NOT recompute anything: events at or below W are not
// applied again, and outputs they produced are not produced again. To
// recompute a pipeline's state from scratch, also clear its state (this
// package does not), with the workers stopped:
//
//   - simplest: give the pipeline a new name (state is namespaced by
//     name, and the default group "eddy-<name>" is new too unless
//     kafka.group is set, so it starts from source.start with empty
//     state); the old state can be dropped later;
//   - redis: delete the keys under state.redis.key_prefix + "<name>:"
//     (e.g. redis-cli --scan --pattern 'eddy:<name>:*' | xargs redis-cli
//     unlink, on every master of a Cluster); this removes watermarks,
//     state, event IDs and timers;
//   - singlestore: drop (or truncate) the tables eddy_<name>_owners,
//     _state, _ids and _timers (statedb/backends.SQLNamespace gives the
//     exact prefix: '-' and '.' become '_', long names end in a hash);
//   - memory: state lives in the worker process and is gone when it
//     restarts; a restarted worker processes everything from the committed
//     offset.
//
// Then reset the offsets (--to-earliest) so that the empty state is filled
// from the start of the retained log.
//
// # Concurrency
//
// A Tool is not safe for concurrent use: run one call at a time. Status
// and Plan only read; Apply is the only call that changes anything.
//
// # Files
//
// tool.go: the Tool, its Kafka client and admin, group description and
// committed offsets. status.go: PartitionStatus, lag and warnings.
// reset.go: targets, Plan, Replay, Apply (member removal, the commit, the
// read-back).
package offsets
