package codec

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eddy-streams/eddy/pipeline"
)

// readers are Avro readers to reuse (Reset does not clear Error).
var readers = sync.Pool{New: func() any { return avro.NewReader(nil, 0) }}

// maxIndexes bounds a Protobuf record's message indexes.
const maxIndexes = 64

// Decoder decodes record values of one format. It is safe for concurrent
// use.
type Decoder struct {
	reg    *Registry
	format Format
	header sr.ConfluentHeader
}

// NewDecoder returns a decoder of format that fetches schemas from reg.
func NewDecoder(reg *Registry, format Format) (*Decoder, error) {
	if err := check(format); err != nil {
		return nil, err
	}
	return &Decoder{reg: reg, format: format}, nil
}

func check(f Format) error {
	for _, ok := range Formats {
		if f == ok {
			return nil
		}
	}
	return fmt.Errorf("format %q is not a schema registry format (%v)", f, Formats)
}

// Decode turns a record value into an event. A record whose top-level
// Avro type is not a record gives {"value": <it>}.
func (d *Decoder) Decode(ctx context.Context, value []byte) (map[string]any, error) {
	id, payload, err := d.header.DecodeID(value)
	if err != nil {
		return nil, &Error{Err: fmt.Errorf("not in the Confluent wire format (magic byte 0, 4-byte schema ID): %d bytes%s", len(value), startsWith(value))}
	}
	s, err := d.reg.schemaByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if want := typeOf(d.format); s.typ != want {
		return nil, &Error{SchemaID: id, Err: fmt.Errorf("is a %s schema; the pipeline reads %s", s.typ, d.format)}
	}
	fail := func(err error) (map[string]any, error) { return nil, &Error{SchemaID: id, Err: err} }
	switch d.format {
	case Avro:
		// A Reader of its own (not avro.Unmarshal, which takes a payload
		// that ends early for a complete one).
		r := readers.Get().(*avro.Reader)
		r.Reset(payload)
		r.Error = nil
		ev := readAvro(r, s.avro)
		err := r.Error
		r.Reset(nil)
		readers.Put(r)
		if err != nil {
			return fail(fmt.Errorf("decode avro: %w", err))
		}
		if m, ok := ev.(map[string]any); ok {
			return m, nil
		}
		return map[string]any{"value": ev}, nil
	case Protobuf:
		index, rest, err := d.header.DecodeIndex(payload, maxIndexes)
		if err != nil {
			return fail(fmt.Errorf("decode protobuf message indexes: %w", err))
		}
		md, err := messageAt(s.proto, index)
		if err != nil {
			return fail(err)
		}
		ev, err := readProto(md, rest)
		if err != nil {
			return fail(fmt.Errorf("decode protobuf %s: %w", md.FullName(), err))
		}
		return ev, nil
	case JSONSchema:
		ev, err := pipeline.DecodeJSON(payload)
		if err != nil {
			return fail(err)
		}
		return ev, nil
	}
	return nil, errors.ErrUnsupported
}

func typeOf(f Format) sr.SchemaType {
	switch f {
	case Protobuf:
		return sr.TypeProtobuf
	case JSONSchema:
		return sr.TypeJSON
	}
	return sr.TypeAvro
}

// startsWith shows a value's first bytes for an error.
func startsWith(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return fmt.Sprintf(", starting % x", b[:min(len(b), 8)])
}
