package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a pipeline file: where it is and which field
// it concerns. Line and Col are 1-based; Col is 0 when only the line is known.
type Error struct {
	File  string // the file name given to Load or Parse
	Line  int    // 1-based line in File
	Col   int    // 1-based column in File, 0 if unknown
	Field string // the field's path, e.g. "steps[2].filter" ("" for the whole file)
	Msg   string // what is wrong; never contains a secret's value
}

// Error formats e as "file:line:col: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a pipeline file, in file order. Load and
// Parse return it (as error) when the file is invalid; use errors.As to get
// at the individual errors.
type Errors []*Error

// Error prints one error per line, in file order.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// EvalError is a runtime failure of a CEL expression on one event (a missing
// key, a type mismatch, a result of the wrong type). It names the expression,
// the field it belongs to and its place in the pipeline file; the runtime
// sends the event to the dead-letter topic with this error's text.
type EvalError struct {
	Field string // the field the expression belongs to, e.g. "steps[2].filter"
	Expr  string // the expression as written (secrets redacted)
	File  string // the pipeline file
	Line  int    // the expression's line in File
	Err   error  // the underlying CEL error
}

// Error formats e as `field: evaluating "expr" (file:line): cause`.
func (e *EvalError) Error() string {
	return fmt.Sprintf("%s: evaluating %q (%s:%d): %v", e.Field, e.Expr, e.File, e.Line, e.Err)
}

// Unwrap returns the underlying error.
func (e *EvalError) Unwrap() error { return e.Err }

// ErrNotStateless is returned (wrapped) by Step.Apply for processor and
// aggregate steps, which the runtime executes itself.
var ErrNotStateless = errors.New("step is not a stateless step")

// errList collects errors while a file is checked. It is owned by one Parse
// call.
type errList struct {
	file   string
	errs   Errors
	fields map[string]bool // fields that already have an error
	redact *redactor
}

func newErrList(file string, r *redactor) *errList {
	return &errList{file: file, fields: make(map[string]bool), redact: r}
}

// add records an error at (line, col) for field.
func (l *errList) add(line, col int, field, format string, args ...any) {
	l.fields[field] = true
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Col: col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// has reports whether field already has an error; later checks skip such a
// field so that one mistake yields one message.
func (l *errList) has(field string) bool { return l.fields[field] }

// result returns the collected errors in file order with secrets redacted,
// or nil.
func (l *errList) result() error {
	if len(l.errs) == 0 {
		return nil
	}
	for _, e := range l.errs {
		e.Msg = l.redact.apply(e.Msg)
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i], l.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return l.errs
}
