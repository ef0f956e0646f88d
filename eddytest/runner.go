package eddytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/internal/kafkaread"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/route"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// Config says how a Runner runs its pipelines.
type Config struct {
	// Partitions is the partition count of every topic. Default 1: the
	// events are then processed in the order given (Run waits between
	// events of different topics until the first are processed).
	Partitions int
	// Live keeps the pipelines' timing as configured, for an interactive
	// run (worker dev): idle timeouts move event time with the wall clock
	// and batches are cut at flush.interval. By default (a test run) idle
	// timeouts are off and every message is a batch of its own, so that
	// results depend on the events alone (emit: on_update writes a result
	// per batch that changed a window: per event, then), and batches are
	// flushed every few milliseconds.
	Live bool
	// Logger receives the workers' logs. Default: none.
	Logger *zap.Logger
	// Options are given to every pipeline's worker (custom processors,
	// table sources), after the Runner's own (store, brokers, logger).
	Options []processor.Option
	// StageOptions, when set, gives more options for the worker of
	// pipelines[i] (an output hook on the last stage of a cascade).
	StageOptions func(i int, p *pipeline.Pipeline) []processor.Option
	// Schemas gives, per input topic read as avro, protobuf or
	// json_schema, the schema (its text) that events sent as JSON are
	// encoded with. Such pipelines use an in-process registry instead of
	// their schema_registry, and Read decodes such outputs to JSON.
	Schemas map[string]string
}

// Stage is one pipeline of a run, with its own memory store and worker.
type Stage struct {
	Pipeline *pipeline.Pipeline
	Store    *memory.Store
	Worker   *processor.Worker
	done     chan error
	running  bool
}

// Runner runs pipelines on an embedded Kafka-protocol broker (franz-go's
// kfake, spoken to over TCP by the workers' sarama clients like any
// broker) with memory state: the runtime that `worker run` uses, with
// nothing installed. Send puts events on the topics, Settle waits until
// everything sent has been processed and committed, End closes the input
// (every window closes), Read returns what the pipelines wrote.
type Runner struct {
	cfg      Config
	cluster  *kfake.Cluster
	client   sarama.Client
	admin    sarama.ClusterAdmin
	prod     sarama.SyncProducer
	stages   []*Stage
	registry *registry // nil unless a pipeline uses a registry format
	cancel   context.CancelFunc
	parts    int32
	lastTime time.Time // the time of events that give none

	mu      sync.Mutex
	scanned map[topicPart]*scan
	rr      map[string]int32 // round-robin position of keyless events, per topic
}

type topicPart struct {
	topic string
	part  int32
}

// scan is how far Settle has read a partition: up to pos, where the last
// data record (not a transaction marker) ended at end.
type scan struct{ pos, end int64 }

// DefaultTime is the record time of the first event that gives none; each
// later one without a time takes the previous event's. In a live run
// (Config.Live) an event without a time is stamped with the clock.
var DefaultTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Start creates the topics of the pipelines (a cascade, upstream first:
// each is its own consumer group with its own store), starts a worker for
// each and returns once every worker is a member of its group. For a
// test run (not cfg.Live) it works on copies of the pipelines with idle
// timeouts off, every source read from its start and short flush
// intervals: results that depend on the events only.
func Start(ctx context.Context, pipelines []*pipeline.Pipeline, cfg Config) (*Runner, error) {
	if len(pipelines) == 0 {
		return nil, errors.New("eddytest: no pipeline")
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	r := &Runner{cfg: cfg, parts: int32(cfg.Partitions), scanned: map[topicPart]*scan{}, rr: map[string]int32{}, lastTime: DefaultTime}
	names, groups := map[string]bool{}, map[string]bool{}
	for _, p := range pipelines {
		if !cfg.Live {
			p = bounded(p)
		}
		if names[p.Spec.Name] || groups[p.Spec.Kafka.Group] {
			return nil, fmt.Errorf("eddytest: %s: two pipelines named %q or sharing the group %q: each needs its own", p.File, p.Spec.Name, p.Spec.Kafka.Group)
		}
		names[p.Spec.Name], groups[p.Spec.Kafka.Group] = true, true
		r.stages = append(r.stages, &Stage{Pipeline: p, Store: memory.New(), done: make(chan error, 1)})
	}
	var err error
	if r.registry, err = newRegistry(pipelines, cfg.Schemas); err != nil {
		return nil, fmt.Errorf("eddytest: embedded schema registry: %w", err)
	}
	if r.registry != nil {
		for _, s := range r.stages {
			s.Pipeline = r.registry.pipeline(s.Pipeline)
		}
	}
	if r.cluster, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(r.parts, r.Topics()...)); err != nil {
		return nil, fmt.Errorf("eddytest: embedded broker: %w", err)
	}
	if err := r.connect(); err != nil {
		r.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	for i, s := range r.stages {
		opts := []processor.Option{processor.WithStore(s.Store), processor.WithBrokers(r.Brokers()...), processor.WithLogger(cfg.Logger)}
		if !cfg.Live {
			opts = append(opts, processor.WithCommitInterval(5*time.Millisecond), processor.WithRetryBackoff(100*time.Millisecond),
				processor.WithFetchWait(10*time.Millisecond))
		}
		opts = append(opts, cfg.Options...)
		if cfg.StageOptions != nil {
			opts = append(opts, cfg.StageOptions(i, s.Pipeline)...)
		}
		if s.Worker, err = processor.New(s.Pipeline, opts...); err != nil {
			r.Close()
			return nil, fmt.Errorf("%s: %w", s.Pipeline.File, err)
		}
	}
	for _, s := range r.stages {
		s.running = true
		go func() { s.done <- s.Worker.Run(runCtx) }()
	}
	if err := r.waitReady(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// bounded returns a copy of p for a test run: no idle timeout (event time
// moves with the events only), every input read from its start, one
// message per batch (an on_update aggregate emits once per batch that
// changed a window: batches cut by the clock would make the number of
// updates depend on timing), batches flushed every 5ms.
func bounded(p *pipeline.Pipeline) *pipeline.Pipeline {
	c := *p
	fix := func(s *pipeline.Source) {
		s.IdleTimeout = 0
		s.Start = pipeline.StartEarliest
	}
	fix(&c.Source)
	c.Spec.Flush.Interval = 5 * time.Millisecond
	c.Spec.Flush.MaxMessages, c.Spec.Flush.BacklogMessages = 1, 1
	c.Steps = slices.Clone(p.Steps)
	for i := range c.Steps {
		if j := c.Steps[i].Join; j != nil {
			jc := *j
			fix(&jc.With)
			c.Steps[i].Join = &jc
		}
	}
	return &c
}

func (r *Runner) connect() error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Metadata.Retry.Backoff = 20 * time.Millisecond
	var err error
	if r.client, err = sarama.NewClient(r.Brokers(), cfg); err != nil {
		return fmt.Errorf("eddytest: embedded broker: %w", err)
	}
	if r.admin, err = sarama.NewClusterAdminFromClient(r.client); err != nil {
		return fmt.Errorf("eddytest: embedded broker: %w", err)
	}
	if r.prod, err = sarama.NewSyncProducerFromClient(r.client); err != nil {
		return fmt.Errorf("eddytest: embedded broker: %w", err)
	}
	return nil
}

// waitReady waits until every worker is a member of its group (or one
// stopped).
func (r *Runner) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return poll(ctx, func() (bool, error) {
		ready := true
		for _, s := range r.stages {
			if err := s.stopped(); err != nil {
				return false, err
			}
			ready = ready && s.Worker.Ready()
		}
		return ready, nil
	}, "the workers to join their groups")
}

// stopped returns the error of a worker that ended before Close, or nil.
func (s *Stage) stopped() error {
	select {
	case err := <-s.done:
		s.done <- err // for Close
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("%s: the worker stopped: %w", s.Pipeline.File, err)
	default:
		return nil
	}
}

// Brokers returns the embedded broker's addresses.
func (r *Runner) Brokers() []string { return r.cluster.ListenAddrs() }

// Stages returns the run's pipelines, stores and workers, in order.
func (r *Runner) Stages() []*Stage { return r.stages }

// Topics lists every topic the pipelines read or write, internal ones
// included, each once.
func (r *Runner) Topics() []string {
	var out []string
	for _, s := range r.stages {
		for _, t := range s.Pipeline.Topics() {
			out = appendNew(out, t)
		}
		for _, u := range s.Pipeline.Outputs() {
			out = appendNew(out, u.Topic)
		}
	}
	return out
}

func appendNew(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// Send produces events, in order, each to its partition: the one it
// names, else its key's (murmur2, as Kafka's producers and eddy's sinks
// place keys), else the next in turn. An event without a topic goes to
// the first pipeline's first source topic.
func (r *Runner) Send(evs ...Event) error { return r.send(0, evs) }

// send sends evs, which follow skip events in the caller's list (errors
// number them in that list), in batches of up to 1000 records.
func (r *Runner) send(skip int, evs []Event) error {
	for done := 0; done < len(evs); {
		n := min(len(evs)-done, 1000)
		msgs := make([]*sarama.ProducerMessage, n)
		for i, ev := range evs[done : done+n] {
			m, err := r.message(ev)
			if err != nil {
				return fmt.Errorf("event %d: %w", skip+done+i+1, err)
			}
			msgs[i] = m
		}
		if err := r.prod.SendMessages(msgs); err != nil {
			return fmt.Errorf("events %d-%d: producing: %w", skip+done+1, skip+done+n, err)
		}
		done += n
	}
	return nil
}

// topic returns the topic ev goes to.
func (r *Runner) topic(ev Event) string {
	if ev.Topic == "" {
		return r.stages[0].Pipeline.Source.Topics[0]
	}
	return ev.Topic
}

func (r *Runner) message(ev Event) (*sarama.ProducerMessage, error) {
	topic := r.topic(ev)
	if !slices.Contains(r.inputs(), topic) {
		return nil, fmt.Errorf("topic %q is not one the pipelines read (%v)", topic, r.inputs())
	}
	m := &sarama.ProducerMessage{Topic: topic}
	switch {
	case ev.Partition != nil:
		if *ev.Partition < 0 || *ev.Partition >= r.parts {
			return nil, fmt.Errorf("partition %d: the topics have %d", *ev.Partition, r.parts)
		}
		m.Partition = *ev.Partition
	case ev.Key != "":
		m.Partition = route.HashPartition([]byte(ev.Key), r.parts)
	default:
		r.mu.Lock()
		m.Partition = r.rr[topic] % r.parts
		r.rr[topic]++
		r.mu.Unlock()
	}
	if ev.Key != "" {
		m.Key = sarama.StringEncoder(ev.Key)
	}
	if ev.Value != nil {
		v, err := r.registry.encode(topic, ev.Value)
		if err != nil {
			return nil, err
		}
		m.Value = sarama.ByteEncoder(v)
	}
	switch {
	case !ev.Time.IsZero():
		r.lastTime = ev.Time
	case r.cfg.Live:
		r.lastTime = time.Now()
	}
	m.Timestamp = r.lastTime
	names := make([]string, 0, len(ev.Headers))
	for k := range ev.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(ev.Headers[k])})
	}
	return m, nil
}

// inputs lists the topics events may be sent to.
func (r *Runner) inputs() []string {
	var out []string
	for _, s := range r.stages {
		for _, u := range s.Pipeline.Inputs() {
			out = appendNew(out, u.Topic)
		}
	}
	return out
}

// Settle waits until every record on every topic a pipeline reads has
// been processed and committed by its worker (the group's committed
// offset is past the partition's last record), so that everything those
// records produce is on the output topics. It does not wait for what only
// time would produce (an idle timeout): End does that for the end of the
// input.
func (r *Runner) Settle(ctx context.Context) error {
	return poll(ctx, r.settled, "every record to be processed")
}

func (r *Runner) settled() (bool, error) {
	// The committed offsets first: the records they cover were processed
	// and their outputs were committed before, so the scan that follows
	// sees those outputs.
	committed := make([]map[string]map[int32]int64, len(r.stages))
	for i, s := range r.stages {
		if err := s.stopped(); err != nil {
			return false, err
		}
		topics := map[string][]int32{}
		for _, t := range s.Pipeline.Topics() {
			topics[t] = r.partitionList()
		}
		resp, err := r.admin.ListConsumerGroupOffsets(s.Pipeline.Spec.Kafka.Group, topics)
		if err != nil {
			return false, nil // the group is rebalancing: ask again
		}
		committed[i] = map[string]map[int32]int64{}
		for t, blocks := range resp.Blocks {
			committed[i][t] = map[int32]int64{}
			for p, b := range blocks {
				committed[i][t][p] = b.Offset
			}
		}
	}
	for i, s := range r.stages {
		for _, t := range s.Pipeline.Topics() {
			for _, p := range r.partitionList() {
				end, err := r.lastRecordEnd(t, p)
				if err != nil {
					return false, err
				}
				if end > 0 && committed[i][t][p] < end {
					return false, nil
				}
			}
		}
	}
	return true, nil
}

func (r *Runner) partitionList() []int32 {
	out := make([]int32, r.parts)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// lastRecordEnd returns the offset after the last committed data record
// of topic/p (0 if it has none): transaction markers take offsets too,
// and a consumer's committed offset stops before them.
func (r *Runner) lastRecordEnd(topic string, p int32) (int64, error) {
	r.mu.Lock()
	sc := r.scanned[topicPart{topic, p}]
	if sc == nil {
		sc = &scan{}
		r.scanned[topicPart{topic, p}] = sc
	}
	r.mu.Unlock()
	lso, err := kafkaread.LastStableOffset(r.client, topic, p)
	if err != nil {
		return 0, fmt.Errorf("eddytest: the end of %s/%d: %w", topic, p, err)
	}
	if lso <= sc.pos {
		return sc.end, nil
	}
	msgs, err := kafkaread.Committed(r.client, topic, p, sc.pos, lso, time.Now().Add(30*time.Second))
	if err != nil {
		return 0, fmt.Errorf("eddytest: %w", err)
	}
	if len(msgs) > 0 {
		sc.end = msgs[len(msgs)-1].Offset + 1
	}
	sc.pos = lso
	return sc.end, nil
}

// End closes the input, pipeline by pipeline (upstream first in a
// cascade): it waits until everything sent is processed, then moves each
// pipeline's event time to its end (processor.Worker.EndOfInput), so
// every window, session and join interval closes, and waits until what
// that produced is processed downstream too.
func (r *Runner) End(ctx context.Context) error {
	if err := r.Settle(ctx); err != nil {
		return err
	}
	for _, s := range r.stages {
		s.Worker.EndOfInput()
		err := poll(ctx, func() (bool, error) {
			if err := s.stopped(); err != nil {
				return false, err
			}
			return s.Worker.InputEndFlushed() && s.Worker.Stats().Partitions > 0, nil
		}, s.Pipeline.Spec.Name+"'s end of input")
		if err != nil {
			return err
		}
		if err := r.Settle(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Read returns what the pipelines wrote: every record a read_committed
// consumer of their output topics is given, in partition and offset
// order, sorted into the final outputs, dead letters and late events.
func (r *Runner) Read(ctx context.Context) (*Result, error) {
	res := &Result{Topics: map[string][]Record{}}
	read := map[string]bool{}
	for _, s := range r.stages {
		for _, t := range s.Pipeline.Topics() {
			read[t] = true
		}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	for _, s := range r.stages {
		for _, u := range s.Pipeline.Outputs() {
			if _, done := res.Topics[u.Topic]; done {
				continue
			}
			recs, err := r.readTopic(u.Topic, deadline)
			if err != nil {
				return nil, err
			}
			res.Topics[u.Topic] = recs
			switch {
			case u.Field == "dead_letter.topic":
				res.DeadLetters = append(res.DeadLetters, recs...)
			case u.Side:
				res.Late = append(res.Late, recs...)
			case !read[u.Topic]: // not another stage's input
				res.Outputs = append(res.Outputs, recs...)
			}
		}
	}
	for _, s := range r.stages {
		res.Stats = append(res.Stats, s.Worker.Stats())
	}
	return res, nil
}

func (r *Runner) readTopic(topic string, deadline time.Time) ([]Record, error) {
	var out []Record
	for _, p := range r.partitionList() {
		lso, err := kafkaread.LastStableOffset(r.client, topic, p)
		if err != nil {
			return nil, fmt.Errorf("eddytest: the end of %s/%d: %w", topic, p, err)
		}
		msgs, err := kafkaread.Committed(r.client, topic, p, 0, lso, deadline)
		if err != nil {
			return nil, fmt.Errorf("eddytest: %w", err)
		}
		for _, m := range msgs {
			rec := recordOf(m)
			r.registry.decode(&rec)
			out = append(out, rec)
		}
	}
	return out, nil
}

// Wait returns when ctx ends (nil) or a worker stops before Close (its
// error).
func (r *Runner) Wait(ctx context.Context) error {
	err := poll(ctx, func() (bool, error) {
		for _, s := range r.stages {
			if err := s.stopped(); err != nil {
				return false, err
			}
		}
		return false, nil
	}, "")
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Tail calls f with every record committed to topics, from their start,
// as it arrives, until ctx ends. Records of one partition come in order.
func (r *Runner) Tail(ctx context.Context, topics []string, f func(Record)) {
	pos := map[topicPart]int64{}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, t := range topics {
			for _, p := range r.partitionList() {
				tp := topicPart{t, p}
				lso, err := kafkaread.LastStableOffset(r.client, t, p)
				if err != nil || lso <= pos[tp] {
					continue
				}
				msgs, err := kafkaread.Committed(r.client, t, p, pos[tp], lso, time.Now().Add(10*time.Second))
				if err != nil {
					continue
				}
				pos[tp] = lso
				for _, m := range msgs {
					f(recordOf(m))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Close stops the workers (each flushes and leaves its group), then the
// broker, and returns the workers' errors.
func (r *Runner) Close() error {
	if r.cancel != nil {
		r.cancel()
	}
	var errs []error
	for _, s := range r.stages {
		if s.running {
			if err := <-s.done; err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.Pipeline.File, err))
			}
		}
		s.Store.Close()
	}
	if r.prod != nil {
		_ = r.prod.Close()
	}
	if r.admin != nil {
		_ = r.admin.Close() // closes the client
	} else if r.client != nil {
		_ = r.client.Close()
	}
	if r.cluster != nil {
		r.cluster.Close()
	}
	r.registry.close()
	return errors.Join(errs...)
}

// poll calls f every 5ms until it reports done, fails, or ctx ends.
func poll(ctx context.Context, f func() (bool, error), what string) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("eddytest: waiting for %s: %w", what, context.Cause(ctx))
		case <-tick.C:
		}
	}
}
