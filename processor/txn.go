package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/statedb"
)

// Output fencing (kafka.transactions, the default).
//
// Every partition task produces through its own transactional producer,
// whose transactional.id is derived from the group, the topic and the
// partition only (txnID). Creating it runs InitProducerID, which makes the
// broker bump the id's producer epoch: any earlier producer with the same
// id — a frozen former owner of the partition — is fenced, and its next
// transaction fails with PRODUCER_FENCED. The task initialises its producer
// BEFORE it acquires the store epoch: once the new owner holds the store,
// the old owner can neither commit state (store fence) nor publish outputs
// (producer fence).
//
// Step (a) of the flush is one transaction: BeginTxn, produce the buffered
// outputs and dead letters, CommitTxn. Then (b) the store commit, then (c)
// the offset mark. A crash between (a) and (b) replays the batch, whose
// outputs have the same IDs, in a new transaction: still at least once, with
// stable IDs. A produce or commit error aborts the transaction (none of its
// records becomes visible to read_committed consumers) and the whole buffer
// is retried by the flush's retry loop; a fenced producer ends the task
// like a store fence.

// txnID is the transactional.id of a partition task's producer. It must be
// the same for every owner of the partition, in every process: that is what
// lets the next owner fence the previous one.
func txnID(group string, p statedb.Partition) string {
	return fmt.Sprintf("eddy-%s-%s-%d", group, p.Topic, p.Partition)
}

// txnProducerFactory makes the transactional producer of a partition. The
// returned producer is initialised (InitProducerID done).
type txnProducerFactory func(p statedb.Partition) (sarama.SyncProducer, error)

// newTxnFactory returns the factory of the Worker's transactional producers:
// the Worker's producer settings with the partition's transactional.id.
// Each producer has its own client: one connection to each broker that
// leads a partition it writes to, plus the transaction coordinator's.
func (w *Worker) newTxnFactory(cfg *sarama.Config) txnProducerFactory {
	return func(p statedb.Partition) (sarama.SyncProducer, error) {
		c := *cfg
		c.Producer.Transaction.ID = txnID(w.group, p)
		return sarama.NewSyncProducer(w.o.brokers, &c)
	}
}

// startTxn creates and initialises the task's transactional producer, if
// transactions are on, retrying while the cluster cannot do it (the
// transaction coordinator is loading, say). It runs before acquire.
func (t *task) startTxn(ctx context.Context) error {
	if t.h.newTxn == nil {
		return nil
	}
	return t.retry(ctx, "transactional producer init", func(context.Context) error {
		p, err := t.h.newTxn(t.part)
		if err != nil {
			return err
		}
		t.tx = p
		return nil
	})
}

// closeTxn closes the task's transactional producer when the task ends.
func (t *task) closeTxn() {
	if t.tx == nil {
		return
	}
	if err := t.tx.Close(); err != nil {
		t.log.Debug("closing the transactional producer", zap.Error(err))
	}
	t.tx = nil
}

// produceTxn produces the buffered messages in one transaction. On any
// error the transaction is aborted and t.out is kept whole for the retry
// (an aborted transaction's records are never visible to read_committed
// consumers). After a record batch was refused as too large (isolate),
// each record goes in a transaction of its own instead, and a retry
// resends only the records not committed yet (see produceEach). A fenced
// producer returns an error wrapping errFenced.
func (t *task) produceTxn() error {
	p := t.tx
	if p.TxnStatus()&sarama.ProducerTxnFlagAbortableError != 0 {
		// A previous attempt's abort failed: finish it first.
		if err := p.AbortTxn(); err != nil {
			return t.txnErr("abort", err)
		}
	}
	if t.isolate {
		// One transaction per record: a record refused as too large
		// aborts only its own, and is rerouted in the next (a
		// transaction a send failed in cannot be committed).
		return t.produceEach(func(m *sarama.ProducerMessage) error {
			if err := p.BeginTxn(); err != nil {
				return t.txnErr("begin", err)
			}
			if _, _, err := p.SendMessage(m); err != nil {
				if aerr := t.abortTxn("produce", err); errors.Is(aerr, errFenced) {
					return aerr
				}
				return err // as sent: produceEach reroutes a too large one
			}
			if err := p.CommitTxn(); err != nil {
				return t.abortTxn("commit", err)
			}
			return nil
		})
	}
	if err := p.BeginTxn(); err != nil {
		return t.txnErr("begin", err)
	}
	if err := p.SendMessages(t.out); err != nil {
		aerr := t.abortTxn("produce", err)
		if errors.Is(aerr, errFenced) {
			return aerr
		}
		if perr := t.route(err); perr != nil {
			return perr
		}
		return aerr // the whole buffer again, in a new transaction
	}
	if err := p.CommitTxn(); err != nil {
		return t.abortTxn("commit", err)
	}
	return nil
}

// abortTxn aborts the open transaction after err.
func (t *task) abortTxn(what string, err error) error {
	if fenced(t.tx, err) {
		return t.txnErr(what, err)
	}
	if aerr := t.tx.AbortTxn(); aerr != nil && fenced(t.tx, aerr) {
		return t.txnErr("abort", aerr)
	}
	return t.txnErr(what, err)
}

// txnErr names the failed transaction step; a fenced producer's error
// wraps errFenced, which ends the task.
func (t *task) txnErr(what string, err error) error {
	if fenced(t.tx, err) {
		return fmt.Errorf("transaction %s: producer %q fenced by a newer owner: %w: %w",
			what, txnID(t.w.group, t.part), errFenced, err)
	}
	return fmt.Errorf("transaction %s: %w", what, err)
}

// fenced reports whether err (or the producer's state) says that a newer
// producer with the same transactional.id exists, or that the producer is
// otherwise unusable for good (a fatal transaction error): either way the
// task must end and the next owner start afresh.
func fenced(p sarama.SyncProducer, err error) bool {
	if isFencedErr(err) {
		return true
	}
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) {
		for _, pe := range perrs {
			if isFencedErr(pe.Err) {
				return true
			}
		}
	}
	return p.TxnStatus()&sarama.ProducerTxnFlagFatalError != 0
}

func isFencedErr(err error) bool {
	return errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch)
}
