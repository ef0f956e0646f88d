package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/dedup"
	"github.com/eddy-streams/eddy/route"
)

// Counters count an ingest's records and deliveries. They are safe for
// concurrent use: the readers count Read and Rejected, the Publisher the
// rest.
type Counters struct {
	Read     atomic.Int64 // records read, good and bad
	Rejected atomic.Int64 // bad records
	Sent     atomic.Int64 // Kafka records handed to the producer (a multicast record: one per partition)
	Acked    atomic.Int64 // Kafka records the brokers acknowledged
	Failed   atomic.Int64 // Kafka records the producer gave up on
}

// ErrClosed is returned by Send once Close has been called.
var ErrClosed = errors.New("ingest: publisher closed")

// ErrTooLarge wraps the error of Send for a record larger than the
// producer's Producer.MaxMessageBytes: a bad record, sent nowhere.
var ErrTooLarge = errors.New("record too large")

// ConfigureProducer sets cfg's producer settings for ingesting: an
// idempotent producer (a retried send is written once) waiting for every
// in-sync replica, one request in flight per broker (which idempotence
// needs, and which keeps each partition's records in input order across
// retries), 10 retries 250 ms apart, successes and errors returned, the
// partition chosen by the sender (package route), and no topic created by
// a metadata request.
func ConfigureProducer(cfg *sarama.Config) {
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.ChannelBufferSize = 1024
}

// Publisher produces records to one topic through an async producer,
// placing each with a route.Router, and accounts for every delivery in
// the Batch it was sent for. Send may be called from many goroutines at
// once; one goroutine of its own reads the producer's results.
type Publisher struct {
	topic     string
	parts     int32
	router    route.Router
	multicast bool
	maxBytes  int
	c         *Counters

	producer    sarama.AsyncProducer
	closeClient func() error

	// mu is held for reading by every Send, for writing by Close, which
	// thereby waits for the senders to leave before closing the input.
	mu        sync.RWMutex
	closed    bool
	closing   chan struct{} // closed by Close: wakes blocked senders
	closeOnce sync.Once
	collected chan struct{} // closed when the producer's results are all read
}

// NewPublisher connects to brokers with cfg (ConfigureProducer is applied
// to it), learns topic's partition count, which it keeps for its life,
// and starts the producer. The topic must exist. Counters c are updated
// as records are sent and acknowledged.
func NewPublisher(brokers []string, cfg *sarama.Config, topic string, policy route.Policy, c *Counters) (*Publisher, error) {
	router, err := route.New(policy)
	if err != nil {
		return nil, err
	}
	ConfigureProducer(cfg)
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka %v: %w", brokers, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		_ = client.Close()
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %q does not exist (worker ingest creates no topics)", topic)
		}
		return nil, fmt.Errorf("topic %q: %w", topic, err)
	}
	producer, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return newPublisher(producer, client.Close, topic, int32(len(parts)), router, policy, cfg.Producer.MaxMessageBytes, c), nil
}

// newPublisher starts a publisher on producer (a fake one in tests);
// closeClient is called once the producer is closed.
func newPublisher(producer sarama.AsyncProducer, closeClient func() error, topic string, parts int32,
	router route.Router, policy route.Policy, maxBytes int, c *Counters) *Publisher {
	p := &Publisher{
		topic: topic, parts: parts, router: router, multicast: policy == route.Multicast,
		maxBytes: maxBytes, c: c,
		closeClient: closeClient, producer: producer,
		closing: make(chan struct{}), collected: make(chan struct{}),
	}
	go p.collect()
	return p
}

// Partitions returns the topic's partition count, as learnt at the start.
func (p *Publisher) Partitions() int32 { return p.parts }

// delivery is the Metadata of a produced message: whose it is.
type delivery struct {
	b    *Batch
	line int
}

var idHeader = []byte(dedup.IDHeader)

// Send routes the record of line with this key (nil: none), ID and value
// and hands it to the producer on behalf of b: one Kafka record with the
// eddy-id header id, or, with the multicast policy, one per partition with
// the header route.CopyID(id, partition). It blocks while the producer's
// input is full. A record too large for the producer is refused at once
// (ErrTooLarge, nothing sent). When ctx ends or the publisher closes
// first, Send returns ctx.Err() or ErrClosed and the copies not yet handed
// over are not sent; those handed over are b's, acknowledged or failed.
func (p *Publisher) Send(ctx context.Context, b *Batch, line int, key []byte, id string, value []byte) error {
	if err := p.checkSize(key, id, value); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	var one [1]int32
	d := &delivery{b: b, line: line}
	for _, part := range p.router.Route(one[:0], key, id, p.parts) {
		hid := id
		if p.multicast {
			hid = route.CopyID(id, part)
		}
		m := &sarama.ProducerMessage{
			Topic: p.topic, Partition: part, Value: sarama.ByteEncoder(value),
			Headers:  []sarama.RecordHeader{{Key: idHeader, Value: []byte(hid)}},
			Metadata: d,
		}
		if key != nil {
			m.Key = sarama.ByteEncoder(key)
		}
		b.add()
		p.c.Sent.Add(1)
		select {
		case p.producer.Input() <- m:
			continue
		case <-ctx.Done():
			err := ctx.Err()
			p.c.Sent.Add(-1)
			b.unadd()
			return err
		case <-p.closing:
			p.c.Sent.Add(-1)
			b.unadd()
			return ErrClosed
		}
	}
	return nil
}

// checkSize refuses a record the producer would refuse for its size
// (sarama's own check, on the longest eddy-id the record gets).
func (p *Publisher) checkSize(key []byte, id string, value []byte) error {
	if p.multicast {
		id = route.CopyID(id, p.parts-1)
	}
	m := sarama.ProducerMessage{Value: sarama.ByteEncoder(value), Headers: []sarama.RecordHeader{{Key: idHeader, Value: []byte(id)}}}
	if key != nil {
		m.Key = sarama.ByteEncoder(key)
	}
	if n := m.ByteSize(2); n > p.maxBytes {
		return fmt.Errorf("%w: %d bytes, more than the producer's limit of %d", ErrTooLarge, n, p.maxBytes)
	}
	return nil
}

// collect reads the producer's results until both channels are closed
// (after AsyncClose), settling each message in its batch.
func (p *Publisher) collect() {
	defer close(p.collected)
	succ, errs := p.producer.Successes(), p.producer.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			p.c.Acked.Add(1)
			m.Metadata.(*delivery).b.settle(0, nil)
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			p.c.Failed.Add(1)
			d := pe.Msg.Metadata.(*delivery)
			d.b.settle(d.line, pe.Err)
		}
	}
}

// Close stops the publisher: a blocked Send returns ErrClosed, the
// producer flushes what it holds (retrying as configured), and Close
// waits for its last results, or for ctx. Call it once the senders are
// done; it is safe to call more than once.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { close(p.closing) })
	p.mu.Lock()
	first := !p.closed
	p.closed = true
	p.mu.Unlock()
	if first {
		p.producer.AsyncClose()
	}
	select {
	case <-p.collected:
	case <-ctx.Done():
		return fmt.Errorf("closing the producer: %w", ctx.Err())
	}
	if first {
		return p.closeClient()
	}
	return nil
}

// Batch accounts for the deliveries of a group of records sent together:
// one input file, one HTTP request. Its methods are safe for concurrent
// use; OnFail, when set, is called by the publisher's result goroutine
// for each failed delivery and must not block for long.
type Batch struct {
	// OnFail, if not nil, is told of every failed delivery: the record's
	// line and the producer's error. Set it before the first Send.
	OnFail func(line int, err error)

	mu       sync.Mutex
	pending  int // handed to the producer, not yet settled
	sealed   bool
	acked    int
	failed   int
	firstErr error
	done     chan struct{} // closed once sealed with nothing pending
}

// NewBatch returns an empty, open batch.
func NewBatch() *Batch { return &Batch{done: make(chan struct{})} }

func (b *Batch) add() {
	b.mu.Lock()
	b.pending++
	b.mu.Unlock()
}

func (b *Batch) unadd() {
	b.mu.Lock()
	b.pending--
	b.checkDone()
	b.mu.Unlock()
}

// settle records one delivery: acknowledged when err is nil.
func (b *Batch) settle(line int, err error) {
	b.mu.Lock()
	b.pending--
	if err == nil {
		b.acked++
	} else {
		b.failed++
		if b.firstErr == nil {
			b.firstErr = err
		}
	}
	b.checkDone()
	b.mu.Unlock()
	if err != nil && b.OnFail != nil {
		b.OnFail(line, err)
	}
}

func (b *Batch) checkDone() {
	if b.sealed && b.pending == 0 {
		select {
		case <-b.done:
		default:
			close(b.done)
		}
	}
}

// Seal says no more records will be sent for b: Wait can then return.
func (b *Batch) Seal() {
	b.mu.Lock()
	b.sealed = true
	b.checkDone()
	b.mu.Unlock()
}

// Wait waits until every record sent for the sealed batch b is
// acknowledged or failed, or ctx ends (then it returns ctx.Err()).
func (b *Batch) Wait(ctx context.Context) error {
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BatchCounts are a batch's deliveries so far.
type BatchCounts struct {
	Acked, Failed, Pending int
	FirstErr               error // the first failure's error, nil if none
}

// Counts returns b's deliveries so far.
func (b *Batch) Counts() BatchCounts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BatchCounts{Acked: b.acked, Failed: b.failed, Pending: b.pending, FirstErr: b.firstErr}
}
