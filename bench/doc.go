// Command bench measures eddy's throughput, latency and failover against
// real services, as ratios taken within one run on the same data.
//
//	make bench                                   # services, then a full run
//	go run ./bench -h                            # flags
//	go run ./bench -events 200000 -scenarios a,d # a quick look
//
// # What it measures
//
// It fills one topic once with -events JSON events of about -size bytes
// over -keys keys and -partitions partitions (keyed by user, event time
// advancing 1 ms per event), then reads the whole topic in each scenario,
// with a fresh consumer group and a fresh state namespace each time:
//
//	a  consume     raw sarama consumer group, marks per batch, commits every second (the baseline)
//	b  stateless   filter + set + key + sink, processor.New + Run, memory store
//	c  agg-memory  tumbling 1m count+sum per user, memory state, results to a sink
//	d  agg-redis   c with Redis state
//	e  agg-mariadb c with MariaDB state (statedb/singlestore, dialect mysql)
//	f  agg-dedup   d with source.event_id and dedup on
//	g  agg-redis-notxn d with kafka.transactions: false (outputs not fenced; d/g is the cost of fencing)
//	h  agg-redis-always d while Redis has appendfsync always (h/d is the cost of an fsync per write)
//	i  agg-repartition c behind a repartition by user, through an internal topic (i/c is the cost of the hop)
//
// The default -scenarios are a to f and h, then latency and failover; g
// runs when named. d, f and g run with Redis as it is configured (make
// services: appendonly yes, appendfsync everysec, as the README
// recommends). For h the bench reads appendfsync (CONFIG GET), sets it to
// always (CONFIG SET) for h's child process and sets the previous value
// back when the child ends, also when it failed or the run was
// interrupted (SIGINT, SIGTERM; a SIGKILLed bench restores nothing). Each Redis scenario's result (and the latency run's)
// records the persistence it ran with, read back from the server just
// before it (redis_persistence).
//
// Each scenario runs in its own child process (the bench re-executes
// itself with -scenario), so each has a clean heap and its own peak RSS
// (VmHWM). Throughput is counted from the first event processed to the
// moment the store holds the last offset of every partition (for a, the
// last message marked). Per scenario it reports events/s, the ratio to a,
// store round trips per event (Worker.Stats().StoreCalls, and per method
// from a counting wrapper around the store), flush latency p50/p99 (from
// the eddy_flush_seconds histogram, interpolated within its buckets), exact
// Store.Commit latency p50/p99, outputs (checked by content, below) and
// peak RSS; and the CPU time
// per event of the scenario's process (getrusage), of the Kafka broker,
// Redis and MariaDB processes (/proc/<pid>/stat: they run on the same
// machine) and how busy all CPUs were, over the measured interval.
// -max-messages sets flush.max_messages of b to h, -backlog-messages their
// flush.backlog_messages (the -max-messages value turns adaptive batching
// off); GOGC, if set, is inherited by the children.
//
// # Checking the outputs
//
// The outputs of the aggregate scenarios (c to h) are compared by
// content, not by count, with a reference the bench computes itself
// while filling the topic, in plain Go and without eddy: per (user,
// tumbling minute) the count and the sum of v. The fill ends without a
// closing event, and a window is emitted when its partition's watermark
// (the greatest event time the partition has read: allowed_lateness 0,
// no idle_timeout) reaches its end; the reference therefore holds the
// windows whose end is at or before the greatest event time of their
// user's partition (murmur2 of the key, as the fill's producer placed
// them), and leaves out the windows of the minute each partition is in
// when its events end, which stay open and are never emitted (the fill's
// log line gives both numbers).
//
// After each scenario the parent reads its output topic read_committed,
// with raw fetches that track their position and end exactly at each
// partition's last stable offset (committed.go over internal/kafkaread; a PartitionConsumer
// cannot tell when it got there). Records repeating an earlier record's
// eddy-id header (possible in g, without transactions) are counted once
// if identical and are an error if not. Each window's key, start, end,
// n and total must equal the reference's, no window may be missing,
// extra or emitted twice, and every record must decode as a window
// result. The result records outputs_compared ("29773 windows, all
// equal", and the counts); a scenario that differs fails the run, after
// the report is written, with a message naming the scenario, how many
// windows differ (missing, extra, wrong, bad records) and up to five
// examples.
//
// Two more measurements:
//
//   - latency: d's pipeline with emit on_update, over a fresh topic fed by
//     a paced producer at half of d's measured rate (event time = produce
//     time). Each output carries its window's count n; the bench knows the
//     produce time (pt) of every event of each (key, window) in order, so
//     an output with count n shows the first n of them. An event's latency
//     is the arrival of the first output that counts it, at a consumer of
//     the output topic, minus its pt; every event after a 3 s warm-up is a
//     sample. It uses -latency-keys (1,000) keys rather than -keys:
//     on_update emits each changed window once per batch, and with 10,000
//     keys that is nearly one output per event, six times d's outputs;
//     with 1,000 it is about d's 0.16 per event. The producer and the
//     consumer run in the worker's process (its RSS holds every pt).
//   - failover: two `worker run` processes (built from ./cmd/worker) over
//     a fresh topic with Redis state holding -failover-sizes keys, a paced
//     producer running; one worker is SIGKILLed and the survivor's JSON
//     log gives the time of its rebalance, of its claims of the dead
//     worker's partitions and of its first flush on each of them.
//     Detection is bounded by the group session timeout
//     (-failover-session-timeout, the workers' kafka.session_timeout).
//
// # Services
//
// Kafka, Redis and MariaDB as `make services` starts them, or where these
// point: EDDY_KAFKA_BROKERS (default 127.0.0.1:9092), EDDY_REDIS_ADDR
// (127.0.0.1:6379), EDDY_MYSQL_DSN (eddy:eddy@tcp(127.0.0.1:3306)/eddy).
// Everything the bench creates is named eddybench-<run>* (topics, groups),
// eddybench:<run>: (Redis keys) or eddybench_<run>_* (tables) and is
// removed at the end unless -keep is given.
//
// # Output
//
// A table on stdout and the whole result as JSON in -out (default
// bench/results/latest.json). -cpuprofile-dir writes each child's CPU
// profile as <dir>/<scenario>.prof for `go tool pprof -top`.
//
// # Files
//
//	main.go      flags, the run: fill, children, report
//	fill.go      topics, the event format, filling, paced producing, cleanup
//	child.go     a scenario in a child process: raw consumer and pipelines
//	compare.go   the reference of the aggregate scenarios and the comparison
//	committed.go reading an output topic read_committed, to its last stable offset
//	store.go     the counting store wrapper and opening backends
//	redis.go     Redis persistence: reading it, appendfsync always for h
//	measure.go   histogram quantiles, percentiles, peak RSS
//	latency.go   the end-to-end latency scenario
//	failover.go  the failover measurement with worker processes
//	report.go    the table and the JSON result
package main
