package processor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
	"github.com/eddy-streams/eddy/statedb/redis"
)

// The micro-benchmarks of the hot paths of a partition task, with the
// events and pipelines of the bench program (bench/): ~100-byte JSON
// events over 10,000 users, event time advancing 1 ms per event, batches
// of 1,000. Unless said otherwise one op is one event, so ns/op, B/op and
// allocs/op are per event. Kafka is left out (a discarding producer, a
// fake session); the state store is the memory one, except in
// BenchmarkCommitRedis.
//
//	go test -run '^$' -bench . -benchmem ./processor/

const (
	benchBatch = 1000
	benchKeys  = 10_000
	benchTS    = 1_700_000_000_000
)

const benchStatelessYAML = `
name: bench
kafka: {brokers: [fake:9092]}
source: {topics: [in]}
steps:
  - filter: event.v % 10 != 0
  - set: {total: event.v * 2, big: event.v > 500}
  - key: event.user
sink: {topic: out}
`

const benchAggregateYAML = `
name: bench
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_time: event.ts}
steps:
  - aggregate:
      name: per_user
      key: event.user
      window: {tumbling: 1m}
      values: {n: count(), total: sum(event.v)}
sink: {topic: out}
`

// discardProducer acknowledges every message at once.
type discardProducer struct {
	sarama.SyncProducer // unused methods panic
	n                   int
}

func (p *discardProducer) SendMessages(ms []*sarama.ProducerMessage) error {
	p.n += len(ms)
	return nil
}

// newBenchTask returns a task over partition in/0 of store that has
// claimed its partition, ready for process and flush.
func newBenchTask(b testing.TB, yaml string, store statedb.Store) *task {
	b.Helper()
	return newBenchTaskOn(b, "in", yaml, store)
}

// newBenchTaskOn is newBenchTask on partition 0 of topic.
func newBenchTaskOn(b testing.TB, topic, yaml string, store statedb.Store) *task {
	b.Helper()
	p, err := pipeline.Parse("bench.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(p, WithStore(store))
	if err != nil {
		b.Fatal(err)
	}
	sess := &fakeSession{ctx: context.Background()}
	claim := &fakeClaim{topic: topic, msgs: make(chan *sarama.ConsumerMessage)}
	hd := &handler{w: w, producer: &discardProducer{}, marked: make(chan struct{}, 1)}
	t, err := newTask(hd, sess, claim)
	if err != nil {
		b.Fatal(err)
	}
	if err := t.acquire(context.Background()); err != nil {
		b.Fatal(err)
	}
	return t
}

// benchSource makes the bench program's events: offset o is event o, of a
// random user, at event time benchTS + o.
type benchSource struct {
	rnd   *rand.Rand
	users []string
	next  int64
}

func newBenchSource() *benchSource {
	s := &benchSource{rnd: rand.New(rand.NewPCG(1, 2)), users: make([]string, benchKeys)}
	for i := range s.users {
		s.users[i] = fmt.Sprintf("u%05d", i)
	}
	return s
}

func (s *benchSource) batch(n int) []*sarama.ConsumerMessage {
	msgs := make([]*sarama.ConsumerMessage, n)
	for i := range msgs {
		o := s.next
		s.next++
		u := s.users[s.rnd.IntN(len(s.users))]
		v := fmt.Sprintf(`{"id":"e%d","user":"%s","v":%d,"ts":%d,"pt":%d,"pad":"xxxxx"}`,
			o, u, s.rnd.IntN(1000), benchTS+o, time.Now().UnixNano())
		msgs[i] = &sarama.ConsumerMessage{Topic: "in", Partition: 0, Offset: o, Key: []byte(u), Value: []byte(v),
			Timestamp: time.UnixMilli(benchTS + o)}
	}
	return msgs
}

// forBatches runs f over b.N events in batches, making each batch with
// the timer stopped.
func forBatches(b *testing.B, src *benchSource, f func(msgs []*sarama.ConsumerMessage)) {
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		b.StopTimer()
		msgs := src.batch(n)
		b.StartTimer()
		f(msgs)
		done += n
	}
}

// BenchmarkTaskDecode is the per-message decode: record, JSON, event ID
// and event time (the aggregate pipeline's source).
func BenchmarkTaskDecode(b *testing.B) {
	t := newBenchTask(b, benchAggregateYAML, memory.New())
	src := newBenchSource()
	forBatches(b, src, func(msgs []*sarama.ConsumerMessage) {
		for _, m := range msgs {
			var r Record
			if _, err := t.decode(context.Background(), &r, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProcessAndFlush is a task's whole work per event, batch by
// batch: decode, steps, sink encoding, and the flush (the produce
// discarded, the commit into the memory store).
func BenchmarkProcessAndFlush(b *testing.B) {
	for _, bc := range []struct{ name, yaml string }{
		{"stateless", benchStatelessYAML},
		{"aggregate", benchAggregateYAML},
	} {
		b.Run(bc.name, func(b *testing.B) {
			t := newBenchTask(b, bc.yaml, memory.New())
			src := newBenchSource()
			ctx := context.Background()
			forBatches(b, src, func(msgs []*sarama.ConsumerMessage) {
				if err := t.process(ctx, msgs); err != nil {
					b.Fatal(err)
				}
				if err := t.flush(ctx); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkWindowUpdate is the aggregate step alone (aggOp.process and
// fire after the watermark's advance: group
// keys, window assignment, state reads from the cache, accumulator
// updates, closing due windows, encoding changed state into the cache)
// over decoded records; the cache is marked committed after each batch
// without writing to the store.
func BenchmarkWindowUpdate(b *testing.B) {
	t := newBenchTask(b, benchAggregateYAML, memory.New())
	op := t.ops[0].(*aggOp)
	src := newBenchSource()
	ctx := context.Background()
	recs := make([]*Record, 0, benchBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		b.StopTimer()
		recs = recs[:0]
		for _, m := range src.batch(n) {
			r := new(Record)
			if _, err := t.decode(context.Background(), r, m); err != nil {
				b.Fatal(err)
			}
			t.last = m.Offset
			recs = append(recs, r)
		}
		b.StartTimer()
		t.advance(recs)
		if _, err := op.process(ctx, t.ctxs[0], recs); err != nil {
			b.Fatal(err)
		}
		if _, err := op.fire(ctx, t.ctxs[0]); err != nil {
			b.Fatal(err)
		}
		t.state.committed()
		done += n
	}
}

// benchDirtyCache returns a cache holding n dirty window states of the
// aggregate step (about 10 bytes each) with their timers, as after one
// batch of n events over n keys.
func benchDirtyCache(store statedb.Store, n int) *cache {
	c := newCache(store, statedb.Partition{Topic: "in"}, 100_000)
	for i := range n {
		k := "w\x00per_user\x00" + strconv.Itoa(benchTS) + "\x00u" + strconv.Itoa(i)
		c.put(k, []byte("\x02\x0a\x80\x94\xeb\xdc\x03"), 0)
		c.setTimer(k, benchTS+60_000)
	}
	return c
}

// BenchmarkCacheCommit builds the store commit of one batch's dirty
// state (1,000 window states and their timers); one op is one commit.
func BenchmarkCacheCommit(b *testing.B) {
	c := benchDirtyCache(memory.New(), benchBatch)
	meta := encodeMeta(map[string][]byte{"per_user": []byte("0123456789")})
	b.ReportAllocs()
	for b.Loop() {
		cm := c.commit(1, 42, meta)
		if len(cm.Puts) != benchBatch {
			b.Fatalf("%d puts", len(cm.Puts))
		}
	}
}

// BenchmarkCommitRedis is cache.commit plus Store.Commit of one batch's
// state (1,000 window states and timers) into the Redis of testenv: the
// script arguments built by statedb/redis, the EVALSHA round trip and
// the script's run on the server. One op is one commit.
func BenchmarkCommitRedis(b *testing.B) {
	ctx := context.Background()
	st, err := redis.New(ctx, redis.Config{Addrs: []string{testenv.RedisAddr(b)}, KeyPrefix: testenv.RedisPrefix(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	part := statedb.Partition{Topic: "in"}
	claim, err := st.Acquire(ctx, part)
	if err != nil {
		b.Fatal(err)
	}
	c := benchDirtyCache(st, benchBatch)
	meta := encodeMeta(map[string][]byte{"per_user": []byte("0123456789")})
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		off++
		if err := st.Commit(ctx, c.commit(claim.Epoch, off, meta)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSink is the sink's encoding of records that went through the
// stateless pipeline's steps: key, JSON, output ID and headers, into
// producer messages.
func BenchmarkSink(b *testing.B) {
	t := newBenchTask(b, benchStatelessYAML, memory.New())
	src := newBenchSource()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		b.StopTimer()
		recs := make([]*Record, 0, n)
		for _, m := range src.batch(n) {
			r := new(Record)
			if _, err := t.decode(context.Background(), r, m); err != nil {
				b.Fatal(err)
			}
			recs = append(recs, r)
		}
		for i, o := range t.ops {
			var err error
			if recs, err = o.process(ctx, t.ctxs[i], recs); err != nil {
				b.Fatal(err)
			}
		}
		clear(t.out)
		t.out, t.emitted = t.out[:0], t.emitted[:0]
		b.StartTimer()
		if err := t.sink(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
		done += n
	}
}

const benchJoinYAML = `
name: bench
kafka: {brokers: [fake:9092]}
source: {topics: [in], event_time: event.ts}
steps:
  - join:
      name: j
      with: {topics: [pay], event_time: event.ts}
      on: {left: event.order, right: event.order}
      within: 5s
      type: left
sink: {topic: out}
`

// joinBenchSource makes a join task's input as its internal topic holds
// it: per order, its left event then its right event 1 ms later, over a
// window of 10,000 orders in flight, and after each batch a watermark
// marker from each input 2 s behind (so intervals close and buffers are
// deleted as they go, as in a live join).
type joinBenchSource struct {
	next   int64 // events made
	offset int64 // messages made (events and markers)
}

func (s *joinBenchSource) batch(n int) []*sarama.ConsumerMessage {
	msgs := make([]*sarama.ConsumerMessage, 0, n+2)
	for range n {
		o := s.next
		s.next++
		order := fmt.Sprintf("o%07d", o/2)
		side := byte('l')
		if o%2 == 1 {
			side = 'r'
		}
		ts := benchTS + o
		s.offset++
		msgs = append(msgs, &sarama.ConsumerMessage{Topic: "eddy-bench-j", Offset: s.offset, Key: []byte(order),
			Value: []byte(fmt.Sprintf(`{"order":"%s","v":%d,"pad":"xxxxxxxxxxxxxxxx"}`, order, o%1000)),
			Headers: []*sarama.RecordHeader{
				{Key: []byte(IDHeader), Value: []byte(fmt.Sprintf("id%d", o))},
				{Key: []byte(headerEventTime), Value: strconv.AppendInt(nil, ts, 10)},
				{Key: []byte(headerSide), Value: []byte{side}},
			}})
	}
	wm := strconv.AppendInt(nil, benchTS+s.next-2000, 10)
	for _, from := range []string{"in/0", "pay/0"} {
		s.offset++
		msgs = append(msgs, &sarama.ConsumerMessage{Topic: "eddy-bench-j", Offset: s.offset,
			Headers: []*sarama.RecordHeader{{Key: []byte(headerMarker), Value: []byte(from)}, {Key: []byte(headerMarkerWM), Value: wm}}})
	}
	return msgs
}

// BenchmarkStateful is a stateful task's whole work per event (decode,
// operator, sink encoding, flush), on the memory store and on the Redis
// of testenv: the aggregate of the bench program, and an interval join
// (each event buffered, matched once, its buffer deleted when its
// interval closes). Besides ns/op it reports the store round trips per
// 1,000 events.
func BenchmarkStateful(b *testing.B) {
	for _, backend := range []string{"memory", "redis"} {
		for _, kind := range []string{"aggregate", "join"} {
			b.Run(backend+"/"+kind, func(b *testing.B) {
				var st statedb.Store = memory.New()
				if backend == "redis" {
					rs, err := redis.New(context.Background(), redis.Config{Addrs: []string{testenv.RedisAddr(b)}, KeyPrefix: testenv.RedisPrefix(b)})
					if err != nil {
						b.Fatal(err)
					}
					defer rs.Close()
					st = rs
				}
				ctx := context.Background()
				run := func(t *task, msgs []*sarama.ConsumerMessage) {
					if err := t.process(ctx, msgs); err != nil {
						b.Fatal(err)
					}
					if err := t.flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
				var t *task
				if kind == "aggregate" {
					t = newBenchTask(b, benchAggregateYAML, st)
					src := newBenchSource()
					forBatches(b, src, func(msgs []*sarama.ConsumerMessage) { run(t, msgs) })
				} else {
					t = newBenchTaskOn(b, "eddy-bench-j", benchJoinYAML, st)
					src := &joinBenchSource{}
					b.ReportAllocs()
					b.ResetTimer()
					for done := 0; done < b.N; {
						n := min(benchBatch, b.N-done)
						b.StopTimer()
						msgs := src.batch(n)
						b.StartTimer()
						run(t, msgs)
						done += n
					}
				}
				if p := t.h.producer.(*discardProducer); kind == "join" && p.n < b.N/2-benchBatch {
					b.Fatalf("%d outputs of %d events: the pairs were not all joined", p.n, b.N)
				}
				b.ReportMetric(float64(t.w.stats.storeCalls.Load())*1000/float64(b.N), "store-calls/1k-events")
			})
		}
	}
}
