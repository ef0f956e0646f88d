package processor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// The fakes below stand in for sarama's session, claim and producer so that
// the task's logic can be tested alone; the same paths run against a real
// broker in integration/worker_test.go.

type fakeSession struct {
	ctx     context.Context
	mu      sync.Mutex
	marks   []int64
	resets  []int64
	commits int
}

func (s *fakeSession) Claims() map[string][]int32 { return nil }
func (s *fakeSession) MemberID() string           { return "m" }
func (s *fakeSession) GenerationID() int32        { return 1 }
func (s *fakeSession) MarkOffset(_ string, _ int32, off int64, _ string) {
	s.mu.Lock()
	s.marks = append(s.marks, off)
	s.mu.Unlock()
}
func (s *fakeSession) Commit() { s.mu.Lock(); s.commits++; s.mu.Unlock() }
func (s *fakeSession) ResetOffset(_ string, _ int32, off int64, _ string) {
	s.mu.Lock()
	s.resets = append(s.resets, off)
	s.mu.Unlock()
}
func (s *fakeSession) MarkMessage(*sarama.ConsumerMessage, string) {}
func (s *fakeSession) Context() context.Context                    { return s.ctx }

type fakeClaim struct {
	topic   string
	msgs    chan *sarama.ConsumerMessage
	initial int64
	hwm     atomic.Int64 // the high water mark it reports
}

func (c *fakeClaim) Topic() string                            { return c.topic }
func (c *fakeClaim) Partition() int32                         { return 0 }
func (c *fakeClaim) InitialOffset() int64                     { return c.initial }
func (c *fakeClaim) HighWaterMarkOffset() int64               { return c.hwm.Load() }
func (c *fakeClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }

type fakeProducer struct {
	sarama.SyncProducer // unused methods panic
	mu                  sync.Mutex
	sent                []*sarama.ProducerMessage
	fail                atomic.Int32 // fail this many calls
}

func (p *fakeProducer) SendMessages(ms []*sarama.ProducerMessage) error {
	if p.fail.Load() > 0 {
		p.fail.Add(-1)
		return errors.New("brokers unreachable")
	}
	p.mu.Lock()
	p.sent = append(p.sent, ms...)
	p.mu.Unlock()
	return nil
}

func (p *fakeProducer) count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.sent) }

// flakyStore fails Commit while down is set.
type flakyStore struct {
	statedb.Store
	down    atomic.Bool
	commits atomic.Int32
}

func (s *flakyStore) Seen(ctx context.Context, p statedb.Partition, ids []string) (map[string]bool, error) {
	if s.down.Load() {
		return nil, errors.New("connection refused")
	}
	return s.Store.Seen(ctx, p, ids)
}

func (s *flakyStore) Commit(ctx context.Context, c *statedb.Commit) error {
	if s.down.Load() {
		return errors.New("connection refused")
	}
	s.commits.Add(1)
	return s.Store.Commit(ctx, c)
}

type harness struct {
	t     *testing.T
	w     *Worker
	sess  *fakeSession
	claim *fakeClaim
	prod  *fakeProducer
	store *flakyStore
	stop  context.CancelFunc
	done  chan error
}

const testPipeline = `
name: unit
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_id: event.id}
dedup: {enabled: %t}
flush: {max_messages: %d, interval: %s, shutdown_timeout: 2s}
dead_letter: {topic: dlq}
steps:
  - filter: event.n != 13
  - set: {twice: event.n * 2}
sink: {topic: out}
`

func newHarness(t *testing.T, dedup bool, maxMessages int, interval string, store statedb.Store) *harness {
	t.Helper()
	return newHarnessYAML(t, fmt.Sprintf(testPipeline, dedup, maxMessages, interval), store)
}

func newHarnessYAML(t *testing.T, yaml string, store statedb.Store, opts ...Option) *harness {
	t.Helper()
	return newHarnessOn(t, "in", yaml, store, opts...)
}

// newHarnessOn is newHarnessYAML with the task claiming partition 0 of topic.
func newHarnessOn(t *testing.T, topic, yaml string, store statedb.Store, opts ...Option) *harness {
	t.Helper()
	p, err := pipeline.Parse("unit.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{Store: store}
	opts = append([]Option{WithStore(fs), WithLogger(zaptest.NewLogger(t)), WithRetryBackoff(20 * time.Millisecond)}, opts...)
	w, err := New(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, w: w, sess: &fakeSession{ctx: ctx}, claim: &fakeClaim{topic: topic, msgs: make(chan *sarama.ConsumerMessage, 1000)},
		prod: &fakeProducer{}, store: fs, stop: cancel, done: make(chan error, 1)}
	hd := &handler{w: w, producer: h.prod, marked: make(chan struct{}, 1)}
	tk, err := newTask(hd, h.sess, h.claim)
	if err != nil {
		t.Fatal(err)
	}
	go func() { h.done <- tk.run() }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

func (h *harness) send(from, to int64, value func(int64) string) {
	for o := from; o < to; o++ {
		h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: o, Key: []byte("k"), Value: []byte(value(o)), Timestamp: time.Unix(1700000000, 0)}
	}
}

func event(o int64) string { return fmt.Sprintf(`{"id":"e%d","n":%d}`, o, o) }

func (s *fakeSession) lastMarkOr(def int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.marks) == 0 {
		return def
	}
	return s.marks[len(s.marks)-1]
}

// waitMarked waits until the task has marked next as the next offset.
func (h *harness) waitMarked(next int64) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.sess.lastMarkOr(-1) != next {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for mark %d (marks %v)", next, h.sess.marks)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A partition that is behind doubles its batches after each full one, up
// to flush.backlog_messages, and goes back to flush.max_messages once it
// has caught up.
func TestTaskBatchesGrowOnABacklog(t *testing.T) {
	h := newHarnessYAML(t, strings.Replace(fmt.Sprintf(testPipeline, false, 100, "1h"),
		"max_messages: 100,", "max_messages: 100, backlog_messages: 800,", 1), memory.New())
	h.claim.hwm.Store(3100) // 3,100 messages waiting
	go h.send(0, 3100, event)
	h.waitMarked(3100)
	h.claim.hwm.Store(3250)
	h.send(3100, 3250, event) // caught up: batches of 100 again, the last 50 wait
	h.waitMarked(3200)
	time.Sleep(50 * time.Millisecond)
	h.sess.mu.Lock()
	marks := fmt.Sprint(h.sess.marks)
	h.sess.mu.Unlock()
	if want := "[100 300 700 1500 2300 3100 3200]"; marks != want {
		t.Errorf("marks %s, want %s: batches of 100, 200, 400, 800, 800, 800 on the backlog, then 100", marks, want)
	}
}

// flush.max_bytes ends a batch whatever its message count.
func TestTaskBatchesAreBoundedInBytes(t *testing.T) {
	h := newHarnessYAML(t, strings.Replace(fmt.Sprintf(testPipeline, false, 1000, "1h"),
		"max_messages: 1000,", "max_messages: 1000, max_bytes: 210,", 1), memory.New())
	h.send(0, 35, func(o int64) string { return fmt.Sprintf(`{"id":"e%04d","n":1}`, o) }) // 20 bytes, and the key's 1
	h.waitMarked(30)
	time.Sleep(50 * time.Millisecond)
	h.sess.mu.Lock()
	marks := fmt.Sprint(h.sess.marks)
	h.sess.mu.Unlock()
	if marks != "[10 20 30]" {
		t.Errorf("marks %s, want [10 20 30]: a batch ends at 210 bytes (10 records of 21)", marks)
	}
}

func TestTaskFlushesEveryMaxMessages(t *testing.T) {
	h := newHarness(t, false, 10, "1h", memory.New())
	h.send(0, 35, event)
	h.waitMarked(30) // three full batches; the last 5 wait for the timer or revoke
	if got := h.store.commits.Load(); got != 3 {
		t.Errorf("%d commits, want 3 (one per full batch)", got)
	}
	if got := h.prod.count(); got != 29 { // 30 events, n=13 filtered
		t.Errorf("%d outputs produced, want 29", got)
	}
	h.stop() // revoke: the final flush takes the last 5
	if err := <-h.done; err != nil {
		t.Fatalf("task: %v", err)
	}
	h.done <- nil
	if got := h.sess.lastMarkOr(-1); got != 35 {
		t.Errorf("final mark %d, want 35", got)
	}
	if got := h.prod.count(); got != 34 {
		t.Errorf("%d outputs after the final flush, want 34", got)
	}
	prev := int64(-1)
	for i, m := range h.prod.sent {
		b, _ := m.Value.Encode()
		ev, err := pipeline.DecodeJSON(b)
		if err != nil || m.Topic != "out" {
			t.Fatalf("output %d: %q to %q: %v", i, b, m.Topic, err)
		}
		n, twice := ev["n"].(int64), ev["twice"].(int64)
		if n == 13 || twice != 2*n || n <= prev {
			t.Errorf("output %d: %s (after n=%d)", i, b, prev)
		}
		prev = n
	}
}

func TestTaskFlushesOnInterval(t *testing.T) {
	h := newHarness(t, false, 1000, "30ms", memory.New())
	h.send(0, 3, event)
	h.waitMarked(3)
	if got := h.store.commits.Load(); got != 1 {
		t.Errorf("%d commits, want 1", got)
	}
}

func TestTaskSkipsWhatTheStoreHasAndResumesAfterIt(t *testing.T) {
	store := memory.New()
	part := statedb.Partition{Topic: "in"}
	c, _ := store.Acquire(context.Background(), part)
	if err := store.Commit(context.Background(), &statedb.Commit{Partition: part, Epoch: c.Epoch, Offset: 5}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, false, 100, "20ms", store)
	h.send(0, 10, event)
	h.waitMarked(10)
	if got := h.prod.count(); got != 4 { // offsets 6..9
		t.Errorf("%d outputs, want 4: offsets <= 5 are already applied", got)
	}
	if got := h.w.stats.skipped.Load(); got != 6 {
		t.Errorf("skipped %d, want 6", got)
	}
}

// A replay that only re-reads applied messages commits nothing to the store
// but moves Kafka's offset past them.
func TestTaskMarksTheOffsetOfSkippedMessages(t *testing.T) {
	store := memory.New()
	part := statedb.Partition{Topic: "in"}
	c, _ := store.Acquire(context.Background(), part)
	if err := store.Commit(context.Background(), &statedb.Commit{Partition: part, Epoch: c.Epoch, Offset: 9}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, false, 100, "10ms", store)
	h.send(0, 10, event)
	h.waitMarked(10)
	if got := h.prod.count(); got != 0 {
		t.Errorf("%d outputs for messages already applied", got)
	}
	if got := h.store.commits.Load(); got != 0 {
		t.Errorf("%d store commits, want none", got)
	}
}

func TestTaskDropsDuplicateEventIDs(t *testing.T) {
	h := newHarness(t, true, 4, "20ms", memory.New())
	same := func(o int64) string { return event(o % 3) } // e0 e1 e2 e0 e1 e2 ...
	h.send(0, 9, same)
	h.waitMarked(9)
	if got := h.prod.count(); got != 3 {
		t.Errorf("%d outputs, want 3 (one per distinct event ID, across batches)", got)
	}
	if got := h.w.stats.dups.Load(); got != 6 {
		t.Errorf("%d duplicates, want 6", got)
	}
}

func TestTaskPausesDuringAStoreOutageAndResumes(t *testing.T) {
	h := newHarness(t, false, 5, "10ms", memory.New())
	h.store.down.Store(true)
	h.send(0, 5, event)
	deadline := time.Now().Add(10 * time.Second)
	for h.w.stats.storeErrs.Load() < 2 { // at least one retry
		if time.Now().After(deadline) {
			t.Fatal("no retries counted during the outage")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if m := h.sess.lastMarkOr(-1); m != -1 {
		t.Fatalf("offset %d marked while the store was down", m)
	}
	h.store.down.Store(false)
	h.waitMarked(5)
	h.send(5, 10, event)
	h.waitMarked(10)
	if got := h.prod.count(); got != 10 {
		t.Errorf("%d outputs, want 10: outputs are produced once, before the commit is retried", got)
	}
}

func TestTaskFencedByANewerOwnerStops(t *testing.T) {
	store := memory.New()
	h := newHarness(t, false, 5, "10ms", store)
	h.send(0, 5, event)
	h.waitMarked(5)
	// Another worker takes the partition.
	if _, err := store.Acquire(context.Background(), statedb.Partition{Topic: "in"}); err != nil {
		t.Fatal(err)
	}
	h.send(5, 10, event)
	select {
	case err := <-h.done:
		if !errors.Is(err, errFenced) {
			t.Fatalf("task ended with %v, want errFenced", err)
		}
		h.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("fenced task did not stop")
	}
	if m := h.sess.lastMarkOr(-1); m != 5 {
		t.Errorf("last mark %d, want 5: a fenced task marks nothing", m)
	}
	if h.w.stats.fenced.Load() != 1 {
		t.Error("fenced task not counted")
	}
}

func TestTaskSendsPoisonEventsToTheDeadLetterTopic(t *testing.T) {
	h := newHarness(t, false, 3, "10ms", memory.New())
	vals := []string{event(0), `{"id":`, `{"id":"e2"}`}
	h.send(0, 3, func(o int64) string { return vals[o] })
	h.waitMarked(3)
	var dlq, out int
	for _, m := range h.prod.sent {
		switch m.Topic {
		case "dlq":
			dlq++
		case "out":
			out++
		}
	}
	if dlq != 2 || out != 1 {
		t.Errorf("%d dead letters and %d outputs, want 2 and 1", dlq, out)
	}
}

// A commit that fails after the outputs were acknowledged, then a
// revocation: the final flush commits without producing them again.
func TestTaskRevokedDuringOutageProducesOnce(t *testing.T) {
	h := newHarness(t, false, 5, "10ms", memory.New())
	h.store.down.Store(true)
	h.send(0, 5, event)
	deadline := time.Now().Add(10 * time.Second)
	for h.w.stats.storeErrs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("commit never attempted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.store.down.Store(false)
	h.stop() // revoke while the commit is being retried
	if err := <-h.done; err != nil {
		t.Fatalf("task: %v", err)
	}
	h.done <- nil
	if got := h.prod.count(); got != 5 {
		t.Errorf("%d messages produced, want 5: acknowledged outputs must not be produced again", got)
	}
	if got := h.sess.lastMarkOr(-1); got != 5 {
		t.Errorf("final mark %d, want 5", got)
	}
}

// A store that lost acknowledged commits (W = 5) while Kafka's committed
// offset says 10: the task rewinds the group to 6 and ends the session
// rather than skip offsets 6..9.
func TestTaskRewindsWhenKafkaIsAheadOfTheStore(t *testing.T) {
	store := memory.New()
	part := statedb.Partition{Topic: "in"}
	c, _ := store.Acquire(context.Background(), part)
	if err := store.Commit(context.Background(), &statedb.Commit{Partition: part, Epoch: c.Epoch, Offset: 5}); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Parse("unit.yaml", fmt.Appendf(nil, testPipeline, false, 10, "10ms"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(p, WithStore(store), WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	sess := &fakeSession{ctx: context.Background()}
	claim := &fakeClaim{topic: "in", msgs: make(chan *sarama.ConsumerMessage), initial: 10}
	tk, err := newTask(&handler{w: w, producer: &fakeProducer{}, marked: make(chan struct{}, 1)}, sess, claim)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.run(); !errors.Is(err, errRewind) {
		t.Fatalf("run = %v, want errRewind", err)
	}
	if fmt.Sprint(sess.resets) != "[6]" || sess.commits == 0 {
		t.Errorf("resets %v, commits %d: want the group offset reset to 6 and committed", sess.resets, sess.commits)
	}
}

// The session ends while a batch waits for the store (a dedup lookup
// failing): the batch is not thrown away but finishes once the store
// answers again within flush.shutdown_timeout.
func TestTaskFinishesAStartedBatchAfterTheSessionEnds(t *testing.T) {
	h := newHarness(t, true, 5, "10ms", memory.New())
	h.store.down.Store(true)
	h.send(0, 5, event)
	deadline := time.Now().Add(10 * time.Second)
	for h.w.stats.storeErrs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the dedup lookup was never attempted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.stop() // the session ends mid-batch
	time.Sleep(100 * time.Millisecond)
	h.store.down.Store(false)
	if err := <-h.done; err != nil {
		t.Fatalf("task: %v", err)
	}
	h.done <- nil
	if got := h.prod.count(); got != 5 {
		t.Errorf("%d outputs, want 5: the started batch must be finished, not abandoned", got)
	}
	if got := h.sess.lastMarkOr(-1); got != 5 {
		t.Errorf("final mark %d, want 5", got)
	}
}

// TestTaskRefusesEventTimesThatWouldCorruptResults: an event more than
// source.watermark.max_future ahead of the clock, or outside the years an
// output can carry, is a poison event (dead-lettered, with the reason)
// and does not move the watermark: the events after it are not late.
func TestTaskRefusesEventTimesThatWouldCorruptResults(t *testing.T) {
	const yaml = `
name: skew
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_time: event.ts, watermark: {max_future: 1h}}
dead_letter: {topic: dlq}
flush: {max_messages: 1000, interval: 5ms, shutdown_timeout: 2s}
steps:
  - aggregate: {key: key, window: {tumbling: 1m}, values: {n: count()}, late: {topic: late}}
sink: {topic: out}
`
	h := newHarnessYAML(t, yaml, memory.New())
	now := time.Now().UnixMilli()
	for o, ts := range []int64{now, now + 2*int64(time.Hour/time.Millisecond), 253402300800000 /* year 10000 */, -62167219200001 /* before year 0 */, now + 1000} {
		h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: int64(o), Key: []byte("k"), Value: []byte(fmt.Sprintf(`{"ts":%d}`, ts))}
	}
	h.waitMarked(5)
	var dead []string
	late := 0
	h.prod.mu.Lock()
	for _, m := range h.prod.sent {
		switch m.Topic {
		case "dlq":
			for _, hd := range m.Headers {
				if string(hd.Key) == HeaderError {
					dead = append(dead, string(hd.Value))
				}
			}
		case "late":
			late++
		}
	}
	h.prod.mu.Unlock()
	if len(dead) != 3 || !strings.Contains(dead[0], "more than source.watermark.max_future (1h0m0s) ahead of the clock") ||
		!strings.Contains(dead[1], "outside the years 0000-9998") || !strings.Contains(dead[2], "outside the years 0000-9998") {
		t.Errorf("dead letters %q, want the future event and the two out of range", dead)
	}
	if late != 0 {
		t.Errorf("%d events late: a refused time moved the watermark", late)
	}
}
