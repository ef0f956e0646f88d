package processor

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
)

// Produce errors are transient (a broker down, a leader moving, a
// timeout: the flush retries, the partition paused meanwhile) or
// permanent: the same record will never be accepted. A permanent one
// must not hold the partition forever:
//
//   - a record too large for its topic (MESSAGE_TOO_LARGE) is routed: a
//     sink or internal record goes to the dead-letter path (dead-lettered
//     itself, with the error; counted and dropped without a dead-letter
//     topic), and a dead letter or late event that is too large is sent
//     again with its value cut to truncatedSize bytes and headers giving
//     its original size and SHA-256 (then, if still refused, with no
//     value at all): nothing vanishes without a trace;
//   - an authorization or invalid-record error stops the worker (Run
//     returns it): every partition would meet it alike, and only the
//     operator can fix it.
//

// truncatedSize is how much of a too large dead letter's value is kept.
const truncatedSize = 1024

// Headers of a dead letter cut to fit its topic.
const (
	HeaderTruncatedSize   = "eddy-truncated-size"   // the value's original size in bytes
	HeaderTruncatedSHA256 = "eddy-truncated-sha256" // hex SHA-256 of the original value
	HeaderOutputTopic     = "eddy-output-topic"     // the topic a dead-lettered output was for
)

// errPermanent marks a produce error that retrying cannot fix.
var errPermanent = errors.New("processor: permanent produce error")

// fatalProduce is the kind of error that stops the worker.
func fatalProduce(err error) bool {
	for _, e := range []error{sarama.ErrTopicAuthorizationFailed, sarama.ErrClusterAuthorizationFailed,
		sarama.ErrTransactionalIDAuthorizationFailed, sarama.ErrInvalidRecord, sarama.ErrInvalidTopic} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// tooLarge reports whether err refuses a record for its size: the
// broker's MESSAGE_TOO_LARGE, or sarama's own check before it sends
// anything, against Producer.MaxMessageBytes (1 MB; a topic may allow
// more, but this producer cannot send the record either way).
func tooLarge(err error) bool {
	if errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		return true
	}
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) && strings.Contains(string(ce), "larger than configured Producer.MaxMessageBytes")
}

// produceCauses lists the distinct errors of the records a produce failed
// for, with their topics and counts ("" when err is not a
// sarama.ProducerErrors): sarama's own message only counts them.
func produceCauses(err error) string {
	var perrs sarama.ProducerErrors
	if !errors.As(err, &perrs) {
		return ""
	}
	counts := map[string]int{}
	var order []string
	for _, pe := range perrs {
		k := pe.Msg.Topic + ": " + pe.Err.Error()
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = fmt.Sprintf("%d× %s", counts[k], k)
	}
	return strings.Join(parts, "; ")
}

// route classifies the errors of a failed produce: one that ends the
// worker is returned (wrapping errPermanent); a record too large for its
// topic makes the next attempt send one record per request (isolate),
// since a broker refuses a whole record batch that is too large, and only
// alone does a record show whether it is the one; nil means retry.
func (t *task) route(err error) error {
	var perrs sarama.ProducerErrors
	if !errors.As(err, &perrs) {
		if fatalProduce(err) {
			return fmt.Errorf("%w: %v", errPermanent, err)
		}
		return nil
	}
	for _, pe := range perrs {
		switch {
		case tooLarge(pe.Err):
			t.isolate = true
		case fatalProduce(pe.Err):
			return fmt.Errorf("%w: producing to %s: %v", errPermanent, pe.Msg.Topic, pe.Err)
		}
	}
	return nil
}

// produceEach sends t.out one record per request with send, and replaces
// a record its topic refuses as too large by what reroute makes of it. On
// a transient error it returns it, t.out then holding, from the record
// that failed on, what is not acknowledged (the transactional path retries
// its whole buffer anyway).
func (t *task) produceEach(send func(*sarama.ProducerMessage) error) error {
	for i := 0; i < len(t.out); i++ {
		m := t.out[i]
		err := send(m)
		for tries := 0; tooLarge(err) && tries < 3; tries++ {
			r, perr := t.reroute(m, err)
			if perr != nil {
				return perr
			}
			if r == nil { // dropped (counted)
				err = nil
				break
			}
			m, t.out[i] = r, r
			err = send(m)
		}
		if err != nil {
			if fatalProduce(err) {
				return fmt.Errorf("%w: producing to %s: %v", errPermanent, m.Topic, err)
			}
			rest := make([]*sarama.ProducerMessage, 0, len(t.out)-i)
			for _, m := range t.out[i:] {
				rest = append(rest, &sarama.ProducerMessage{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers, Partition: m.Partition})
			}
			t.out = rest
			return err
		}
	}
	t.isolate = false
	return nil
}

// reroute is what becomes of m, a record its topic refused as too large
// (cause): a dead letter or late event is cut; any other record becomes a
// dead letter, or is counted and dropped (nil) without a dead-letter
// topic.
func (t *task) reroute(m *sarama.ProducerMessage, cause error) (*sarama.ProducerMessage, error) {
	size := 0
	if m.Value != nil {
		size = m.Value.Length()
	}
	if t.isSideTopic(m.Topic) {
		c, err := truncated(m)
		if err != nil {
			return nil, fmt.Errorf("%w: a record for %s of %d bytes is refused even without its value: %v", errPermanent, m.Topic, size, cause)
		}
		t.log.Warn("record too large for its topic: sent with its value cut", zap.String("to", m.Topic),
			zap.Int("size", size), zap.Int("kept", min(size, truncatedSize)), zap.Error(cause))
		return c, nil
	}
	t.w.stats.poison.Add(1)
	if sk := t.w.p.Sink; sk != nil && slices.Contains(sk.Topics, m.Topic) {
		t.unsunk++ // emitted, but not an output
	}
	dl := t.w.p.Spec.DeadLetter
	if dl == nil {
		t.log.Warn("output too large for its topic: counted and dropped (no dead_letter topic)", zap.String("topic", m.Topic),
			zap.Int("size", size), zap.Error(cause))
		return nil, nil
	}
	t.w.stats.dlq.Add(1)
	t.log.Warn("output too large for its topic: dead-lettered", zap.String("topic", m.Topic), zap.Int("size", size), zap.Error(cause))
	return t.deadOutput(m, dl.Topic, fmt.Sprintf("output of %d bytes too large for topic %s: %v", size, m.Topic, cause)), nil
}

// isSideTopic reports whether topic is the dead-letter topic or a late
// topic: where a too large record is cut rather than rerouted.
func (t *task) isSideTopic(topic string) bool {
	for _, u := range t.w.p.Outputs() {
		if u.Topic == topic && u.Side {
			return true
		}
	}
	return false
}

// deadOutput is the dead letter of an output m that its topic refused:
// its key and value, its headers, and why.
func (t *task) deadOutput(m *sarama.ProducerMessage, topic, why string) *sarama.ProducerMessage {
	hdr := func(k, v string) sarama.RecordHeader { return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	d := &sarama.ProducerMessage{Topic: topic, Key: m.Key, Value: m.Value}
	for _, h := range m.Headers {
		if bytes.Equal(h.Key, idHeaderBytes) {
			d.Headers = append(d.Headers, hdr(IDHeader, string(h.Value)+"/dlq")) // its own ID: not a duplicate of a real output
			continue
		}
		d.Headers = append(d.Headers, h)
	}
	d.Headers = append(d.Headers, hdr(HeaderError, why), hdr(HeaderStep, "sink"), hdr(HeaderOutputTopic, m.Topic),
		hdr(HeaderPipeline, t.w.p.Spec.Name))
	return d
}

// truncated is m with its value cut to truncatedSize bytes (or, when it
// was cut already, without a value), and headers saying so.
func truncated(m *sarama.ProducerMessage) (*sarama.ProducerMessage, error) {
	c := *m
	for _, h := range m.Headers {
		if string(h.Key) == HeaderTruncatedSize {
			if c.Value == nil {
				return nil, errors.New("already without a value")
			}
			c.Value = nil
			return &c, nil
		}
	}
	var v []byte
	if m.Value != nil {
		b, err := m.Value.Encode()
		if err != nil {
			return nil, err
		}
		v = b
	}
	sum := sha256.Sum256(v)
	c.Value = sarama.ByteEncoder(v[:min(len(v), truncatedSize)])
	c.Headers = append(append([]sarama.RecordHeader(nil), m.Headers...),
		sarama.RecordHeader{Key: []byte(HeaderTruncatedSize), Value: []byte(strconv.Itoa(len(v)))},
		sarama.RecordHeader{Key: []byte(HeaderTruncatedSHA256), Value: []byte(hex.EncodeToString(sum[:]))})
	return &c, nil
}
