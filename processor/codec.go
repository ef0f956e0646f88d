package processor

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/codec"
	"github.com/eddy-streams/eddy/internal/tlsconf"
	"github.com/eddy-streams/eddy/pipeline"
)

// whatRegistry is what the task retries while the schema registry does
// not answer.
const whatRegistry = "schema registry"

// valueCodecs reads and writes the formats of a schema registry
// (pipeline.Format.Registered): one registry client per worker, its
// schemas cached by ID; a decoder per format read; the sink's encoder.
type valueCodecs struct {
	reg *codec.Registry
	dec map[pipeline.Format]*codec.Decoder
	enc *codec.Encoder // nil unless the sink's format is registered
}

// newValueCodecs builds the codecs p needs, or nil when it uses no
// registry format. A sink schema that does not parse is an error here,
// at start-up.
func newValueCodecs(p *pipeline.Pipeline) (*valueCodecs, error) {
	rc := p.Spec.SchemaRegistry
	if rc == nil {
		return nil, nil
	}
	tc, err := tlsconf.Build("schema_registry.tls", rc.TLS)
	if err != nil {
		return nil, err
	}
	reg, err := codec.New(codec.Config{URL: rc.URL, Username: rc.Username, Password: rc.Password, Token: rc.Token, TLS: tc, Timeout: rc.Timeout})
	if err != nil {
		return nil, fmt.Errorf("processor: %w", err)
	}
	c := &valueCodecs{reg: reg, dec: map[pipeline.Format]*codec.Decoder{}}
	for _, st := range p.Stages() {
		if st.Source == nil {
			continue // an internal topic: eddy's own JSON
		}
		if f := st.Source.Format; f.Registered() && c.dec[f] == nil {
			if c.dec[f], err = codec.NewDecoder(reg, codec.Format(f)); err != nil {
				return nil, fmt.Errorf("processor: %w", err)
			}
		}
	}
	if sk := p.Sink; sk != nil && sk.Format.Registered() {
		cfg := codec.EncoderConfig{Format: codec.Format(sk.Format), Register: true}
		if s := sk.Schema; s != nil {
			cfg.Schema, cfg.Subject, cfg.Strategy, cfg.Register, cfg.Message = s.Text, s.Subject, s.Strategy, s.Register, s.Message
		}
		if c.enc, err = codec.NewEncoder(reg, cfg); err != nil {
			field := "sink.schema"
			if sk.Schema != nil && sk.Schema.File != "" {
				field = "sink.schema.file (" + sk.Schema.File + ")"
			}
			return nil, fmt.Errorf("processor: %s: %w", field, err)
		}
	}
	return c, nil
}

// prepare registers or looks up the sink's schema for every sink topic
// at start-up: a schema the registry refuses fails the start-up; a
// registry that does not answer is left to the first output (which then
// pauses its partition until it answers).
func (c *valueCodecs) prepare(ctx context.Context, p *pipeline.Pipeline, log *zap.Logger) error {
	if c == nil || c.enc == nil {
		return nil
	}
	err := c.enc.Prepare(ctx, p.Sink.Topics...)
	if errors.Is(err, codec.ErrUnavailable) {
		log.Warn("schema registry unavailable at start-up: the sink's schema is registered at its first output", zap.Error(err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("processor: sink.schema: %w", err)
	}
	return nil
}

// decodeValue decodes a record value per src's format. With a registry
// format, a registry that does not answer pauses the partition until it
// does (t.retry); a record the registry's schemas cannot read is the
// record's own fault, returned for the dead-letter path.
func (t *task) decodeValue(ctx context.Context, src *pipeline.Source, value []byte) (map[string]any, error) {
	if t.proj != nil {
		return t.proj.DecodeInto(value, t.events.next()) // JSON, only the fields the stage reads
	}
	if !src.Format.Registered() {
		return src.Decode(value)
	}
	d := t.w.codecs.dec[src.Format]
	var ev map[string]any
	err := t.untilRegistryAnswers(ctx, func(ctx context.Context) (err error) {
		ev, err = d.Decode(ctx, value)
		return err
	})
	return ev, err
}

// untilRegistryAnswers runs call, and again while its error matches
// codec.ErrUnavailable, pausing the partition (t.retry); it returns
// call's last error (the record's own fault, or nil), or t.retry's when
// the claim ends first.
func (t *task) untilRegistryAnswers(ctx context.Context, call func(context.Context) error) error {
	var err error
	try := func(ctx context.Context) error {
		err = call(ctx)
		if errors.Is(err, codec.ErrUnavailable) {
			return err
		}
		return nil
	}
	if try(ctx) != nil {
		if rerr := t.retry(ctx, whatRegistry, try); rerr != nil {
			return rerr
		}
	}
	return err
}

// encodeValue encodes an output for the sink's topic, pausing like
// decodeValue while the registry does not answer.
func (t *task) encodeValue(ctx context.Context, sk *pipeline.Sink, event map[string]any) ([]byte, error) {
	if !sk.Format.Registered() {
		return sk.Encode(event)
	}
	var b []byte
	err := t.untilRegistryAnswers(ctx, func(ctx context.Context) (err error) {
		b, err = t.w.codecs.enc.Encode(ctx, sk.Topics[0], event)
		return err
	})
	return b, err
}
