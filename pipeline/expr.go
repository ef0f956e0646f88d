package pipeline

import (
	"fmt"
	"strconv"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// newCELEnv returns the environment every expression is compiled in: the
// record variables and cel-go's standard extensions.
func newCELEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("key", cel.StringType),
		cel.Variable("topic", cel.StringType),
		cel.Variable("partition", cel.IntType),
		cel.Variable("offset", cel.IntType),
		cel.Variable("timestamp", cel.TimestampType),
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
		ext.Strings(),
		ext.Math(),
		ext.Encoders(),
		ext.Lists(),
		ext.Sets(),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.EnableIdentifierEscapeSyntax(),
	)
}

// Vars are the variables an expression sees: one Kafka record and its
// decoded event. Vars implements cel-go's interpreter.Activation, so an
// evaluation allocates no map of variables. A Vars is not safe for
// concurrent use: give each partition goroutine its own and reuse it from
// record to record.
type Vars struct {
	// Event is the decoded record value (CEL: event, map(string, dyn)).
	// Set and map steps change it.
	Event map[string]any
	// Key is the record key (CEL: key, string). Key steps change it.
	Key string
	// Topic, Partition and Offset locate the record (CEL: topic string,
	// partition int, offset int).
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the record's Kafka timestamp (CEL: timestamp,
	// google.protobuf.Timestamp).
	Timestamp time.Time
	// Headers are the record's headers (CEL: headers, map(string, string)).
	Headers map[string]string
	// Left and Right are the two events of a join's output (CEL: left and
	// right, map(string, dyn)), in a join step's select only.
	Left, Right map[string]any
}

// ResolveName implements interpreter.Activation.
func (v *Vars) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return v.Event, true
	case "key":
		return types.String(v.Key), true
	case "topic":
		return types.String(v.Topic), true
	case "partition":
		return types.Int(v.Partition), true
	case "offset":
		return types.Int(v.Offset), true
	case "timestamp":
		return types.Timestamp{Time: v.Timestamp}, true
	case "headers":
		return v.Headers, true
	case "left":
		return v.Left, v.Left != nil
	case "right":
		return v.Right, v.Right != nil
	}
	return nil, false
}

// Parent implements interpreter.Activation; Vars has none.
func (v *Vars) Parent() interpreter.Activation { return nil }

// Expr is a compiled, type-checked CEL expression from a pipeline file. It is
// immutable and safe for concurrent use. Evaluation errors are *EvalError
// values naming the expression, its field and its line.
type Expr struct {
	Text  string // the expression as compiled (after ${VAR} expansion)
	File  string // the pipeline file
	Line  int    // 1-based line of the expression in File
	Col   int    // 1-based column of the expression in File
	Field string // the field it belongs to, e.g. "steps[2].filter"
	// Type is the checked result type, e.g. "bool", "string" or "dyn" (a
	// type known only at run time).
	Type string

	prg     cel.Program
	display string // Text with secrets redacted, for error messages

	fields    []string // the top-level event fields it reads (eventRefs)
	allFields bool     // it needs the whole event
	// fast, when set, evaluates the expression without the interpreter
	// where that gives CEL's result (see fast.go); prg does the rest.
	fast fastNode
}

// eval runs the program on v.
func (e *Expr) eval(v *Vars) (ref.Val, error) {
	out, _, err := e.prg.Eval(v)
	if err != nil {
		return nil, e.fail(err)
	}
	return out, nil
}

func (e *Expr) fail(err error) error {
	if err.Error() == "no such overload" {
		// CEL's message names no types; the usual cause is int and double
		// mixed in arithmetic.
		err = fmt.Errorf("%w (operand types do not match, e.g. int * double: convert with double(x) or int(x))", err)
	}
	return &EvalError{Field: e.Field, Expr: e.display, File: e.File, Line: e.Line, Err: err}
}

func (e *Expr) wrongType(out ref.Val, want string) error {
	return e.fail(fmt.Errorf("result is %s, want %s", typeName(out), want))
}

// Bool evaluates a boolean expression (a filter).
func (e *Expr) Bool(v *Vars) (bool, error) {
	if e.fast != nil {
		if x, ok := e.fast.eval(v.Event); ok && x.k == fBool {
			return x.i == 1, nil
		}
	}
	out, err := e.eval(v)
	if err != nil {
		return false, err
	}
	if b, ok := out.(types.Bool); ok {
		return bool(b), nil
	}
	return false, e.wrongType(out, "bool")
}

// String evaluates a string-valued expression (a key or an event id); int
// and uint results are formatted in base 10.
func (e *Expr) String(v *Vars) (string, error) {
	if e.fast != nil {
		if x, ok := e.fast.eval(v.Event); ok {
			switch x.k {
			case fString:
				return x.s, nil
			case fInt:
				return strconv.FormatInt(x.i, 10), nil
			}
		}
	}
	out, err := e.eval(v)
	if err != nil {
		return "", err
	}
	switch x := out.(type) {
	case types.String:
		return string(x), nil
	case types.Int:
		return strconv.FormatInt(int64(x), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10), nil
	}
	return "", e.wrongType(out, "string or int")
}

// Time evaluates an event-time expression: a timestamp, or an int counted
// in milliseconds since the Unix epoch. The result is in UTC.
func (e *Expr) Time(v *Vars) (time.Time, error) {
	if e.fast != nil {
		if x, ok := e.fast.eval(v.Event); ok {
			switch x.k {
			case fInt:
				return time.UnixMilli(x.i).UTC(), nil
			case fTime:
				return x.t.UTC(), nil
			}
		}
	}
	out, err := e.eval(v)
	if err != nil {
		return time.Time{}, err
	}
	switch x := out.(type) {
	case types.Timestamp:
		return x.Time.UTC(), nil
	case types.Int:
		return time.UnixMilli(int64(x)).UTC(), nil
	}
	return time.Time{}, e.wrongType(out, "timestamp or int (Unix milliseconds)")
}

// Value evaluates e and returns its result as a plain Go value that
// EncodeJSON accepts: nil, bool, int64, uint64, float64, string, []byte,
// time.Time (a CEL timestamp), time.Duration (a CEL duration), []any or
// map[string]any (map keys that are not strings are formatted: ints in base
// 10, bools as true/false). An optional yields its value, or nil when empty.
// Lists and maps are fresh copies that share nothing with v.Event.
func (e *Expr) Value(v *Vars) (any, error) {
	if e.fast != nil {
		if x, ok := e.fast.eval(v.Event); ok {
			return x.native(), nil
		}
	}
	out, err := e.eval(v)
	if err != nil {
		return nil, err
	}
	val, err := toNative(out)
	if err != nil {
		return nil, e.fail(err)
	}
	return val, nil
}

func typeName(v ref.Val) string {
	if v == nil {
		return "nil"
	}
	return v.Type().TypeName()
}
