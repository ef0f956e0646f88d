package processor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// Tests of the flush protocol's failure branches. Each one is the killer
// of a named mutation in mutations.yaml (make mutate).

// waitFor polls cond until it holds, failing the test after 5s (what it
// waits for takes milliseconds; a killed mutation waits the 5s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wait waits for the harness's task to end and returns its error.
func (h *harness) wait() error {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.done <- nil // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("the task did not end")
		return nil
	}
}

// stored returns the memory store's offset watermark of the test partition.
func stored(t *testing.T, st *memory.Store) int64 {
	t.Helper()
	c, err := st.Inspect(context.Background(), statedb.Partition{Topic: "in"})
	if err != nil {
		t.Fatal(err)
	}
	return c.Offset
}

// protoPipeline is testPipeline with a short flush.shutdown_timeout, so
// that a store outage outlasts it quickly.
const protoPipeline = `
name: unit
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_id: event.id}
dedup: {enabled: %t}
flush: {max_messages: 5, interval: 1h, shutdown_timeout: 100ms}
dead_letter: {topic: dlq}
steps:
  - set: {twice: event.n * 2}
sink: {topic: out}
`

// A produce that fails is retried; while it fails, nothing is committed to
// the store and no offset is marked: state and offset never run ahead of
// the outputs (mutation produce-error-ignored).
func TestTaskProduceErrorCommitsNothing(t *testing.T) {
	st := memory.New()
	h := newHarnessYAML(t, fmt.Sprintf(protoPipeline, false), st)
	h.prod.fail.Store(1 << 30)
	h.send(0, 5, event)
	waitFor(t, "two failed produces", func() bool {
		return h.w.stats.produceErrs.Load() >= 2 || h.store.commits.Load() > 0
	})
	if n := h.store.commits.Load(); n != 0 {
		t.Fatalf("%d store commits while every produce failed", n)
	}
	if m := h.sess.lastMarkOr(-1); m != -1 {
		t.Fatalf("offset %d marked while every produce failed", m)
	}
	if w := stored(t, st); w != statedb.NoOffset {
		t.Fatalf("store watermark %d while every produce failed", w)
	}
	h.prod.fail.Store(0)
	h.waitMarked(5)
	if got := h.prod.count(); got != 5 {
		t.Errorf("%d outputs after the brokers came back, want 5", got)
	}
	if w := stored(t, st); w != 4 {
		t.Errorf("store watermark %d, want 4", w)
	}
}

// hangingSeen is a store whose dedup lookup hangs until its context ends
// (a store that stopped answering) and which answers again from then on.
type hangingSeen struct {
	statedb.Store
	hung    atomic.Bool
	commits atomic.Int32
}

func (s *hangingSeen) Seen(ctx context.Context, p statedb.Partition, ids []string) (map[string]bool, error) {
	if !s.hung.Swap(true) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.Seen(ctx, p, ids)
}

func (s *hangingSeen) Commit(ctx context.Context, c *statedb.Commit) error {
	s.commits.Add(1)
	return s.Store.Commit(ctx, c)
}

// A batch abandoned midway (the session ended and flush.shutdown_timeout
// ran out while its dedup lookup waited) is never flushed, even though the
// store answers again by the final flush: its cache and buffers hold part
// of a batch. The next owner replays it whole (mutation
// broken-batch-flushed).
func TestTaskNeverFlushesAnAbandonedBatch(t *testing.T) {
	st := memory.New()
	hs := &hangingSeen{Store: st}
	h := newHarnessYAML(t, fmt.Sprintf(protoPipeline, true), hs)
	h.send(0, 5, event)
	waitFor(t, "the dedup lookup", hs.hung.Load)
	h.stop() // the session ends; the batch's grace runs out while Seen hangs
	if err := h.wait(); err != nil {
		t.Fatalf("task: %v", err)
	}
	if n := hs.commits.Load(); n != 0 {
		t.Errorf("%d store commits of an abandoned batch", n)
	}
	if w := stored(t, st); w != statedb.NoOffset {
		t.Errorf("store watermark %d after an abandoned batch, want none", w)
	}
	if m := h.sess.lastMarkOr(-1); m != -1 {
		t.Errorf("offset %d marked for an abandoned batch", m)
	}
	if got := h.prod.count(); got != 0 {
		t.Errorf("%d outputs of an abandoned batch", got)
	}

	// The next owner replays the batch from W and applies it whole.
	next := newHarnessYAML(t, fmt.Sprintf(protoPipeline, true), st)
	next.send(0, 5, event)
	next.waitMarked(5)
	if got := next.prod.count(); got != 5 {
		t.Errorf("the next owner produced %d outputs, want 5", got)
	}
}

// The store is down for longer than flush.shutdown_timeout and the
// partition is revoked: the outputs, acknowledged before the commit
// failed, are produced once, not again by the final flush (mutation
// acked-outputs-kept).
func TestTaskRevokedDuringALongOutageProducesOnce(t *testing.T) {
	st := memory.New()
	committing := make(chan struct{})
	var once atomic.Bool
	hook := func(_ context.Context, _ statedb.Partition, s FlushStage) {
		if s == BeforeCommit && !once.Swap(true) {
			close(committing)
		}
	}
	h := newHarnessYAML(t, fmt.Sprintf(protoPipeline, false), st, WithFlushHook(hook))
	h.store.down.Store(true) // and never up again
	h.send(0, 5, event)
	<-committing
	h.stop() // revoke while the commit is being retried
	if err := h.wait(); err != nil {
		t.Fatalf("task: %v", err)
	}
	if got := h.prod.count(); got != 5 {
		t.Errorf("%d messages produced, want 5: acknowledged outputs must not be produced again", got)
	}
	if m := h.sess.lastMarkOr(-1); m != -1 {
		t.Errorf("offset %d marked though no commit succeeded", m)
	}
	if w := stored(t, st); w != statedb.NoOffset {
		t.Errorf("store watermark %d though the store was down", w)
	}
}

// boom stages a put for every record, then panics on n == 2.
var boom = ProcessorFunc(func(_ context.Context, r *Record, out Emitter, st State) error {
	st.Put("seen-"+r.ID, []byte("1"), 0)
	if r.Event["n"] == int64(2) {
		panic("boom")
	}
	out.Emit(r)
	return nil
})

// A custom Processor that panics does not crash the worker: the record goes
// to the dead-letter topic with the panic in its headers, and what it
// staged in State is rolled back, while the records around it commit
// normally (mutations panic-not-recovered, staged-state-kept).
func TestTaskProcessorPanicIsADeadLetterAndRollsBack(t *testing.T) {
	st := memory.New()
	yaml := `
name: unit
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_id: event.id}
flush: {max_messages: 5, interval: 1h, shutdown_timeout: 2s}
dead_letter: {topic: dlq}
steps:
  - processor: {name: boom}
sink: {topic: out}
`
	h := newHarnessYAML(t, yaml, st, WithProcessor("boom", func(map[string]any) (Processor, error) { return boom, nil }))
	h.send(0, 5, event)
	h.waitMarked(5)
	var out, dlq []*sarama.ProducerMessage
	for _, m := range h.prod.sent {
		switch m.Topic {
		case "out":
			out = append(out, m)
		case "dlq":
			dlq = append(dlq, m)
		}
	}
	if len(out) != 4 || len(dlq) != 1 {
		t.Fatalf("%d outputs and %d dead letters, want 4 and 1", len(out), len(dlq))
	}
	var hdrs []string
	for _, hd := range dlq[0].Headers {
		hdrs = append(hdrs, string(hd.Key)+"="+string(hd.Value))
	}
	if v, _ := dlq[0].Value.Encode(); string(v) != event(2) || !strings.Contains(strings.Join(hdrs, " "), "panic: boom") {
		t.Errorf("dead letter %s with headers %v, want event 2 and the panic", v, hdrs)
	}
	got, err := st.Load(context.Background(), statedb.Partition{Topic: "in"},
		[]string{StateKey("boom", "seen-e0"), StateKey("boom", "seen-e1"), StateKey("boom", "seen-e2"), StateKey("boom", "seen-e3"), StateKey("boom", "seen-e4")})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[StateKey("boom", "seen-e2")]; ok || len(got) != 4 {
		t.Errorf("committed state %v, want the puts of e0, e1, e3, e4 only", keys(got))
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// The session's committer commits marked offsets every commit interval,
// and only when an offset was marked; Cleanup commits once more (mutation
// commit-loop-idle).
func TestCommitLoopCommitsMarkedOffsets(t *testing.T) {
	p, err := pipeline.Parse("unit.yaml", fmt.Appendf(nil, protoPipeline, false))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(p, WithStore(memory.New()), WithLogger(zaptest.NewLogger(t)), WithCommitInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	sess := &fakeSession{ctx: context.Background()}
	h := &handler{w: w}
	if err := h.Setup(sess); err != nil {
		t.Fatal(err)
	}
	commits := func() int { sess.mu.Lock(); defer sess.mu.Unlock(); return sess.commits }
	h.offsetMarked()
	waitFor(t, "the committer's commit", func() bool { return commits() == 1 })
	h.offsetMarked()
	waitFor(t, "a second commit", func() bool { return commits() == 2 })
	// Nothing marked since: the ticks that follow commit nothing.
	time.Sleep(50 * time.Millisecond)
	if n := commits(); n != 2 {
		t.Errorf("%d commits with nothing marked since the second, want 2", n)
	}
	if err := h.Cleanup(sess); err != nil {
		t.Fatal(err)
	}
	if n := commits(); n != 3 {
		t.Errorf("%d commits after Cleanup, want 3 (its final commit)", n)
	}
}

// unreachable is a store that never answers Acquire.
type unreachable struct{ statedb.Store }

func (unreachable) Acquire(context.Context, statedb.Partition) (statedb.Claim, error) {
	return statedb.Claim{}, errors.New("connection refused")
}

// A partition that could not be claimed before its session ended is
// drained: the task reads and drops the claim's messages until sarama
// closes it, processing, producing, committing and marking nothing
// (mutation no-drain).
func TestTaskDrainsAClaimItCouldNotAcquire(t *testing.T) {
	p, err := pipeline.Parse("unit.yaml", fmt.Appendf(nil, protoPipeline, false))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(p, WithStore(unreachable{memory.New()}), WithLogger(zaptest.NewLogger(t)), WithRetryBackoff(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sess := &fakeSession{ctx: ctx}
	claim := &fakeClaim{topic: "in", msgs: make(chan *sarama.ConsumerMessage, 10)}
	prod := &fakeProducer{}
	tk, err := newTask(&handler{w: w, producer: prod, marked: make(chan struct{}, 1)}, sess, claim)
	if err != nil {
		t.Fatal(err)
	}
	for o := range int64(3) {
		claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: o, Value: []byte(event(o))}
	}
	done := make(chan error, 1)
	go func() { done <- tk.run() }()
	waitFor(t, "a failed acquire", func() bool { return w.stats.storeErrs.Load() > 0 })
	cancel() // the session ends before the store answers
	waitFor(t, "the claim drained", func() bool { return len(claim.msgs) == 0 })
	select {
	case err := <-done:
		t.Fatalf("run returned (%v) before the claim was closed", err)
	default:
	}
	close(claim.msgs)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v, want nil: the partition goes to its next owner", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the claim closed")
	}
	if len(sess.marks) != 0 || sess.commits != 0 || prod.count() != 0 || w.stats.in.Load() != 0 {
		t.Errorf("marks %v, commits %d, outputs %d, events %d: an unclaimed partition must do nothing",
			sess.marks, sess.commits, prod.count(), w.stats.in.Load())
	}
}

// With source.watermark.idle_timeout, a partition that receives nothing
// more still closes its last window once the timeout has passed: the task
// runs its steps without new events and the watermark follows the wall
// clock (mutations idle-not-ticking, idle-no-advance).
func TestTaskIdleTimeoutClosesTheLastWindow(t *testing.T) {
	yaml := `
name: agg
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_time: event.ts, watermark: {allowed_lateness: 0s, idle_timeout: 50ms}}
flush: {max_messages: 100, interval: 5ms, shutdown_timeout: 2s}
steps:
  - aggregate:
      name: clicks
      key: event.user
      window: {tumbling: 1m}
      values: {n: count()}
sink: {topic: out}
`
	h := newHarnessYAML(t, yaml, memory.New())
	// Three events at the end of the window [0, 1m): with no idle timeout
	// its result would wait for an event of a later minute.
	for o := range int64(3) {
		h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: o, Key: []byte("u"),
			Value: fmt.Appendf(nil, `{"user":"u","ts":%d}`, 59_000+o), Timestamp: time.UnixMilli(59_000 + o)}
	}
	waitFor(t, "the idle partition's window result", func() bool { return h.prod.count() > 0 })
	h.stop()
	if err := h.wait(); err != nil {
		t.Fatalf("task: %v", err)
	}
	if n := h.prod.count(); n != 1 {
		t.Fatalf("%d outputs, want the one window result", n)
	}
	b, _ := h.prod.sent[0].Value.Encode()
	ev, err := pipeline.DecodeJSON(b)
	if err != nil || ev["n"] != int64(3) {
		t.Errorf("window result %s (%v), want n = 3", b, err)
	}
}

// TestTaskEndOfInputClosesEveryWindow: in a bounded run, EndOfInput moves
// a source partition's event time to its end on the next tick: the open
// windows close and their results are flushed, which InputEndFlushed then
// reports; before it, nothing closes them (no idle timeout).
func TestTaskEndOfInputClosesEveryWindow(t *testing.T) {
	yaml := `
name: agg
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_time: event.ts, watermark: {allowed_lateness: 0s}}
flush: {max_messages: 100, interval: 5ms, shutdown_timeout: 2s}
steps:
  - aggregate:
      name: clicks
      key: event.user
      window: {session: 1h, grace: 10m}
      values: {n: count()}
sink: {topic: out}
`
	const t0 = int64(1_700_000_000_000)
	h := newHarnessYAML(t, yaml, memory.New())
	for o := range int64(3) {
		h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: o, Key: []byte("u"),
			Value: fmt.Appendf(nil, `{"user":"u","ts":%d}`, t0+o), Timestamp: time.UnixMilli(t0 + o)}
	}
	h.waitMarked(3)
	time.Sleep(50 * time.Millisecond) // ten ticks
	if n := h.prod.count(); n != 0 || h.w.InputEndFlushed() {
		t.Fatalf("%d outputs before the end of the input (ended: %v), want none", n, h.w.InputEndFlushed())
	}
	h.w.EndOfInput()
	waitFor(t, "the end of the input flushed", h.w.InputEndFlushed)
	if n := h.prod.count(); n != 1 {
		t.Fatalf("%d outputs at the end of the input, want the session's result", n)
	}
	b, _ := h.prod.sent[0].Value.Encode()
	if ev, err := pipeline.DecodeJSON(b); err != nil || ev["n"] != int64(3) {
		t.Errorf("session result %s (%v), want n = 3", b, err)
	}
}
