package pipeline

import (
	"fmt"
	"strconv"
	"time"

	"github.com/eddy-streams/eddy/dedup"
)

// Apply runs a stateless step (filter, set, map or key) on v and reports
// whether the event goes on (false: a filter dropped it).
//
//   - filter: keep is the filter's result.
//   - set: every field is evaluated against the event as it was before the
//     step, then written into v.Event in file order (v.Event is changed in
//     place; a nil Event becomes a new map).
//   - map: v.Event is replaced by a new map of the fields.
//   - key: v.Key is replaced.
//
// On an error v is left unchanged and the error is an *EvalError. Processor
// and aggregate steps are run by the runtime: Apply returns an error
// wrapping ErrNotStateless for them. Apply is safe for concurrent use with
// distinct Vars.
func (s *Step) Apply(v *Vars) (keep bool, err error) {
	switch s.Kind {
	case FilterStep:
		return s.Filter.Bool(v)
	case SetStep:
		var buf [8]any
		vals := buf[:0]
		if len(s.Fields) > len(buf) {
			vals = make([]any, 0, len(s.Fields))
		}
		for _, f := range s.Fields {
			x, err := f.Expr.Value(v)
			if err != nil {
				return false, err
			}
			vals = append(vals, x)
		}
		if v.Event == nil {
			v.Event = make(map[string]any, len(s.Fields))
		}
		for i, f := range s.Fields {
			v.Event[f.Name] = vals[i]
		}
		return true, nil
	case MapStep:
		m := make(map[string]any, len(s.Fields))
		for _, f := range s.Fields {
			x, err := f.Expr.Value(v)
			if err != nil {
				return false, err
			}
			m[f.Name] = x
		}
		v.Event = m
		return true, nil
	case KeyStep:
		k, err := s.Key.String(v)
		if err != nil {
			return false, err
		}
		v.Key = k
		return true, nil
	}
	return false, fmt.Errorf("%s (%s): %w", s.Field, s.Kind, ErrNotStateless)
}

// Decode decodes a record value per the source format: json gives the
// object (see DecodeJSON); raw gives {"value": "<the bytes as a string>"}.
//
// The schema registry's formats (avro, protobuf, json_schema) are read by
// the runtime (package codec), not here: they give an error.
func (s *Source) Decode(value []byte) (map[string]any, error) {
	if s.Format == FormatRaw {
		return map[string]any{"value": string(value)}, nil
	}
	if s.Format.Registered() {
		return nil, fmt.Errorf("format %s is decoded with its schema registry (package codec)", s.Format)
	}
	return DecodeJSON(value)
}

// IDFor returns the event's id: source.event_id's value; when the
// pipeline sets none, the eddy-id header an upstream eddy pipeline wrote
// (dedup.IDHeader), else "<topic>-<partition>-<offset>": dedup.DefaultID,
// built in a stack buffer with one allocation.
func (s *Source) IDFor(v *Vars) (string, error) {
	if s.EventID != nil {
		return s.EventID.String(v)
	}
	if id := v.Headers[dedup.IDHeader]; id != "" {
		return id, nil
	}
	var stack [128]byte
	b := append(stack[:0], v.Topic...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(v.Partition), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, v.Offset, 10)
	return string(b), nil
}

// TimeFor returns the event's time: source.event_time's value, or the
// record timestamp when the pipeline sets none.
func (s *Source) TimeFor(v *Vars) (time.Time, error) {
	if s.EventTime != nil {
		return s.EventTime.Time(v)
	}
	return v.Timestamp, nil
}

// KeyFor returns the output record's key: sink.key's value, or v.Key when
// the sink sets none.
func (s *Sink) KeyFor(v *Vars) (string, error) {
	if s.Key != nil {
		return s.Key.String(v)
	}
	return v.Key, nil
}

// Encode encodes an event per the sink format: json is EncodeJSON; raw
// writes the event's "value" field (a string or bytes) as is.
//
// The schema registry's formats are written by the runtime (package
// codec): they give an error.
func (s *Sink) Encode(event map[string]any) ([]byte, error) {
	if s.Format.Registered() {
		return nil, fmt.Errorf("format %s is encoded with its schema registry (package codec)", s.Format)
	}
	if s.Format != FormatRaw {
		return EncodeJSON(event)
	}
	switch x := event["value"].(type) {
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	case nil:
		return nil, fmt.Errorf("sink format raw: the event has no field \"value\"")
	default:
		return nil, fmt.Errorf("sink format raw: field \"value\" is %T, want a string or bytes", x)
	}
}
