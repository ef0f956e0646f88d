//go:build chaos

package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/backends"
)

const (
	partitions = 6
	numKeys    = 200
	dupRate    = 0.02
	minKills   = 10
	// msgChaosFreeze is what the chaos build of the worker logs when it
	// freezes itself before a state commit (cmd/worker/chaos_hook.go).
	msgChaosFreeze = "chaos: freezing before the state commit"
)

// joinYAML is the join pipeline two more workers run: every input event
// (left) joined with its copy on a second topic of another partition
// count (right) by event ID: name, brokers, group, balance, source topic,
// state section, the other input, sink topic.
const joinYAML = `name: %s
kafka:
  brokers: [%s]
  group: %s
  balance: %s
source:
  topics: [%s]
  event_id: event.id
  event_time: event.ts
  watermark: {allowed_lateness: 500ms}
%sdedup: {enabled: true, ttl: 1h}
flush: {max_messages: 100, interval: 50ms, shutdown_timeout: 10s}
steps:
  - join:
      name: pair
      with: {topics: [%s], event_id: event.id, event_time: event.ts, watermark: {allowed_lateness: 500ms}}
      on: {left: event.id, right: event.id}
      within: 1s
      grace: 500ms
      partitions: 5
      select: {id: left.id, k: left.k, v: left.v, rv: right.v}
sink:
  topic: %s
`

// pipelineYAML is the pipeline every worker runs: name, brokers, balance,
// source topic, state section, sink topic.
const pipelineYAML = `name: %s
kafka:
  brokers: [%s]
  group: %s
  balance: %s
source:
  topics: [%s]
  event_id: event.id
  event_time: event.ts
  watermark: {allowed_lateness: 500ms}
%sdedup: {enabled: true, ttl: 1h}
flush: {max_messages: 100, interval: 50ms, shutdown_timeout: 10s}
steps:
  - aggregate:
      name: stats
      key: event.k
      window: {tumbling: 2s, grace: 500ms}
      values: {count: count(), sum: sum(event.v), distinct: count_distinct(event.id)}
      emit: on_close
sink:
  topic: %s
`

// TestChaos proves effectively-once windowed aggregation under SIGKILL, a
// zombie worker and a replay of the whole input, for each state backend;
// see the package documentation.
func TestChaos(t *testing.T) {
	bin := buildWorker(t, t.TempDir())
	// Each backend runs with another assignment strategy, so that one run
	// covers both protocols: eager sticky (the default; a rebalance stops
	// every partition, and a dead static member's session timeout stalls
	// the whole group) and cooperative-sticky (partitions that do not move
	// keep flowing, so more kills land in the middle of flushes).
	// EDDY_CHAOS_BALANCE sets one strategy for both.
	cases := []struct {
		name    string
		balance string
		backend func(t *testing.T) backend
	}{
		{"redis", "sticky", func(t *testing.T) backend { return redisBackend(testenv.RedisAddr(t), testenv.RedisPrefix(t)) }},
		{"mariadb", "cooperative-sticky", func(t *testing.T) backend { return mysqlBackend(testenv.MySQL(t)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			balance := tc.balance
			if b := os.Getenv("EDDY_CHAOS_BALANCE"); b != "" {
				balance = b
			}
			// A broker of the run's own, which it restarts once.
			broker := testenv.PrivateKafka(t, testenv.KafkaConfig{})
			runChaos(t, bin, broker, balance, tc.backend(t))
		})
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// run is one chaos run's bookkeeping, for the summary.
type run struct {
	kills, sameID, freshID int
	targeted               int // kills of a partition's owner as its outputs appeared
	zombieTries            int
	zombieFenced           bool
	zombieNote             string
	replayed               map[int32]logLine // first claim of each partition from offset 0 after the reset
	replayTries            int
	replayStopped          bool
	replayOutput           string
	replayTook             time.Duration
	brokerNote             string // the broker restart
	updKills               int    // SIGKILLs of the on_update workers
	joinKills              int    // SIGKILLs of the join workers
}

func runChaos(t *testing.T, bin string, broker *testenv.Kafka, balance string, be backend) {
	began := time.Now()
	brokers := broker.Brokers()
	events := envInt(t, "EDDY_CHAOS_EVENTS", 60000)
	rate := envInt(t, "EDDY_CHAOS_RATE", 500)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EDDY_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("EDDY_CHAOS_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (EDDY_CHAOS_SEED), %d events at %d/s, balance %s, backend %s", seed, events, rate, balance, be.name)
	rnd := rand.New(rand.NewPCG(seed, 0xedd1))

	logs := t.TempDir()
	if d := os.Getenv("EDDY_CHAOS_LOGS"); d != "" {
		logs = filepath.Join(d, be.name)
		if err := os.MkdirAll(logs, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in := testenv.Topic(t, brokers, partitions)
	out := testenv.Topic(t, brokers, partitions)
	group := testenv.Group(t)
	name := testenv.Unique("chaos")
	cfg := filepath.Join(logs, "pipeline.yaml")
	yaml := fmt.Sprintf(pipelineYAML, name, strings.Join(brokers, ", "), group, balance, in, be.yaml, out)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Load(cfg)
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	// The on_update pipeline: the same aggregation with emit: on_update,
	// behind a repartition (by the same key, through 4 partitions of an
	// internal topic: every upstream partition feeds several downstream
	// ones), with its own group, state namespace and output topic, run by
	// two more workers that are SIGKILLed and restarted along with the
	// others. The last record per (key, window) of its read_committed
	// output must equal the reference: across the hop nothing is lost or
	// counted twice, and the downstream watermark (the minimum of the
	// upstream partitions') closes no window early.
	updOut, updGroup := testenv.Topic(t, brokers, partitions), testenv.Group(t)
	updName := testenv.Unique("chaosupd")
	t.Cleanup(func() {
		k2, err := newKafka(brokers)
		if err == nil {
			_ = k2.admin.DeleteTopic(pipeline.InternalTopic(updName, "hop"))
			k2.close()
		}
	})
	updCfg := filepath.Join(logs, "pipeline-on-update.yaml")
	updYAML := strings.Replace(fmt.Sprintf(pipelineYAML, updName, strings.Join(brokers, ", "), updGroup, balance, in, be.yaml, updOut),
		"emit: on_close", "emit: on_update", 1)
	updYAML = strings.Replace(updYAML, "steps:\n", "steps:\n  - repartition: {name: hop, key: event.k, partitions: 4}\n", 1)
	if err := os.WriteFile(updCfg, []byte(updYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	updLogs := filepath.Join(logs, "on-update")
	if err := os.MkdirAll(updLogs, 0o755); err != nil {
		t.Fatal(err)
	}
	updRnd := rand.New(rand.NewPCG(seed, 0xedd2))
	// The join pipeline: the input joined with its copy on in2 (4
	// partitions: not co-partitioned with in), run by two more workers
	// killed with the on_update ones. Every event must come out exactly
	// once as a pair (by eddy-id), every repeated output identical.
	in2, joinOut, joinGroup := testenv.Topic(t, brokers, 4), testenv.Topic(t, brokers, partitions), testenv.Group(t)
	joinName := testenv.Unique("chaosjoin")
	t.Cleanup(func() {
		k2, err := newKafka(brokers)
		if err == nil {
			_ = k2.admin.DeleteTopic(pipeline.InternalTopic(joinName, "pair"))
			k2.close()
		}
	})
	joinCfg := filepath.Join(logs, "pipeline-join.yaml")
	if err := os.WriteFile(joinCfg, []byte(fmt.Sprintf(joinYAML, joinName, strings.Join(brokers, ", "), joinGroup, balance, in, be.yaml, in2, joinOut)), 0o644); err != nil {
		t.Fatal(err)
	}
	joinLogs := filepath.Join(logs, "join")
	if err := os.MkdirAll(joinLogs, 0o755); err != nil {
		t.Fatal(err)
	}
	k, err := newKafka(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()

	// Event time starts at a round hour of the past, so windows align.
	t0 := time.Now().Add(-24 * time.Hour).Truncate(time.Hour).UnixMilli()
	plan := planInput(rnd, events, numKeys, dupRate, t0)

	c := newCluster(t, bin, cfg, logs)
	gen := map[string]int{}
	instance := func(slot string) string { return fmt.Sprintf("%s-%d", slot, gen[slot]) }
	for _, s := range []string{"w1", "w2", "w3"} {
		c.start(s, instance(s))
	}
	upd := newCluster(t, bin, updCfg, updLogs)
	for _, s := range []string{"u1", "u2"} {
		upd.start(s, s)
	}
	joins := newCluster(t, bin, joinCfg, joinLogs)
	for _, s := range []string{"j1", "j2"} {
		joins.start(s, s)
	}
	waitFor(t, 90*time.Second, "the workers to claim all partitions", func() bool {
		return len(claimedBy(c.all)) == partitions
	})

	// The producer.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64
	var gate sync.RWMutex // the broker restart holds the producer
	prodErr := make(chan error, 1)
	go func() {
		prodErr <- produceInput(ctx, brokers, in, plan, rate, func(n int) { sent.Store(int64(n)) }, &gate)
	}()
	prod2Err := make(chan error, 1) // the join's other input: the same events
	go func() { prod2Err <- produceInput(ctx, brokers, in2, plan, rate, func(int) {}, &gate) }()
	producing := true
	checkProducer := func() {
		if !producing {
			return
		}
		select {
		case err := <-prodErr:
			producing = false
			if err != nil {
				t.Fatalf("producer: %v", err)
			}
		default:
		}
	}

	// The chaos.
	outputs := make(chan int32, 64)
	if err := watchOutputs(ctx, brokers, out, partitions, outputs); err != nil {
		t.Fatal(err)
	}
	var r run
	zombieDone, replayDone, brokerDone := false, false, false
	chaosStart := time.Now()
	for {
		checkProducer()
		if bad := append(append(c.unexpected(), upd.unexpected()...), joins.unexpected()...); len(bad) > 0 {
			t.Fatalf("worker died by itself:\n%s", strings.Join(bad, "\n"))
		}
		if !producing && r.kills >= minKills && zombieDone && replayDone && brokerDone {
			break
		}
		if time.Since(chaosStart) > 6*time.Minute {
			t.Fatalf("chaos did not finish within 6m: %d kills, zombie %v, replay %v, broker restart %v, %d of %d records sent",
				r.kills, zombieDone, replayDone, brokerDone, sent.Load(), len(plan.sends))
		}
		switch {
		case r.kills >= 3 && !replayDone:
			// A forced reset on a group in the middle of a rebalance
			// fails (the members rejoin at once): start from a stable
			// group, every partition held by a running worker.
			waitFor(t, 90*time.Second, "every partition held by a running worker", func() bool {
				return len(claimedBy(c.all)) == partitions
			})
			replay(t, c, k, group, in, instance, &r)
			replayDone = true
		case r.kills >= 5 && !zombieDone:
			if !producing {
				// A frozen worker can only be caught committing late
				// while there is input to commit.
				r.zombieNote += " [input exhausted before the zombie episode]"
				zombieDone = true
				break
			}
			// Freeze a worker in steady work, not one that has just
			// claimed its partitions and has nothing to flush yet.
			waitFor(t, 90*time.Second, "every partition held by a running worker", func() bool {
				return len(claimedBy(c.all)) == partitions
			})
			time.Sleep(3 * time.Second)
			r.zombieTries++
			r.zombieFenced, r.zombieNote = zombie(t, c, rnd)
			zombieDone = true
		case r.kills >= 7 && !brokerDone:
			r.brokerNote = restartBroker(t, c, k, broker, rnd, group, in, producing, &gate, upd, joins)
			brokerDone = true
		default:
			// Kills come in threes: a random worker restarted with the
			// same instance id; the owner of a partition killed as its
			// outputs appear (right after step (a) of a flush, maybe
			// before (b) committed the state), same id; a random worker
			// restarted with a fresh id.
			var slot string
			kind := r.kills % 3
			if kind == 1 {
				time.Sleep(time.Second + time.Duration(rnd.Int64N(int64(time.Second))))
				// A fresh member's join can stall the whole group until
				// the dead one's session times out: wait long enough.
				if pr := killOnOutput(c, outputs, 20*time.Second); pr != nil {
					slot = pr.slot
					r.targeted++
				}
			} else {
				time.Sleep(2*time.Second + time.Duration(rnd.Int64N(int64(2*time.Second))))
			}
			if slot == "" {
				slots := c.slots()
				slot = slots[rnd.IntN(len(slots))]
				c.kill(slot)
			}
			r.kills++
			if kind == 2 {
				gen[slot]++ // a new pod: a fresh static member
				r.freshID++
			} else {
				r.sameID++
			}
			c.start(slot, instance(slot))
			if kind == 0 { // and one of the on_update workers
				us := upd.slots()
				u := us[updRnd.IntN(len(us))]
				upd.kill(u)
				r.updKills++
				upd.start(u, u)
				js := joins.slots()
				j := js[updRnd.IntN(len(js))]
				joins.kill(j)
				r.joinKills++
				joins.start(j, j)
			}
		}
	}
	chaosTook := time.Since(chaosStart)
	t.Logf("chaos over after %s: %d kills (%d restarted with the same instance id, %d with a fresh one), %d zombie episode(s)",
		chaosTook.Round(time.Second), r.kills, r.sameID, r.freshID, r.zombieTries)

	// Close every window: one event per partition, an hour after the last.
	prod, err := newProducer(brokers)
	if err != nil {
		t.Fatal(err)
	}
	closing := map[string]bool{}
	closeTS := plan.maxTS + time.Hour.Milliseconds()
	var msgs []*sarama.ProducerMessage
	for part := range int32(partitions) {
		key := closingKey(part, partitions)
		closing[key] = true
		msgs = append(msgs, message(in, event{ID: "close-" + key, K: key, V: 0, TS: closeTS}))
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatalf("closing events: %v", err)
	}
	_ = prod.Close()

	// Wait until the group has read everything and every regular window
	// has closed.
	store, err := backends.Open(context.Background(), p, nil)
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	defer store.Close()
	lastClose := windowStart(plan.maxTS) + windowMs + graceMs
	ends, err := k.ends(in, partitions)
	if err != nil {
		t.Fatal(err)
	}
	var lagNote string
	waitFor(t, 5*time.Minute, "lag 0 and no open window timers", func() bool {
		if bad := c.unexpected(); len(bad) > 0 {
			t.Fatalf("worker died by itself:\n%s", strings.Join(bad, "\n"))
		}
		com, err := k.committed(group, in, partitions)
		if err != nil {
			lagNote = err.Error()
			return false
		}
		var lag int64
		for part, end := range ends {
			lag += end - max(0, com[part])
		}
		open := 0
		for part := range int32(partitions) {
			ts, err := store.Due(context.Background(), statedb.Partition{Topic: in, Partition: part}, "", lastClose, 1000)
			if err != nil {
				lagNote = err.Error()
				return false
			}
			open += len(ts)
		}
		lagNote = fmt.Sprintf("lag %d, %d open window timers", lag, open)
		return lag == 0 && open == 0
	}, func() string { return lagNote })
	for _, err := range c.stopAll(40 * time.Second) {
		t.Errorf("graceful stop: %v", err)
	}

	// The reference, from the input topic alone.
	inRecs, err := k.readTopic(in, ends, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ref, distinct, err := reference(inRecs, closing)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(plan.sends) + partitions; len(inRecs) != want {
		t.Fatalf("input topic holds %d records, want %d", len(inRecs), want)
	}
	if distinct != events+partitions {
		t.Fatalf("input topic holds %d distinct event IDs, want %d", distinct, events+partitions)
	}

	// (a) The outputs.
	outEnds, err := k.ends(out, partitions)
	if err != nil {
		t.Fatal(err)
	}
	outRecs, err := k.readTopic(out, outEnds, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, repeats := checkOutputs(t, outRecs)
	compared := compare(t, ref, got)
	if len(got) < len(ref) {
		t.Logf("%d of %d windows in the output; %s", len(got), len(ref), k.offsets(out, partitions))
	}

	// (a') The on_update outputs: the last read_committed record per
	// (key, window) equals the reference, once the workers caught up.
	var lastUpd map[winKey]result
	waitFor(t, 2*time.Minute, "the on_update workers' last results to equal the reference", func() bool {
		ends, err := k.ends(updOut, partitions)
		if err != nil {
			return false
		}
		recs, err := k.readTopic(updOut, ends, 2*time.Minute)
		if err != nil {
			return false
		}
		lastUpd = lastPerWindow(t, recs, closing)
		return maps.Equal(lastUpd, ref)
	}, func() string {
		wrong := 0
		for w, want := range ref {
			if lastUpd[w] != want {
				wrong++
			}
		}
		return fmt.Sprintf("%d windows with updates, %d in the reference, %d differ; %s", len(lastUpd), len(ref), wrong, k.offsets(updOut, partitions))
	})
	for _, err := range upd.stopAll(40 * time.Second) {
		t.Errorf("graceful stop (on_update): %v", err)
	}

	// (a'') The join: every event exactly once as a pair, by eddy-id,
	// with both sides' values; a repeated output (a replayed batch) is
	// identical to its first copy.
	if err := <-prod2Err; err != nil {
		t.Fatalf("producer of %s: %v", in2, err)
	}
	var pairs map[string]string
	waitFor(t, 2*time.Minute, "every event joined once", func() bool {
		ends, err := k.ends(joinOut, partitions)
		if err != nil {
			return false
		}
		recs, err := k.readTopic(joinOut, ends, 2*time.Minute)
		if err != nil {
			return false
		}
		pairs = checkJoined(t, recs, plan)
		return len(pairs) >= len(plan.events)
	}, func() string {
		return fmt.Sprintf("%d of %d events joined; %s", len(pairs), len(plan.events), k.offsets(joinOut, partitions))
	})
	if len(pairs) != len(plan.events) {
		t.Errorf("%d events joined, %d in the input", len(pairs), len(plan.events))
	}
	for _, err := range joins.stopAll(40 * time.Second) {
		t.Errorf("graceful stop (join): %v", err)
	}

	// (b) The store.
	checkStore(t, be, name, store, in, closing, closeTS, events+partitions)

	// The zombie and the replay.
	if !r.zombieFenced {
		t.Errorf("the frozen worker's commit was not fenced (seed %d):%s", seed, r.zombieNote)
	}
	fromStart := 0
	for part := range int32(partitions) {
		l, ok := r.replayed[part]
		switch {
		case !ok:
			t.Errorf("replay: partition %d was not claimed by the restarted workers", part)
		case l.Stored < 0:
			t.Errorf("replay: partition %d was claimed from offset 0 with no stored offset: the replay was not absorbed by the store's watermark", part)
		default:
			fromStart++
		}
	}

	fenced, failed := 0, 0
	for _, pr := range c.all {
		fenced += countMsg(pr.log, msgFenced)
		failed += countMsg(pr.log, msgFailed)
	}
	// Every line every worker wrote is JSON (through SIGKILLs, a broker
	// restart, a zombie): no client library wrote around the logger.
	for _, cl := range []*cluster{c, upd, joins} {
		for _, pr := range cl.all {
			for i, l := range readLog(pr.log) {
				if !json.Valid([]byte(l.raw)) {
					t.Errorf("%s line %d is not JSON: %s", pr.log, i+1, l.raw)
					break
				}
			}
		}
	}
	var skipped []string
	for part := range int32(partitions) {
		if l, ok := r.replayed[part]; ok {
			skipped = append(skipped, fmt.Sprintf("%d:%d", part, l.Stored+1))
		}
	}
	t.Logf("summary (%s, balance %s, seed %d):", be.name, balance, seed)
	t.Logf("  input: %d events + %d duplicates (%d right after, %d later within grace) = %d records over %d keys; %d closing events",
		events, plan.immediate+plan.delayed, plan.immediate, plan.delayed, len(plan.sends), numKeys, partitions)
	t.Logf("  kills: %d SIGKILL (%d same instance id, %d fresh; %d as an output appeared), over %s of chaos",
		r.kills, r.sameID, r.freshID, r.targeted, chaosTook.Round(time.Second))
	t.Logf("  zombie: fenced %v after %d episode(s);%s", r.zombieFenced, r.zombieTries, r.zombieNote)
	t.Logf("  broker: %s", r.brokerNote)
	t.Logf("  replay: worker offsets reset --to-earliest --force on the live group, %d attempt(s), workers stopped for it: %v, %s; %d of %d partitions re-read from offset 0, records skipped per partition %v",
		r.replayTries, r.replayStopped, r.replayTook.Round(time.Millisecond), fromStart, partitions, skipped)
	t.Logf("  workers: %d processes; fenced-partition warnings %d, failed final flushes %d", len(c.all), fenced, failed)
	t.Logf("  output: %d records, %d eddy-ids repeated (%d extra copies), %d windows compared with the reference",
		len(outRecs), repeats.ids, repeats.copies, compared)
	t.Logf("  on_update behind a repartition: 2 workers, %d SIGKILLs; last read_committed record per (key, window) equals the reference for all %d windows",
		r.updKills, len(lastUpd))
	t.Logf("  join (in ⨝ its copy on a 4-partition topic, by id): 2 workers, %d SIGKILLs; each of the %d events joined exactly once", r.joinKills, len(pairs))
	t.Logf("  elapsed: %s", time.Since(began).Round(time.Second))
}

// claimedBy returns the partitions the given processes' logs say are held,
// by a process still running.
func claimedBy(ps []*proc) map[int32]string {
	out := map[int32]string{}
	for _, pr := range ps {
		if pr.exited() {
			continue
		}
		for part := range owned(pr.log) {
			out[part] = pr.slot
		}
	}
	return out
}

// killOnOutput SIGKILLs the worker that holds a partition as soon as an
// output of that partition appears (the sink is keyed by the group key,
// which is the source key, and both topics have the same partition count,
// so output partition p comes from source partition p). It gives up after
// timeout and returns nil.
func killOnOutput(c *cluster, outputs <-chan int32, timeout time.Duration) *proc {
	for len(outputs) > 0 {
		<-outputs
	}
	owners := map[int32]*proc{}
	for _, s := range c.slots() {
		pr := c.get(s)
		for part := range owned(pr.log) {
			owners[part] = pr
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case part := <-outputs:
			pr := owners[part]
			if pr == nil || pr.exited() {
				continue
			}
			c.kill(pr.slot)
			return pr
		case <-deadline:
			return nil
		}
	}
}

// zombie freezes the worker holding the most partitions right before one
// of its tasks commits state (SIGUSR1 to the chaos build of the worker:
// it stops itself there), waits until others have claimed all its
// partitions, resumes it, and reports whether the task frozen before its
// commit was fenced, which it must be: its epoch is no longer the
// partition's. No frozen worker may commit once another has claimed its
// partition: its release may not report a stored offset beyond the one
// the new owner claimed at.
func zombie(t *testing.T, c *cluster, rnd *rand.Rand) (bool, string) {
	t.Helper()
	var z *proc
	var parts map[int32]int64
	waitFor(t, 60*time.Second, "a worker holding partitions", func() bool {
		slots := c.slots()
		rnd.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
		for _, s := range slots {
			pr := c.get(s)
			if own := owned(pr.log); len(own) > len(parts) {
				z, parts = pr, own
			}
		}
		return z != nil
	})
	before := len(readLog(z.log))
	if err := z.signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("SIGUSR1 %s: %v", z.slot, err)
	}
	var frozen int32 = -1
	waitFor(t, 30*time.Second, z.slot+" frozen before a state commit", func() bool {
		lines := readLog(z.log)
		for _, l := range lines[min(before, len(lines)):] {
			if l.Msg == msgChaosFreeze && l.Partition != nil {
				frozen = *l.Partition
			}
		}
		return frozen >= 0 && z.stopped()
	})
	stopped := time.Now()
	// What the worker holds now, at the epochs it holds them: between the
	// choice and the freeze a rebalance may have moved a partition away
	// and back, and an epoch from before that would make another worker's
	// claim in between look like the takeover.
	parts = owned(z.log)
	if _, ok := parts[frozen]; !ok {
		t.Fatalf("zombie %s froze in a flush of partition %d, which its log says it does not hold", z.slot, frozen)
	}
	// takenAt: per frozen partition, the stored offset of the first claim
	// by another worker at a newer epoch.
	takenAt := map[int32]int64{}
	moved := func() bool {
		for part, epoch := range parts {
			best := int64(-1)
			for _, pr := range c.all {
				if pr == z {
					continue
				}
				for _, l := range claims(pr.log) {
					if *l.Partition == part && l.Epoch > epoch && (best < 0 || l.Epoch < best) {
						best = l.Epoch
						takenAt[part] = l.Stored
					}
				}
			}
			if best < 0 {
				return false
			}
		}
		return true
	}
	// Others claim the partitions once the frozen member's session times
	// out (10s). On MySQL, a worker frozen inside a commit transaction
	// holds its partition's owner row locked, and the next owner's
	// Acquire waits for it until the server drops the frozen connection
	// (state.singlestore.wait_timeout, 5s here).
	deadline := time.Now().Add(60 * time.Second)
	for !moved() && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	if !moved() {
		_ = z.signal(syscall.SIGCONT)
		note := fmt.Sprintf(" [%s (%s) frozen holding %v: not taken over within 60s]", z.slot, z.instance, keys(parts))
		t.Log("zombie:" + note)
		return false, note
	}
	movedAfter := time.Since(stopped)
	time.Sleep(time.Second) // let the new owners commit
	// What each frozen partition's task does on resume: its late commit
	// is refused (fenced); it releases the partition with nothing to
	// commit; or it abandons its batch midway (its session ended during a
	// store call, before the commit).
	seen := len(readLog(z.log))
	if err := z.signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", z.slot, err)
	}
	outcome := map[int32]string{}
	deadline = time.Now().Add(30 * time.Second)
	for len(outcome) < len(parts) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		lines := readLog(z.log)
		for _, l := range lines[min(seen, len(lines)):] {
			if l.Partition == nil {
				continue
			}
			part := *l.Partition
			if _, ok := parts[part]; !ok || outcome[part] != "" {
				continue
			}
			switch {
			case strings.HasPrefix(l.Msg, msgFenced):
				outcome[part] = "fenced"
			case l.Msg == msgReleased && l.Stored > takenAt[part]:
				outcome[part] = "COMMITTED after the takeover"
				t.Errorf("zombie %s committed partition %d up to offset %d after another worker had claimed it at stored offset %d",
					z.slot, part, l.Stored, takenAt[part])
			case l.Msg == msgReleased:
				outcome[part] = "released with nothing to commit"
			case strings.HasPrefix(l.Msg, msgFailed):
				outcome[part] = "batch abandoned before its commit"
			}
		}
	}
	fenced := outcome[frozen] == "fenced"
	if !fenced {
		// For the failure: the frozen partition's last lines before the
		// freeze, and everything the worker logged after the resume.
		lines := readLog(z.log)
		var before []string
		for _, l := range lines[:min(seen, len(lines))] {
			if l.Partition != nil && *l.Partition == frozen {
				before = append(before, l.raw)
			}
		}
		for _, raw := range before[max(0, len(before)-10):] {
			t.Logf("zombie %s before the freeze: %s", z.slot, raw)
		}
		after := lines[min(seen, len(lines)):]
		for _, l := range after[:min(len(after), 60)] {
			t.Logf("zombie %s after the resume: %s", z.slot, l.raw)
		}
	}
	var ps []string
	for _, part := range keys(parts) {
		o := outcome[part]
		if o == "" {
			o = "no outcome logged"
		}
		ps = append(ps, fmt.Sprintf("%d: %s", part, o))
	}
	note := fmt.Sprintf(" [%s (%s) frozen before the commit of partition %d, its partitions claimed by others %s later; on resume %s]",
		z.slot, z.instance, frozen, movedAfter.Round(100*time.Millisecond), strings.Join(ps, ", "))
	t.Log("zombie:" + note)
	return fenced, note
}

// restartBroker takes the broker down mid-stream, with SIGKILL or SIGTERM
// (chosen by the seed, or by EDDY_CHAOS_BROKER_DOWN), keeps it down for 2 s, starts it again on the
// same ports and log dir, and waits until the workers, which run on
// untouched, have every partition again and the group's committed
// offsets move on: they recover by themselves. The input producer waits
// at gate meanwhile, until every partition of the input has a leader
// again (the workers still have a backlog to work through).
func restartBroker(t *testing.T, c *cluster, k *kafka, broker *testenv.Kafka, rnd *rand.Rand, group, topic string, producing bool, gate *sync.RWMutex, also ...*cluster) string {
	t.Helper()
	how, down := "SIGKILL", broker.Kill
	stop := rnd.IntN(2) == 1
	switch v := os.Getenv("EDDY_CHAOS_BROKER_DOWN"); v {
	case "kill":
		stop = false
	case "stop":
		stop = true
	case "":
	default:
		t.Fatalf("EDDY_CHAOS_BROKER_DOWN=%q: want kill or stop", v)
	}
	if stop {
		how, down = "SIGTERM", broker.Stop
	}
	// A worker that cannot reach the cluster at start exits (Run's
	// documented error; its supervisor restarts it): take the broker
	// down only once every worker has connected, the one restarted by
	// the last kill included.
	waitFor(t, 60*time.Second, "every worker connected before the broker restart", func() bool {
		for _, cl := range append([]*cluster{c}, also...) { // also: the on_update workers
			for _, s := range cl.slots() {
				if countMsg(cl.get(s).log, "worker started") == 0 {
					return false
				}
			}
		}
		return true
	})
	before, err := k.committed(group, topic, partitions)
	if err != nil {
		t.Fatalf("broker restart: %v", err)
	}
	gate.Lock()
	at := time.Now()
	down()
	time.Sleep(2 * time.Second)
	broker.Start()
	downFor := time.Since(at)
	var leaderNote string
	waitFor(t, 60*time.Second, "a leader for every input partition after the broker restart", func() bool {
		if err := k.client.RefreshMetadata(topic); err != nil {
			leaderNote = err.Error()
			return false
		}
		for p := range int32(partitions) {
			if _, err := k.client.Leader(topic, p); err != nil {
				leaderNote = fmt.Sprintf("partition %d: %v", p, err)
				return false
			}
		}
		return true
	}, func() string { return leaderNote })
	gate.Unlock()
	var note string
	waitFor(t, 90*time.Second, "the workers to hold every partition and commit again after the broker restart", func() bool {
		if bad := c.unexpected(); len(bad) > 0 {
			t.Fatalf("worker died by itself after the broker restart:\n%s", strings.Join(bad, "\n"))
		}
		com, err := k.committed(group, topic, partitions)
		if err != nil {
			note = err.Error()
			return false
		}
		moved := 0
		for p, off := range com {
			if off > before[p] {
				moved++
			}
		}
		note = fmt.Sprintf("%d partitions held, %d of %d committed past %v: %v", len(claimedBy(c.all)), moved, partitions, before, com)
		return len(claimedBy(c.all)) == partitions && moved > 0
	}, func() string { return note })
	out := fmt.Sprintf("%s, down %s (producer running: %v), the workers committing again %s after it was back",
		how, downFor.Round(time.Millisecond), producing, (time.Since(at) - downFor).Round(time.Millisecond))
	t.Log("broker restart: " + out)
	return out
}

func keys[V any](m map[int32]V) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// replay resets the group's committed offsets to the earliest with the
// binary's `worker offsets reset --force` while the workers run (it
// removes them from the group, commits, and they rejoin from offset 0),
// then waits until every partition has been claimed again from offset 0.
// A forced reset fails when workers rejoin before its commit lands three
// times in a row (the tool retries); after three such failures the
// workers are stopped for the reset.
func replay(t *testing.T, c *cluster, k *kafka, group, topic string, instance func(string) string, r *run) {
	t.Helper()
	start := time.Now()
	// Claims logged so far; the replay's are those that follow.
	before := map[*proc]int{}
	for _, pr := range c.all {
		before[pr] = len(claims(pr.log))
	}
	reset := func(attempt int) error {
		outPath := filepath.Join(c.logs, fmt.Sprintf("offsets-reset-%d.txt", attempt))
		f, err := os.Create(outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd := exec.Command(c.bin, "offsets", "reset", "-c", c.config, "--topic", topic, "--to-earliest", "--force")
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("worker offsets reset (attempt %d): %w:\n%s", attempt, err, tail(outPath, 5))
		}
		r.replayOutput = tail(outPath, 40)
		return nil
	}
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		r.replayTries = attempt
		if err = reset(attempt); err == nil {
			break
		}
		t.Logf("replay: %v", err)
		time.Sleep(time.Second)
	}
	if err != nil {
		// The reliable way: stop the workers, reset (--force removes the
		// static members, which stay in the group after they stop),
		// restart them.
		r.replayStopped = true
		for _, err := range c.stopAll(40 * time.Second) {
			t.Errorf("replay: graceful stop: %v", err)
		}
		if err := reset(4); err != nil {
			t.Fatalf("replay: %v", err)
		}
		for _, s := range []string{"w1", "w2", "w3"} {
			c.start(s, instance(s))
		}
	}
	r.replayTook = time.Since(start)
	com, err := k.committed(group, topic, partitions)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	t.Logf("replay: reset in %s (%d attempt(s), workers stopped: %v); committed offsets now %v",
		r.replayTook.Round(time.Millisecond), r.replayTries, r.replayStopped, com)
	// Wait until every partition has been claimed again from offset 0
	// (the log start: nothing is deleted from the topic during the test).
	var note string
	waitFor(t, 90*time.Second, "every partition to be claimed again from offset 0", func() bool {
		first := map[int32]logLine{}
		var others []string
		for _, pr := range c.all {
			for _, l := range claims(pr.log)[before[pr]:] {
				if l.Initial != 0 {
					others = append(others, fmt.Sprintf("%d@%d", *l.Partition, l.Initial))
					continue
				}
				if _, ok := first[*l.Partition]; !ok {
					first[*l.Partition] = l
				}
			}
		}
		r.replayed = first
		note = fmt.Sprintf("%d partitions claimed from 0; claims from other offsets: %v", len(first), others)
		return len(first) == partitions
	}, func() string { return note })
}

// output is one record of the output topic.
type output struct {
	result
	Key         string `json:"key"`
	WindowStart string `json:"window_start"`
	WindowEnd   string `json:"window_end"`
}

type repeatStats struct{ ids, copies int }

// checkOutputs deduplicates the outputs by eddy-id, keeping the first of
// each (outputs of one key are in one partition, in offset order), and
// checks that every copy of an id carries the same values and that no
// window appears under two ids.
// lastPerWindow is the last result per (key, window) of on_update
// outputs, without the closing keys' windows.
func lastPerWindow(t *testing.T, recs []*sarama.ConsumerMessage, closing map[string]bool) map[winKey]result {
	t.Helper()
	last := map[winKey]result{}
	for _, m := range recs {
		var o output
		if err := json.Unmarshal(m.Value, &o); err != nil {
			t.Errorf("on_update output at partition %d offset %d: %v", m.Partition, m.Offset, err)
			continue
		}
		if closing[o.Key] {
			continue
		}
		ws, err := time.Parse(time.RFC3339Nano, o.WindowStart)
		if err != nil {
			t.Errorf("on_update output at partition %d offset %d: window_start: %v", m.Partition, m.Offset, err)
			continue
		}
		last[winKey{o.Key, ws.UnixMilli()}] = o.result
	}
	return last
}

func checkOutputs(t *testing.T, recs []*sarama.ConsumerMessage) (map[winKey]result, repeatStats) {
	t.Helper()
	type firstOut struct {
		o  output
		at string
	}
	byID := map[string]firstOut{}
	copies := map[string]int{}
	got := map[winKey]result{}
	gotID := map[winKey]string{}
	var rs repeatStats
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, m := range recs {
		at := fmt.Sprintf("partition %d offset %d", m.Partition, m.Offset)
		id := ""
		for _, h := range m.Headers {
			if string(h.Key) == processor.IDHeader {
				id = string(h.Value)
			}
		}
		var o output
		if err := json.Unmarshal(m.Value, &o); err != nil {
			report("output at %s: %v: %s", at, err, m.Value)
			continue
		}
		if id == "" {
			report("output at %s has no %s header: %s", at, processor.IDHeader, m.Value)
			continue
		}
		if f, ok := byID[id]; ok {
			copies[id]++
			if len(copies) <= 5 && copies[id] == 1 {
				t.Logf("eddy-id %s (%s@%s) repeated: at %s and %s", id, o.Key, o.WindowStart, f.at, at)
			}
			if f.o != o {
				report("eddy-id %s carries different values: %+v at %s, %+v at %s", id, f.o, f.at, o, at)
			}
			continue
		}
		byID[id] = firstOut{o, at}
		ws, err := time.Parse(time.RFC3339Nano, o.WindowStart)
		if err != nil {
			report("output at %s: window_start: %v", at, err)
			continue
		}
		we, err := time.Parse(time.RFC3339Nano, o.WindowEnd)
		if err != nil || we.Sub(ws) != windowMs*time.Millisecond {
			report("output at %s: window %s..%s is not %dms", at, o.WindowStart, o.WindowEnd, windowMs)
		}
		if string(m.Key) != o.Key {
			report("output at %s: record key %q, result key %q", at, m.Key, o.Key)
		}
		w := winKey{o.Key, ws.UnixMilli()}
		if prev, ok := gotID[w]; ok {
			report("window %s@%s emitted under two eddy-ids: %s and %s (at %s)", w.key, o.WindowStart, prev, id, at)
			continue
		}
		gotID[w] = id
		got[w] = o.result
	}
	for _, n := range copies {
		rs.ids++
		rs.copies += n
	}
	if bad > 20 {
		t.Errorf("... %d output problems in all", bad)
	}
	return got, rs
}

// compare checks the outputs against the reference and returns how many
// windows it compared.
func compare(t *testing.T, ref, got map[winKey]result) int {
	t.Helper()
	var missing, wrong, extra []string
	for w, want := range ref {
		g, ok := got[w]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s@%d want %+v", w.key, w.start, want))
		case g != want:
			wrong = append(wrong, fmt.Sprintf("%s@%d got %+v want %+v", w.key, w.start, g, want))
		}
	}
	for w, g := range got {
		if _, ok := ref[w]; !ok {
			extra = append(extra, fmt.Sprintf("%s@%d got %+v", w.key, w.start, g))
		}
	}
	for _, l := range []struct {
		what string
		ws   []string
	}{{"missing", missing}, {"wrong", wrong}, {"extra", extra}} {
		if len(l.ws) == 0 {
			continue
		}
		sort.Strings(l.ws)
		t.Errorf("%d of %d windows %s, e.g.:\n  %s", len(l.ws), len(ref), l.what, strings.Join(l.ws[:min(10, len(l.ws))], "\n  "))
	}
	return len(ref)
}

// checkStore checks that only the closing events' windows are left in the
// store, each with its timer, and that every distinct event ID is recorded
// once.
func checkStore(t *testing.T, be backend, name string, store statedb.Store, topic string, closing map[string]bool, closeTS int64, ids int) {
	t.Helper()
	ctx := context.Background()
	due := windowStart(closeTS) + windowMs + graceMs
	for part := range int32(partitions) {
		ts, err := store.Due(ctx, statedb.Partition{Topic: topic, Partition: part}, "", math.MaxInt64, 1000)
		if err != nil {
			t.Fatalf("store timers of partition %d: %v", part, err)
		}
		if len(ts) != 1 || ts[0].Due != due || !closingSuffix(ts[0].Key, closing) {
			t.Errorf("partition %d: timers %+v, want only the closing window's (due %d)", part, ts, due)
		}
	}
	sc, err := be.contents(ctx, name)
	if err != nil {
		t.Fatalf("store contents: %v", err)
	}
	var stray []string
	for _, k := range sc.state {
		if !closingSuffix(k, closing) {
			stray = append(stray, strconv.Quote(k))
		}
	}
	if len(stray) > 0 || len(sc.state) != partitions {
		sort.Strings(stray)
		t.Errorf("store holds %d state entries, want %d (the closing windows); not closing: %d, e.g. %v",
			len(sc.state), partitions, len(stray), stray[:min(10, len(stray))])
	}
	if sc.ids != ids {
		t.Errorf("store records %d event IDs, want %d (one per distinct event)", sc.ids, ids)
	}
	t.Logf("store: %d state entries (the closing windows), %d event IDs", len(sc.state), sc.ids)
}

func closingSuffix(k string, closing map[string]bool) bool {
	i := strings.LastIndexByte(k, 0)
	return i >= 0 && closing[k[i+1:]]
}

// waitFor polls cond until it holds or timeout passes; why, if given,
// explains the last failed poll.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, why ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if len(why) > 0 {
				msg = ": " + why[0]()
			}
			t.Fatalf("timed out after %s waiting for %s%s", timeout, what, msg)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkJoined reads the join's outputs: event ID -> the pair's value, once
// per distinct eddy-id. A repeated eddy-id must carry the same value; a
// pair must be of an input event, with both sides' values; one event in
// two outputs with different IDs is a pair emitted twice.
func checkJoined(t *testing.T, recs []*sarama.ConsumerMessage, plan *input) map[string]string {
	t.Helper()
	want := map[string]event{}
	for _, ev := range plan.events {
		want[ev.ID] = ev
	}
	byID := map[string]string{}
	pairs := map[string]string{}
	for _, m := range recs {
		var id string
		for _, h := range m.Headers {
			if string(h.Key) == processor.IDHeader {
				id = string(h.Value)
			}
		}
		if prev, ok := byID[id]; ok {
			if prev != string(m.Value) {
				t.Errorf("join output %s repeated with another value:\n%s\n%s", id, prev, m.Value)
			}
			continue
		}
		byID[id] = string(m.Value)
		var p struct {
			ID, K string
			V, RV int64
		}
		if err := json.Unmarshal(m.Value, &p); err != nil {
			t.Errorf("join output %s: %v", m.Value, err)
			continue
		}
		ev, ok := want[p.ID]
		switch {
		case !ok:
			t.Errorf("join output of unknown event %s", m.Value)
		case p.K != ev.K || p.V != ev.V || p.RV != ev.V:
			t.Errorf("join output %s, want k %s v %d on both sides", m.Value, ev.K, ev.V)
		case pairs[p.ID] != "":
			t.Errorf("event %s joined twice, under two IDs", p.ID)
		}
		pairs[p.ID] = string(m.Value)
	}
	return pairs
}
