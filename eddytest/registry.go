package eddytest

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/eddy-streams/eddy/codec"
	"github.com/eddy-streams/eddy/pipeline"
)

// registry is a run's schema registry, for pipelines that read or write
// avro, protobuf or json_schema: an in-process registry with the
// Confluent API (franz-go's srfake) stands in for the pipelines'
// schema_registry as kfake stands in for Kafka. Events given as JSON for
// a topic read in such a format are encoded with Config.Schemas[topic]
// (registered under "<topic>-value"); outputs written in one, and the
// dead letters and late events of a source read in one, are decoded back
// to JSON for Read (a value that does not decode, such as a poison
// event's, is left as it is), so that test files give all as JSON.
type registry struct {
	fake    *srfake.Registry
	reg     *codec.Registry
	schemas map[string]string
	in      map[string]codec.Format   // input topic -> its format
	out     map[string]*codec.Decoder // output topic -> a decoder of its format

	mu  sync.Mutex
	enc map[string]*codec.Encoder // input topic -> its encoder, made at its first event
}

// newRegistry returns nil when no pipeline uses a registry format.
func newRegistry(ps []*pipeline.Pipeline, schemas map[string]string) (*registry, error) {
	r := &registry{schemas: schemas, in: map[string]codec.Format{}, enc: map[string]*codec.Encoder{}, out: map[string]*codec.Decoder{}}
	outs := map[string]codec.Format{}
	for _, p := range ps {
		for _, st := range p.Stages() {
			if st.Source != nil && st.Source.Format.Registered() {
				for _, t := range st.Source.Topics {
					r.in[t] = codec.Format(st.Source.Format)
				}
			}
		}
		if sk := p.Sink; sk != nil && sk.Format.Registered() {
			for _, t := range sk.Topics {
				outs[t] = codec.Format(sk.Format)
			}
		}
		// Dead letters and late events carry their source record's
		// value: in the source's format when it is a registry's.
		if f := p.Source.Format; f.Registered() {
			for _, u := range p.Outputs() {
				if _, ok := outs[u.Topic]; !ok && (u.Side || u.Field == "dead_letter.topic") {
					outs[u.Topic] = codec.Format(f)
				}
			}
		}
	}
	if len(r.in) == 0 && len(outs) == 0 {
		return nil, nil
	}
	r.fake = srfake.New()
	var err error
	if r.reg, err = codec.New(codec.Config{URL: r.fake.URL()}); err != nil {
		r.fake.Close()
		return nil, err
	}
	for t, f := range outs {
		if r.out[t], err = codec.NewDecoder(r.reg, f); err != nil {
			r.fake.Close()
			return nil, err
		}
	}
	return r, nil
}

// pipeline returns a copy of p that uses the run's registry.
func (r *registry) pipeline(p *pipeline.Pipeline) *pipeline.Pipeline {
	if p.Spec.SchemaRegistry == nil {
		return p
	}
	cp := *p
	sc := *p.Spec.SchemaRegistry
	sc.URL, sc.Username, sc.Password, sc.Token, sc.TLS = r.fake.URL(), "", "", "", nil
	cp.Spec.SchemaRegistry = &sc
	return &cp
}

// encode turns an event given as JSON for topic into the topic's format.
// A value that is not a JSON object is sent as it is (a poison event).
func (r *registry) encode(topic string, value []byte) ([]byte, error) {
	if r == nil || value == nil {
		return value, nil
	}
	f, ok := r.in[topic]
	if !ok {
		return value, nil
	}
	ev, err := pipeline.DecodeJSON(value)
	if err != nil {
		return value, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	enc := r.enc[topic]
	if enc == nil {
		schema := r.schemas[topic]
		if schema == "" {
			return nil, fmt.Errorf("topic %s is read as %s: give the schema its events are encoded with (schemas: in a test file, -schema for worker dev)", topic, f)
		}
		if enc, err = codec.NewEncoder(r.reg, codec.EncoderConfig{Format: f, Schema: schema, Register: true}); err != nil {
			return nil, fmt.Errorf("the schema of topic %s: %w", topic, err)
		}
		r.enc[topic] = enc
	}
	b, err := enc.Encode(context.Background(), topic, ev)
	if err != nil {
		return nil, fmt.Errorf("encoding the event as %s for topic %s: %w", f, topic, err)
	}
	return b, nil
}

// decode turns an output in a registry format into JSON; anything it
// cannot decode is left as it is.
func (r *registry) decode(rec *Record) {
	if r == nil || rec.Value == nil {
		return
	}
	dec := r.out[rec.Topic]
	if dec == nil {
		return
	}
	ev, err := dec.Decode(context.Background(), rec.Value)
	if err != nil {
		return
	}
	if b, err := pipeline.EncodeJSON(ev); err == nil {
		rec.Value = b
	}
}

func (r *registry) close() {
	if r != nil {
		r.fake.Close()
	}
}
