package processor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/dedup"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/route"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/windows"
)

// errFenced ends a task whose partition was acquired by a newer owner.
var errFenced = errors.New("processor: fenced")

// errBroken ends a task whose batch failed midway.
var errBroken = errors.New("processor: batch abandoned midway")

// task is the partition task: the only goroutine that touches its
// partition's state. It runs the flush protocol:
//
//  1. claim: Acquire bumps the epoch and returns the offset watermark W;
//     messages at or below W are already applied and are skipped;
//  2. process a batch: decode, event ID, dedup, steps; state changes go to
//     the cache, outputs to a buffer;
//  3. flush: (a) produce the outputs and wait for their acks (one Kafka
//     transaction with kafka.transactions, see txn.go), (b) commit
//     state + event IDs + new W in one atomic, epoch-fenced store write,
//     (c) mark the Kafka offset (committed by the session's committer).
type task struct {
	w     *Worker
	h     *handler
	sess  sarama.ConsumerGroupSession
	claim sarama.ConsumerGroupClaim
	part  statedb.Partition
	log   *zap.Logger

	ops  []operator
	ctxs []*opCtx // ops[i]'s view of the task
	// stage is the sub-topology the partition's topic feeds (stage 0 for
	// a source topic); up, on an internal topic, the upstream partitions'
	// watermarks; markedWM the watermark last written into the internal
	// topic the stage feeds.
	stage pipeline.Stage
	src   *pipeline.Source // how the partition's records are decoded; the pipeline's on an internal topic
	// proj, when the stage reads only some fields of a JSON event,
	// decodes just those (pipeline.Pipeline.EventFields); nil: all.
	proj     *pipeline.Projection
	events   eventMaps // the maps proj decodes into, reused batch after batch
	up       *upstream
	markedWM int64
	dedupOn  bool // source dedup, or always on an internal topic
	state    *cache
	vars     pipeline.Vars

	// wm is the partition's event-time watermark: the greatest event time
	// of the source events it has processed, minus
	// source.allowed_lateness. Every operator reads it; only source events
	// (and source.watermark.idle_timeout) move it. wmStart is its value
	// when the current batch began; idleSince when the last event was
	// observed (wall clock, read once per batch).
	wm        *windows.Watermark
	wmStart   int64
	idleSince time.Time
	// ended is set when the watermark of a source partition jumped to
	// endOfTime (Worker.EndOfInput); endFlushed once the flush after it
	// succeeded.
	ended      bool
	endFlushed atomic.Bool

	epoch  int64
	stored int64             // W: last offset whose effects are in the store
	meta   map[string][]byte // the partition's metadata (watermark, layout), committed with each flush

	sampled int // events seen by the co-partitioning check
	warned  bool

	// The unflushed batch.
	batch    []*sarama.ConsumerMessage
	last     int64                     // last offset of processed, unflushed messages
	out      []*sarama.ProducerMessage // not yet acknowledged
	produced int                       // acknowledged since the last commit
	// unsunk counts the sink records of emitted that their topic refused
	// as too large (dead-lettered instead): not outputs.
	unsunk  int
	emitted []*Record // sink records of out, for the output hook
	// atCommit are counter increments of the unflushed work, added when
	// its commit succeeds (countAtCommit): what is counted is what is
	// persisted, once, whatever a replay redoes.
	atCommit map[*atomic.Uint64]uint64
	// parts holds the partition counts, learnt when the task started, of
	// the topics it places records on itself: the sink topic with
	// multicast, the internal topic its stage feeds.
	parts map[string]int32
	ids   *dedup.Tracker

	next atomic.Int64 // next offset to process, for lag
	// wmNow is wm.Current() after the last batch, for the metrics.
	wmNow atomic.Int64
	// paused is set while a retry loop holds the partition (what failed,
	// since when), for Health and the metrics.
	paused atomic.Pointer[pause]

	// tx is the partition's transactional producer (kafka.transactions);
	// nil: the worker's shared idempotent producer (see txn.go).
	tx sarama.SyncProducer

	// isolate makes the next produce send one record per request: a
	// record batch was refused as too large (see produce.go).
	isolate bool

	// broken is set when a batch failed midway (its context ended during
	// a retry): the cache and buffers then hold part of a batch, and
	// nothing of it may be flushed. The next owner replays from W.
	broken bool

	// skipped is the last offset read and skipped as already applied;
	// marked the Kafka offset last marked (the next offset to read).
	skipped, marked int64
}

func newTask(h *handler, sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) (*task, error) {
	w := h.w
	built, err := buildOps(w.p, w.o.factories)
	if err != nil {
		return nil, err // New built them once already; cannot happen for a valid config
	}
	part := statedb.Partition{Topic: claim.Topic(), Partition: claim.Partition()}
	t := &task{
		w: w, h: h, sess: sess, claim: claim, part: part,
		log:   w.log.With(zap.String("topic", part.Topic), zap.Int32("partition", part.Partition)),
		state: newCache(w.o.store, part, w.o.cacheSize),
		ids:   dedup.NewTracker(),
	}
	t.stage = w.stageOf(part.Topic)
	t.src = t.stage.Source
	if t.src == nil {
		t.src = &w.p.Source
	}
	if fields, all := w.p.EventFields(t.stage); !all && (t.stage.Internal || t.src.Format == pipeline.FormatJSON) {
		t.proj = pipeline.NewProjection(fields)
	}
	t.wm = windows.NewWatermark(t.src.AllowedLateness)
	t.dedupOn = (w.p.Spec.Dedup.Enabled && t.stage.Table == nil) || t.stage.Internal // a table's rows are upserts
	t.markedWM = math.MinInt64
	if t.stage.Internal {
		t.up = &upstream{wm: map[string]int64{}, seen: map[string]time.Time{}, since: time.Now()}
	}
	ops := built[t.stage.First:t.stage.End]
	if tb := t.stage.Table; tb != nil {
		ops = []operator{newTableOp(tb, slices.Index(w.p.Tables, tb))}
	}
	if r := t.stage.Repartition; r != nil && r.Side != pipeline.SideNone {
		// A join's input: its records routed into the join's internal
		// topic after the stage's steps.
		ops = append(slices.Clip(ops), newRouteOp(r, r.Name+"."+string(r.Side)))
	}
	for _, b := range ops {
		t.ops = append(t.ops, b)
		t.ctxs = append(t.ctxs, newOpCtx(t, t.state, b))
	}
	t.next.Store(claim.InitialOffset())
	t.wmNow.Store(math.MinInt64)
	t.skipped, t.marked = -1, 0
	return t, nil
}

func (t *task) lag() int64 {
	hw := t.claim.HighWaterMarkOffset()
	n := t.next.Load()
	if hw <= 0 || n < 0 || hw < n {
		return 0
	}
	return hw - n
}

// run is the task's loop: claim, then batches until the claim is revoked or
// the session ends, then a final flush.
func (t *task) run() error {
	ctx := t.sess.Context()
	// The producer first: its initialisation fences the previous owner's
	// producer before this task takes the store epoch (see txn.go).
	defer t.closeTxn()
	err := t.startTxn(ctx)
	if err == nil {
		err = t.acquire(ctx)
	}
	if err == nil {
		err = t.topicPartitions(ctx)
	}
	if err != nil {
		t.drain()
		return nil // the session is over; the partition goes to its next owner
	}
	if err := t.checkLayout(); err != nil {
		t.w.refuse(err) // ends Run: every partition would refuse alike
		return err
	}
	t.w.mu.Lock()
	t.w.tasks[t.part] = t
	t.w.mu.Unlock()
	defer func() {
		t.w.mu.Lock()
		if t.w.tasks[t.part] == t {
			delete(t.w.tasks, t.part)
		}
		t.w.mu.Unlock()
	}()
	if err := t.checkStart(); err != nil { // may hold the partition (missing state): Health sees it
		return err
	}

	spec := t.w.p.Spec.Flush
	// A batch that has started finishes — processed, produced, committed —
	// even if the session ends meanwhile (a rebalance, a shutdown): its
	// store calls run under work, which ends only flush.shutdown_timeout
	// after the session, so that a store outage cannot hold the partition
	// for longer. Cancelling it with the session would throw the batch away
	// and leave its work to be redone by the next owner.
	work, cancelWork := graceAfter(ctx, spec.ShutdownTimeout)
	defer cancelWork()
	timer := time.NewTimer(spec.Interval)
	defer timer.Stop()
	timerOn := true
	msgs := t.claim.Messages()
	size := batchSize{limit: spec.MaxMessages}
	for {
		var err error
		select {
		case m, ok := <-msgs:
			if !ok { // revoked
				return t.finish()
			}
			if len(t.batch) == 0 {
				resetTimer(timer, spec.Interval)
				timerOn = true
			}
			t.batch = append(t.batch, m)
			size.bytes += len(m.Key) + len(m.Value)
			// Take what the claim has buffered already with plain
			// receives rather than a select per message. This goroutine
			// is the channel's only reader: what len counts is there.
			for len(t.batch) < size.limit && size.bytes < spec.MaxBytes && len(msgs) > 0 {
				m := <-msgs
				t.batch = append(t.batch, m)
				size.bytes += len(m.Key) + len(m.Value)
			}
			if len(t.batch) >= size.limit || size.bytes >= spec.MaxBytes {
				err = t.stepSized(work, &size, true)
			}
		case <-timer.C:
			timerOn = false
			err = t.stepSized(work, &size, false)
		case <-ctx.Done():
			return t.finish()
		}
		if errors.Is(err, errFenced) {
			return t.fencedExit()
		}
		if err != nil { // the grace after the session ended during a retry
			return t.finish()
		}
		if !timerOn && len(t.batch) == 0 {
			resetTimer(timer, spec.Interval)
			timerOn = true
		}
	}
}

// batchSize is a partition's adaptive batch size: flush.max_messages
// while the partition keeps up; while it is behind (after a full batch,
// more than the next batch's worth still to read), doubled after each full
// batch up to flush.backlog_messages, so that more events share one flush.
// At low rates batches end by flush.interval, never by size: latency is
// as with a fixed size. flush.max_bytes bounds every batch.
type batchSize struct {
	limit int // messages
	bytes int // in the current batch
}

// next sets the limit after a batch: lag is how many messages were still
// to read after it (from the claim's high water mark), full whether it
// ended by size (else by flush.interval, which does not grow it).
func (b *batchSize) next(spec *pipeline.FlushConfig, lag int64, full bool) {
	b.bytes = 0
	switch {
	case lag < int64(spec.MaxMessages):
		b.limit = spec.MaxMessages // caught up
	case full && lag >= int64(b.limit):
		b.limit = min(2*b.limit, spec.BacklogMessages)
	}
}

// stepSized runs step and then sizes the next batch.
func (t *task) stepSized(ctx context.Context, size *batchSize, full bool) error {
	lag := int64(0)
	if n := len(t.batch); n > 0 {
		lag = t.claim.HighWaterMarkOffset() - t.batch[n-1].Offset - 1
	}
	if err := t.step(ctx); err != nil {
		return err
	}
	size.next(&t.w.p.Spec.Flush, lag, full)
	return nil
}

// graceAfter returns a context that is not cancelled with parent but grace
// after it (or by the returned cancel).
func graceAfter(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-parent.Done():
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			cancel()
		}
	}()
	return ctx, cancel
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	t.Reset(d)
}

// acquire claims the partition in the store, retrying while it is
// unreachable.
func (t *task) acquire(ctx context.Context) error {
	var c statedb.Claim
	err := t.retry(ctx, "acquire", func(ctx context.Context) (err error) {
		c, err = t.w.o.store.Acquire(ctx, t.part)
		return err
	})
	if err != nil {
		return err
	}
	t.epoch, t.stored = c.Epoch, c.Offset
	t.last = c.Offset
	meta, err := decodeMeta(c.Meta)
	if err != nil {
		t.log.Error("stored partition metadata is unreadable; event time restarts from the next event", zap.Error(err))
	}
	t.meta = meta
	if err := restoreWatermark(t.wm, meta); err != nil {
		t.log.Error("stored watermark is unreadable; event time restarts from the next event", zap.Error(err))
	}
	if b, ok := meta[metaUpstream]; ok && t.up != nil {
		if err := t.up.decode(b); err != nil {
			t.log.Error("stored upstream watermarks are unreadable; waiting for every upstream partition's next marker", zap.Error(err))
		}
	}
	t.markedWM = t.wm.Current() // markers up to it were written with the state
	for k := range meta {
		if !strings.HasPrefix(k, "\x00") {
			delete(meta, k) // an aggregate's own watermark, before layout 2: restored above
		}
	}
	t.log.Info("partition claimed", zap.Int64("epoch", c.Epoch), zap.Int64("stored_offset", c.Offset),
		startField(t.claim.InitialOffset()))
	return nil
}

// startField says where the claim starts reading: the group's committed
// offset as initial_offset, or, without one, source.start in the config's
// words rather than sarama's codes for them (-2, -1).
func startField(initial int64) zap.Field {
	switch initial {
	case sarama.OffsetOldest:
		return zap.String("start", string(pipeline.StartEarliest))
	case sarama.OffsetNewest:
		return zap.String("start", string(pipeline.StartLatest))
	}
	return zap.Int64("initial_offset", initial)
}

// topicPartitions learns the partition counts the task needs: of the
// topics it places records on itself (the sink topic with multicast, the
// internal topic its stage feeds) and, on an internal topic, of the
// upstream stage's topics (how many watermarks to wait for). It retries
// while the metadata is unavailable. Without a client (unit tests) every
// topic has one partition.
func (t *task) topicPartitions(ctx context.Context) error {
	t.parts = map[string]int32{}
	var topics []string
	if sk := t.w.p.Sink; sk != nil && sk.Router == route.Multicast && t.stage.Repartition == nil {
		topics = append(topics, sk.Topics...)
	}
	if r := t.stage.Repartition; r != nil {
		topics = append(topics, r.Topic)
	}
	for _, tb := range t.w.p.Tables { // lookups place keys; a table task checks placement
		if tb.Topic != "" {
			topics = append(topics, tb.Topic)
		}
	}
	var upstream []string
	for _, i := range t.stage.Upstream {
		upstream = append(upstream, t.w.stages[i].Topics...)
	}
	topics = append(topics, upstream...)
	for _, topic := range topics {
		t.parts[topic] = 1
		if t.h.client == nil {
			continue
		}
		err := t.retry(ctx, "topic metadata", func(context.Context) error {
			ps, err := t.h.client.Partitions(topic)
			if err == nil {
				t.parts[topic] = int32(len(ps))
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	for _, topic := range upstream {
		t.up.expected += int(t.parts[topic])
	}
	return nil
}

// partitions is the partition count of topic (see topicPartitions).
func (t *task) partitions(topic string) int32 {
	if n := t.parts[topic]; n > 0 {
		return n
	}
	return 1
}

// send buffers m, a record for a topic other than the sink, for the
// flush.
func (t *task) send(m *sarama.ProducerMessage) {
	t.out = append(t.out, m)
	t.countAtCommit(&t.w.stats.repartitioned, 1)
}

// countAtCommit adds n to c once the unflushed work is committed.
func (t *task) countAtCommit(c *atomic.Uint64, n uint64) {
	if t.atCommit == nil {
		t.atCommit = map[*atomic.Uint64]uint64{}
	}
	t.atCommit[c] += n
}

// step processes the pending batch and flushes it.
func (t *task) step(ctx context.Context) error {
	if t.broken {
		return errBroken
	}
	if len(t.batch) > 0 || t.ticking() {
		if err := t.process(ctx, t.batch); err != nil {
			t.broken = true
			return err
		}
		clear(t.batch)
		t.batch = t.batch[:0]
	}
	return t.flush(ctx)
}

// errRewind ends a session whose start position was past the store's
// watermark (see checkStart).
var errRewind = errors.New("processor: rewinding to the stored offset watermark")

// checkStart compares where Kafka starts the claim with what the store
// holds. Kafka's committed offset is saved after the store's commit, so it
// is normally at most W+1. It is beyond W+1 only when the store lost
// acknowledged commits (Redis with appendfsync everysec after a power loss,
// an asynchronous replica promoted) or the store was restored from an older
// backup: the events between would never be applied. The task then moves
// the group's offset back to W+1 and ends the session; on the rejoin the
// partition is read from W+1 again, so the lost commits are re-done.
//
// A store with no record of the partition (W = none) while the group has a
// committed offset is reported but not rewound: that is a new or wiped
// store, and replaying the whole topic is the operator's call (worker
// offsets reset).
func (t *task) checkStart() error {
	initial := t.claim.InitialOffset()
	if initial < 0 || initial <= t.stored+1 {
		return nil
	}
	if t.stored == statedb.NoOffset {
		return t.missingState(initial)
	}
	t.log.Warn("Kafka's committed offset is past the store's offset watermark: rewinding the group to the watermark so that no event is skipped "+
		"(the store lost acknowledged commits, or the group's offsets were moved forward by hand)",
		zap.Int64("stored_offset", t.stored), zap.Int64("committed_offset", initial))
	t.sess.ResetOffset(t.part.Topic, t.part.Partition, t.stored+1, "")
	t.sess.Commit()
	return fmt.Errorf("%s: %w", t.part, errRewind)
}

// missingState handles a partition the store has no record of while the
// group has committed offsets for it (initial): the store was wiped, or
// failed over to an empty replica. Going on from the committed offset
// with empty state would emit results that span the loss with partial
// values, under the same IDs as the complete ones published before. So,
// per state.missing: rebuild replays the partition from offset 0 when the
// log still starts there (every output is then produced again, complete,
// with its first copy's ID), and pauses it otherwise; pause holds it,
// the worker unready and the log saying what to do; start_empty goes on.
func (t *task) missingState(initial int64) error {
	choice := t.w.p.Spec.State.Missing
	if choice == pipeline.MissingStartEmpty {
		t.log.Warn("the state store has no record of this partition but the group has a committed offset: state starts empty from there (state.missing: start_empty)",
			zap.Int64("committed_offset", initial))
		return nil
	}
	why := "state.missing: pause"
	if choice == pipeline.MissingRebuild {
		start, err := t.logStart()
		switch {
		case err != nil:
			why = "the log's start offset could not be read: " + err.Error()
		case start == 0:
			t.log.Warn("the state store has no record of this partition but the group has a committed offset (a wiped store?): rebuilding its state by replaying it from offset 0",
				zap.Int64("committed_offset", initial))
			t.w.stats.rebuilds.Add(1)
			t.sess.ResetOffset(t.part.Topic, t.part.Partition, 0, "")
			t.sess.Commit()
			return fmt.Errorf("%s: %w", t.part, errRewind)
		default:
			why = fmt.Sprintf("the log no longer holds the partition's whole history (it starts at offset %d), so a replay cannot rebuild it", start)
		}
	}
	msg := fmt.Sprintf("the state store has no record of this partition but the group has committed offset %d (a wiped store?); %s. "+
		"Paused: replay from the start to rebuild (worker offsets reset --to-earliest), or accept empty state (state.missing: start_empty)", initial, why)
	t.log.Error("partition paused: its state is missing", zap.String("reason", msg))
	t.paused.Store(&pause{since: time.Now(), cause: "missing state", err: msg, hold: true})
	<-t.sess.Context().Done()
	t.paused.Store(nil)
	return fmt.Errorf("%s: %w", t.part, errRewind) // not processed: the next claim decides again
}

// logStart is the first offset the partition's log still holds.
func (t *task) logStart() (int64, error) {
	if t.h.client == nil {
		return 0, nil
	}
	return t.h.client.GetOffset(t.part.Topic, t.part.Partition, sarama.OffsetOldest)
}

// ticking reports whether the operators need to run without new events:
// the idle timeout may let event time pass, or the watermark may have
// reached a timer still to fire.
func (t *task) ticking() bool {
	if t.src.IdleTimeout > 0 && !t.idleSince.IsZero() {
		return true
	}
	if t.up == nil && !t.ended && t.w.inputEnded.Load() {
		return true
	}
	wm := t.wm.Current()
	for _, c := range t.ctxs {
		if c.timers.pending(wm) {
			return true
		}
	}
	return false
}

// coPartitionSample is how often (1 in N events) the co-partitioning check
// runs.
const coPartitionSample = 64

// checkCoPartitioned samples events of an aggregate whose group key is not
// the message key, and reports those whose group key would be produced to
// another partition (Java-compatible murmur2, the default of Kafka's
// producers and of eddy's sinks): such a key's events are spread over
// several partitions, each aggregating its share, so its results are split.
func (t *task) checkCoPartitioned(r *Record, group string) {
	t.sampled++
	if t.sampled%coPartitionSample != 1 || group == string(r.srcKey) || t.h.client == nil {
		return
	}
	n, err := t.h.client.Partitions(t.part.Topic)
	if err != nil || len(n) <= 1 {
		return
	}
	p, err := sarama.NewMurmur2Partitioner(t.part.Topic).Partition(
		&sarama.ProducerMessage{Key: sarama.StringEncoder(group)}, int32(len(n)))
	if err != nil || p == t.part.Partition {
		return
	}
	t.w.stats.notCoPart.Add(1)
	if !t.warned {
		t.warned = true
		t.log.Warn("aggregate group key is not co-partitioned with the source: results for a key are split across partitions; "+
			"produce the source keyed by the group key, or re-key it first (see the README, \"Co-partitioning\")",
			zap.String("group_key", group), zap.String("message_key", string(r.srcKey)),
			zap.Int32("partition", t.part.Partition), zap.Int32("group_key_partition", p))
	}
}

// finish runs the final flush after revocation or at shutdown, under its
// own deadline (flush.shutdown_timeout), since the session's context has
// already ended.
func (t *task) finish() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.sess.Context()), t.w.p.Spec.Flush.ShutdownTimeout)
	defer cancel()
	err := t.step(ctx)
	switch {
	case errors.Is(err, errFenced):
		return t.fencedExit()
	case err != nil:
		t.log.Warn("final flush failed; the next owner replays from the stored offset",
			zap.Int64("stored_offset", t.stored), zap.Error(err))
	default:
		t.sess.Commit()
		t.log.Info("partition released", zap.Int64("stored_offset", t.stored))
	}
	return nil
}

// fencedExit gives up the partition: a newer owner has it. Returning from
// ConsumeClaim without a revocation ends the session, so the worker rejoins
// the group and gets a fresh assignment.
func (t *task) fencedExit() error {
	t.w.stats.fenced.Add(1)
	t.log.Warn("partition fenced by a newer owner; dropping it and its unflushed work",
		zap.Int64("epoch", t.epoch), zap.Int64("stored_offset", t.stored))
	t.state.reset()
	return fmt.Errorf("%s: %w", t.part, errFenced)
}

// drain discards messages until the claim ends (used when the claim could
// not be acquired before the session ended).
func (t *task) drain() {
	for range t.claim.Messages() {
	}
}

// pause is why and since when a partition's task is paused.
type pause struct {
	since time.Time
	cause string // what is retried: "produce", "state commit", ...
	err   string // the last error
	hold  bool   // unready at once: the partition waits for the operator
}

// retry runs f until it succeeds, backing off exponentially up to the
// configured cap. While it retries, the task reads no messages: its
// partition is paused. It logs once when the failure starts and once when
// it ends, never per retry. It gives up only when ctx ends or the store
// says the task is fenced.
func (t *task) retry(ctx context.Context, what string, f func(context.Context) error) error {
	backoff := 50 * time.Millisecond
	var failedAt time.Time
	defer t.paused.Store(nil)
	for attempt := 0; ; attempt++ {
		octx, cancel := context.WithTimeout(ctx, t.w.o.opTimeout)
		if what != "produce" && what != whatRegistry {
			t.w.stats.storeCalls.Add(1)
		}
		err := f(octx)
		cancel()
		if err == nil {
			if attempt > 0 {
				t.log.Info(what+" recovered; partition resumed", zap.Int("attempts", attempt+1),
					zap.Duration("paused", time.Since(failedAt)))
			}
			return nil
		}
		if errors.Is(err, errPermanent) {
			t.log.Error(what+" failed for good; stopping the worker", zap.Error(err))
			t.w.refuse(err)
			return err
		}
		if errors.Is(err, statedb.ErrFenced) || errors.Is(err, errFenced) {
			if !errors.Is(err, statedb.ErrFenced) {
				t.log.Warn(what+" fenced", zap.Error(err))
			}
			return errFenced
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if what == "produce" {
			t.w.stats.produceErrs.Add(1)
		} else if what != whatRegistry {
			t.w.stats.storeErrs.Add(1)
		}
		if attempt == 0 {
			failedAt = time.Now()
			msg := err.Error()
			fields := []zap.Field{zap.Error(err)}
			if causes := produceCauses(err); causes != "" {
				msg += " (" + causes + ")"
				fields = append(fields, zap.String("causes", causes))
			}
			t.paused.Store(&pause{since: failedAt, cause: what, err: msg})
			t.log.Warn(what+" failed; partition paused, retrying", fields...)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, t.w.o.retryMax)
	}
}

// process runs one batch of messages through the pipeline.
func (t *task) process(ctx context.Context, msgs []*sarama.ConsumerMessage) error {
	recs := make([]*Record, 0, len(msgs))
	// The batch's records in one allocation. Nothing keeps them beyond the
	// flush but the output hook, which then keeps the whole slab alive.
	slab := make([]Record, len(msgs))
	t.events.reuse()
	decode := t.decode
	if t.up != nil {
		decode = t.decodeInternal
		t.wmStart = t.wm.Current()
	}
	for i, m := range msgs {
		t.next.Store(m.Offset + 1)
		marker := t.up != nil && isMarker(m)
		if marker {
			t.w.stats.markers.Add(1)
		} else {
			t.w.stats.in.Add(1)
		}
		if m.Offset <= t.last {
			if !marker {
				t.w.stats.skipped.Add(1) // applied by an earlier owner, or this one
			}
			t.skipped = max(t.skipped, m.Offset)
			continue
		}
		t.last = m.Offset
		if marker {
			t.up.marker(m)
			t.wm.Advance(t.up.min(t.src.IdleTimeout))
			continue
		}
		rec := &slab[i]
		step, err := decode(ctx, rec, m)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errFenced) || errors.Is(err, errPermanent) {
				return err // paused on the registry until the claim ended: not the event's fault
			}
			t.poison(rec, step, err)
			continue
		}
		if t.up != nil {
			rec.wm = t.wm.Current() // markers move it within the batch; advance stamps source records
		}
		recs = append(recs, rec)
	}
	recs, err := t.dedup(ctx, recs)
	if err != nil {
		return err
	}
	if t.up != nil {
		t.advanceInternal(len(msgs) > 0)
	} else {
		t.advance(recs)
	}
	// Operators in pipeline order: each processes its input, then fires
	// what the watermark has made due; both are the next one's input.
	for i, o := range t.ops {
		c := t.ctxs[i]
		out, err := o.process(ctx, c, recs)
		if err != nil {
			return err
		}
		fired, err := o.fire(ctx, c)
		if err != nil {
			return err
		}
		recs = append(out, fired...)
	}
	if t.stage.Repartition == nil {
		if err := t.sink(ctx, recs); err != nil {
			return err
		}
	}
	t.markWatermark()
	t.wmNow.Store(t.wm.Current())
	return nil
}

// advanceInternal moves the watermark of a partition of an internal topic
// to the minimum of its upstream partitions' (markers moved it already;
// this catches upstream partitions that fell silent for idle_timeout) and
// saves both in the partition metadata.
func (t *task) advanceInternal(read bool) {
	if read && t.src.IdleTimeout > 0 {
		t.idleSince = time.Now()
	}
	t.wm.Advance(t.up.min(t.src.IdleTimeout))
	t.meta[metaWatermark] = t.wm.AppendBinary(t.meta[metaWatermark][:0])
	t.meta[metaUpstream] = t.up.encode(t.meta[metaUpstream][:0])
}

// advance moves the partition's watermark over the batch's source events,
// in order, and stamps each with the watermark as it stood before it
// (Record.wm). With no events for source.watermark.idle_timeout, the
// watermark follows the wall clock from the last event's time instead:
// emission time then depends on when the partition went quiet, not on the
// data alone.
func (t *task) advance(recs []*Record) {
	t.wmStart = t.wm.Current()
	for _, r := range recs {
		r.wm = t.wm.Current()
		t.wm.Observe(r.Time.UnixMilli()) // an invalid time (poisoned by the operator that reads it) moves nothing
	}
	src := t.src
	switch {
	case len(recs) > 0:
		if src.IdleTimeout > 0 {
			t.idleSince = time.Now()
		}
	case src.IdleTimeout > 0 && !t.idleSince.IsZero() && t.wm.MaxEventTime() != math.MinInt64:
		if quiet := time.Since(t.idleSince); quiet >= src.IdleTimeout {
			t.wm.Advance(t.wm.MaxEventTime() + quiet.Milliseconds() - src.AllowedLateness.Milliseconds())
		}
	}
	if !t.ended && t.w.inputEnded.Load() {
		// A bounded run's input is over: event time jumps to its end, so
		// that every window and join interval closes now.
		t.wm.Advance(endOfTime)
		t.ended = true
	}
	t.meta[metaWatermark] = t.wm.AppendBinary(t.meta[metaWatermark][:0])
}

// decode turns a message into rec: value, event ID, event time. On error
// it returns the step that failed; rec then holds what was decoded.
func (t *task) decode(ctx context.Context, rec *Record, m *sarama.ConsumerMessage) (string, error) {
	*rec = Record{
		Key: string(m.Key), Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Timestamp: m.Timestamp, Time: m.Timestamp, raw: m.Value, srcKey: m.Key,
	}
	if t.stage.Table != nil && m.Value == nil {
		rec.tombstone = true // a table's delete: nothing to decode
		rec.ID = dedup.DefaultID(rec.Topic, rec.Partition, rec.Offset, nil)
		return "", nil
	}
	if len(m.Headers) > 0 {
		rec.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			rec.Headers[string(h.Key)] = string(h.Value)
		}
	}
	src := t.src
	ev, err := t.decodeValue(ctx, src, m.Value)
	if err != nil {
		rec.ID = dedup.DefaultID(rec.Topic, rec.Partition, rec.Offset, rec.Headers)
		return "decode", err
	}
	rec.Event = ev
	v := t.bind(rec)
	if rec.ID, err = src.IDFor(v); err != nil {
		rec.ID = dedup.DefaultID(rec.Topic, rec.Partition, rec.Offset, rec.Headers)
		return "source.event_id", err
	}
	if rec.Time, err = src.TimeFor(v); err != nil {
		rec.Time = rec.Timestamp
		return "source.event_time", err
	}
	if err := t.checkTime(rec.Time); err != nil {
		return "source.event_time", err
	}
	return "", nil
}

// Event times an output can carry: RFC 3339 writes the years 0000-9999,
// and a window's end may lie a little after its events.
var (
	minEventTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxEventTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// checkTime refuses an event time that would corrupt results: one more
// than source.watermark.max_future ahead of the wall clock (it would move
// the partition's watermark past every event to come, making them all
// late), or one outside the years an output can write.
func (t *task) checkTime(tm time.Time) error {
	if tm.Before(minEventTime) || !tm.Before(maxEventTime) {
		return fmt.Errorf("event time %s is outside the years 0000-9998 that eddy's outputs can carry", tm.UTC().Format(time.RFC3339Nano))
	}
	if mf := t.src.MaxFuture; mf > 0 && t.stage.Table == nil {
		if now := time.Now(); tm.After(now.Add(mf)) {
			return fmt.Errorf("event time %s is more than source.watermark.max_future (%s) ahead of the clock (%s): it would move the watermark past every event to come",
				tm.UTC().Format(time.RFC3339Nano), mf, now.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// IDHeader is the header that carries the deterministic ID of every record
// eddy produces (see package dedup).
const IDHeader = dedup.IDHeader

// bind points the task's reusable CEL variables at rec.
func (t *task) bind(rec *Record) *pipeline.Vars {
	v := &t.vars
	v.Event, v.Key, v.Headers = rec.Event, rec.Key, rec.Headers
	v.Topic, v.Partition, v.Offset, v.Timestamp = rec.Topic, rec.Partition, rec.Offset, rec.Timestamp
	return v
}

// dedup drops records whose event ID was seen before: in an earlier flush
// (one Seen call per batch) or earlier in the unflushed work. Every new ID
// is recorded by the next commit, together with the state it produced.
func (t *task) dedup(ctx context.Context, recs []*Record) ([]*Record, error) {
	if !t.dedupOn || len(recs) == 0 {
		return recs, nil
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	var keep []bool
	err := t.retry(ctx, "dedup lookup", func(ctx context.Context) (err error) {
		keep, err = t.ids.Filter(ctx, ids, func(ctx context.Context, ids []string) (map[string]bool, error) {
			return t.w.o.store.Seen(ctx, t.part, ids)
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	kept := recs[:0]
	for i, r := range recs {
		if !keep[i] {
			t.w.stats.dups.Add(1)
			t.log.Debug("duplicate dropped", zap.String("event_id", r.ID), zap.Int64("offset", r.Offset))
			continue
		}
		kept = append(kept, r)
	}
	return kept, nil
}

// flush persists the processed work: outputs, then state, then offset.
func (t *task) flush(ctx context.Context) error {
	if t.last <= t.stored && len(t.out) == 0 && !t.state.dirty() {
		// Nothing to commit; but messages a replay re-read and skipped
		// (all at or below W) move Kafka's offset on, so that the next
		// owner does not read them again.
		if t.skipped >= t.marked {
			t.marked = t.skipped + 1
			t.sess.MarkOffset(t.part.Topic, t.part.Partition, t.marked, "")
			t.h.offsetMarked()
		}
		t.endFlushed.Store(t.ended)
		return nil
	}
	start := time.Now()
	// (a) outputs and dead letters, acknowledged by the brokers. Once
	// acknowledged they leave the buffer: if (b) fails and the flush is
	// retried (at revocation, say), only the commit is repeated.
	if len(t.out) > 0 {
		t.flushHook(ctx, BeforeProduce)
		err := t.retry(ctx, "produce", func(context.Context) error {
			return t.produce()
		})
		if err != nil {
			return err
		}
		t.produced += len(t.out)
		clear(t.out)
		t.out = t.out[:0]
	}
	// (b) one atomic write, conditioned on our epoch.
	t.flushHook(ctx, BeforeCommit)
	c := t.state.commit(t.epoch, t.last, encodeMeta(t.meta))
	if t.dedupOn {
		c.IDs, c.IDTTL = t.ids.Pending(), t.w.p.Spec.Dedup.TTL
	}
	if err := t.retry(ctx, "state commit", func(ctx context.Context) error {
		return t.w.o.store.Commit(ctx, c)
	}); err != nil {
		return err
	}
	t.state.committed()
	t.stored = t.last
	t.flushHook(ctx, AfterCommit)
	// (c) the Kafka offset: the next message to read.
	t.marked = t.stored + 1
	t.sess.MarkOffset(t.part.Topic, t.part.Partition, t.marked, "")
	t.h.offsetMarked()

	t.w.stats.flushes.Add(1)
	t.w.stats.flushNs.Add(uint64(time.Since(start)))
	t.w.flushHist.Observe(time.Since(start).Seconds())
	if ce := t.log.Check(zap.DebugLevel, "flushed"); ce != nil {
		ce.Write(zap.Int64("offset", t.stored), zap.Int("produced", t.produced),
			zap.Int("state_writes", len(c.Puts)+len(c.Deletes)), zap.Duration("took", time.Since(start)))
	}
	t.w.stats.out.Add(uint64(len(t.emitted) - t.unsunk))
	t.unsunk = 0
	for c, n := range t.atCommit {
		c.Add(n)
	}
	clear(t.atCommit)
	if hook := t.w.o.onOutput; hook != nil {
		for _, r := range t.emitted {
			hook(r)
		}
	}
	t.produced = 0
	clear(t.emitted)
	t.emitted = t.emitted[:0]
	t.ids.Committed()
	t.endFlushed.Store(t.ended)
	return nil
}

// produce sends the buffered messages and waits for their acks. On a
// partial failure only the failed messages are kept for the retry. With a
// transactional producer they go in one transaction (produceTxn).
func (t *task) produce() error {
	if t.tx != nil {
		return t.produceTxn()
	}
	if t.isolate {
		return t.produceEach(func(m *sarama.ProducerMessage) error {
			_, _, err := t.h.producer.SendMessage(m)
			return err
		})
	}
	err := t.h.producer.SendMessages(t.out)
	if err == nil {
		return nil
	}
	if perr := t.route(err); perr != nil {
		return perr
	}
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) {
		// What failed is retried, as fresh messages (sarama keeps
		// per-send state in the old ones, and a manually placed record
		// keeps its partition); the rest is acknowledged.
		failed := make([]*sarama.ProducerMessage, 0, len(perrs))
		for _, pe := range perrs {
			m := pe.Msg
			failed = append(failed, &sarama.ProducerMessage{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers, Partition: m.Partition})
		}
		t.out = failed
	}
	return err
}
