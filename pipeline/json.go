package pipeline

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of decoded JSON, as encoding/json does.
const maxJSONDepth = 10000

// DecodeJSON decodes a JSON object into a map. Numbers written as integers
// (no fraction, no exponent) become int64, or uint64 above the int64 range,
// or float64 beyond that; every other number becomes float64 (so 10.0 is a
// float64). This keeps CEL's int and double apart: event.qty * 2 stays an
// int. Strings are decoded like encoding/json does (invalid UTF-8 becomes
// U+FFFD); a repeated key keeps its last value. Anything but one JSON object
// (with surrounding whitespace) is an error, as is a number too large for a
// float64. DecodeJSON is safe for concurrent use.
//
// Memory: to save an allocation per string, the keys and string values
// without escapes are slices of a single copy of b. Keeping any of them
// keeps that whole copy alive (b itself is not retained): to hold a string
// long after the event (a cache key, say), strings.Clone it.
func DecodeJSON(b []byte) (map[string]any, error) {
	// All escape-free strings are slices of one copy of the input: one
	// allocation instead of one per key and value.
	p := jsonParser{b: b, s: string(b)}
	p.skipSpace()
	if p.i >= len(b) {
		return nil, errors.New("decode json: empty input")
	}
	if b[p.i] != '{' {
		return nil, fmt.Errorf("decode json: value is not an object (starts with %q)", b[p.i])
	}
	m, err := p.object(nil)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(b) {
		return nil, p.errorf("unexpected data after the object")
	}
	return m, nil
}

type jsonParser struct {
	b     []byte
	s     string // string(b)
	i     int
	depth int
	buf   []byte // scratch for strings with escapes
	// discard, while set, checks the input exactly as decoding would (the
	// same errors at the same offsets) but builds no values: a field a
	// Projection does not keep.
	discard bool
	into    map[string]any // the map a Projection decodes into, if any
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("decode json: offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value() (any, error) {
	p.skipSpace()
	if p.i >= len(p.b) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(nil)
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, p.errorf("invalid character %q looking for a value", c)
	}
}

func (p *jsonParser) literal(word string) error {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return p.errorf("invalid literal, want %s", word)
	}
	p.i += len(word)
	return nil
}

// object decodes the object at p.i. With a projection (the top level of a
// Projection's decode), only the fields it keeps are decoded: the values
// of the others are checked in discard mode.
func (p *jsonParser) object(pr *Projection) (map[string]any, error) {
	p.depth++
	if p.depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.i++ // '{'
	var m map[string]any
	switch {
	case pr != nil && p.into != nil:
		m = p.into
		clear(m)
	case pr != nil:
		m = make(map[string]any, len(pr.fields))
	case !p.discard:
		m = make(map[string]any)
	}
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		return m, nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.errorf("want a string key")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.errorf("want ':' after a key")
		}
		p.i++
		if pr != nil {
			name, keep := pr.fields[k]
			p.discard = !keep
			v, err := p.value()
			p.discard = false
			if err != nil {
				return nil, err
			}
			if keep {
				m[name] = v
			}
		} else {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			if !p.discard {
				m[k] = v
			}
		}
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of input in an object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			p.depth--
			return m, nil
		default:
			return nil, p.errorf("want ',' or '}' in an object, got %q", p.b[p.i])
		}
	}
}

func (p *jsonParser) array() ([]any, error) {
	p.depth++
	if p.depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.i++ // '['
	var out []any
	if !p.discard {
		out = make([]any, 0, 4)
	}
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		return out, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if !p.discard {
			out = append(out, v)
		}
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			p.depth--
			return out, nil
		default:
			return nil, p.errorf("want ',' or ']' in an array, got %q", p.b[p.i])
		}
	}
}

// str decodes the string starting at p.i (a '"').
func (p *jsonParser) str() (string, error) {
	start := p.i + 1
	ascii := true
	for j := start; j < len(p.b); j++ {
		c := p.b[j]
		switch {
		case c == '"':
			s := p.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return p.slowStr(start)
			}
			p.i = j + 1
			if p.discard {
				return "", nil // no string to box into an any
			}
			return p.s[start:j], nil
		case c == '\\':
			return p.slowStr(start)
		case c < 0x20:
			p.i = j
			return "", p.errorf("invalid control character %q in a string", c)
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	p.i = len(p.b)
	return "", p.errorf("unterminated string")
}

// slowStr decodes a string with escapes or invalid UTF-8, from start (just
// after the opening quote).
func (p *jsonParser) slowStr(start int) (string, error) {
	out := p.buf[:0]
	j := start
	for j < len(p.b) {
		c := p.b[j]
		switch {
		case c == '"':
			p.i = j + 1
			p.buf = out
			if p.discard {
				return "", nil
			}
			return string(out), nil
		case c < 0x20:
			p.i = j
			return "", p.errorf("invalid control character %q in a string", c)
		case c == '\\':
			if j+1 >= len(p.b) {
				p.i = j
				return "", p.errorf("unterminated string")
			}
			switch e := p.b[j+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(p.b, j+2)
				if !ok {
					p.i = j
					return "", p.errorf("invalid \\u escape")
				}
				j += 6
				if utf16.IsSurrogate(r) {
					// A high surrogate must be followed by a low one.
					if r2, ok := hex4(p.b, j+2); ok && j+1 < len(p.b) && p.b[j] == '\\' && p.b[j+1] == 'u' {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							j += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				p.i = j
				return "", p.errorf("invalid escape \\%c", e)
			}
			j += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			j++
		default:
			r, size := utf8.DecodeRune(p.b[j:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, p.b[j:j+size]...)
			}
			j += size
		}
	}
	p.i = len(p.b)
	return "", p.errorf("unterminated string")
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number decodes the number at p.i per the JSON grammar.
func (p *jsonParser) number() (any, error) {
	start := p.i
	j := p.i
	neg := false
	if p.b[j] == '-' {
		neg = true
		j++
	}
	digits := j
	if j < len(p.b) && p.b[j] == '0' {
		j++
	} else {
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
	}
	if j == digits {
		p.i = j
		return nil, p.errorf("invalid number")
	}
	intEnd := j
	isInt := true
	if j < len(p.b) && p.b[j] == '.' {
		isInt = false
		j++
		d := j
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
		if j == d {
			p.i = j
			return nil, p.errorf("invalid number: digits expected after '.'")
		}
	}
	exp := false
	if j < len(p.b) && (p.b[j] == 'e' || p.b[j] == 'E') {
		isInt, exp = false, true
		j++
		if j < len(p.b) && (p.b[j] == '+' || p.b[j] == '-') {
			j++
		}
		d := j
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
		if j == d {
			p.i = j
			return nil, p.errorf("invalid number: digits expected in the exponent")
		}
	}
	p.i = j
	if p.discard && !exp && intEnd-digits <= 300 {
		// Without an exponent, fewer than 309 integer digits cannot
		// leave float64's range: nothing more to check.
		return nil, nil
	}
	if isInt && intEnd-digits <= 18 {
		// Up to 18 digits always fit in an int64.
		var n int64
		for _, c := range p.b[digits:intEnd] {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, nil
	}
	text := p.s[start:j]
	if isInt {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n, nil
		}
		if !neg {
			if u, err := strconv.ParseUint(text, 10, 64); err == nil {
				return u, nil
			}
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		p.i = start
		return nil, p.errorf("number %s out of range", text)
	}
	if p.discard {
		return nil, nil
	}
	return f, nil
}

// A Projection decodes only some top-level fields of a JSON object: the
// fields a pipeline's expressions read (Pipeline.EventFields). Its Decode
// gives what DecodeJSON gives with every other top-level field left out,
// and fails exactly when DecodeJSON fails, with the same error: the fields
// it does not keep are checked as strictly as if they were decoded, but
// no value is built for them. A Projection is immutable and safe for
// concurrent use.
type Projection struct {
	fields map[string]string // each kept name to itself, so a kept key costs no allocation
}

// NewProjection returns a Projection keeping the named fields.
func NewProjection(fields []string) *Projection {
	pr := &Projection{fields: make(map[string]string, len(fields))}
	for _, f := range fields {
		pr.fields[f] = f
	}
	return pr
}

// Fields returns the kept field names, sorted.
func (pr *Projection) Fields() []string {
	out := make([]string, 0, len(pr.fields))
	for f := range pr.fields {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Decode decodes b like DecodeJSON, keeping only pr's fields.
func (pr *Projection) Decode(b []byte) (map[string]any, error) {
	return pr.DecodeInto(b, nil)
}

// DecodeInto is Decode into m, cleared first (nil: a new map), so that a
// caller can reuse the maps of events it no longer holds. On an error m
// holds part of the event.
func (pr *Projection) DecodeInto(b []byte, m map[string]any) (map[string]any, error) {
	p := jsonParser{b: b, s: string(b), into: m}
	p.skipSpace()
	if p.i >= len(b) {
		return nil, errors.New("decode json: empty input")
	}
	if b[p.i] != '{' {
		return nil, fmt.Errorf("decode json: value is not an object (starts with %q)", b[p.i])
	}
	m, err := p.object(pr)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(b) {
		return nil, p.errorf("unexpected data after the object")
	}
	return m, nil
}

// EncodeJSON encodes an event as a JSON object with sorted keys. It accepts
// the values DecodeJSON and Expr.Value produce: nil, bool, ints, uints,
// floats, string, []byte (base64, as encoding/json), time.Time (RFC 3339
// with nanoseconds), time.Duration (seconds with an "s" suffix, as CEL and
// protobuf JSON write durations), []any and map[string]any; other types go
// through encoding/json. Floats always carry a fraction or an exponent (10.0
// is written "10.0"), so DecodeJSON reads them back as float64; NaN and
// infinities are errors. HTML characters are not escaped. EncodeJSON is safe
// for concurrent use.
func EncodeJSON(m map[string]any) ([]byte, error) {
	e := jsonEncoder{buf: make([]byte, 0, 256)}
	if err := e.object(m); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type jsonEncoder struct {
	buf   []byte
	depth int
}

func (e *jsonEncoder) object(m map[string]any) error {
	if m == nil {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	e.depth++
	if e.depth > maxJSONDepth {
		return errors.New("encode json: nested too deeply (is there a cycle?)")
	}
	var keyBuf [16]string
	keys := keyBuf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.str(k)
		e.buf = append(e.buf, ':')
		if err := e.value(m[k]); err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				return err
			}
			return &fieldError{field: k, err: err}
		}
	}
	e.buf = append(e.buf, '}')
	e.depth--
	return nil
}

func (e *jsonEncoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case string:
		e.str(x)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case float64:
		return e.float(x, 64)
	case float32:
		return e.float(float64(x), 32)
	case map[string]any:
		return e.object(x)
	case []any:
		e.depth++
		if e.depth > maxJSONDepth {
			return errors.New("encode json: nested too deeply (is there a cycle?)")
		}
		e.buf = append(e.buf, '[')
		for i, item := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.value(item); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
		e.depth--
	case []byte:
		e.buf = append(e.buf, '"')
		e.buf = base64.StdEncoding.AppendEncode(e.buf, x)
		e.buf = append(e.buf, '"')
	case time.Time:
		e.buf = append(e.buf, '"')
		e.buf = x.AppendFormat(e.buf, time.RFC3339Nano)
		e.buf = append(e.buf, '"')
	case time.Duration:
		e.buf = append(e.buf, '"')
		e.buf = strconv.AppendFloat(e.buf, x.Seconds(), 'f', -1, 64)
		e.buf = append(e.buf, 's', '"')
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return e.object(m)
	case []string:
		e.buf = append(e.buf, '[')
		for i, s := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.str(s)
		}
		e.buf = append(e.buf, ']')
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		e.buf = append(e.buf, b...)
	}
	return nil
}

// float writes f like encoding/json does, plus ".0" for integral values.
func (e *jsonEncoder) float(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("encode json: unsupported number %v", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	start := len(e.buf)
	e.buf = strconv.AppendFloat(e.buf, f, format, -1, bits)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		n := len(e.buf)
		if n >= 4 && e.buf[n-4] == 'e' && e.buf[n-3] == '-' && e.buf[n-2] == '0' {
			e.buf[n-2] = e.buf[n-1]
			e.buf = e.buf[:n-1]
		}
		return nil
	}
	for _, c := range e.buf[start:] {
		if c == '.' {
			return nil
		}
	}
	e.buf = append(e.buf, '.', '0')
	return nil
}

// fieldError names the innermost field whose value could not be encoded.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return fmt.Sprintf("%v (in field %q)", e.err, e.field) }
func (e *fieldError) Unwrap() error { return e.err }

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string: control characters, quotes and
// backslashes escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029
// escaped (as encoding/json does).
func (e *jsonEncoder) str(s string) {
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			e.buf = append(e.buf, s[start:i]...)
			switch c {
			case '"', '\\':
				e.buf = append(e.buf, '\\', c)
			case '\n':
				e.buf = append(e.buf, '\\', 'n')
			case '\r':
				e.buf = append(e.buf, '\\', 'r')
			case '\t':
				e.buf = append(e.buf, '\\', 't')
			default:
				e.buf = append(e.buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
}
