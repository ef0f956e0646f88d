package integration_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
)

// TestProduceTimeout puts a TCP proxy between the worker and the broker
// (the worker's only way to it: the broker's EXTERNAL listener advertises
// the proxy) and holds every Produce response, with the rest of the
// traffic flowing, for longer than the producer waits for one (sarama's
// Net.ReadTimeout, 30 s, the worker's default). The producer times out,
// drops the connection and sends the batch again (its retry: the
// idempotent producer's sequence numbers make the broker keep one copy,
// and the test requires each window's result exactly once),
// whose response is held too; then the proxy lets responses through.
// While the responses are held, the tasks that were producing stay
// paused: no state commit, no offset past what is persisted. In the end
// the results are exact and the group's committed offsets never passed
// the store's watermarks.
func TestProduceTimeout(t *testing.T) {
	began := time.Now()
	px := newKafkaProxy(t)
	k := testenv.PrivateKafka(t, testenv.KafkaConfig{Advertise: px.addr()})
	px.serve(k.ExternalAddr())
	e := newAggEnvOn(t, k.Brokers(), aggBackends[0], aggKinds[0]) // Redis, tumbling
	inv := watchInvariant(t, k.Brokers(), e)
	pw := &produceWatch{at: map[int32]bool{}}
	w, stop := e.startAggWorker("w", processor.WithBrokers(px.addr()), processor.WithFlushHook(pw.hook))

	n1, n2 := len(e.data)/3, len(e.data)*2/3
	e.send(e.data[:n1])
	e.waitAllStored("the worker to persist the first part")
	if px.produces() == 0 {
		t.Fatal("the worker's produce requests did not go through the proxy")
	}

	// Hold the Produce responses; part 2 makes the tasks produce.
	px.hold()
	e.send(e.data[n1:n2])
	waitFor(t, 30*time.Second, "a Produce response to hold", func() bool { return px.heldCount() >= 1 })
	heldAt := time.Now()
	time.Sleep(500 * time.Millisecond) // let the tasks that flush meanwhile reach their produce
	paused := pw.producing()
	storedAtHold := storedNow(t, e)
	if len(paused) == 0 {
		t.Fatal("no task is in its produce while the responses are held")
	}
	// The producer gives up on the held response after its read
	// timeout, closes the connection and sends the batch again.
	waitFor(t, 45*time.Second, "the producer to time out and send the batch again", func() bool {
		return px.abandonedCount() >= 1 && px.heldCount() >= 2
	})
	timedOutAfter := time.Since(heldAt)
	// Still paused: those tasks have not committed state since.
	storedAtRelease := storedNow(t, e)
	still := pw.producing()
	for p := range paused {
		if !still[p] {
			t.Errorf("partition %d left its produce while every Produce response was held", p)
		}
		if storedAtRelease[p] != storedAtHold[p] {
			t.Errorf("partition %d: stored offset moved from %d to %d while its outputs were not acknowledged",
				p, storedAtHold[p], storedAtRelease[p])
		}
	}
	inv.require("while the Produce responses are held", 1)
	px.release()
	releasedAt := time.Now()

	e.send(e.data[n2:])
	e.send(e.closing)
	waitStored(t, e.store, e.in, aggParts, e.lastOffsets(), 60*time.Second, "the worker to persist every input")
	ends := partitionEnds(t, e.brokers, e.in)
	waitFor(t, 30*time.Second, "the group's committed offsets to reach the ends of the input", func() bool {
		com, err := inv.committed()
		return err == nil && fmt.Sprint(com) == fmt.Sprint(ends)
	})
	caughtUp := time.Since(releasedAt)
	s := w.Stats()
	stop()
	// No worker died and no partition moved: every window's result is on
	// the output topic exactly once, the re-sent batch included (the
	// idempotent producer's sequence numbers let the broker drop the copy).
	ref := e.checkOutcome(true)
	t.Logf("%d windows exact; Produce responses held %v (the producer timed out after %v, %d responses held, %d connections dropped by the producer); paused partitions %v at stored offsets %v; caught up %v after the release; %d invariant samples; stats: in %d, flushes %d, store/produce errors %d; whole test %v",
		len(ref.results), releasedAt.Sub(heldAt).Round(time.Millisecond), timedOutAfter.Round(time.Millisecond),
		px.heldCount(), px.abandonedCount(), paused, storedAtHold, caughtUp.Round(time.Millisecond), inv.samples(),
		s.In, s.Flushes, s.StoreErrors, time.Since(began).Round(time.Millisecond))
}

// produceWatch is a flush hook that tracks which partitions' tasks are
// between BeforeProduce and BeforeCommit: waiting for their outputs'
// acknowledgements.
type produceWatch struct {
	mu sync.Mutex
	at map[int32]bool
}

func (pw *produceWatch) hook(_ context.Context, p statedb.Partition, s processor.FlushStage) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	switch s {
	case processor.BeforeProduce:
		pw.at[p.Partition] = true
	case processor.BeforeCommit:
		delete(pw.at, p.Partition)
	}
}

func (pw *produceWatch) producing() map[int32]bool {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	out := map[int32]bool{}
	for p := range pw.at {
		out[p] = true
	}
	return out
}

// kafkaProxy forwards Kafka connections to a broker listener, parsing the
// frames (a 4-byte size, then a request header of api key, version and
// correlation id, or a response's correlation id) so that it can hold the
// responses to Produce requests (api key 0) while the rest flows. A held
// response waits, and with it everything after it on its connection,
// until release, or until the client closes the connection (it gave up
// waiting: counted as abandoned).
type kafkaProxy struct {
	ln net.Listener

	mu        sync.Mutex
	holding   bool
	released  chan struct{}
	produced  int // Produce requests forwarded
	held      int // Produce responses held
	abandoned int // connections closed by the client while a response was held
	conns     []net.Conn
}

func newKafkaProxy(t *testing.T) *kafkaProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	px := &kafkaProxy{ln: ln}
	t.Cleanup(func() {
		_ = ln.Close()
		px.release()
		px.mu.Lock()
		defer px.mu.Unlock()
		for _, c := range px.conns {
			_ = c.Close()
		}
	})
	return px
}

func (px *kafkaProxy) addr() string { return px.ln.Addr().String() }

// serve forwards every accepted connection to upstream, until the test
// ends.
func (px *kafkaProxy) serve(upstream string) {
	go func() {
		for {
			c, err := px.ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			u, err := net.DialTimeout("tcp", upstream, 5*time.Second)
			if err != nil {
				_ = c.Close()
				continue
			}
			px.mu.Lock()
			px.conns = append(px.conns, c, u)
			px.mu.Unlock()
			go px.pipe(c, u)
		}
	}()
}

// pipe runs one proxied connection.
func (px *kafkaProxy) pipe(client, broker net.Conn) {
	var (
		mu       sync.Mutex
		produces = map[int32]bool{} // correlation ids of Produce requests in flight
	)
	clientGone := make(chan struct{})
	closeBoth := func() { _ = client.Close(); _ = broker.Close() }
	go func() { // client -> broker
		defer close(clientGone)
		defer closeBoth()
		for {
			f, err := readFrame(client)
			if err != nil {
				return
			}
			if len(f) >= 12 && binary.BigEndian.Uint16(f[4:6]) == 0 {
				mu.Lock()
				produces[int32(binary.BigEndian.Uint32(f[8:12]))] = true
				mu.Unlock()
				px.mu.Lock()
				px.produced++
				px.mu.Unlock()
			}
			if _, err := broker.Write(f); err != nil {
				return
			}
		}
	}()
	defer closeBoth()
	for { // broker -> client
		f, err := readFrame(broker)
		if err != nil {
			return
		}
		if len(f) >= 8 {
			id := int32(binary.BigEndian.Uint32(f[4:8]))
			mu.Lock()
			isProduce := produces[id]
			delete(produces, id)
			mu.Unlock()
			if isProduce {
				px.mu.Lock()
				hold, released := px.holding, px.released
				if hold {
					px.held++
				}
				px.mu.Unlock()
				if hold {
					select {
					case <-released:
					case <-clientGone:
						px.mu.Lock()
						px.abandoned++
						px.mu.Unlock()
						return
					}
				}
			}
		}
		if _, err := client.Write(f); err != nil {
			return
		}
	}
}

// readFrame reads one size-prefixed Kafka frame, the size included.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 64<<20 {
		return nil, errors.New("proxy: frame too large")
	}
	f := make([]byte, 4+n)
	copy(f, size[:])
	_, err := io.ReadFull(r, f[4:])
	return f, err
}

// hold starts holding Produce responses.
func (px *kafkaProxy) hold() {
	px.mu.Lock()
	defer px.mu.Unlock()
	if !px.holding {
		px.holding, px.released = true, make(chan struct{})
	}
}

// release lets the held responses, and those that follow, through.
func (px *kafkaProxy) release() {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.holding {
		px.holding = false
		close(px.released)
	}
}

func (px *kafkaProxy) produces() int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.produced
}

func (px *kafkaProxy) heldCount() int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.held
}

func (px *kafkaProxy) abandonedCount() int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.abandoned
}
