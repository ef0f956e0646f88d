package processor

import (
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// handler is the sarama ConsumerGroupHandler; it stays unexported so that
// users see eddy's types only. sarama calls ConsumeClaim on its own
// goroutine per claimed partition: that goroutine is the partition task.
type handler struct {
	w        *Worker
	producer sarama.SyncProducer // shared, idempotent; nil with transactions
	newTxn   txnProducerFactory  // per-partition transactional producers; nil without
	client   sarama.Client       // the consumer's, for partition counts; nil in unit tests

	mu     sync.Mutex
	stop   chan struct{}
	done   chan struct{}
	marked chan struct{}
}

// Setup starts the session's offset committer. Kafka commits run off the
// partition tasks' goroutines: a commit waits behind an in-flight fetch on
// the broker connection (up to Consumer.MaxWaitTime), which would stall a
// task that committed inline after every flush. The store holds the truth
// about progress; Kafka's committed offset only saves replay work.
func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.w.stats.rebalances.Add(1)
	h.w.ready.Store(true)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stop, h.done, h.marked = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	go h.commitLoop(sess, h.stop, h.done, h.marked)
	return nil
}

// Cleanup stops the committer after a final commit.
func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	stop, done := h.stop, h.done
	h.stop = nil
	h.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	sess.Commit()
	return nil
}

func (h *handler) commitLoop(sess sarama.ConsumerGroupSession, stop, done, marked chan struct{}) {
	defer close(done)
	tick := time.NewTicker(h.w.o.commitEvery)
	defer tick.Stop()
	pending := false
	for {
		select {
		case <-stop:
			return
		case <-marked:
			pending = true
		case <-tick.C:
			if pending {
				pending = false
				sess.Commit()
			}
		}
	}
}

// offsetMarked tells the committer that a task marked an offset.
func (h *handler) offsetMarked() {
	h.mu.Lock()
	marked := h.marked
	h.mu.Unlock()
	select {
	case marked <- struct{}{}:
	default:
	}
}

// ConsumeClaim runs the partition task for one claimed partition.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	t, err := newTask(h, sess, claim)
	if err != nil {
		return err
	}
	return t.run()
}
