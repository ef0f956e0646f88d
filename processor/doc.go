// Package processor is eddy's runtime: it runs a pipeline as a member of a
// Kafka consumer group, one partition task per claimed partition, and makes
// every partition's state, outputs and offsets move together through the
// flush protocol.
//
// # Using it as a library
//
//	p, err := pipeline.Load("pipeline.yaml")
//	if err != nil {
//		return err // every problem of the file: file:line:col: field: message
//	}
//	w, err := processor.New(p, processor.WithProcessor("enrich", newEnrich))
//	if err != nil {
//		return err // an unknown processor or a bad config: file, line and step
//	}
//	return w.Run(ctx) // until ctx ends; then flush, commit, leave the group
//
// The state store is the one the pipeline's state section names: Run
// opens it as worker run does (package statedb/backends, namespaced by the
// pipeline's name) and closes it when it returns. WithStore gives another
// instead (a test's memory store, a store the program keeps open across
// Workers); the pipeline's state section is then unused, and New logs a
// warning naming both when it names redis or singlestore.
//
// A Worker logs what worker run logs, in the same form: JSON lines on
// stderr (ts, level, msg and fields such as pipeline, topic, partition),
// info and above. WithLogger gives another *zap.Logger;
// WithLogger(zap.NewNop()) silences it.
//
// Custom code implements Processor and is registered by name with
// WithProcessor, once: New checks every processor step of the pipeline
// against the registered names and reports each unknown one at its line in
// the file, listing the registered names (a pipeline loaded by the worker
// binary, which registers none, gets "none are registered"). New connects
// to nothing, so it is also how a program checks a file against its
// processors. A Factory decodes its step's config with DecodeConfig into
// a struct of its own:
//
//	type config struct {
//		Field  string        `yaml:"field"`
//		Within time.Duration `yaml:"within"` // "10s" in the file
//	}
//	func newEnrich(cfg map[string]any) (processor.Processor, error) {
//		var c config
//		if err := processor.DecodeConfig(cfg, &c); err != nil {
//			return nil, err // New adds the file, line and step
//		}
//		return &enrich{c}, nil
//	}
//
// See examples/custom-processor (its run function is the README's
// snippet). A Processor's State is its step's own (keys scoped to the
// step). A TimerProcessor also sets timers, and OnTimer is called when the
// partition's watermark reaches them.
//
// # Steps, time and timers
//
// Every step is an operator: in each batch the steps run in pipeline
// order, each processing its input and then firing the timers the
// partition's watermark has made due (an aggregate's closing windows, a
// TimerProcessor's OnTimer); both go to the next step. The watermark is
// the partition's, one for all steps: the greatest event time of the
// source events seen, minus source.allowed_lateness.
//
// # The flush protocol
//
// Each claimed partition P is owned by one goroutine, its task; nothing else
// touches P's state, so the task needs no lock.
//
//  1. Claim: Store.Acquire(P) bumps P's epoch and returns its offset
//     watermark W, the last offset whose effects are persisted. Messages at
//     or below W are skipped.
//  2. Batch: messages are gathered until flush.max_messages (doubled
//     after each full batch while the partition is behind, up to
//     flush.backlog_messages; see batchSize), flush.max_bytes or
//     flush.interval, then processed together: decoded, given an event ID
//     and time, dropped if the ID was seen (one Store.Seen per batch), and
//     run through the steps. State reads are batched (one Store.Load per
//     stateful step per batch, one Store.Due per step when a timer may be
//     due); writes go to the task's cache; outputs and
//     dead letters to a buffer.
//  3. Flush: (a) the buffered messages are produced and acknowledged, in
//     one Kafka transaction committed before (b) when kafka.transactions is
//     on (the default; see txn.go);
//     (b) one Store.Commit, conditioned on the epoch, writes the dirty
//     state, the batch's event IDs and the new W; (c) the Kafka offset is
//     marked and committed by the session's committer.
//
// If (b) fails with statedb.ErrFenced, another worker owns P: the task
// drops its cache and gives P up. Outputs are fenced the same way: each
// task has a transactional producer (transactional.id
// "eddy-<group>-<topic>-<partition>"), created and initialised before the
// claim, which fences the previous owner's producer at the broker; a
// fenced transaction (PRODUCER_FENCED) ends the task like ErrFenced, and a
// read_committed consumer never sees the zombie's records. Every emit:
// on_update output carries an eddy-version header (VersionHeader). If the store or the brokers are
// unreachable, the task retries with capped exponential backoff, reading
// nothing meanwhile (the partition is paused), and never marks an offset
// beyond what the store holds. A crash anywhere replays from W: outputs of
// the replayed batch are produced again with the same eddy-id header.
//
// # Poison events
//
// An event that cannot be decoded, whose CEL expression fails at run time,
// or that a Processor rejects, goes to the dead-letter topic with headers
// naming the error, the step and its source (eddy-error, eddy-step,
// eddy-source-topic, eddy-source-partition, eddy-source-offset), or is
// counted and logged when no dead-letter topic is set. It never blocks its
// partition.
//
// # Querying state
//
// A StateReader reads what the partitions' owners last committed, from the
// store: an aggregate key's windows (Windows, every partition of its stage
// read) and a table's row (Row). Any process with the pipeline and the
// store can make one (NewStateReader); a running Worker gives one on its
// own store and Kafka metadata (Worker.StateReader), which `worker run
// -query` serves over HTTP. A query never sees a batch in flight: at most
// one flush interval plus a commit behind the events read, and during a
// failover what the last owner committed.
//
// # Goroutines
//
// Run's goroutine drives the consumer group. sarama runs ConsumeClaim on a
// goroutine per claimed partition: that is the task. A committer goroutine
// per group session commits marked offsets every commit interval, so that a
// task never waits for a Kafka commit. Worker.Stats and Worker.Ready read
// atomics and a mutex-guarded task map.
package processor
