//go:build chaos

package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// The pipeline's window, in event time (ms); windowsYAML must agree.
const (
	windowMs   = 2000
	graceMs    = 500
	latenessMs = 500
)

// event is one input event.
type event struct {
	ID string `json:"id"`
	K  string `json:"k"`
	V  int64  `json:"v"`
	TS int64  `json:"ts"` // Unix ms
}

// send is one record to produce: an event, sent for the first time or
// again (a duplicate).
type send struct {
	ev  event
	dup bool
}

// input is the planned input of a run.
type input struct {
	events    []event // the distinct events, in event time order
	sends     []send  // what the producer writes, in order
	immediate int     // duplicates sent right after their original
	delayed   int     // duplicates sent later, before their window closes
	maxTS     int64   // greatest event time of the regular events
}

// planInput makes n events over keys keys, event time advancing by one
// millisecond per event from t0 (a 2s window then holds 2000 events, ~10
// per key), with about dupRate of them sent twice. A duplicate goes either
// right after its original or after a later event whose time is still at
// least 200ms short of closing the original's window (end + grace +
// lateness), so it is never late: only the idempotency store can drop it.
func planInput(rnd *rand.Rand, n, keys int, dupRate float64, t0 int64) *input {
	in := &input{}
	ts := func(i int) int64 { return t0 + int64(i) }
	for i := range n {
		in.events = append(in.events, event{
			ID: fmt.Sprintf("e%07d", i),
			K:  fmt.Sprintf("k%03d", rnd.IntN(keys)),
			V:  1 + rnd.Int64N(1000),
			TS: ts(i),
		})
	}
	in.maxTS = ts(n - 1)
	later := map[int][]event{} // sent after event i
	for i, ev := range in.events {
		if rnd.Float64() >= dupRate {
			continue
		}
		if rnd.IntN(2) == 0 {
			later[i] = append(later[i], ev)
			in.immediate++
			continue
		}
		end := windowStart(ev.TS) + windowMs
		limit := end + graceMs + latenessMs - 200
		last := i + 1
		for last+1 < n && ts(last+1) <= limit {
			last++
		}
		if last >= n {
			last = n - 1
		}
		j := i + 1 + rnd.IntN(max(1, last-i))
		if j >= n {
			j = n - 1
		}
		later[j] = append(later[j], ev)
		in.delayed++
	}
	for i, ev := range in.events {
		in.sends = append(in.sends, send{ev: ev})
		for _, d := range later[i] {
			in.sends = append(in.sends, send{ev: d, dup: true})
		}
	}
	return in
}

func windowStart(ts int64) int64 { return ts - ((ts%windowMs)+windowMs)%windowMs }

func message(topic string, ev event) *sarama.ProducerMessage {
	b, _ := json.Marshal(ev)
	return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(ev.K), Value: sarama.ByteEncoder(b)}
}

// newProducer returns an idempotent producer that partitions by the
// Java-compatible murmur2 hash of the key, as the workers' sinks do: a
// retried send never writes a record twice, so every duplicate in the
// topic is one the test planned.
func newProducer(brokers []string) (sarama.SyncProducer, error) {
	cfg := testenv.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner // idempotent: see testenv.SaramaConfig
	cfg.Producer.Retry.Max = 10
	return sarama.NewSyncProducer(brokers, cfg)
}

// produceInput writes in.sends to topic at about rate records a second,
// until done or ctx ends; progress receives the number sent so far. Each
// send holds gate's read lock: the broker restart takes the write lock,
// so that no send is in flight or begins while the broker is down (sarama
// fails a send at once when it cannot look up a leader, and a send
// repeated by hand could write a record twice).
func produceInput(ctx context.Context, brokers []string, topic string, in *input, rate int, progress func(int), gate *sync.RWMutex) error {
	p, err := newProducer(brokers)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer p.Close()
	const tick = 100 * time.Millisecond
	per := max(1, rate/10)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for i := 0; i < len(in.sends); i += per {
		batch := make([]*sarama.ProducerMessage, 0, per)
		for _, s := range in.sends[i:min(i+per, len(in.sends))] {
			batch = append(batch, message(topic, s.ev))
		}
		gate.RLock()
		err := p.SendMessages(batch)
		gate.RUnlock()
		if err != nil {
			var perrs sarama.ProducerErrors
			if errors.As(err, &perrs) && len(perrs) > 0 {
				err = fmt.Errorf("%w (first: %w)", err, perrs[0].Err)
			}
			return fmt.Errorf("produce records %d..%d: %w", i, i+len(batch)-1, err)
		}
		progress(i + len(batch))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return nil
}

// closingKey returns a key that murmur2 puts in partition part of n.
func closingKey(part, n int32) string {
	pt := sarama.NewMurmur2Partitioner("")
	for i := 0; ; i++ {
		k := fmt.Sprintf("close-%d-%d", part, i)
		got, err := pt.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(k)}, n)
		if err == nil && got == part {
			return k
		}
	}
}

// winKey names one window of one key.
type winKey struct {
	key   string
	start int64
}

// result is one window's aggregate.
type result struct {
	Count    int64 `json:"count"`
	Sum      int64 `json:"sum"`
	Distinct int64 `json:"distinct"`
}

// reference computes every window's expected result from the records of
// the input topic: count and sum over distinct event IDs, and the number
// of distinct IDs. Events whose key is in skip (the closing events, whose
// windows never close) are left out. It fails if two records with one ID
// differ.
func reference(recs []*sarama.ConsumerMessage, skip map[string]bool) (map[winKey]result, int, error) {
	seen := map[string]string{}
	ref := map[winKey]result{}
	for _, m := range recs {
		var ev event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			return nil, 0, fmt.Errorf("input partition %d offset %d: %w", m.Partition, m.Offset, err)
		}
		if prev, ok := seen[ev.ID]; ok {
			if prev != string(m.Value) {
				return nil, 0, fmt.Errorf("input event %s sent with two values: %s and %s", ev.ID, prev, m.Value)
			}
			continue
		}
		seen[ev.ID] = string(m.Value)
		if skip[ev.K] {
			continue
		}
		w := winKey{ev.K, windowStart(ev.TS)}
		r := ref[w]
		r.Count++
		r.Sum += ev.V
		r.Distinct++
		ref[w] = r
	}
	return ref, len(seen), nil
}
