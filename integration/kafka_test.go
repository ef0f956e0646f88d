package integration_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// The input of the consumer-group tests: seqKeys keys, each with seqPerKey
// messages whose values carry the key and a per-key sequence number.
const (
	seqKeys       = 200
	seqPerKey     = 50 // 10,000 messages
	seqPartitions = 6
	// seqCommitEvery and seqCommitIdle make the members commit per batch
	// (every N messages or T of quiet), never per message.
	seqCommitEvery = 500
	seqCommitIdle  = 100 * time.Millisecond
)

// TestKafkaConsumerGroupExactlyOnce: a group of two members reads every one
// of 10,000 keyed messages exactly once, in order per key, and commits all
// of them.
func TestKafkaConsumerGroupExactlyOnce(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Topic(t, brokers, seqPartitions)
	group := testenv.Group(t)
	rec := newSeqRecorder()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := startSeqMember(ctx, t, "a", brokers, group, topic, rec, 0)
	b := startSeqMember(ctx, t, "b", brokers, group, topic, rec, 0)
	// Both members own partitions before any message exists, so the input
	// is really shared between them.
	waitSeqGeneration(ctx, t, a, b)

	hwm := produceSequences(t, brokers, topic)
	rec.waitTotal(ctx, t, seqKeys*seqPerKey)
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show up
	a.stop(t)
	b.stop(t)

	rec.checkExactlyOnce(t)
	for _, m := range []*seqMember{a, b} {
		if n := rec.countBy(m.name); n == 0 {
			t.Errorf("member %s consumed nothing: the group did not share the topic", m.name)
		}
	}
	// Every consumed offset is committed: the group restarts at the end.
	committed := committedOffsets(t, brokers, group, topic)
	for p, end := range hwm {
		if committed[p] != end {
			t.Errorf("partition %d: committed offset %d, want the high-water mark %d", p, committed[p], end)
		}
	}
}

// TestKafkaGroupMemberLeaves: member b stops mid-stream and leaves; a takes
// over b's partitions, resumes each exactly at b's committed offset, and
// between them they consume the input exactly once.
func TestKafkaGroupMemberLeaves(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Topic(t, brokers, seqPartitions)
	group := testenv.Group(t)
	rec := newSeqRecorder()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const bLimit = 1000
	a := startSeqMember(ctx, t, "a", brokers, group, topic, rec, 0)
	b := startSeqMember(ctx, t, "b", brokers, group, topic, rec, bLimit)
	gen := waitSeqGeneration(ctx, t, a, b)
	bParts := b.handler.claimsOf(gen)

	hwm := produceSequences(t, brokers, topic)
	select {
	case <-b.handler.stopped:
	case <-ctx.Done():
		t.Fatalf("member b did not reach %d messages (has %d)", bLimit, rec.countBy("b"))
	}
	// b has committed what it processed and processes nothing more. Read
	// its commits from the broker while it still owns its partitions.
	committed := committedOffsets(t, brokers, group, topic)
	last := rec.lastOffsets("b")
	for _, p := range bParts {
		want := int64(-1) // nothing consumed, nothing committed
		if o, ok := last[p]; ok {
			want = o + 1
		}
		if committed[p] != want {
			t.Errorf("partition %d: b committed %d, want %d (its last consumed offset + 1)", p, committed[p], want)
		}
	}
	if got := rec.countBy("b"); got != bLimit {
		t.Errorf("b consumed %d messages, want exactly %d", got, bLimit)
	}
	b.stop(t) // LeaveGroup: a is assigned every partition

	rec.waitTotal(ctx, t, seqKeys*seqPerKey)
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show up
	a.stop(t)

	rec.checkExactlyOnce(t)
	takeover, ok := a.handler.firstGenWith(seqPartitions, gen)
	if !ok {
		t.Fatalf("a never owned all %d partitions after b left; assignments: %v", seqPartitions, a.handler.assignmentsString())
	}
	first := a.handler.firstOffsets(takeover)
	checked := 0
	for _, p := range bParts {
		start := max(committed[p], 0) // no commit: the oldest offset, 0
		if start == hwm[p] {
			continue // b had consumed all of it: nothing left to take over
		}
		checked++
		if got, ok := first[p]; !ok || got != start {
			t.Errorf("partition %d: a's first offset after taking over is %d (seen %v), want b's committed offset %d", p, got, ok, start)
		}
	}
	if checked == 0 {
		t.Fatalf("b left no partition with messages to take over (hwm %v, committed %v)", hwm, committed)
	}
	if n := rec.countBy("a"); n != seqKeys*seqPerKey-bLimit {
		t.Errorf("a consumed %d messages, want %d", n, seqKeys*seqPerKey-bLimit)
	}
}

// produceSequences writes the test input to topic with an idempotent
// producer (so a retried send cannot duplicate a message) and returns each
// partition's high-water mark afterwards. Key k's messages are spread over
// the whole run: sequence s of every key is sent before sequence s+1.
func produceSequences(t *testing.T, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	cfg := testenv.SaramaConfig() // an idempotent producer
	cfg.Producer.Retry.Max = 10
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer func() { _ = p.Close() }()
	batch := make([]*sarama.ProducerMessage, 0, 1000)
	flush := func() {
		if err := p.SendMessages(batch); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
		batch = batch[:0]
	}
	for s := range seqPerKey {
		for k := range seqKeys {
			key := seqKey(k)
			batch = append(batch, &sarama.ProducerMessage{
				Topic: topic,
				Key:   sarama.StringEncoder(key),
				Value: sarama.StringEncoder(key + ":" + strconv.Itoa(s)),
			})
			if len(batch) == cap(batch) {
				flush()
			}
		}
	}
	if len(batch) > 0 {
		flush()
	}

	client, err := sarama.NewClient(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer func() { _ = client.Close() }()
	hwm := map[int32]int64{}
	var total int64
	for p := range int32(seqPartitions) {
		o, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("high-water mark of %s/%d: %v", topic, p, err)
		}
		hwm[p] = o
		total += o
	}
	if total != seqKeys*seqPerKey {
		t.Fatalf("topic %s holds %d messages, want %d", topic, total, seqKeys*seqPerKey)
	}
	return hwm
}

func seqKey(k int) string { return fmt.Sprintf("k%03d", k) }

// committedOffsets returns the group's committed offset of every partition
// of topic (-1: none).
func committedOffsets(t *testing.T, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer func() { _ = admin.Close() }()
	parts := make([]int32, seqPartitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		t.Fatalf("committed offsets of group %s: %v", group, err)
	}
	out := map[int32]int64{}
	for _, p := range parts {
		b := resp.GetBlock(topic, p)
		if b == nil {
			t.Fatalf("committed offsets of group %s: no answer for partition %d", group, p)
		}
		if !errors.Is(b.Err, sarama.ErrNoError) {
			t.Fatalf("committed offset of %s/%d: %v", topic, p, b.Err)
		}
		out[p] = b.Offset
	}
	return out
}

// seqDelivery is one message as a member consumed it.
type seqDelivery struct {
	member    string
	key       string
	seq       int
	partition int32
	offset    int64
}

// seqRecorder collects the deliveries of all members, in the order the
// members processed them. It is safe for concurrent use.
type seqRecorder struct {
	mu    sync.Mutex
	all   []seqDelivery
	errs  []error
	grown chan struct{} // closed and replaced on every add
}

// fail records a message the test did not write.
func (r *seqRecorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func newSeqRecorder() *seqRecorder { return &seqRecorder{grown: make(chan struct{})} }

func (r *seqRecorder) add(d seqDelivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, d)
	close(r.grown)
	r.grown = make(chan struct{})
}

func (r *seqRecorder) snapshot() []seqDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// waitTotal waits until n deliveries are recorded.
func (r *seqRecorder) waitTotal(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for {
		r.mu.Lock()
		got, grown := len(r.all), r.grown
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-grown:
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d messages before the deadline (a: %d, b: %d)", got, n, r.countBy("a"), r.countBy("b"))
		}
	}
}

func (r *seqRecorder) countBy(member string) int {
	n := 0
	for _, d := range r.snapshot() {
		if d.member == member {
			n++
		}
	}
	return n
}

// lastOffsets returns, per partition, the last offset member consumed.
func (r *seqRecorder) lastOffsets(member string) map[int32]int64 {
	out := map[int32]int64{}
	for _, d := range r.snapshot() {
		if d.member == member {
			out[d.partition] = max(out[d.partition], d.offset)
		}
	}
	return out
}

// checkExactlyOnce fails t unless every key's sequence numbers arrived
// exactly once each, 0..seqPerKey-1, in increasing order.
func (r *seqRecorder) checkExactlyOnce(t *testing.T) {
	t.Helper()
	all := r.snapshot()
	r.mu.Lock()
	for _, err := range r.errs {
		t.Errorf("foreign message: %v", err)
	}
	r.mu.Unlock()
	if len(all) != seqKeys*seqPerKey {
		t.Errorf("consumed %d messages, want exactly %d", len(all), seqKeys*seqPerKey)
	}
	byKey := map[string][]int{}
	for _, d := range all {
		byKey[d.key] = append(byKey[d.key], d.seq)
	}
	bad := 0
	for k := range seqKeys {
		key := seqKey(k)
		seqs := byKey[key]
		delete(byKey, key)
		if err := checkSequence(seqs, seqPerKey); err != nil {
			if bad++; bad <= 10 {
				t.Errorf("key %s: %v", key, err)
			}
		}
	}
	if bad > 10 {
		t.Errorf("... and %d more keys", bad-10)
	}
	for key := range byKey {
		t.Errorf("consumed unknown key %q", key)
	}
}

// checkSequence reports the first way seqs differs from 0, 1, ..., n-1.
func checkSequence(seqs []int, n int) error {
	seen := map[int]int{}
	for i, s := range seqs {
		seen[s]++
		if seen[s] > 1 {
			return fmt.Errorf("sequence %d delivered %d times", s, seen[s])
		}
		if i > 0 && s <= seqs[i-1] {
			return fmt.Errorf("sequence %d arrived after %d (order lost)", s, seqs[i-1])
		}
	}
	for s := range n {
		if seen[s] == 0 {
			return fmt.Errorf("sequence %d missing (got %d of %d)", s, len(seqs), n)
		}
	}
	if len(seqs) != n {
		return fmt.Errorf("got %d messages, want %d", len(seqs), n)
	}
	return nil
}

func TestCheckSequence(t *testing.T) {
	tests := []struct {
		name string
		seqs []int
		ok   bool
	}{
		{"complete", []int{0, 1, 2, 3}, true},
		{"missing", []int{0, 1, 3}, false},
		{"duplicate", []int{0, 1, 1, 2, 3}, false},
		{"reordered", []int{0, 2, 1, 3}, false},
		{"extra", []int{0, 1, 2, 3, 4}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSequence(tt.seqs, 4)
			if (err == nil) != tt.ok {
				t.Errorf("checkSequence(%v, 4) = %v, want ok=%v", tt.seqs, err, tt.ok)
			}
		})
	}
}

// seqAssignment is what a member owned in one generation of the group.
type seqAssignment struct {
	gen   int32
	parts []int32
}

// seqHandler is one member's sarama.ConsumerGroupHandler: it records every
// message, marks it, and commits every seqCommitEvery messages or after
// seqCommitIdle without one. With limit > 0 it stops processing (and
// commits) after limit messages and then only waits for the session to end.
type seqHandler struct {
	name  string
	rec   *seqRecorder
	limit int

	mu          sync.Mutex
	processed   int
	assignments []seqAssignment
	first       map[int32]map[int32]int64 // generation -> partition -> first offset
	changed     chan struct{}             // closed and replaced on every Setup
	stopped     chan struct{}             // closed once limit is reached
}

func (h *seqHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var parts []int32
	for _, ps := range s.Claims() {
		parts = append(parts, ps...)
	}
	slices.Sort(parts)
	h.assignments = append(h.assignments, seqAssignment{gen: s.GenerationID(), parts: parts})
	close(h.changed)
	h.changed = make(chan struct{})
	return nil
}

func (h *seqHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	// Sarama does not flush marked offsets on close with auto-commit off.
	s.Commit()
	return nil
}

func (h *seqHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	defer s.Commit()
	idle := time.NewTicker(seqCommitIdle)
	defer idle.Stop()
	uncommitted := 0
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			process, limitReached := h.process(s, m)
			if !process {
				<-s.Context().Done() // stopped: wait for the session to end
				return nil
			}
			uncommitted++
			if uncommitted >= seqCommitEvery || limitReached {
				s.Commit()
				uncommitted = 0
			}
			if limitReached {
				close(h.stopped)
			}
		case <-idle.C:
			if uncommitted > 0 {
				s.Commit()
				uncommitted = 0
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// process records and marks m unless the member has reached its limit.
// Marking under h.mu orders every mark before the commit that follows the
// limit, so that commit covers all the member processed.
func (h *seqHandler) process(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) (process, limitReached bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.limit > 0 && h.processed >= h.limit {
		return false, false
	}
	key, seq, err := parseSeq(m)
	if err != nil {
		h.rec.fail(err) // only this test writes to the topic
	}
	gen := s.GenerationID()
	if h.first[gen] == nil {
		h.first[gen] = map[int32]int64{}
	}
	if _, ok := h.first[gen][m.Partition]; !ok {
		h.first[gen][m.Partition] = m.Offset
	}
	h.rec.add(seqDelivery{member: h.name, key: key, seq: seq, partition: m.Partition, offset: m.Offset})
	s.MarkMessage(m, "")
	h.processed++
	return true, h.limit > 0 && h.processed == h.limit
}

func parseSeq(m *sarama.ConsumerMessage) (string, int, error) {
	key, seqText, ok := strings.Cut(string(m.Value), ":")
	if !ok || key != string(m.Key) {
		return "", 0, fmt.Errorf("%s/%d@%d: value %q does not match key %q", m.Topic, m.Partition, m.Offset, m.Value, m.Key)
	}
	seq, err := strconv.Atoi(seqText)
	if err != nil {
		return "", 0, fmt.Errorf("%s/%d@%d: sequence in %q: %w", m.Topic, m.Partition, m.Offset, m.Value, err)
	}
	return key, seq, nil
}

func (h *seqHandler) latest() (seqAssignment, chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.assignments) == 0 {
		return seqAssignment{gen: -1}, h.changed
	}
	return h.assignments[len(h.assignments)-1], h.changed
}

func (h *seqHandler) claimsOf(gen int32) []int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.assignments {
		if a.gen == gen {
			return a.parts
		}
	}
	return nil
}

// firstGenWith returns the first generation after gen in which the member
// owned n partitions.
func (h *seqHandler) firstGenWith(n int, after int32) (int32, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.assignments {
		if a.gen > after && len(a.parts) == n {
			return a.gen, true
		}
	}
	return 0, false
}

func (h *seqHandler) firstOffsets(gen int32) map[int32]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.first[gen]
}

func (h *seqHandler) assignmentsString() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprint(h.assignments)
}

// seqMember is one running consumer-group member.
type seqMember struct {
	name    string
	group   sarama.ConsumerGroup
	handler *seqHandler
	cancel  context.CancelFunc
	done    chan struct{} // closed when the Consume loop and error logger end
}

func startSeqMember(ctx context.Context, t *testing.T, name string, brokers []string, group, topic string, rec *seqRecorder, limit int) *seqMember {
	t.Helper()
	cfg := testenv.SaramaConfig()
	cfg.ClientID = "eddy-test-" + name
	g, err := sarama.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		t.Fatalf("member %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &seqMember{
		name:  name,
		group: g,
		handler: &seqHandler{
			name: name, rec: rec, limit: limit,
			first:   map[int32]map[int32]int64{},
			changed: make(chan struct{}),
			stopped: make(chan struct{}),
		},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for err := range g.Errors() {
			t.Logf("member %s: %v", name, err)
		}
	}()
	go func() {
		defer close(m.done)
		defer func() { <-logged }() // Errors() closes when the group closes
		for {
			err := g.Consume(ctx, []string{topic}, m.handler)
			if errors.Is(err, sarama.ErrClosedConsumerGroup) || ctx.Err() != nil {
				return
			}
			if err != nil {
				t.Logf("member %s: consume: %v", name, err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() { m.stop(t) })
	return m
}

// stop ends the member's session, leaves the group and waits for it.
// It may be called more than once.
func (m *seqMember) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	if err := m.group.Close(); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
		t.Errorf("member %s: close: %v", m.name, err)
	}
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		t.Errorf("member %s: did not stop within 30s", m.name)
	}
}

// waitSeqGeneration waits until all members are in the same generation,
// each owning some partitions and together all of them, and returns it.
func waitSeqGeneration(ctx context.Context, t *testing.T, members ...*seqMember) int32 {
	t.Helper()
	for {
		var (
			gens    = map[int32]bool{}
			parts   []int32
			changed []chan struct{}
			empty   bool
		)
		for _, m := range members {
			a, ch := m.handler.latest()
			gens[a.gen] = true
			parts = append(parts, a.parts...)
			changed = append(changed, ch)
			empty = empty || len(a.parts) == 0
		}
		slices.Sort(parts)
		if len(gens) == 1 && !empty && len(parts) == seqPartitions && slices.Equal(parts, slices.Compact(slices.Clone(parts))) {
			for g := range gens {
				return g
			}
		}
		select {
		case <-changed[0]:
		case <-changed[len(changed)-1]:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			var s []string
			for _, m := range members {
				s = append(s, m.name+": "+m.handler.assignmentsString())
			}
			t.Fatalf("members never shared one generation: %s", strings.Join(s, "; "))
		}
	}
}
