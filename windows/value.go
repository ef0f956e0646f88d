package windows

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// kind is the type of a normalized value.
type kind uint8

const (
	kNone kind = iota
	kBool
	kInt
	kUint
	kFloat
	kString
	kTime
	kindCount
)

// class groups kinds that compare with each other.
type class uint8

const (
	clNone class = iota
	clBool
	clNumber
	clString
	clTime
)

func (c class) String() string {
	switch c {
	case clBool:
		return "bool"
	case clNumber:
		return "number"
	case clString:
		return "string"
	case clTime:
		return "timestamp"
	}
	return "null"
}

func (k kind) class() class {
	switch k {
	case kBool:
		return clBool
	case kInt, kUint, kFloat:
		return clNumber
	case kString:
		return clString
	case kTime:
		return clTime
	}
	return clNone
}

// val is a normalized scalar: the argument of an aggregate or a value it
// keeps. n holds the bool (0/1), int64, uint64 bits, float64 bits or Unix
// seconds; ns the nanoseconds of a time; s the string.
type val struct {
	k  kind
	ns int32
	n  int64
	s  string
}

// normalize converts a native Go value to a val. nil becomes kNone.
func normalize(v any) (val, error) {
	switch x := v.(type) {
	case nil:
		return val{}, nil
	case bool:
		if x {
			return val{k: kBool, n: 1}, nil
		}
		return val{k: kBool}, nil
	case int64:
		return val{k: kInt, n: x}, nil
	case int:
		return val{k: kInt, n: int64(x)}, nil
	case int32:
		return val{k: kInt, n: int64(x)}, nil
	case int16:
		return val{k: kInt, n: int64(x)}, nil
	case int8:
		return val{k: kInt, n: int64(x)}, nil
	case uint64:
		return val{k: kUint, n: int64(x)}, nil
	case uint:
		return val{k: kUint, n: int64(x)}, nil
	case uint32:
		return val{k: kUint, n: int64(x)}, nil
	case uint16:
		return val{k: kUint, n: int64(x)}, nil
	case uint8:
		return val{k: kUint, n: int64(x)}, nil
	case float64:
		return floatVal(x)
	case float32:
		return floatVal(float64(x))
	case string:
		return val{k: kString, s: x}, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return val{k: kInt, n: i}, nil
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return val{k: kUint, n: int64(u)}, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return val{}, fmt.Errorf("%w: json.Number %q", ErrUnsupportedType, string(x))
		}
		return floatVal(f)
	case time.Time:
		return val{k: kTime, n: x.Unix(), ns: int32(x.Nanosecond())}, nil
	}
	return val{}, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
}

func floatVal(f float64) (val, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return val{}, fmt.Errorf("%w: %v", ErrNotFinite, f)
	}
	return val{k: kFloat, n: int64(math.Float64bits(f))}, nil
}

func (v val) float() float64 { return math.Float64frombits(uint64(v.n)) }

// native returns v as the Go value a result carries.
func (v val) native() any {
	switch v.k {
	case kBool:
		return v.n != 0
	case kInt:
		return v.n
	case kUint:
		return uint64(v.n)
	case kFloat:
		return v.float()
	case kString:
		return v.s
	case kTime:
		return time.Unix(v.n, int64(v.ns)).UTC()
	}
	return nil
}

// compare orders two values of the same class: numbers numerically and
// exactly across int64, uint64 and float64; strings bytewise; times
// chronologically; false before true.
func compare(a, b val) int {
	switch a.k {
	case kInt, kUint, kFloat:
		return cmpNum(a, b)
	case kString:
		return strings.Compare(a.s, b.s)
	case kTime:
		if c := cmp3(a.n, b.n); c != 0 {
			return c
		}
		return cmp3(int64(a.ns), int64(b.ns))
	}
	return cmp3(a.n, b.n)
}

func cmp3[T int64 | uint64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

const (
	two63 = 9223372036854775808.0  // 2^63
	two64 = 18446744073709551616.0 // 2^64
)

func cmpNum(a, b val) int {
	switch {
	case a.k == kInt && b.k == kInt:
		return cmp3(a.n, b.n)
	case a.k == kUint && b.k == kUint:
		return cmp3(uint64(a.n), uint64(b.n))
	case a.k == kInt && b.k == kUint:
		if a.n < 0 {
			return -1
		}
		return cmp3(uint64(a.n), uint64(b.n))
	case a.k == kUint && b.k == kInt:
		return -cmpNum(b, a)
	case a.k == kFloat && b.k == kFloat:
		return cmp3(a.float(), b.float())
	case a.k == kFloat:
		return cmpFloatInt(a.float(), b)
	default:
		return -cmpFloatInt(b.float(), a)
	}
}

// cmpFloatInt compares a finite float with an int or uint value exactly.
func cmpFloatInt(f float64, b val) int {
	tr := math.Trunc(f)
	frac := cmp3(f-tr, 0)
	if b.k == kInt {
		switch {
		case tr < -two63:
			return -1
		case tr >= two63:
			return 1
		}
		if c := cmp3(int64(tr), b.n); c != 0 {
			return c
		}
		return frac
	}
	switch {
	case tr < 0:
		return -1
	case tr >= two64:
		return 1
	}
	if c := cmp3(uint64(tr), uint64(b.n)); c != 0 {
		return c
	}
	return frac
}

// appendVal appends v's state encoding: the kind, then its payload.
func appendVal(dst []byte, v val) []byte {
	dst = append(dst, byte(v.k))
	switch v.k {
	case kBool:
		dst = append(dst, byte(v.n))
	case kInt:
		dst = binary.AppendVarint(dst, v.n)
	case kUint:
		dst = binary.AppendUvarint(dst, uint64(v.n))
	case kFloat:
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v.n))
	case kString:
		dst = binary.AppendUvarint(dst, uint64(len(v.s)))
		dst = append(dst, v.s...)
	case kTime:
		dst = binary.AppendVarint(dst, v.n)
		dst = binary.AppendUvarint(dst, uint64(v.ns))
	}
	return dst
}

// readVal decodes what appendVal wrote.
func (r *reader) val() val {
	k := kind(r.byte())
	if r.err != nil {
		return val{}
	}
	v := val{k: k}
	switch k {
	case kNone:
	case kBool:
		b := r.byte()
		if b > 1 {
			r.fail("bool value %d", b)
		}
		v.n = int64(b)
	case kInt:
		v.n = r.varint()
	case kUint:
		v.n = int64(r.uvarint())
	case kFloat:
		f := math.Float64frombits(r.uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			r.fail("non-finite float")
		}
		v.n = int64(math.Float64bits(f))
	case kString:
		v.s = string(r.bytes(r.uvarint()))
	case kTime:
		v.n = r.varint()
		ns := r.uvarint()
		if ns >= 1e9 {
			r.fail("nanoseconds %d", ns)
		}
		v.ns = int32(ns)
	default:
		r.fail("value kind %d", k)
	}
	return v
}

// Canonical key encoding, for count_distinct. Numbers that are equal are
// encoded alike whatever their Go type: an integral value that fits an
// int64 is keyInt, a larger positive integer keyUint, anything else
// keyFloat. Integers are big-endian with the sign bit flipped, so keys of
// one tag sort in numeric order.
const (
	keyBool   = 'b'
	keyInt    = 'i'
	keyUint   = 'u'
	keyFloat  = 'f'
	keyString = 's'
	keyTime   = 't'
)

func appendKey(dst []byte, v val) []byte {
	switch v.k {
	case kBool:
		return append(dst, keyBool, byte(v.n))
	case kInt:
		return binary.BigEndian.AppendUint64(append(dst, keyInt), uint64(v.n)^(1<<63))
	case kUint:
		if v.n >= 0 {
			return binary.BigEndian.AppendUint64(append(dst, keyInt), uint64(v.n)^(1<<63))
		}
		return binary.BigEndian.AppendUint64(append(dst, keyUint), uint64(v.n))
	case kFloat:
		f := v.float()
		if f == math.Trunc(f) {
			if f >= -two63 && f < two63 {
				return binary.BigEndian.AppendUint64(append(dst, keyInt), uint64(int64(f))^(1<<63))
			}
			if f >= 0 && f < two64 {
				return binary.BigEndian.AppendUint64(append(dst, keyUint), uint64(f))
			}
		}
		return binary.BigEndian.AppendUint64(append(dst, keyFloat), math.Float64bits(f))
	case kString:
		return append(append(dst, keyString), v.s...)
	case kTime:
		dst = binary.BigEndian.AppendUint64(append(dst, keyTime), uint64(v.n)^(1<<63))
		return binary.BigEndian.AppendUint32(dst, uint32(v.ns))
	}
	return dst
}

// checkKey reports why k is not a canonical key, or "".
func checkKey(k string) string {
	if k == "" {
		return "empty distinct value"
	}
	p := k[1:]
	switch k[0] {
	case keyBool:
		if len(p) != 1 || p[0] > 1 {
			return "bad bool distinct value"
		}
	case keyInt:
		if len(p) != 8 {
			return "bad int distinct value"
		}
	case keyUint:
		if len(p) != 8 || binary.BigEndian.Uint64([]byte(p)) < 1<<63 {
			return "bad uint distinct value"
		}
	case keyFloat:
		if len(p) != 8 {
			return "bad float distinct value"
		}
		f := math.Float64frombits(binary.BigEndian.Uint64([]byte(p)))
		if math.IsNaN(f) || math.IsInf(f, 0) || (f == math.Trunc(f) && f >= -two63 && f < two64) {
			return "non-canonical float distinct value"
		}
	case keyString:
	case keyTime:
		if len(p) != 12 || binary.BigEndian.Uint32([]byte(p[8:])) >= 1e9 {
			return "bad timestamp distinct value"
		}
	default:
		return "unknown distinct value tag"
	}
	return ""
}

// appendJSONValue appends v as JSON: numbers as numbers (a non-finite
// float, which only an overflowing sum can produce, as null), times as
// RFC 3339 strings in UTC.
func appendJSONValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float64:
		return appendJSONFloat(dst, x)
	case string:
		return appendJSONString(dst, x)
	case time.Time:
		dst = append(dst, '"')
		dst = x.UTC().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	}
	return append(dst, "null"...)
}

// appendJSONFloat formats f as encoding/json does.
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as with encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
