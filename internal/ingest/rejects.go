package ingest

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Rejects writes bad records to a reject file: for each, a comment line
// "# <source>:<line>: <reason>" and then the record's text exactly as it
// was read (the lines of a CSV record that spans several), so that
// `grep -v '^# '` gives the bad records back. It is safe for concurrent
// use; a nil *Rejects writes nothing.
type Rejects struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error // the first write error: later writes are skipped
}

// NewRejects returns a Rejects writing to w (buffered: call Flush).
func NewRejects(w io.Writer) *Rejects { return &Rejects{w: bufio.NewWriter(w)} }

// Write writes the bad record rec of source.
func (r *Rejects) Write(source string, rec *Record) error {
	if r == nil {
		return nil
	}
	reason := "bad record"
	if rec.Err != nil {
		reason = strings.NewReplacer("\r", " ", "\n", " ").Replace(rec.Err.Error())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	b := r.w
	b.WriteString("# ")
	b.WriteString(source)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(rec.Line))
	b.WriteString(": ")
	b.WriteString(reason)
	b.WriteByte('\n')
	b.Write(rec.Raw)
	_, r.err = b.WriteString("\n")
	return r.err
}

// Flush writes out what is buffered and returns the first error of any
// write.
func (r *Rejects) Flush() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.err = r.w.Flush()
	return r.err
}
