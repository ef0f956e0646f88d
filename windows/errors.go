package windows

import (
	"errors"
	"fmt"
)

// Causes wrapped by an [*AggregateError]; test them with errors.Is.
var (
	// ErrUnsupportedType: the value's Go type is not one aggregates take
	// (lists, maps, ...), or the function cannot use it (a string in sum).
	ErrUnsupportedType = errors.New("unsupported value type")
	// ErrMixedTypes: min or max got a value of another class (number,
	// string, bool, timestamp) than the one it holds.
	ErrMixedTypes = errors.New("mixed value types")
	// ErrNotFinite: a float argument is NaN or infinite.
	ErrNotFinite = errors.New("not a finite number")
	// ErrCorrupt: [Aggregator.Decode] got bytes that are not a valid
	// encoding for the aggregator's definitions.
	ErrCorrupt = errors.New("corrupt aggregate state")
)

// AggregateError is the error of one aggregate: an argument it cannot take
// ([Acc.Add]), a state it cannot merge ([Acc.Merge]) or decode
// ([Aggregator.Decode]). The runtime sends the event that caused it to the
// dead-letter topic.
type AggregateError struct {
	Name string // the aggregate's Def.Name
	Func string // its Def.Func
	Err  error  // the cause, wrapping one of the Err* sentinels
}

func (e *AggregateError) Error() string {
	return fmt.Sprintf("windows: aggregate %q (%s): %v", e.Name, e.Func, e.Err)
}

func (e *AggregateError) Unwrap() error { return e.Err }
