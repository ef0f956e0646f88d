package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/internal/kafkaconf"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/backends"
	"github.com/eddy-streams/eddy/windows"
)

// Worker runs one pipeline as a member of its Kafka consumer group: one
// partition task per claimed partition, each owning that partition's state
// and flushing it through the flush protocol (see the package doc).
//
// A Worker is started once with Run. Stats and Ready are safe to call from
// any goroutine.
type Worker struct {
	p     *pipeline.Pipeline
	o     options
	log   *zap.Logger
	group string

	stats     counters
	flushHist prometheus.Histogram
	ready     atomic.Bool
	mu        sync.Mutex
	tasks     map[statedb.Partition]*task
	running   atomic.Bool
	// stages are the pipeline's sub-topologies (pipeline.Stages): one
	// for a pipeline without repartition steps.
	stages []pipeline.Stage
	// stop ends Run with an error that no rejoin can cure (see refuse).
	stop context.CancelCauseFunc
	// inputEnded is set by EndOfInput.
	inputEnded atomic.Bool
	// client is Run's Kafka client (its metadata), once connected; reader
	// the StateReader built on it and the store.
	client   atomic.Pointer[sarama.Client]
	readerMu sync.Mutex
	reader   *StateReader
	// store is o.store for Health, which may run while Run sets o.store:
	// set by New when WithStore gave it, by Run when it opened the
	// pipeline's.
	store atomic.Pointer[statedb.Store]
	// codecs reads and writes the schema registry's formats; nil when
	// the pipeline uses none.
	codecs *valueCodecs
}

// New checks the options against the pipeline and returns a Worker. It
// connects to nothing: Run does.
func New(p *pipeline.Pipeline, opts ...Option) (*Worker, error) {
	if p == nil {
		return nil, errors.New("processor: nil pipeline")
	}
	o := defaultOptions()
	o.brokers = p.Spec.Kafka.Brokers
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := checkProcessors(p, o.factories); err != nil {
		return nil, err
	}
	// Build every step once, so that a bad custom processor config fails at
	// start-up, not on the first claimed partition.
	if _, err := buildOps(p, o.factories); err != nil {
		return nil, err
	}
	codecs, err := newValueCodecs(p)
	if err != nil {
		return nil, err
	}
	for i, tb := range p.Tables {
		if tb.External != nil && o.tables[tb.Name] == nil {
			return nil, fmt.Errorf("processor: tables[%d] (%s) is kept in redis or sql: give its source with WithTableSource", i, tb.Name)
		}
	}
	group := o.group
	if group == "" {
		group = p.Spec.Kafka.Group
	}
	if group == "" {
		group = "eddy-" + p.Spec.Name
	}
	if o.instanceID == "" {
		o.instanceID = p.Spec.Kafka.InstanceID
	}
	w := &Worker{
		p:      p,
		o:      o,
		codecs: codecs,
		log:    o.log.With(zap.String("pipeline", p.Spec.Name)),
		group:  group,
		tasks:  map[statedb.Partition]*task{},

		stages: p.Stages(),

		flushHist: newFlushHistogram(p.Spec.Name),
	}
	if o.store != nil {
		w.store.Store(&o.store)
		if b := p.Spec.State.Backend; b == pipeline.BackendRedis || b == pipeline.BackendSingleStore {
			w.log.Warn(fmt.Sprintf("state: the pipeline names %s; WithStore overrides it with %T", b, o.store))
		}
	}
	return w, nil
}

// StateReader returns a reader of the state the worker's partitions
// committed, on its store and its Kafka client's metadata (partition
// counts), for queries while it runs; an error before Run has opened the
// store and connected, or after it returned.
func (w *Worker) StateReader() (*StateReader, error) {
	s, c := w.store.Load(), w.client.Load()
	if s == nil || c == nil {
		return nil, errors.New("processor: the worker is not running (no store or Kafka client yet)")
	}
	w.readerMu.Lock()
	defer w.readerMu.Unlock()
	if w.reader == nil {
		r, err := NewStateReader(w.p, *s, func(_ context.Context, topic string) (int32, error) {
			c := w.client.Load()
			if c == nil {
				return 0, errors.New("processor: the worker stopped")
			}
			ps, err := (*c).Partitions(topic)
			return int32(len(ps)), err
		})
		if err != nil {
			return nil, err
		}
		w.reader = r
	}
	return w.reader, nil
}

// openStore opens the store the pipeline's state section names, when
// WithStore gave none, and returns the function that closes it.
func (w *Worker) openStore(ctx context.Context) (func(), error) {
	if w.o.store != nil {
		return func() {}, nil
	}
	s, err := backends.Open(ctx, w.p, w.log)
	if err != nil {
		return nil, fmt.Errorf("processor: %w", err)
	}
	w.o.store = s
	w.store.Store(&s)
	return func() {
		if err := s.Close(); err != nil {
			w.log.Warn("closing the state store", zap.Error(err))
		}
	}, nil
}

// refuse ends Run with err: the worker cannot work on what the store holds
// (see task.checkLayout), and every partition would refuse it alike.
func (w *Worker) refuse(err error) {
	if w.stop != nil {
		w.stop(err)
	}
}

// Group returns the consumer group id the Worker joins.
func (w *Worker) Group() string { return w.group }

// Ready reports whether the Worker is a member of its group with a live
// session.
func (w *Worker) Ready() bool { return w.ready.Load() }

// endOfTime is where EndOfInput moves event time: beyond every event time
// a source accepts (windows.MaxTime bounds them, max_future and the year
// range far more), and far enough below the int64 limit that a window's
// end plus any grace never overflows.
const endOfTime = windows.MaxTime / 2

// EndOfInput says that the worker's inputs are finished, for a bounded
// run (worker test, worker dev on a file): on its next tick, every source
// partition's watermark jumps to the end of time, as a bounded stream's
// does at its end, so that every window, session and join interval closes
// and its results, unmatched join rows included, are emitted; downstream
// stages follow through the watermark markers. Events read after it are
// late. Call it once every event has been processed (the group's committed
// offsets are at the end of every input); it returns at once, and
// InputEndFlushed reports when it took effect.
func (w *Worker) EndOfInput() { w.inputEnded.Store(true) }

// InputEndFlushed reports whether, since EndOfInput, every partition of a
// source topic that the worker claims has flushed the effects of the end
// of its input (closed windows, markers): the downstream stages may still
// be processing them, as the group's committed offsets tell.
func (w *Worker) InputEndFlushed() bool {
	if !w.inputEnded.Load() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.tasks {
		if t.up == nil && !t.endFlushed.Load() {
			return false
		}
	}
	return true
}

// Run joins the consumer group and processes until ctx ends, then flushes
// every partition (within flush.shutdown_timeout), commits, leaves the
// group and returns nil. It returns an error only when it cannot start
// (bad brokers, unreachable cluster, a state store it cannot open) or the
// group fails for good.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("processor: Run called twice")
	}
	ctx, w.stop = context.WithCancelCause(ctx)
	defer w.stop(nil)
	cfg, err := w.saramaConfig()
	if err != nil {
		return err
	}
	// Closed last: after the group is left and every task has ended.
	closeStore, err := w.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	// The consumer group and the producer get a client each: on a shared
	// client they share each broker's connection, and a produce (or an
	// offset commit) waits behind the consumer's long-polling fetch, up to
	// Consumer.MaxWaitTime per flush.
	client, err := sarama.NewClient(w.o.brokers, cfg)
	if err != nil {
		return fmt.Errorf("processor: connect to kafka %v: %w", w.o.brokers, err)
	}
	defer client.Close()
	if err := w.checkTopics(client); err != nil {
		return err
	}
	if err := w.createInternal(client); err != nil {
		return err
	}
	if err := w.codecs.prepare(ctx, w.p, w.log); err != nil {
		return err
	}
	w.client.Store(&client)
	defer w.client.Store(nil)
	h := &handler{w: w, client: client}
	if w.p.Spec.Kafka.TransactionsOn() {
		// One transactional producer per partition task (txn.go).
		h.newTxn = w.newTxnFactory(cfg)
	} else {
		producer, err := sarama.NewSyncProducer(w.o.brokers, cfg)
		if err != nil {
			return fmt.Errorf("processor: producer: %w", err)
		}
		defer producer.Close()
		h.producer = producer
	}
	group, err := sarama.NewConsumerGroupFromClient(w.group, client)
	if err != nil {
		return fmt.Errorf("processor: consumer group %q: %w", w.group, err)
	}
	// Close leaves the group: after the handler's final flushes, so that
	// the partitions move only once their state is persisted.
	defer func() {
		if err := group.Close(); err != nil {
			w.log.Warn("leaving the consumer group", zap.Error(err))
		}
	}()

	go func() {
		for err := range group.Errors() {
			w.log.Warn("consumer group", zap.Error(err))
		}
	}()

	w.log.Info("worker started", zap.String("group", w.group),
		zap.Strings("topics", w.topics()), zap.Strings("brokers", w.o.brokers))
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := group.Consume(ctx, w.topics(), h)
		if err == nil || ctx.Err() != nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return err
		}
		w.log.Warn("consumer group session failed; rejoining", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, w.o.retryMax)
	}
	w.ready.Store(false)
	if err := context.Cause(ctx); errors.Is(err, errOldLayout) {
		w.log.Error("worker refused the stored state", zap.Error(err))
		return err
	}
	w.log.Info("worker stopped", zap.Uint64("events_in", w.stats.in.Load()), zap.Uint64("events_out", w.stats.out.Load()))
	return nil
}

// stageOf is the stage that reads topic: stage 0 for a source topic, a
// join's input stage for its other input's topics, the stage after a
// repartition or join for its internal topic.
func (w *Worker) stageOf(topic string) pipeline.Stage {
	for _, s := range w.stages {
		if slices.Contains(s.Topics, topic) {
			return s
		}
	}
	return w.stages[0]
}

// topics are the topics the worker consumes: the source topics and every
// repartition's internal topic.
func (w *Worker) topics() []string { return w.p.Topics() }

// createInternal creates the internal topics that do not exist yet, with
// the repartition's partitions (default: the source topics' partition
// count, all together) and the broker's default replication factor. An
// existing one must have the partitions the step asks for.
func (w *Worker) createInternal(client sarama.Client) error {
	if len(w.stages) == 1 {
		return nil
	}
	srcParts, err := w.sourcePartitions(client)
	if err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("processor: kafka admin: %w", err)
	}
	// Not admin.Close: it would close the worker's client.
	done := map[string]bool{} // both inputs of a join route into one topic
	for _, s := range w.stages {
		r := s.Repartition
		if r == nil || done[r.Topic] {
			continue
		}
		done[r.Topic] = true
		want := r.Partitions
		if want == 0 {
			want = srcParts
		}
		ps, err := client.Partitions(r.Topic)
		if err == nil {
			if r.Partitions > 0 && len(ps) != r.Partitions {
				return fmt.Errorf("processor: %s: internal topic %s has %d partitions, the step asks for %d",
					r.Name, r.Topic, len(ps), r.Partitions)
			}
			continue
		}
		err = admin.CreateTopic(r.Topic, &sarama.TopicDetail{NumPartitions: int32(want), ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("processor: %s: creating internal topic %s: %w", r.Name, r.Topic, err)
		}
		w.log.Info("internal topic created", zap.String("topic", r.Topic), zap.Int("partitions", want))
		if err := waitPartitions(client, r.Topic, want); err != nil {
			return fmt.Errorf("processor: %s: %w", r.Name, err)
		}
	}
	return nil
}

// waitPartitions waits until the metadata shows topic with n partitions,
// each with a leader.
func waitPartitions(client sarama.Client, topic string, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := client.RefreshMetadata(topic); err == nil {
			if ps, err := client.Partitions(topic); err == nil && len(ps) == n {
				ok := true
				for _, p := range ps {
					if _, err := client.Leader(topic, p); err != nil {
						ok = false
						break
					}
				}
				if ok {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: not ready with %d partitions after 30s", topic, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (w *Worker) checkTopics(client sarama.Client) error {
	topics, err := client.Topics()
	if err != nil {
		return fmt.Errorf("processor: list topics: %w", err)
	}
	have := map[string]bool{}
	for _, t := range topics {
		have[t] = true
	}
	for _, in := range w.p.Inputs() {
		if !have[in.Topic] {
			return fmt.Errorf("processor: %s: topic %q does not exist on the cluster: the pipeline reads it; create it (worker topics create -c %s creates what the pipeline needs)",
				in.Field, in.Topic, w.p.File)
		}
	}
	var missing []pipeline.TopicUse
	for _, out := range w.p.Outputs() {
		if !have[out.Topic] {
			missing = append(missing, out)
			have[out.Topic] = true // named once
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !w.p.Spec.Kafka.CreateTopics {
		m := missing[0]
		return fmt.Errorf("processor: %s: topic %q does not exist on the cluster, and a record produced to it would pause its partition: create it (worker topics create -c %s), or set kafka.create_topics: true",
			m.Field, m.Topic, w.p.File)
	}
	parts, err := w.sourcePartitions(client)
	if err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("processor: kafka admin: %w", err)
	}
	// Not admin.Close: it would close the worker's client.
	for _, m := range missing {
		err := admin.CreateTopic(m.Topic, &sarama.TopicDetail{NumPartitions: int32(parts), ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("processor: %s: creating topic %q (kafka.create_topics): %w", m.Field, m.Topic, err)
		}
		w.log.Info("topic created (kafka.create_topics)", zap.String("topic", m.Topic), zap.String("field", m.Field), zap.Int("partitions", parts))
		if err := waitPartitions(client, m.Topic, parts); err != nil {
			return fmt.Errorf("processor: %s: %w", m.Field, err)
		}
	}
	return nil
}

// sourcePartitions is the source topics' partition count, all together:
// the default of internal and created topics.
func (w *Worker) sourcePartitions(client sarama.Client) (int, error) {
	n := 0
	for _, t := range w.p.Spec.Source.Topics {
		ps, err := client.Partitions(t)
		if err != nil {
			return 0, fmt.Errorf("processor: partitions of %s: %w", t, err)
		}
		n += len(ps)
	}
	return n, nil
}

// saramaConfig is the configuration of the Worker's clients: kafkaconf's
// base (version, client id, SASL, TLS), plus the consumer group and
// producer settings of the flush protocol. It holds the SASL password:
// never log it.
func (w *Worker) saramaConfig() (*sarama.Config, error) {
	s := w.p.Spec
	cfg, err := kafkaconf.New(&s.Kafka)
	if err != nil {
		return nil, fmt.Errorf("processor: %w", err)
	}
	switch s.Kafka.Balance {
	case "", "sticky":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	case "cooperative-sticky":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	case "range":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	case "roundrobin":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	default:
		return nil, fmt.Errorf("processor: kafka.balance: unknown strategy %q", s.Kafka.Balance)
	}
	cfg.Consumer.Group.InstanceId = w.o.instanceID
	cfg.Consumer.Group.Session.Timeout = s.Kafka.SessionTimeout
	cfg.Consumer.Group.Heartbeat.Interval = s.Kafka.SessionTimeout / 3
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	if w.o.fetchWait > 0 {
		cfg.Consumer.MaxWaitTime = w.o.fetchWait
	}
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	if w.p.Source.Start == pipeline.StartLatest {
		cfg.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	cfg.Consumer.Return.Errors = true
	// Read only committed records: a transactional upstream (another eddy
	// pipeline) publishes aborted records too.
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.ChannelBufferSize = max(256, s.Flush.MaxMessages)
	// A flush may run for a while (an outage pauses the task); the claim
	// must not be taken away for being slow to read.
	cfg.Consumer.MaxProcessingTime = time.Second

	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Partitioner = w.partitioner()
	return cfg, cfg.Validate()
}
