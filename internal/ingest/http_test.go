package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/route"
)

// fakeProducer is an in-memory sarama.AsyncProducer: it records what it
// is given and answers each message with fail's verdict (nil: success).
// Only the methods a Publisher calls are implemented.
type fakeProducer struct {
	sarama.AsyncProducer
	in   chan *sarama.ProducerMessage
	succ chan *sarama.ProducerMessage
	errs chan *sarama.ProducerError
	fail func(*sarama.ProducerMessage) error
	hold chan struct{} // if not nil, no answer before it is closed

	mu  sync.Mutex
	got []*sarama.ProducerMessage
}

func newFakeProducer(fail func(*sarama.ProducerMessage) error) *fakeProducer {
	f := &fakeProducer{
		in: make(chan *sarama.ProducerMessage), succ: make(chan *sarama.ProducerMessage, 16),
		errs: make(chan *sarama.ProducerError, 16), fail: fail,
	}
	return f
}

func (f *fakeProducer) start() {
	go func() {
		defer close(f.errs)
		defer close(f.succ)
		for m := range f.in {
			f.mu.Lock()
			f.got = append(f.got, m)
			f.mu.Unlock()
			if f.hold != nil {
				<-f.hold
			}
			if err := f.fail(m); err != nil {
				f.errs <- &sarama.ProducerError{Msg: m, Err: err}
			} else {
				f.succ <- m
			}
		}
	}()
}

func (f *fakeProducer) Input() chan<- *sarama.ProducerMessage     { return f.in }
func (f *fakeProducer) Successes() <-chan *sarama.ProducerMessage { return f.succ }
func (f *fakeProducer) Errors() <-chan *sarama.ProducerError      { return f.errs }
func (f *fakeProducer) AsyncClose()                               { close(f.in) }

func (f *fakeProducer) messages() []*sarama.ProducerMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

func header(m *sarama.ProducerMessage, name string) string {
	for _, h := range m.Headers {
		if string(h.Key) == name {
			return string(h.Value)
		}
	}
	return ""
}

// fakePublisher is a Publisher of 4 partitions over a fake producer.
func fakePublisher(t *testing.T, policy route.Policy, f *fakeProducer) (*Publisher, *Counters) {
	t.Helper()
	f.start()
	r, err := route.New(policy)
	if err != nil {
		t.Fatal(err)
	}
	c := &Counters{}
	p := newPublisher(f, func() error { return nil }, "t", 4, r, policy, 1000, c)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p, c
}

func post(t *testing.T, h http.Handler, target, contentType, key, body string) (int, Response) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var resp Response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("answer %d %q: not JSON: %v", w.Code, w.Body.String(), err)
	}
	return w.Code, resp
}

func TestHTTPAnswers(t *testing.T) {
	ok := func(*sarama.ProducerMessage) error { return nil }
	key, err := CompileKey("event.user")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, target, contentType, idemKey, body string
		status                                   int
		lines, records                           int
		rejected                                 []int // the bad lines listed
		errHas                                   string
		ids                                      []string // eddy-ids sent, in order
	}{
		{name: "JSON lines with a key", target: "/ingest", contentType: "application/x-ndjson", idemKey: "k1",
			body: "{\"user\":\"a\"}\n\n{\"user\":\"b\"}\n", status: 200, lines: 2, records: 2,
			ids: []string{"http:k1:1", "http:k1:3"}},
		{name: "no Content-Type: the default format", target: "/ingest", idemKey: "k2",
			body: `{"user":"a"}`, status: 200, lines: 1, records: 1, ids: []string{"http:k2:1"}},
		{name: "CSV by Content-Type", target: "/ingest", contentType: "text/csv; charset=utf-8", idemKey: "k3",
			body: "user,n\na,1\nb,2\n", status: 200, lines: 2, records: 2, ids: []string{"http:k3:2", "http:k3:3"}},
		{name: "CSV by query parameter over a JSON Content-Type", target: "/ingest?format=csv", contentType: "application/json", idemKey: "k4",
			body: "user\nz\n", status: 200, lines: 1, records: 1, ids: []string{"http:k4:2"}},
		{name: "bad lines: 400 naming them, nothing published", target: "/ingest", idemKey: "k5",
			body: "{\"user\":\"a\"}\nnope\n{\"user\":\"b\"}\n{\"n\":1}\n[]\n", status: 400, lines: 5,
			rejected: []int{2, 4, 5}, errHas: "3 bad line(s): nothing was published"},
		{name: "a CSV row with the wrong field count", target: "/ingest", contentType: "text/csv", idemKey: "k6",
			body: "user,n\na,1\nb\n", status: 400, lines: 2, rejected: []int{3}},
		{name: "a record larger than the producer takes", target: "/ingest", idemKey: "k7",
			body: `{"user":"` + strings.Repeat("x", 1000) + `"}`, status: 400, lines: 1, rejected: []int{1}, errHas: "1 bad line"},
		{name: "a bad CSV header", target: "/ingest", contentType: "text/csv",
			body: "user,user\na,b\n", status: 400, errHas: `line 1: CSV header: columns 1 and 2 are both named "user"`},
		{name: "unknown Content-Type", target: "/ingest", contentType: "image/png", body: "{}", status: 415, errHas: `Content-Type "image/png"`},
		{name: "unknown format parameter", target: "/ingest?format=xml", body: "{}", status: 415, errHas: `"xml" is not a format`},
		{name: "Idempotency-Key with a space", target: "/ingest", idemKey: "a b", body: "{}", status: 400, errHas: "Idempotency-Key"},
		{name: "a body too large", target: "/ingest", idemKey: "k8", body: strings.Repeat(`{"user":"a"}`+"\n", 200), status: 413, errHas: "body larger than 2000 bytes"},
		{name: "an empty body", target: "/ingest", idemKey: "k9", body: "", status: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeProducer(ok)
			p, counters := fakePublisher(t, route.Hash, f)
			h := NewHandler(p, HTTPConfig{Key: key, Counters: counters, MaxBody: 2000})
			status, resp := post(t, h, c.target, c.contentType, c.idemKey, c.body)
			if status != c.status {
				t.Fatalf("status %d (%+v), want %d", status, resp, c.status)
			}
			if resp.Lines != c.lines || resp.Records != c.records || (status == 200 && resp.Acked != c.records) {
				t.Errorf("answer %+v: want %d lines, %d records (all acked on 200)", resp, c.lines, c.records)
			}
			var bad []int
			for _, r := range resp.Rejected {
				bad = append(bad, r.Line)
				if r.Error == "" {
					t.Errorf("line %d listed without its error", r.Line)
				}
			}
			if !slices.Equal(bad, c.rejected) || resp.BadLines != len(c.rejected) {
				t.Errorf("rejected lines %v (bad_lines %d), want %v", bad, resp.BadLines, c.rejected)
			}
			if !strings.Contains(resp.Error, c.errHas) {
				t.Errorf("error %q, want it to contain %q", resp.Error, c.errHas)
			}
			var ids []string
			for _, m := range f.messages() {
				ids = append(ids, header(m, "eddy-id"))
				k, _ := m.Key.Encode()
				if want := route.HashPartition(k, 4); m.Partition != want {
					t.Errorf("record %s on partition %d, hash of its key %q gives %d", header(m, "eddy-id"), m.Partition, k, want)
				}
			}
			if !slices.Equal(ids, c.ids) {
				t.Errorf("sent eddy-ids %v, want %v", ids, c.ids)
			}
			if got := counters.Rejected.Load(); got != int64(len(c.rejected)) {
				t.Errorf("counted %d rejected, want %d", got, len(c.rejected))
			}
		})
	}
}

func TestHTTPWithoutIdempotencyKeyEachRequestIsNew(t *testing.T) {
	f := newFakeProducer(func(*sarama.ProducerMessage) error { return nil })
	p, c := fakePublisher(t, route.RoundRobin, f)
	h := NewHandler(p, HTTPConfig{Counters: c})
	for range 2 {
		if status, resp := post(t, h, "/ingest", "", "", "{}\n{}\n"); status != 200 || resp.Acked != 2 {
			t.Fatalf("status %d %+v", status, resp)
		}
	}
	ids := map[string]bool{}
	for _, m := range f.messages() {
		ids[header(m, "eddy-id")] = true
		if m.Key != nil {
			t.Error("a record without -key has a key")
		}
	}
	if len(ids) != 4 {
		t.Errorf("4 records of two requests without a key have %d distinct ids: %v", len(ids), ids)
	}
}

func TestHTTPDeliveryFailureIs503(t *testing.T) {
	refused := errors.New("kafka server: Message was too large")
	f := newFakeProducer(func(m *sarama.ProducerMessage) error {
		if strings.HasSuffix(header(m, "eddy-id"), ":2") {
			return refused
		}
		return nil
	})
	p, c := fakePublisher(t, route.Hash, f)
	h := NewHandler(p, HTTPConfig{Counters: c})
	status, resp := post(t, h, "/ingest", "", "retry-me", "{}\n{}\n{}\n")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", status)
	}
	if resp.Records != 3 || resp.Acked != 2 || resp.Failed != 1 || !strings.Contains(resp.Error, "Message was too large") ||
		!strings.Contains(resp.Error, "same Idempotency-Key") {
		t.Errorf("answer %+v", resp)
	}
	if c.Acked.Load() != 2 || c.Failed.Load() != 1 || c.Sent.Load() != 3 {
		t.Errorf("counters sent %d acked %d failed %d", c.Sent.Load(), c.Acked.Load(), c.Failed.Load())
	}
}

func TestHTTPAckTimeoutIs503(t *testing.T) {
	f := newFakeProducer(func(*sarama.ProducerMessage) error { return nil })
	f.hold = make(chan struct{})
	p, c := fakePublisher(t, route.Hash, f)
	defer close(f.hold)
	h := NewHandler(p, HTTPConfig{Counters: c, AckTimeout: 50 * time.Millisecond})
	status, resp := post(t, h, "/ingest", "", "slow", "{}\n{}\n")
	if status != http.StatusServiceUnavailable || !strings.Contains(resp.Error, "did not acknowledge every record within 50ms") {
		t.Errorf("status %d %+v, want 503 naming the timeout", status, resp)
	}
}

func TestHTTPMethodsAndPaths(t *testing.T) {
	f := newFakeProducer(func(*sarama.ProducerMessage) error { return nil })
	p, c := fakePublisher(t, route.Hash, f)
	h := NewHandler(p, HTTPConfig{Counters: c})
	for _, tc := range []struct {
		method, path string
		status       int
	}{{"GET", "/ingest", 405}, {"PUT", "/ingest", 405}, {"GET", "/healthz", 200}, {"POST", "/other", 404}} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.status)
		}
		if tc.status == 405 && w.Header().Get("Allow") != "POST" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, w.Header().Get("Allow"))
		}
	}
}

// TestMulticastCopies: a multicast record goes to every partition, each
// copy with its own eddy-id (route.CopyID) and the record's key.
func TestMulticastCopies(t *testing.T) {
	f := newFakeProducer(func(*sarama.ProducerMessage) error { return nil })
	p, c := fakePublisher(t, route.Multicast, f)
	b := NewBatch()
	if err := p.Send(context.Background(), b, 7, []byte("k"), "f:7", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	b.Seal()
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range f.messages() {
		k, _ := m.Key.Encode()
		got = append(got, fmt.Sprintf("%d %s %s", m.Partition, header(m, "eddy-id"), k))
	}
	want := []string{"0 f:7#0 k", "1 f:7#1 k", "2 f:7#2 k", "3 f:7#3 k"}
	if !slices.Equal(got, want) {
		t.Errorf("copies %v, want %v", got, want)
	}
	if n := b.Counts(); n.Acked != 4 || c.Sent.Load() != 4 {
		t.Errorf("batch %+v, sent %d", n, c.Sent.Load())
	}
}

// TestSendAfterCloseAndCancel: a Send blocked on a full producer returns
// when its context ends, and a Send after Close is refused; the batch
// counts only what was handed over.
func TestSendAfterCloseAndCancel(t *testing.T) {
	f := newFakeProducer(func(*sarama.ProducerMessage) error { return nil })
	f.in = make(chan *sarama.ProducerMessage) // unbuffered and never read: the fake is not started
	r, _ := route.New(route.Hash)
	c := &Counters{}
	p := newPublisher(f, func() error { return nil }, "t", 4, r, route.Hash, 1000, c)
	b := NewBatch()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Send(ctx, b, 1, nil, "x:1", []byte("{}")); !errors.Is(err, context.Canceled) {
		t.Errorf("Send on a full producer with an ended context: %v", err)
	}
	b.Seal()
	if err := b.Wait(context.Background()); err != nil || c.Sent.Load() != 0 {
		t.Errorf("batch wait %v, sent %d: nothing was handed over", err, c.Sent.Load())
	}
	f.start() // now drain, so that Close completes
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(context.Background(), NewBatch(), 1, nil, "x:1", []byte("{}")); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
}
