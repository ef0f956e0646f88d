// Package codec reads and writes record values in the formats of a
// schema registry: Avro, Protobuf and JSON Schema, framed in the
// Confluent wire format (a zero magic byte, the schema's 4-byte ID, for
// Protobuf the message indexes, then the payload), with schemas from a
// Confluent-compatible registry (Confluent's, Apicurio's ccompat API,
// Redpanda's, Karapace).
//
// A Decoder turns a record value into the event map CEL sees, in the
// same value model as JSON events (see pipeline.DecodeJSON): int64,
// uint64, float64, string, bool, []byte, time.Time, time.Duration, nil,
// []any and map[string]any. Avro unions come unwrapped (a ["null",
// "string"] field is a string or null, never {"string": ...});
// timestamps and dates are CEL timestamps, time-of-day values durations,
// decimals doubles, fixed and bytes CEL bytes, enums their symbol's
// name. Protobuf fields are named as in the .proto file; enums give
// their value's name; google.protobuf.Timestamp and Duration are CEL
// timestamps and durations, the wrapper types their value or null.
//
// An Encoder writes an event under a subject (by default the topic-name
// strategy: "<topic>-value"), registering its schema or looking it up as
// configured.
//
// Errors come in two kinds. One that a retry may cure (the registry
// unreachable, a 5xx, a timeout) matches ErrUnavailable: callers pause
// and retry, as for a state store outage. Any other is the record's own
// fault (not the wire format, an ID the registry does not know, a
// payload the schema cannot decode, an event that does not fit the
// sink's schema): an *Error naming the schema ID or subject, for the
// dead-letter path.
package codec

import (
	"errors"
	"fmt"
)

// Format is a record value format that needs a schema registry.
type Format string

// The formats.
const (
	Avro       Format = "avro"
	Protobuf   Format = "protobuf"
	JSONSchema Format = "json_schema"
)

// Formats lists the formats, for messages.
var Formats = []Format{Avro, Protobuf, JSONSchema}

// ErrUnavailable is matched (errors.Is) by errors of the registry that a
// retry may cure.
var ErrUnavailable = errors.New("schema registry unavailable")

type unavailableError struct{ err error }

func (e *unavailableError) Error() string        { return "schema registry unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error        { return e.err }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Error is a record's own fault: what is wrong, with the schema ID (when
// the record carries one) and the subject (when known).
type Error struct {
	SchemaID int    // 0 when the record carries none
	Subject  string // "" when unknown
	Err      error
}

func (e *Error) Error() string {
	switch {
	case e.SchemaID != 0 && e.Subject != "":
		return fmt.Sprintf("schema id %d (subject %s): %v", e.SchemaID, e.Subject, e.Err)
	case e.SchemaID != 0:
		return fmt.Sprintf("schema id %d: %v", e.SchemaID, e.Err)
	case e.Subject != "":
		return fmt.Sprintf("subject %s: %v", e.Subject, e.Err)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }
