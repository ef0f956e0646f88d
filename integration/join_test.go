package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

const joinPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source:
  topics: [%s]
  event_id: event.id
  event_time: event.ts
state: %s
dedup: {enabled: true}
flush: {max_messages: 100, interval: 50ms}
steps:
  - join:
      name: paid
      with: {topics: [%s], event_id: event.pid, event_time: event.ts}
      on: {left: event.id, right: event.order}
      within: 10s
      grace: 1s
      type: %s
      late: {topic: %s}
      select: {order: left.id, total: left.total, payment: right.pid, amount: right.amount}
sink: {topic: %s}
`

// joinOrder and joinPayment are the two inputs; ts is event time, Unix ms.
type joinOrder struct {
	ID    string `json:"id"`
	TS    int64  `json:"ts"`
	Total int64  `json:"total"`
}

type joinPayment struct {
	PID    string `json:"pid"`
	Order  string `json:"order"`
	TS     int64  `json:"ts"`
	Amount int64  `json:"amount"`
}

// joinRow is one output: a pair, or one side with the other null.
type joinRow struct {
	Order   *string `json:"order"`
	Total   *int64  `json:"total"`
	Payment *string `json:"payment"`
	Amount  *int64  `json:"amount"`
}

func (r joinRow) String() string {
	s := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}
	n := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%s/%s ⨝ %s/%s", s(r.Order), n(r.Total), s(r.Payment), n(r.Amount))
}

// joinInput generates orders and payments: payments for about 70% of the
// orders, at -3 s to +14 s from the order (within is 10 s: some miss),
// some orders paid twice, a few payments for orders that do not exist,
// every stream out of order by up to 800 ms (under the 1 s grace, so no
// event is late) and some events repeated (the same ID: duplicates).
func joinInput(seed uint64) ([]joinOrder, []joinPayment) {
	r := rand.New(rand.NewPCG(seed, 9))
	t0 := int64(1_700_000_000_000)
	var orders []joinOrder
	var pays []joinPayment
	for i := range 240 {
		o := joinOrder{ID: fmt.Sprintf("o%03d", i), TS: t0 + int64(i)*150, Total: r.Int64N(900) + 100}
		orders = append(orders, o)
		for n := range 1 + r.IntN(2)*r.IntN(2) { // one payment, sometimes two
			if r.IntN(10) < 7 {
				pays = append(pays, joinPayment{PID: fmt.Sprintf("p%03d-%d", i, n), Order: o.ID,
					TS: o.TS - 3000 + r.Int64N(17_000), Amount: r.Int64N(900) + 1})
			}
		}
		if r.IntN(25) == 0 {
			pays = append(pays, joinPayment{PID: fmt.Sprintf("x%03d", i), Order: fmt.Sprintf("ghost%03d", i),
				TS: o.TS + r.Int64N(2000), Amount: 7})
		}
	}
	// Each stream in time order, then shuffled locally by up to 800 ms.
	slices.SortFunc(pays, func(a, b joinPayment) int { return int(a.TS - b.TS) })
	jitter := func(n int, ts func(int) int64, swap func(i, j int)) {
		for i := 1; i < n; i++ {
			if j := i - 1; r.IntN(3) == 0 && ts(i)-ts(j) < 800 {
				swap(i, j)
			}
		}
	}
	jitter(len(orders), func(i int) int64 { return orders[i].TS }, func(i, j int) { orders[i], orders[j] = orders[j], orders[i] })
	jitter(len(pays), func(i int) int64 { return pays[i].TS }, func(i, j int) { pays[i], pays[j] = pays[j], pays[i] })
	return orders, pays
}

// joinReference computes the join's outputs from the inputs, apart from
// eddy: every pair with equal key at most within apart, then, as the type
// says, the orders and payments that have none.
func joinReference(orders []joinOrder, pays []joinPayment, typ string, within int64) map[string]int {
	ref := map[string]int{}
	matchedO, matchedP := map[string]bool{}, map[string]bool{}
	for _, o := range orders {
		for _, p := range pays {
			if p.Order == o.ID && max(o.TS-p.TS, p.TS-o.TS) <= within {
				ref[joinRowOf(&o, &p).String()]++
				matchedO[o.ID], matchedP[p.PID] = true, true
			}
		}
	}
	if typ == "left" || typ == "outer" {
		for _, o := range orders {
			if !matchedO[o.ID] {
				ref[joinRowOf(&o, nil).String()]++
			}
		}
	}
	if typ == "right" || typ == "outer" {
		for _, p := range pays {
			if !matchedP[p.PID] {
				ref[joinRowOf(nil, &p).String()]++
			}
		}
	}
	return ref
}

func joinRowOf(o *joinOrder, p *joinPayment) joinRow {
	var r joinRow
	if o != nil {
		r.Order, r.Total = &o.ID, &o.Total
	}
	if p != nil {
		r.Payment, r.Amount = &p.PID, &p.Amount
	}
	return r
}

// TestJoinIsExactWithOneInputReadFirst runs an interval join of orders
// (3 partitions, keyed by order) with payments (2 partitions, keyed by
// payment: not co-partitioned) for each type, on Redis and MariaDB state.
// The orders' whole backlog is read before any payment exists: no output
// may appear then (a left or outer join emitting "never paid" now would be
// contradicted by the payments to come), since the join's watermark is
// the minimum over both inputs' partitions. Then the payments arrive, and
// the output must equal the reference, each output once; an event behind
// the watermark goes to the late topic.
func TestJoinIsExactWithOneInputReadFirst(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const within = 10_000
	orders, pays := joinInput(11)
	far := time.Now().UnixMilli() // the closers' time: every interval before it closes (and not ahead of the clock)
	for _, be := range aggBackends {
		t.Run(be.name, func(t *testing.T) {
			ordersTopic, paysTopic := testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 2)
			var oMsgs, pMsgs []*sarama.ProducerMessage
			for i, o := range orders {
				b, _ := json.Marshal(o)
				oMsgs = append(oMsgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(o.ID), Value: sarama.ByteEncoder(b)})
				if i%20 == 0 { // a duplicate, dropped by event_id
					oMsgs = append(oMsgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(o.ID), Value: sarama.ByteEncoder(b)})
				}
			}
			for i, p := range pays {
				b, _ := json.Marshal(p)
				pMsgs = append(pMsgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(p.PID), Value: sarama.ByteEncoder(b)})
				if i%15 == 0 {
					pMsgs = append(pMsgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(p.PID), Value: sarama.ByteEncoder(b)})
				}
			}
			closers := func(topic string, parts int, body func(p int) string) []*sarama.ProducerMessage {
				var out []*sarama.ProducerMessage
				for p := range parts {
					out = append(out, &sarama.ProducerMessage{Topic: topic, Partition: int32(p), Value: sarama.StringEncoder(body(p))})
				}
				return out
			}
			type run struct {
				typ      string
				out, lat string
				name     string
				w        *processor.Worker
				store    statedb.Store
				stop     func()
			}
			var runs []*run
			for _, typ := range []string{"inner", "left", "right", "outer"} {
				r := &run{typ: typ, out: testenv.Topic(t, brokers, 3), lat: testenv.Topic(t, brokers, 1)}
				name := testenv.Unique("join" + typ)
				p := loadPipeline(t, joinPipeline, name, ordersTopic, be.state(t), paysTopic, typ, r.lat, r.out)
				t.Cleanup(func() { deleteTopics(t, brokers, pipeline.InternalTopic(name, "paid")) })
				r.name, r.store = name, openStore(t, p)
				r.w, r.stop = startWorker(t, typ, p, brokers, testenv.Group(t), r.store)
				runs = append(runs, r)
			}
			produce(t, brokers, ordersTopic, oMsgs)
			produceManual(t, brokers, closers(ordersTopic, 3, func(p int) string {
				return fmt.Sprintf(`{"id":"close-o%d","ts":%d,"total":0}`, p, far)
			}))
			for _, r := range runs {
				waitFor(t, 60*time.Second, r.typ+": every order routed into the join", func() bool {
					return r.w.Stats().Repartitioned >= uint64(len(orders)+3)
				})
			}
			time.Sleep(time.Second) // the join tasks flush what they would emit
			for _, r := range runs {
				if o := r.w.Stats().Out; o != 0 {
					t.Fatalf("%s join: %d outputs before any payment was read: emitted on the orders' watermark alone", r.typ, o)
				}
			}
			produce(t, brokers, paysTopic, pMsgs)
			produceManual(t, brokers, closers(paysTopic, 2, func(p int) string {
				return fmt.Sprintf(`{"pid":"close-p%d","order":"none","ts":%d,"amount":0}`, p, far)
			}))
			refs := map[string]map[string]int{}
			for _, r := range runs {
				ref := joinReference(orders, pays, r.typ, within)
				refs[r.typ] = ref
				n := 0
				for _, c := range ref {
					n += c
				}
				waitFor(t, 90*time.Second, fmt.Sprintf("%s join: %d outputs", r.typ, n), func() bool { return r.w.Stats().Out >= uint64(n) })
			}
			// An order far behind the join's watermark: late.
			produce(t, brokers, ordersTopic, []*sarama.ProducerMessage{{Key: sarama.StringEncoder("late"),
				Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"late-order","ts":%d,"total":1}`, orders[0].TS))}})
			for _, r := range runs {
				waitFor(t, 30*time.Second, r.typ+": the late order counted", func() bool { return r.w.Stats().Late >= 1 })
				r.stop()
			}
			for _, r := range runs {
				ref := refs[r.typ]
				n := 0
				for _, c := range ref {
					n += c
				}

				got := testenv.ReadCommitted(t, brokers, r.out, 30*time.Second)
				rows, ids := map[string]int{}, map[string]bool{}
				for _, m := range got {
					var row joinRow
					if err := json.Unmarshal(m.Value, &row); err != nil {
						t.Fatalf("%s: output %s: %v", r.typ, m.Value, err)
					}
					id := header(m, processor.IDHeader)
					if ids[id] {
						t.Errorf("%s: output ID %s twice", r.typ, id)
					}
					ids[id] = true
					rows[row.String()]++
				}
				if !maps.Equal(rows, ref) {
					var diff []string
					for k, c := range ref {
						if rows[k] != c {
							diff = append(diff, fmt.Sprintf("%s: got %d, want %d", k, rows[k], c))
						}
					}
					for k, c := range rows {
						if _, ok := ref[k]; !ok {
							diff = append(diff, fmt.Sprintf("%s: got %d, want 0", k, c))
						}
					}
					slices.Sort(diff)
					t.Errorf("%s join: %d outputs, reference %d; %d rows differ:\n%s", r.typ, len(got), n, len(diff), strings.Join(diff[:min(len(diff), 20)], "\n"))
				}
				late := testenv.ReadCommitted(t, brokers, r.lat, 30*time.Second)
				if len(late) != 1 || !strings.Contains(string(late[0].Value), "late-order") || header(late[0], processor.HeaderStep) != "steps[0].join" {
					t.Errorf("%s: late topic holds %d records, want the late order with step steps[0].join", r.typ, len(late))
				}
				if s := r.w.Stats(); s.Duplicates < uint64(len(orders)/20) {
					t.Errorf("%s: %d duplicates dropped, want at least %d", r.typ, s.Duplicates, len(orders)/20)
				}
				// Buffers are deleted as their intervals close: only the
				// closers' keys (never closed) hold rows, each with its timer.
				var left []string
				for part := range int32(3) {
					ts, err := r.store.Due(t.Context(), statedb.Partition{Topic: pipeline.InternalTopic(r.name, "paid"), Partition: part}, "", math.MaxInt64, 1000)
					if err != nil {
						t.Fatal(err)
					}
					for _, tm := range ts {
						left = append(left, tm.Key[strings.LastIndexByte(tm.Key, 0)+1:])
					}
				}
				slices.Sort(left)
				if want := []string{"close-o0", "close-o1", "close-o2", "none"}; !slices.Equal(left, want) {
					t.Errorf("%s: join buffers left with timers for keys %q, want only the closers' %q", r.typ, left, want)
				}
				t.Logf("%s join: %d outputs equal the reference", r.typ, len(got))
			}
		})
	}
}

// produceManual produces msgs to the partitions they name.
func produceManual(t *testing.T, brokers []string, msgs []*sarama.ProducerMessage) {
	t.Helper()
	cfg := testenv.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// TestJoinReplayGivesTheSameOutputs: a join task that has produced its
// batch's outputs dies before its store commit (worker A freezes there, a
// flush hook, and is removed from the group); worker B takes the
// partition from the stored offset and runs the batch again. It must
// produce the same outputs: the same IDs with the same content, so that
// a reader deduplicating by eddy-id sees each row once, and the rows are
// the reference's.
func TestJoinReplayGivesTheSameOutputs(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	ordersTopic, paysTopic, out, lat := testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 2), testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 1)
	group, name := testenv.Group(t), testenv.Unique("joinreplay")
	yaml := strings.Replace(joinPipeline, "kafka: {brokers: [unused:9092]}", "kafka: {brokers: [unused:9092], session_timeout: 6s}", 1)
	p := loadPipeline(t, yaml, name, ordersTopic, "{backend: memory}", paysTopic, "left", lat, out)
	internal := pipeline.InternalTopic(name, "paid")
	t.Cleanup(func() { deleteTopics(t, brokers, internal) })
	store := memory.New() // shared by A and B, as a Redis would be

	orders, pays := joinInput(23)
	far := time.Now().UnixMilli()
	var oMsgs, pMsgs []*sarama.ProducerMessage
	for _, o := range orders {
		b, _ := json.Marshal(o)
		oMsgs = append(oMsgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(o.ID), Value: sarama.ByteEncoder(b)})
	}
	for _, py := range pays {
		b, _ := json.Marshal(py)
		pMsgs = append(pMsgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(py.PID), Value: sarama.ByteEncoder(b)})
	}

	frozen, release := make(chan struct{}), make(chan struct{})
	var once, releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var armed atomic.Bool
	hook := func(_ context.Context, part statedb.Partition, s processor.FlushStage) {
		if part.Topic == internal && s == processor.BeforeCommit && armed.CompareAndSwap(true, false) {
			once.Do(func() { close(frozen) })
			<-release
		}
	}
	wa, stopA := startWorker(t, "A", p, brokers, group, store, processor.WithInstanceID("join-a"), processor.WithFlushHook(hook))
	defer stopA()
	produce(t, brokers, ordersTopic, oMsgs)
	waitFor(t, 60*time.Second, "A to route every order", func() bool { return wa.Stats().Repartitioned >= uint64(len(orders)) })
	time.Sleep(time.Second) // the join tasks flush the orders' buffers
	armed.Store(true)       // the next join flush holds payments: pairs
	produce(t, brokers, paysTopic, pMsgs)
	select {
	case <-frozen:
	case <-time.After(60 * time.Second):
		t.Fatal("worker A never reached a join task's store commit")
	}
	removeMember(t, brokers, group, "join-a")
	// A's other tasks end with its session; only then does B come, so
	// that none of them has work left for its fenced producer. (A fenced
	// sarama transactional producer's retries race inside sarama, which
	// go test -race reports; the frozen task has produced already and
	// meets the store's fence, not the producer's.)
	waitFor(t, 30*time.Second, "A's session to end", func() bool { return wa.Stats().Partitions <= 1 })
	_, stopB := startWorker(t, "B", p, brokers, group, store, processor.WithInstanceID("join-b"))
	defer stopB()
	produceManual(t, brokers, []*sarama.ProducerMessage{
		{Topic: ordersTopic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"close-o0","ts":%d,"total":0}`, far))},
		{Topic: ordersTopic, Partition: 1, Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"close-o1","ts":%d,"total":0}`, far))},
		{Topic: ordersTopic, Partition: 2, Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"close-o2","ts":%d,"total":0}`, far))},
		{Topic: paysTopic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf(`{"pid":"close-p0","order":"none","ts":%d,"amount":0}`, far))},
		{Topic: paysTopic, Partition: 1, Value: sarama.StringEncoder(fmt.Sprintf(`{"pid":"close-p1","order":"none","ts":%d,"amount":0}`, far))},
	})
	ref := joinReference(orders, pays, "left", 10_000)
	n := 0
	for _, c := range ref {
		n += c
	}
	var got []*sarama.ConsumerMessage
	byID := map[string]string{}
	waitFor(t, 90*time.Second, fmt.Sprintf("%d distinct outputs", n), func() bool {
		got = testenv.ReadCommitted(t, brokers, out, 30*time.Second)
		clear(byID)
		for _, m := range got {
			byID[header(m, processor.IDHeader)] = string(m.Value)
		}
		return len(byID) >= n
	})
	releaseOnce.Do(func() { close(release) })
	time.Sleep(time.Second)
	stopB()
	stopA()

	rows, repeats := map[string]int{}, 0
	seen := map[string]string{}
	for _, m := range got {
		id := header(m, processor.IDHeader)
		if prev, ok := seen[id]; ok {
			repeats++
			if prev != string(m.Value) {
				t.Errorf("output %s twice with different content:\n%s\n%s", id, prev, m.Value)
			}
			continue
		}
		seen[id] = string(m.Value)
		var r joinRow
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		rows[r.String()]++
	}
	if !maps.Equal(rows, ref) {
		t.Errorf("%d distinct rows, reference %d: they differ", len(rows), len(ref))
	}
	if repeats == 0 {
		t.Errorf("no output produced twice: A's frozen batch held no joined row, the test proved nothing")
	}
	if wa.Stats().Fenced == 0 {
		t.Errorf("A, resumed after B took over, was not fenced")
	}
	t.Logf("%d outputs, %d distinct (%d produced again by B's replay, each identical)", len(got), len(seen), repeats)
}
