package codec

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eddy-streams/eddy/pipeline"
)

// Subject strategies: how an encoder names the subject of a topic's
// values.
const (
	TopicName       = "topic_name"        // "<topic>-value" (the default)
	RecordName      = "record_name"       // the record's (message's) full name
	TopicRecordName = "topic_record_name" // "<topic>-<full name>"
)

// EncoderConfig is what an encoder writes.
type EncoderConfig struct {
	Format Format
	// Schema is the schema's text (Avro JSON, a .proto file, a JSON
	// Schema). Empty: the subject's latest registered version.
	Schema string
	// Strategy is TopicName (default), RecordName or TopicRecordName.
	Strategy string
	// Subject, when set, is the subject for every topic (overrides
	// Strategy).
	Subject string
	// Register registers Schema under the subject when it is not there
	// yet (the registry refuses one incompatible with the subject's
	// versions); false looks it up and fails when it is not registered.
	Register bool
	// Message is the Protobuf message to write (its full name); default
	// the file's first.
	Message string
}

// Encoder encodes events in the Confluent wire format. It is safe for
// concurrent use.
type Encoder struct {
	reg *Registry
	cfg EncoderConfig

	local *target // cfg.Schema parsed, nil without one

	mu   sync.Mutex
	subj map[string]*target // by subject
}

// target is a subject's schema: its ID and what encodes to it.
type target struct {
	id    int
	avro  avro.Schema
	md    protoreflect.MessageDescriptor
	index []int
}

// NewEncoder returns an encoder as cfg says. A Schema given is parsed
// here: an invalid one is an error now.
func NewEncoder(reg *Registry, cfg EncoderConfig) (*Encoder, error) {
	if err := check(cfg.Format); err != nil {
		return nil, err
	}
	switch cfg.Strategy {
	case "":
		cfg.Strategy = TopicName
	case TopicName, RecordName, TopicRecordName:
	default:
		return nil, fmt.Errorf("subject strategy %q: want %s, %s or %s", cfg.Strategy, TopicName, RecordName, TopicRecordName)
	}
	e := &Encoder{reg: reg, cfg: cfg, subj: map[string]*target{}}
	if cfg.Schema != "" {
		t, err := e.parse(context.Background(), cfg.Schema)
		if err != nil {
			return nil, err
		}
		e.local = t
	} else if cfg.Strategy != TopicName && cfg.Subject == "" {
		return nil, fmt.Errorf("subject strategy %s needs the schema", cfg.Strategy)
	}
	return e, nil
}

// parse parses schema text as the encoder's format (no references).
func (e *Encoder) parse(ctx context.Context, text string) (*target, error) {
	t := &target{}
	switch e.cfg.Format {
	case Avro:
		s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("parse avro schema: %w", err)
		}
		t.avro = s
	case Protobuf:
		fd, err := compileProto(ctx, text, nil)
		if err != nil {
			return nil, err
		}
		if e.cfg.Message == "" {
			t.md, err = messageAt(fd, nil)
		} else if d := fd.Messages().ByName(protoreflect.Name(e.cfg.Message)); d != nil {
			t.md = d
		} else if d, ok := findMessage(fd, protoreflect.FullName(e.cfg.Message)); ok {
			t.md = d
		} else {
			err = fmt.Errorf("message %s: not in the schema", e.cfg.Message)
		}
		if err != nil {
			return nil, err
		}
		t.index = messageIndex(t.md)
	}
	return t, nil
}

func findMessage(fd protoreflect.FileDescriptor, name protoreflect.FullName) (protoreflect.MessageDescriptor, bool) {
	var find func(protoreflect.MessageDescriptors) protoreflect.MessageDescriptor
	find = func(ms protoreflect.MessageDescriptors) protoreflect.MessageDescriptor {
		for i := range ms.Len() {
			if m := ms.Get(i); m.FullName() == name {
				return m
			} else if d := find(m.Messages()); d != nil {
				return d
			}
		}
		return nil
	}
	d := find(fd.Messages())
	return d, d != nil
}

// Subject returns the subject the encoder writes topic's values under.
func (e *Encoder) Subject(topic string) (string, error) {
	if e.cfg.Subject != "" {
		return e.cfg.Subject, nil
	}
	if e.cfg.Strategy == TopicName {
		return topic + "-value", nil
	}
	t := e.local
	var name string
	switch {
	case t.avro != nil:
		n, ok := t.avro.(avro.NamedSchema)
		if !ok {
			return "", fmt.Errorf("subject strategy %s: the schema is a %s, which has no name", e.cfg.Strategy, t.avro.Type())
		}
		name = n.FullName()
	case t.md != nil:
		name = string(t.md.FullName())
	default:
		return "", fmt.Errorf("subject strategy %s: a JSON Schema has no record name; set the subject", e.cfg.Strategy)
	}
	if e.cfg.Strategy == TopicRecordName {
		return topic + "-" + name, nil
	}
	return name, nil
}

// Prepare registers or looks up the schema of every topic's subject, so
// that a schema the registry refuses (incompatible, invalid, unknown)
// fails a worker's start-up rather than every record. An error matching
// ErrUnavailable leaves it to the first Encode.
func (e *Encoder) Prepare(ctx context.Context, topics ...string) error {
	for _, topic := range topics {
		if _, err := e.target(ctx, topic); err != nil {
			return err
		}
	}
	return nil
}

// target returns topic's subject's schema, resolved once.
func (e *Encoder) target(ctx context.Context, topic string) (*target, error) {
	subject, err := e.Subject(topic)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	t := e.subj[subject]
	e.mu.Unlock()
	if t != nil {
		return t, nil
	}
	fail := func(err error) (*target, error) {
		if errors.Is(err, ErrUnavailable) || errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, &Error{Subject: subject, Err: err}
	}
	var ss sr.SubjectSchema
	switch {
	case e.cfg.Schema == "":
		ss, err = e.reg.cl.SchemaByVersion(ctx, subject, -1)
		if err != nil {
			if notFound(err) {
				return fail(errors.New("has no registered schema (give the sink a schema to register)"))
			}
			return fail(classify(err))
		}
		if ss.Type != typeOf(e.cfg.Format) {
			return fail(fmt.Errorf("its latest schema (id %d) is %s; the sink writes %s", ss.ID, ss.Type, e.cfg.Format))
		}
	case e.cfg.Register:
		ss, err = e.reg.cl.CreateSchema(ctx, subject, sr.Schema{Schema: e.cfg.Schema, Type: typeOf(e.cfg.Format)})
		if err != nil {
			return fail(refused("register the schema", err))
		}
	default:
		ss, err = e.reg.cl.LookupSchema(ctx, subject, sr.Schema{Schema: e.cfg.Schema, Type: typeOf(e.cfg.Format)})
		if err != nil {
			if notFound(err) {
				return fail(errors.New("the sink's schema is not registered under it (and register is off)"))
			}
			return fail(classify(err))
		}
	}
	text := e.cfg.Schema
	if text == "" {
		text = ss.Schema.Schema
	}
	t, err = e.parse(ctx, text)
	if err != nil {
		return fail(err)
	}
	t.id = ss.ID
	e.mu.Lock()
	e.subj[subject] = t
	e.mu.Unlock()
	return t, nil
}

// refused explains a registration the registry refused.
func refused(what string, err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case 409:
			return fmt.Errorf("%s: incompatible with the subject's registered versions: %s", what, re.Error())
		case 422:
			return fmt.Errorf("%s: the registry calls it invalid: %s", what, re.Error())
		}
	}
	return classify(err)
}

// Encode encodes event for topic: the Confluent header and the payload.
func (e *Encoder) Encode(ctx context.Context, topic string, event map[string]any) ([]byte, error) {
	t, err := e.target(ctx, topic)
	if err != nil {
		return nil, err
	}
	var h sr.ConfluentHeader
	b, err := h.AppendEncode(nil, t.id, t.index)
	if err != nil {
		return nil, err
	}
	fail := func(err error) ([]byte, error) {
		subject, _ := e.Subject(topic)
		return nil, &Error{SchemaID: t.id, Subject: subject, Err: err}
	}
	switch e.cfg.Format {
	case Avro:
		var v any = event
		if _, ok := t.avro.(*avro.RecordSchema); !ok {
			v = event["value"] // the inverse of Decode's {"value": ...}
		}
		x, err := toAvro(t.avro, v, "")
		if err != nil {
			return fail(err)
		}
		payload, err := avro.Marshal(t.avro, x)
		if err != nil {
			return fail(fmt.Errorf("encode avro: %w", err))
		}
		return append(b, payload...), nil
	case Protobuf:
		m, err := toProto(t.md, event, "")
		if err != nil {
			return fail(err)
		}
		payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return fail(fmt.Errorf("encode protobuf: %w", err))
		}
		return append(b, payload...), nil
	case JSONSchema:
		payload, err := pipeline.EncodeJSON(event)
		if err != nil {
			return fail(err)
		}
		return append(b, payload...), nil
	}
	return nil, errors.ErrUnsupported
}
