package processor

import (
	"context"
	"errors"
	"fmt"
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

// fakeTxnProducer is a transactional producer: records sent in a
// transaction become visible (committed) only at CommitTxn; AbortTxn drops
// them. fail makes that many SendMessages calls fail after sending the
// first message of the batch (a partial failure); fenced makes every call
// fail with PRODUCER_FENCED.
type fakeTxnProducer struct {
	sarama.SyncProducer // unused methods panic
	mu                  sync.Mutex
	open                bool
	pending, committed  []*sarama.ProducerMessage
	aborts, inits       int
	fail                atomic.Int32
	fenced              atomic.Bool
	closed              atomic.Bool
}

func (p *fakeTxnProducer) TxnStatus() sarama.ProducerTxnStatusFlag {
	if p.fenced.Load() {
		return sarama.ProducerTxnFlagInError | sarama.ProducerTxnFlagFatalError
	}
	return sarama.ProducerTxnFlagReady
}

func (p *fakeTxnProducer) BeginTxn() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		return sarama.ErrTransactionNotReady
	}
	p.open = true
	return nil
}

func (p *fakeTxnProducer) SendMessages(ms []*sarama.ProducerMessage) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.open {
		return errors.New("send outside a transaction")
	}
	if p.fenced.Load() {
		return sarama.ErrProducerFenced
	}
	if p.fail.Load() > 0 {
		p.fail.Add(-1)
		p.pending = append(p.pending, ms[0])
		return sarama.ProducerErrors{{Msg: ms[len(ms)-1], Err: sarama.ErrNotEnoughReplicas}}
	}
	p.pending = append(p.pending, ms...)
	return nil
}

func (p *fakeTxnProducer) CommitTxn() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.committed = append(p.committed, p.pending...)
	p.pending, p.open = nil, false
	return nil
}

func (p *fakeTxnProducer) AbortTxn() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.aborts++
	p.pending, p.open = nil, false
	return nil
}

func (p *fakeTxnProducer) Close() error { p.closed.Store(true); return nil }

func (p *fakeTxnProducer) state() (committed, aborts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.committed), p.aborts
}

// newTxnHarness runs a task of protoPipeline whose outputs go through prod
// as its transactional producer.
func newTxnHarness(t *testing.T, prod *fakeTxnProducer) *harness {
	t.Helper()
	p, err := pipeline.Parse("unit.yaml", fmt.Appendf(nil, protoPipeline, false))
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{Store: memory.New()}
	w, err := New(p, WithStore(fs), WithLogger(zaptest.NewLogger(t)), WithRetryBackoff(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, w: w, sess: &fakeSession{ctx: ctx}, claim: &fakeClaim{topic: "in", msgs: make(chan *sarama.ConsumerMessage, 1000)},
		store: fs, stop: cancel, done: make(chan error, 1)}
	hd := &handler{w: w, marked: make(chan struct{}, 1), newTxn: func(part statedb.Partition) (sarama.SyncProducer, error) {
		prod.mu.Lock()
		prod.inits++
		prod.mu.Unlock()
		if got, want := txnID(w.group, part), "eddy-eddy-unit-in-0"; got != want {
			t.Errorf("transactional.id %q, want %q", got, want)
		}
		return prod, nil
	}}
	tk, err := newTask(hd, h.sess, h.claim)
	if err != nil {
		t.Fatal(err)
	}
	go func() { h.done <- tk.run() }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

// A produce that fails partway (one record acknowledged, one failed) aborts
// the transaction: nothing of it is committed to Kafka or to the store, and
// the retry produces the whole buffer in a new transaction, once.
func TestTxnProduceErrorAbortsAndRetriesTheWholeBuffer(t *testing.T) {
	prod := &fakeTxnProducer{}
	prod.fail.Store(3)
	h := newTxnHarness(t, prod)
	h.send(0, 5, event)
	h.waitMarked(5)
	committed, aborts := prod.state()
	if committed != 5 {
		t.Errorf("%d records committed in transactions, want exactly the 5 outputs", committed)
	}
	if aborts != 3 {
		t.Errorf("%d aborted transactions, want 3 (one per failed produce)", aborts)
	}
	if n := h.store.commits.Load(); n != 1 {
		t.Errorf("%d store commits, want 1 (after the transaction)", n)
	}
}

// A fenced producer (a newer owner initialised the same transactional.id)
// ends the task like a store fence: no store commit, no mark, producer
// closed.
func TestTxnFencedProducerEndsTheTask(t *testing.T) {
	prod := &fakeTxnProducer{}
	prod.fenced.Store(true)
	h := newTxnHarness(t, prod)
	h.send(0, 5, event)
	select {
	case err := <-h.done:
		if !errors.Is(err, errFenced) {
			t.Fatalf("task ended with %v, want errFenced", err)
		}
		h.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("a task with a fenced producer did not stop")
	}
	if n := h.store.commits.Load(); n != 0 {
		t.Errorf("%d store commits by a fenced task", n)
	}
	if m := h.sess.lastMarkOr(-1); m != -1 {
		t.Errorf("offset %d marked by a fenced task", m)
	}
	if c, _ := prod.state(); c != 0 {
		t.Errorf("%d records committed by a fenced producer", c)
	}
	if !prod.closed.Load() {
		t.Error("the fenced task's producer was not closed")
	}
	if h.w.stats.fenced.Load() != 1 {
		t.Error("fenced task not counted")
	}
}
