package windows

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// accVersion is the first byte of an accumulator encoding.
const accVersion = 1

// AppendBinary appends a's encoding to dst. The encoding is versioned (its
// first byte), compact (varints; count_distinct stores each distinct value
// once) and deterministic: equal states encode to equal bytes, whatever
// order the events came in. It holds the function of each aggregate, not
// its name, nor the key or the window. Encoding cannot fail, so this is
// not the error-returning encoding.BinaryAppender.
//
// Layout: version, uvarint number of aggregates, then per aggregate its
// function code and state:
//
//	count           uvarint events
//	sum, avg        uvarint values; if any: varint high and uvarint low
//	                64 bits of the exact integer total, a float flag byte,
//	                and if set the float total and its compensation
//	                (8 bytes each, little-endian IEEE 754)
//	min, max        value (a kind byte, then its payload)
//	first, last     value; if any: varint event time
//	count_distinct  uvarint count, then the canonical values in ascending
//	                byte order, each as uvarint length and bytes
func (a *Acc) AppendBinary(dst []byte) []byte {
	dst = append(dst, accVersion)
	dst = binary.AppendUvarint(dst, uint64(len(a.st)))
	for i, f := range a.agg.fns {
		s := &a.st[i]
		dst = append(dst, byte(f))
		switch f {
		case fCount:
			dst = binary.AppendUvarint(dst, uint64(s.n))
		case fSum, fAvg:
			dst = binary.AppendUvarint(dst, uint64(s.n))
			if s.n == 0 {
				continue
			}
			dst = binary.AppendVarint(dst, s.hi)
			dst = binary.AppendUvarint(dst, s.lo)
			if !s.fl {
				dst = append(dst, 0)
				continue
			}
			dst = append(dst, 1)
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.f))
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.c))
		case fMin, fMax:
			dst = appendVal(dst, s.v)
		case fFirst, fLast:
			dst = appendVal(dst, s.v)
			if s.v.k != kNone {
				dst = binary.AppendVarint(dst, s.t)
			}
		case fCountDistinct:
			dst = binary.AppendUvarint(dst, uint64(len(s.set)))
			keys := make([]string, 0, len(s.set))
			for k := range s.set {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				dst = binary.AppendUvarint(dst, uint64(len(k)))
				dst = append(dst, k...)
			}
		}
	}
	return dst
}

// Decode restores an accumulator written by [Acc.AppendBinary] for the
// same functions (names may have changed). It accepts only canonical
// encodings, so re-encoding the result yields b again, and returns an
// error (wrapping [ErrCorrupt], naming the aggregate where it can) for
// anything else: truncated or trailing bytes, another version, other
// functions, invalid values. It never panics and does not keep b.
func (g *Aggregator) Decode(b []byte) (*Acc, error) {
	r := &reader{b: b}
	if v := r.byte(); r.err == nil && v != accVersion {
		r.fail("unknown version %d", v)
	}
	if n := r.uvarint(); r.err == nil && n != uint64(len(g.fns)) {
		r.fail("%d aggregates, want %d", n, len(g.fns))
	}
	if r.err != nil {
		return nil, fmt.Errorf("windows: decode aggregates: %w", r.err)
	}
	a := g.NewAcc()
	for i, f := range g.fns {
		r.decodeState(f, &a.st[i])
		if r.err != nil {
			return nil, g.errf(i, r.err)
		}
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("windows: decode aggregates: %w: %d trailing bytes at byte %d", ErrCorrupt, len(b)-r.off, r.off)
	}
	return a, nil
}

func (r *reader) decodeState(f fn, s *state) {
	if c := fn(r.byte()); r.err == nil && c != f {
		r.fail("function %s, want %s", c, f)
	}
	switch f {
	case fCount:
		s.n = int64(r.uvarint())
	case fSum, fAvg:
		s.n = int64(r.uvarint())
		if s.n == 0 {
			return
		}
		s.hi = r.varint()
		s.lo = r.uvarint()
		switch fl := r.byte(); fl {
		case 0:
		case 1:
			s.fl = true
			s.f = math.Float64frombits(r.uint64())
			s.c = math.Float64frombits(r.uint64())
		default:
			r.fail("float flag %d", fl)
		}
	case fMin, fMax:
		s.v = r.val()
	case fFirst, fLast:
		s.v = r.val()
		if s.v.k != kNone {
			s.t = r.varint()
		}
	case fCountDistinct:
		n := r.uvarint()
		if r.err != nil {
			return
		}
		// Each entry takes at least two bytes: a bound for the hint.
		if n > uint64(len(r.b)-r.off)/2 {
			r.fail("%d distinct values in %d bytes", n, len(r.b)-r.off)
			return
		}
		if n > 0 {
			s.set = make(map[string]struct{}, n)
		}
		prev := ""
		for i := uint64(0); i < n && r.err == nil; i++ {
			k := string(r.bytes(r.uvarint()))
			if r.err != nil {
				return
			}
			if why := checkKey(k); why != "" {
				r.fail("%s", why)
				return
			}
			if i > 0 && k <= prev {
				r.fail("distinct values out of order")
				return
			}
			s.set[k] = struct{}{}
			prev = k
		}
	}
}

// reader decodes canonical encodings; the first error sticks and later
// reads return zero values.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d", ErrCorrupt, fmt.Sprintf(format, args...), r.off)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	switch {
	case n == 0:
		r.fail("truncated")
		return 0
	case n < 0 || n != uvarintLen(v):
		r.fail("bad varint")
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("truncated")
		return nil
	}
	p := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return p
}
