package integration_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
)

// The broker-fault tests run the aggregate tests' pipeline (a tumbling
// window with on_close results, aggPipeline) on a private Kafka broker of
// their own (testenv.PrivateKafka), which they take down in the middle of
// the stream and bring back, while the state lives in Redis or MariaDB.
// They prove the README's row "a broker restarts: produces and commits
// are retried":
//   - every window's result, deduplicated by eddy-id, equals the
//     reference computed from the input topic; late events are in the late
//     topic, closed windows leave no state (aggEnv.checkOutcome);
//   - the group's committed Kafka offset never passes the store's offset
//     watermark W: committed <= W+1 on every partition, sampled all along
//     (committed offsets read before W, so that a sample can only be
//     pessimistic);
//   - the worker survives the outage by itself: the same Worker runs from
//     start to end, and the faults land where they are meant to, which
//     the logs and the Kafka offsets show.

// brokerDownFor is how long a broker stays down: longer than the
// producer's retries (10 × 100 ms) and than the first backoffs of the
// runtime's retry loop, shorter than the group's session timeout (10 s).
const brokerDownFor = 3 * time.Second

// TestBrokerKilledMidFlush SIGKILLs the broker while one partition task is
// held right before it produces its outputs (step a of the flush) and
// another right before it commits state (step b, its outputs
// acknowledged), releases both while the broker is down, and starts the
// broker again: the produce fails and is retried until the broker is
// back, the state commit goes through and its Kafka commit is retried;
// results are exact, nothing is committed past persisted state.
func TestBrokerKilledMidFlush(t *testing.T) {
	testBrokerRestart(t, (*testenv.Kafka).Kill)
}

// TestBrokerStoppedMidFlush is TestBrokerKilledMidFlush with a clean stop
// (SIGTERM: a controlled shutdown) instead of a crash.
func TestBrokerStoppedMidFlush(t *testing.T) {
	testBrokerRestart(t, (*testenv.Kafka).Stop)
}

// brokerModes are the two produce paths: a transactional producer per
// partition task (kafka.transactions, the default), and the shared
// idempotent producer. A transactional producer retries a produce to a
// downed broker inside its transaction, so eddy's own retry loop may never
// see the error: the log checks of the held produce apply to the
// idempotent path only; results and the committed <= W+1 invariant to
// both.
var brokerModes = []struct {
	name string
	txn  bool
}{{"transactions", true}, {"idempotent", false}}

func testBrokerRestart(t *testing.T, down func(*testenv.Kafka)) {
	for _, b := range aggBackends {
		for _, mode := range brokerModes {
			t.Run(b.name+"/"+mode.name, func(t *testing.T) {
				testBrokerRestartOn(t, down, b, mode.txn)
			})
		}
	}
}

func testBrokerRestartOn(t *testing.T, down func(*testenv.Kafka), b aggBackend, txn bool) {
	began := time.Now()
	k := testenv.PrivateKafka(t, testenv.KafkaConfig{})
	e := newAggEnvOn(t, k.Brokers(), b, aggKinds[0]) // tumbling
	e.p.Spec.Kafka.Transactions = &txn
	inv := watchInvariant(t, k.Brokers(), e)

	obs, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(obs, zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)).Core())).Named("w")
	trap := newFlushTrap()
	w, stop := e.startAggWorker("w", processor.WithLogger(log), processor.WithFlushHook(trap.hook),
		processor.WithRetryBackoff(500*time.Millisecond))

	// Part 1, processed and persisted before any fault.
	n1, n2 := len(e.data)/3, len(e.data)*2/3
	e.send(e.data[:n1])
	e.waitAllStored("the worker to persist the first part")
	inv.require("after the first part", 1)

	// Part 2: the trap holds the first two flushes of two
	// partitions, one before its produce and one before its state
	// commit; the broker goes down under them.
	trap.arm()
	n2a := (n1 + n2) / 2
	e.send(e.data[n1:n2a])
	held := trap.waitHeld(t, 30*time.Second)
	// Meanwhile the third partition goes on: the rest of part 2
	// makes it flush and the worker commit Kafka offsets, the
	// held partitions' included; the one held before its state
	// commit must not be committed past what it has persisted.
	free := freePartition(held)
	comHeld, err := inv.committed()
	if err != nil {
		t.Fatal(err)
	}
	e.send(e.data[n2a:n2])
	waitFor(t, 20*time.Second, fmt.Sprintf("a Kafka commit of partition %d while the others are held", free), func() bool {
		com, err := inv.committed()
		return err == nil && com[free] > comHeld[free]
	})
	com, err := inv.committed()
	if err != nil {
		t.Fatal(err)
	}
	heldAt := storedNow(t, e)
	if p := held[processor.BeforeCommit].Partition; com[p] > heldAt[p]+1 {
		t.Errorf("partition %d, held before its state commit: Kafka offset %d committed, past its stored offset %d + 1", p, com[p], heldAt[p])
	}
	sessionsBefore := w.Stats().Rebalances
	down(k)
	downAt := time.Now()
	trap.release()
	time.Sleep(brokerDownFor)
	k.Start()
	upAt := time.Now()
	samplesAtUp := inv.samples()
	t.Logf("broker down %v (held: %v, stored offsets then %v)", upAt.Sub(downAt).Round(time.Millisecond), held, heldAt)

	// Part 3 and the closing events, once the broker is back.
	e.send(e.data[n2:])
	e.send(e.closing)
	waitStored(t, e.store, e.in, aggParts, e.lastOffsets(), 60*time.Second, "the worker to persist every input")
	ends := partitionEnds(t, e.brokers, e.in)
	waitFor(t, 30*time.Second, "the group's committed offsets to reach the ends of the input", func() bool {
		com, err := inv.committed()
		return err == nil && fmt.Sprint(com) == fmt.Sprint(ends)
	})
	caughtUp := time.Since(upAt)
	inv.require("after the restart", samplesAtUp+1)
	s := w.Stats()
	stop()

	// The fault landed where it was meant to: the held produce
	// failed (the broker was down when it ran) and was retried
	// until it went through. (After a SIGKILL the group session
	// breaks and the same Worker rejoins; after a clean stop
	// that is quick enough, the session survives.)
	heldProduce := held[processor.BeforeProduce]
	if !txn {
		if n := countLogs(logs, "produce failed; partition paused", heldProduce.Partition); n == 0 {
			t.Errorf("partition %d, held before its produce while the broker went down, logged no failed produce", heldProduce.Partition)
		}
		if n := countLogs(logs, "produce recovered; partition resumed", heldProduce.Partition); n == 0 {
			t.Errorf("partition %d: its failed produce never logged its recovery", heldProduce.Partition)
		}
	}
	ref := e.checkOutcome(false)
	t.Logf("%s: %d windows exact; %d invariant samples (%d while the broker was down: store only); caught up %v after the restart; stats: in %d, skipped %d, flushes %d, store/produce errors %d, group sessions %d -> %d; whole test %v",
		b.name, len(ref.results), inv.samples(), inv.downSamples(), caughtUp.Round(time.Millisecond),
		s.In, s.Skipped, s.Flushes, s.StoreErrors, sessionsBefore, s.Rebalances, time.Since(began).Round(time.Millisecond))
}

// freePartition returns the partition that no held task holds.
func freePartition(held map[processor.FlushStage]statedb.Partition) int32 {
	for p := range int32(aggParts) {
		taken := false
		for _, h := range held {
			taken = taken || h.Partition == p
		}
		if !taken {
			return p
		}
	}
	return -1
}

// storedNow returns the store's offset watermarks.
func storedNow(t *testing.T, e *aggEnv) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := storedOffsets(ctx, e.store, e.in, aggParts)
	if err != nil {
		t.Fatalf("stored offsets: %v", err)
	}
	return st
}

// countLogs counts the entries whose message contains msg logged for
// partition p.
func countLogs(logs *observer.ObservedLogs, msg string, p int32) int {
	n := 0
	for _, l := range logs.FilterMessageSnippet(msg).All() {
		if fmt.Sprint(l.ContextMap()["partition"]) == fmt.Sprint(p) {
			n++
		}
	}
	return n
}

// flushTrap is a flush hook that, once armed, holds two partition tasks:
// the first to reach BeforeProduce and the first of another partition to
// reach BeforeCommit, until released. Others pass.
type flushTrap struct {
	mu       sync.Mutex
	armed    bool
	held     map[processor.FlushStage]statedb.Partition
	both     chan struct{} // closed when both are held
	released chan struct{} // closed by release
}

func newFlushTrap() *flushTrap {
	return &flushTrap{held: map[processor.FlushStage]statedb.Partition{},
		both: make(chan struct{}), released: make(chan struct{})}
}

func (f *flushTrap) arm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = true
}

func (f *flushTrap) hook(ctx context.Context, p statedb.Partition, s processor.FlushStage) {
	if s != processor.BeforeProduce && s != processor.BeforeCommit {
		return
	}
	f.mu.Lock()
	if _, taken := f.held[s]; !f.armed || taken {
		f.mu.Unlock()
		return
	}
	for _, q := range f.held {
		if q == p {
			f.mu.Unlock()
			return
		}
	}
	f.held[s] = p
	if len(f.held) == 2 {
		close(f.both)
	}
	f.mu.Unlock()
	select {
	case <-f.released:
	case <-ctx.Done():
	}
}

// waitHeld waits until both tasks are held and returns their partitions.
func (f *flushTrap) waitHeld(t *testing.T, timeout time.Duration) map[processor.FlushStage]statedb.Partition {
	t.Helper()
	select {
	case <-f.both:
	case <-time.After(timeout):
		f.mu.Lock()
		defer f.mu.Unlock()
		t.Fatalf("the flush trap held %v within %v, want a task before its produce and another before its state commit", f.held, timeout)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[processor.FlushStage]statedb.Partition{}
	for s, p := range f.held {
		out[s] = p
	}
	return out
}

// release lets the held tasks go on; the trap holds no more.
func (f *flushTrap) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.armed {
		f.armed = false
		close(f.released)
	}
}

// invariant samples, every 50 ms until the test ends, the group's
// committed offsets and then the store's offset watermarks, and records
// every partition whose committed offset is past W+1: an offset committed
// past persisted state. While the broker is down only W is read.
type invariant struct {
	t     *testing.T
	admin sarama.ClusterAdmin
	e     *aggEnv

	mu         sync.Mutex
	n, down    int
	violations []string
}

func watchInvariant(t *testing.T, brokers []string, e *aggEnv) *invariant {
	t.Helper()
	cfg := testenv.SaramaConfig()
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout = time.Second, 2*time.Second
	cfg.Metadata.Retry.Max = 1
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	inv := &invariant{t: t, admin: admin, e: e}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			inv.sample()
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = admin.Close()
		inv.mu.Lock()
		defer inv.mu.Unlock()
		for _, v := range inv.violations {
			t.Error(v)
		}
	})
	return inv
}

// committed returns the group's committed offset per partition (-1: none).
func (inv *invariant) committed() (map[int32]int64, error) {
	parts := make([]int32, aggParts)
	for i := range parts {
		parts[i] = int32(i)
	}
	resp, err := inv.admin.ListConsumerGroupOffsets(inv.e.group, map[string][]int32{inv.e.in: parts})
	if err != nil {
		return nil, err
	}
	if !errors.Is(resp.Err, sarama.ErrNoError) {
		return nil, resp.Err
	}
	out := map[int32]int64{}
	for _, p := range parts {
		b := resp.GetBlock(inv.e.in, p)
		if b == nil {
			out[p] = -1
			continue
		}
		if !errors.Is(b.Err, sarama.ErrNoError) {
			return nil, b.Err
		}
		out[p] = b.Offset
	}
	return out, nil
}

func (inv *invariant) sample() {
	com, cerr := inv.committed()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	stored, serr := storedOffsets(ctx, inv.e.store, inv.e.in, aggParts)
	cancel()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if serr != nil {
		inv.violations = append(inv.violations, fmt.Sprintf("invariant sampler: stored offsets: %v", serr))
		return
	}
	if cerr != nil {
		inv.down++ // the broker is down or restarting
		return
	}
	inv.n++
	for p, c := range com {
		if c > stored[p]+1 && len(inv.violations) < 10 {
			inv.violations = append(inv.violations, fmt.Sprintf(
				"partition %d: committed offset %d is past the store's watermark %d + 1 (committed %v, stored %v)", p, c, stored[p], com, stored))
		}
	}
}

func (inv *invariant) samples() int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.n
}

func (inv *invariant) downSamples() int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.down
}

// require fails the test now if a violation has been recorded, or if
// fewer than min samples of committed offsets have been taken in all
// (waiting up to 5 s for them).
func (inv *invariant) require(when string, min int) {
	inv.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for inv.samples() < min && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if len(inv.violations) > 0 {
		inv.t.Fatalf("%s: %d invariant violations, first: %s", when, len(inv.violations), inv.violations[0])
	}
	if inv.n < min {
		inv.t.Fatalf("%s: %d samples of the committed offsets, want at least %d", when, inv.n, min)
	}
}
