package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/eddy-streams/eddy/pipeline"
)

// Format is how an input is read.
type Format string

// The formats.
const (
	// JSON is JSON lines: one JSON object per line. The record value is
	// the line as read, without its line end.
	JSON Format = "json"
	// CSV is comma-separated values (RFC 4180) whose first record is the
	// header: each row becomes an object of its columns, encoded as JSON.
	CSV Format = "csv"
)

// ParseFormat returns the format named s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case JSON, CSV:
		return f, nil
	}
	return "", fmt.Errorf("%q is not a format: want json or csv", s)
}

// Type is the type a CSV column's values are converted to.
type Type string

// The column types. An empty cell of a typed column is null.
const (
	String Type = "string" // as read (the default)
	Int    Type = "int"    // a base-10 integer (CEL int)
	Double Type = "double" // a decimal or exponent number (CEL double)
	Bool   Type = "bool"   // true or false (also 1/0, TRUE/FALSE, ...: strconv.ParseBool)
)

// ParseTypes parses "qty:int,price:double,ok:bool".
func ParseTypes(s string) (map[string]Type, error) {
	out := map[string]Type{}
	for _, f := range strings.Split(s, ",") {
		col, typ, ok := strings.Cut(strings.TrimSpace(f), ":")
		if !ok || col == "" {
			return nil, fmt.Errorf("%q is not column:type", f)
		}
		switch t := Type(typ); t {
		case String, Int, Double, Bool:
			if _, dup := out[col]; dup {
				return nil, fmt.Errorf("column %q is typed twice", col)
			}
			out[col] = t
		default:
			return nil, fmt.Errorf("column %q: %q is not a type: want string, int, double or bool", col, typ)
		}
	}
	return out, nil
}

// CSVOptions tune the CSV format.
type CSVOptions struct {
	// Comma separates fields; 0 means ','.
	Comma rune
	// Types converts the named columns (default: every value a string).
	Types map[string]Type
}

// Record is one record of an input: good (Value set, Err nil) or bad (Err
// set). A bad record is the input's problem, not the source's: the input
// goes on after it.
type Record struct {
	// Line is the 1-based line of the input where the record starts.
	Line int
	// Raw is the record's text as read, without its line end (a CSV
	// record may span lines). A reject file gets it verbatim.
	Raw []byte
	// Event is the decoded record, what a key expression sees.
	Event map[string]any
	// Value is the Kafka record value: a JSON line as read (Raw), a CSV
	// row encoded as a JSON object (pipeline.EncodeJSON, sorted keys).
	Value []byte
	// Err says why the record is bad.
	Err error
}

// LineError is an error at a line of an input that ends it (a bad CSV
// header).
type LineError struct {
	Line int // 1-based
	Err  error
}

// Error formats e as "line N: err".
func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns e.Err.
func (e *LineError) Unwrap() error { return e.Err }

// Decoder reads the records of one input. It is not safe for concurrent
// use.
type Decoder struct {
	next func() (Record, error)
}

// NewDecoder returns a decoder of the records in r, in format f (opts
// apply to CSV only). A UTF-8 byte order mark at the start of r is
// skipped.
func NewDecoder(r io.Reader, f Format, opts CSVOptions) *Decoder {
	switch f {
	case CSV:
		return &Decoder{next: newCSVDecoder(r, opts).next}
	default:
		d := &jsonDecoder{r: bufio.NewReaderSize(r, 64<<10)}
		return &Decoder{next: d.next}
	}
}

// Next returns the next record, good or bad. At the end of the input it
// returns io.EOF; any other error ends the input (a read error, a bad CSV
// header) and is not a record's: the records before it stand.
func (d *Decoder) Next() (Record, error) { return d.next() }

var bom = []byte("\ufeff")

// jsonDecoder reads JSON lines. Blank lines carry no record and are
// skipped (they still count in line numbers).
type jsonDecoder struct {
	r    *bufio.Reader
	line int
	buf  []byte // a line longer than the reader's buffer
	err  error  // the error that ended the input
}

func (d *jsonDecoder) next() (Record, error) {
	for d.err == nil {
		line, err := d.readLine()
		if err != nil {
			d.err = err
			// The last line may lack its '\n'; a line cut by a read
			// error is no record.
			if !errors.Is(err, io.EOF) || len(line) == 0 {
				break
			}
		}
		d.line++
		if d.line == 1 {
			line = bytes.TrimPrefix(line, bom)
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		raw := bytes.Clone(line)
		rec := Record{Line: d.line, Raw: raw, Value: raw}
		rec.Event, rec.Err = pipeline.DecodeJSON(raw)
		if rec.Err != nil {
			rec.Err = jsonError(raw, rec.Err)
			rec.Value = nil
		}
		return rec, nil
	}
	return Record{}, d.err
}

// readLine returns the next line without its '\n'; it is valid until the
// next call. At the end of the input it returns the last line, if it has
// no '\n', with io.EOF.
func (d *jsonDecoder) readLine() ([]byte, error) {
	d.buf = d.buf[:0]
	for {
		b, err := d.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			d.buf = append(d.buf, b...)
			continue
		}
		if len(d.buf) > 0 {
			b = append(d.buf, b...)
			d.buf = b
		}
		if err != nil {
			return b, err
		}
		return b[:len(b)-1], nil
	}
}

// jsonError says what is wrong with a line pipeline.DecodeJSON refused:
// encoding/json's words for what is not JSON at all, which name the byte.
func jsonError(line []byte, err error) error {
	var v any
	if jerr := json.Unmarshal(line, &v); jerr != nil {
		var se *json.SyntaxError
		if errors.As(jerr, &se) {
			return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, se)
		}
		return fmt.Errorf("invalid JSON: %v", jerr)
	}
	switch v.(type) {
	case map[string]any:
	case []any:
		return errors.New("not a JSON object: an array")
	case string:
		return errors.New("not a JSON object: a string")
	case float64:
		return errors.New("not a JSON object: a number")
	case bool:
		return errors.New("not a JSON object: a boolean")
	case nil:
		return errors.New("not a JSON object: null")
	}
	return errors.New("invalid JSON: " + strings.TrimPrefix(err.Error(), "decode json: "))
}

// csvDecoder reads CSV with encoding/csv, keeping the raw text of each
// record for the reject file: capture sees every byte the csv.Reader
// reads, and csv.Reader.InputOffset says where each record ends.
type csvDecoder struct {
	cr     *csv.Reader
	cap    *capture
	types  map[string]Type
	header []string
	conv   []Type // per column
	err    error
}

func newCSVDecoder(r io.Reader, opts CSVOptions) *csvDecoder {
	c := &capture{r: r}
	cr := csv.NewReader(c)
	if opts.Comma != 0 {
		cr.Comma = opts.Comma
	}
	cr.ReuseRecord = true
	return &csvDecoder{cr: cr, cap: c, types: opts.Types}
}

// capture is an io.Reader that keeps what it has read since offset base.
type capture struct {
	r    io.Reader
	buf  []byte
	base int64
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.buf = append(c.buf, p[:n]...)
	return n, err
}

// take returns the bytes from offset from to offset to (a copy) and
// forgets what lies before to, now and then (not on every record: what
// the csv.Reader has read ahead would be copied each time).
func (c *capture) take(from, to int64) []byte {
	out := bytes.Clone(c.buf[from-c.base : to-c.base])
	if to-c.base > 64<<10 {
		c.buf = c.buf[:copy(c.buf, c.buf[to-c.base:])]
		c.base = to
	}
	return out
}

func (d *csvDecoder) next() (Record, error) {
	if d.err != nil {
		return Record{}, d.err
	}
	if d.header == nil {
		if err := d.readHeader(); err != nil {
			d.err = err
			return Record{}, err
		}
	}
	start := d.cr.InputOffset()
	fields, err := d.cr.Read()
	if errors.Is(err, io.EOF) {
		d.err = io.EOF
		return Record{}, io.EOF
	}
	// The range starts with the blank lines csv.Reader skipped.
	raw := trimLineEnd(bytes.TrimLeft(d.cap.take(start, d.cr.InputOffset()), "\r\n"))
	var pe *csv.ParseError
	if err != nil && !errors.As(err, &pe) {
		d.err = err // a read error
		return Record{}, err
	}
	if pe != nil {
		rec := Record{Line: pe.StartLine, Raw: raw}
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			rec.Err = fmt.Errorf("CSV row has %d fields, the header %d", len(fields), len(d.header))
		} else {
			rec.Err = fmt.Errorf("invalid CSV: line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
		}
		return rec, nil
	}
	line, _ := d.cr.FieldPos(0)
	rec := Record{Line: line, Raw: raw}
	ev := make(map[string]any, len(fields))
	for i, f := range fields {
		v, err := convert(f, d.conv[i])
		if err != nil {
			rec.Err = fmt.Errorf("column %s: %w", d.header[i], err)
			return rec, nil
		}
		ev[d.header[i]] = v
	}
	rec.Event = ev
	if rec.Value, err = pipeline.EncodeJSON(ev); err != nil {
		rec.Event, rec.Err = nil, err // cannot happen: strings, ints, finite floats, bools
	}
	return rec, nil
}

// readHeader reads the first record: the column names.
func (d *csvDecoder) readHeader() error {
	fields, err := d.cr.Read()
	if errors.Is(err, io.EOF) {
		return io.EOF // an empty input: no header, no records
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &LineError{Line: pe.StartLine, Err: fmt.Errorf("invalid CSV header: line %d, column %d: %w", pe.Line, pe.Column, pe.Err)}
	}
	if err != nil {
		return err // a read error
	}
	if len(fields) > 0 {
		fields[0] = strings.TrimPrefix(fields[0], "\ufeff")
	}
	line, _ := d.cr.FieldPos(0)
	seen := make(map[string]int, len(fields))
	for i, f := range fields {
		if f == "" {
			return &LineError{Line: line, Err: fmt.Errorf("CSV header: column %d has no name", i+1)}
		}
		if j, dup := seen[f]; dup {
			return &LineError{Line: line, Err: fmt.Errorf("CSV header: columns %d and %d are both named %q", j+1, i+1, f)}
		}
		seen[f] = i
	}
	for _, col := range slices.Sorted(maps.Keys(d.types)) {
		if _, ok := seen[col]; !ok {
			return &LineError{Line: line, Err: fmt.Errorf("CSV header: no column %q (typed by -csv-types); the columns are %s", col, strings.Join(fields, ", "))}
		}
	}
	d.header = append([]string(nil), fields...)
	d.conv = make([]Type, len(fields))
	for i, f := range d.header {
		d.conv[i] = d.types[f]
	}
	d.cr.FieldsPerRecord = len(fields)
	return nil
}

func trimLineEnd(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// convert turns a CSV value into its column's type.
func convert(s string, t Type) (any, error) {
	if t == "" || t == String {
		return s, nil
	}
	if s == "" {
		return nil, nil
	}
	switch t {
	case Int:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an int", s)
		}
		return n, nil
	case Double:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f-f != 0 { // NaN and infinities have no JSON
			return nil, fmt.Errorf("%q is not a double", s)
		}
		return f, nil
	case Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a bool", s)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown type %q", t)
}
