// Package chaos holds eddy's chaos test: it proves that a windowed
// aggregation is effectively-once while its workers are killed, frozen and
// replayed; and the bad-input soak (TestBadInputSoak, below). It has no
// code of its own; the tests are behind the build tag chaos, so that they
// run only when asked for.
//
// # Running
//
//	make chaos      # make services, then the line below
//	go test -tags chaos -count=1 -timeout 15m -v ./integration/chaos/
//
// It needs Redis and MariaDB (see package testenv for how they are found)
// and the Kafka jars `make services` resolves: each run starts a private
// broker of its own, which it restarts. It takes two to five minutes per
// backend on a two-core machine. Tuning, through the environment:
//
//	EDDY_CHAOS_EVENTS   input events (default 60000)
//	EDDY_CHAOS_RATE     events per second the producer writes (default 500)
//	EDDY_CHAOS_BALANCE  kafka.balance of the workers in both runs (default:
//	                    sticky with Redis, cooperative-sticky with MariaDB)
//	EDDY_CHAOS_SEED     seed of the input and of the chaos (default: random, logged)
//	EDDY_CHAOS_BROKER_DOWN  kill or stop: how the broker restart takes the
//	                    broker down (default: chosen by the seed)
//	EDDY_CHAOS_LOGS     keep the workers' logs in this directory (default: a
//	                    temporary one, removed after the test)
//
// # What the test does
//
// TestChaos runs, once per state backend (Redis; MariaDB standing in for
// SingleStore), three `worker run` processes of the real binary in one
// consumer group over a 6-partition topic. The pipeline is a tumbling 2s
// window (grace 500ms, allowed lateness 500ms) computing count(),
// sum(event.v) and count_distinct(event.id) per key, emitted on close, with
// the idempotency store on. The Redis run uses kafka.balance sticky (the
// default) and the MariaDB run cooperative-sticky, so that one run covers
// both rebalance protocols. While a producer writes the input
// (200 keys, event time advancing one millisecond per event, about 2% of
// the events sent twice with the same event ID, some right away and some
// seconds later but before their window closes), a chaos goroutine:
//
//   - every 2-4 s SIGKILLs a worker and restarts it, at least 10 times, in
//     threes: a random worker restarted with the same static instance id
//     (a StatefulSet pod: it gets its partitions back without a
//     rebalance); the owner of a partition killed the moment an output of
//     that partition appears on the output topic (right after step (a) of
//     a flush, often before (b) committed the state, so the restarted
//     worker produces those outputs again), same id; a random worker
//     restarted with a fresh id (a new Deployment pod: the dead member
//     keeps its partitions until its session times out, then they move);
//   - replays the input: `worker offsets reset --to-earliest --force` on
//     the live group, after which every partition must be claimed again
//     from offset 0 and the store's offset watermarks must skip what it
//     already holds;
//   - freezes one worker exactly before one of its tasks commits state
//     (SIGUSR1 to the chaos build of the worker, go build -tags chaos:
//     the task, its outputs produced, stops the process with SIGSTOP;
//     cmd/worker/chaos_hook.go), waits until the others have claimed its
//     partitions (a newer epoch in their logs), then resumes it with
//     SIGCONT: the frozen task's commit must be refused, its log saying
//     "partition fenced by a newer owner", and no partition of the
//     frozen worker may be released with a stored offset beyond the one
//     its successor claimed at (a late commit that got through). One
//     episode: the fence is certain by construction, not by luck.
//   - restarts the broker once, after the seventh kill: each backend's run
//     has a private broker of its own (testenv.PrivateKafka), taken down
//     with SIGKILL or SIGTERM (by the seed), kept down 2 s and started
//     again on the same ports and log dir, while the producer and the
//     workers run on; the workers must hold every partition again and
//     move the group's committed offsets by themselves (the producer's
//     retries bridge the outage).
//
// Alongside, two more `worker run` processes run the same aggregation with
// emit: on_update behind a repartition (their own group, state namespace
// and output topic), and two more a join of the input with a copy of it
// written to a second topic of 4 partitions (an inner interval join by
// event ID: every event must pair with its copy once); at every third
// kill one of each is SIGKILLed and restarted too.
//
// Then it writes one closing event per partition far in the future, waits
// until the group's lag is 0 and no window timer is left open, stops the
// workers with SIGTERM and checks:
//
//   - the output topic, deduplicated by the eddy-id header (keeping the
//     first of each id, as a consuming eddy pipeline would), holds exactly
//     one result per (key, window) of the input, equal to a reference
//     computed from the input topic alone (count and sum over distinct
//     event IDs, count_distinct); none missing, none extra;
//   - every repeated eddy-id carries the same values (a window's result
//     produced again after a crash must be the same result);
//   - the on_update output, read read_committed, has as its last record
//     for every (key, window) of the reference exactly the reference's
//     result (polled until the on_update workers caught up, up to 2 min);
//   - the join output, read read_committed and deduplicated by eddy-id,
//     holds every input event exactly once, with both sides' values, and
//     every repeated eddy-id carries the same value;
//   - the store holds no state and no timer of a closed window (only the
//     closing events' windows are left) and exactly one recorded ID per
//     distinct event.
//
// # The bad-input soak
//
// TestBadInputSoak (about 15 s; EDDY_SOAK_EVENTS, default 4000) feeds two
// `worker run` processes (Redis state, the shared broker) a stream of
// which 60% are good events and the rest every class of bad input: not
// JSON, a null or empty value, JSON that is not an object, non-UTF-8
// bytes, a mistyped or missing field, a missing event ID, a division by
// zero in a set step, an unparsable time, a time in year 9999 or two days
// ahead (beyond source.watermark.max_future), a time before 1970, events
// filtered out, repeats of good events, and three 2 MB malformed events
// on a source topic that allows 3 MB while the dead-letter topic has the
// broker's 1 MB default. Each worker is SIGKILLed once mid-stream and
// restarted. At the end every input is accounted for exactly once: each
// good (or pre-1970, or non-UTF-8) event by one output with its ID,
// each bad one by one dead letter naming its source offset (the 2 MB ones
// cut, with their original size), filtered events and repeats by
// neither; a repeated output must be identical. The group's committed
// offsets reach the end of every partition (nothing stuck), no worker
// died by itself, and every log line is JSON.
package chaos
