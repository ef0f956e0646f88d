package windows

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strings"
)

// Def names one aggregate of a windowed aggregation: the field Name of the
// result computed by Func, one of count, sum, min, max, avg, first, last
// and count_distinct. The aggregate's argument (the value of the field or
// expression it aggregates) is passed to [Acc.Add], aligned with the defs.
type Def struct {
	Name string
	Func string
}

// fn is an aggregate function. Its value is part of the state encoding.
type fn uint8

const (
	fCount fn = iota + 1
	fSum
	fMin
	fMax
	fAvg
	fFirst
	fLast
	fCountDistinct
	fnEnd
)

func (f fn) String() string {
	switch f {
	case fCount:
		return "count"
	case fSum:
		return "sum"
	case fMin:
		return "min"
	case fMax:
		return "max"
	case fAvg:
		return "avg"
	case fFirst:
		return "first"
	case fLast:
		return "last"
	case fCountDistinct:
		return "count_distinct"
	}
	return fmt.Sprintf("fn(%d)", uint8(f))
}

func parseFn(s string) fn {
	for f := fCount; f < fnEnd; f++ {
		if f.String() == s {
			return f
		}
	}
	return 0
}

// Aggregator holds validated aggregate definitions and creates and decodes
// their accumulators. It is immutable and safe for concurrent use.
type Aggregator struct {
	defs []Def
	fns  []fn
}

// NewAggregator validates defs: at least one, each with a non-empty name,
// names unique, functions known.
func NewAggregator(defs []Def) (*Aggregator, error) {
	if len(defs) == 0 {
		return nil, fmt.Errorf("windows: no aggregates defined")
	}
	g := &Aggregator{defs: append([]Def(nil), defs...), fns: make([]fn, len(defs))}
	seen := make(map[string]int, len(defs))
	for i, d := range defs {
		if d.Name == "" {
			return nil, fmt.Errorf("windows: aggregate %d (%s): name is empty", i, d.Func)
		}
		if j, dup := seen[d.Name]; dup {
			return nil, fmt.Errorf("windows: aggregate %q: name used twice (aggregates %d and %d)", d.Name, j, i)
		}
		seen[d.Name] = i
		g.fns[i] = parseFn(d.Func)
		if g.fns[i] == 0 {
			return nil, fmt.Errorf("windows: aggregate %q: unknown function %q (want count, sum, min, max, avg, first, last or count_distinct)", d.Name, d.Func)
		}
	}
	return g, nil
}

// Defs returns a copy of the definitions, in order.
func (g *Aggregator) Defs() []Def { return append([]Def(nil), g.defs...) }

// NewAcc returns an empty accumulator: one allocation for up to
// len(Acc.inline) aggregates.
func (g *Aggregator) NewAcc() *Acc {
	a := &Acc{agg: g}
	if n := len(g.fns); n <= len(a.inline) {
		a.st = a.inline[:n:n]
	} else {
		a.st = make([]state, n)
	}
	return a
}

func (g *Aggregator) errf(i int, err error) error {
	return &AggregateError{Name: g.defs[i].Name, Func: g.defs[i].Func, Err: err}
}

// compatible reports whether accumulators of g and h share a layout.
func (g *Aggregator) compatible(h *Aggregator) bool {
	if g == h {
		return true
	}
	if len(g.fns) != len(h.fns) {
		return false
	}
	for i := range g.fns {
		if g.fns[i] != h.fns[i] {
			return false
		}
	}
	return true
}

// Acc accumulates the aggregates of one (key, window). It is not safe for
// concurrent use: the partition task that owns the key owns its Acc.
type Acc struct {
	agg    *Aggregator
	st     []state
	inline [2]state // st's storage when it fits
}

// state is the accumulator of one aggregate; which fields are used
// depends on the function.
type state struct {
	n   int64               // count: events; sum, avg: values added
	hi  int64               // sum, avg: exact integer total (and integral floats), high 64 bits
	lo  uint64              // ... low 64 bits
	f   float64             // sum, avg: total of non-integral floats
	c   float64             // ... its Neumaier compensation
	fl  bool                // sum, avg: some value was a float
	t   int64               // first, last: event time of v
	v   val                 // min, max, first, last: the value kept (kNone: none yet)
	set map[string]struct{} // count_distinct: canonical keys of the values
}

// Add adds one event to the accumulator. args holds one argument per
// definition, in order (count ignores its argument); eventTime (Unix ms)
// orders first and last. A nil argument (a missing or null field) is
// ignored by every function except count, which counts events.
//
// Add is atomic: when an argument is unusable it returns an
// [*AggregateError] naming that aggregate and leaves every aggregate of
// the accumulator unchanged.
func (a *Acc) Add(args []any, eventTime int64) error {
	fns := a.agg.fns
	if len(args) != len(fns) {
		return fmt.Errorf("windows: got %d aggregate arguments, want %d", len(args), len(fns))
	}
	var buf [8]val
	vals := buf[:0]
	if len(fns) > len(buf) {
		vals = make([]val, 0, len(fns))
	}
	for i, f := range fns {
		if f == fCount {
			vals = append(vals, val{})
			continue
		}
		v, err := normalize(args[i])
		if err == nil {
			err = a.st[i].check(f, v)
		}
		if err != nil {
			return a.agg.errf(i, err)
		}
		vals = append(vals, v)
	}
	for i, f := range fns {
		a.st[i].add(f, vals[i], eventTime)
	}
	return nil
}

// check reports whether v can be added to s.
func (s *state) check(f fn, v val) error {
	if v.k == kNone {
		return nil
	}
	switch f {
	case fSum, fAvg:
		if v.k.class() != clNumber {
			return fmt.Errorf("%w: %s needs a number, got %s", ErrUnsupportedType, f, v.k.class())
		}
	case fMin, fMax:
		if s.v.k != kNone && s.v.k.class() != v.k.class() {
			return fmt.Errorf("%w: cannot compare %s with %s", ErrMixedTypes, v.k.class(), s.v.k.class())
		}
	}
	return nil
}

func (s *state) add(f fn, v val, t int64) {
	if f == fCount {
		s.n++
		return
	}
	if v.k == kNone {
		return
	}
	switch f {
	case fSum, fAvg:
		s.n++
		switch v.k {
		case kInt:
			s.addInt(v.n)
		case kUint:
			s.addUint(uint64(v.n))
		case kFloat:
			s.fl = true
			x := v.float()
			if x == math.Trunc(x) && x >= -two63 && x < two63 {
				// Integral floats (what a JSON decode yields for
				// integers) are summed exactly.
				s.addInt(int64(x))
			} else {
				s.addFloat(x)
			}
		}
	case fMin:
		if s.v.k == kNone || compare(v, s.v) < 0 {
			s.v = v
		}
	case fMax:
		if s.v.k == kNone || compare(v, s.v) > 0 {
			s.v = v
		}
	case fFirst:
		if s.v.k == kNone || t < s.t {
			s.v, s.t = v, t
		}
	case fLast:
		if s.v.k == kNone || t >= s.t {
			s.v, s.t = v, t
		}
	case fCountDistinct:
		var kb [48]byte
		key := appendKey(kb[:0], v)
		if _, ok := s.set[string(key)]; !ok {
			if s.set == nil {
				s.set = make(map[string]struct{})
			}
			s.set[string(key)] = struct{}{}
		}
	}
}

func (s *state) addInt(x int64) {
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, uint64(x), 0)
	s.hi += x>>63 + int64(carry)
}

func (s *state) addUint(x uint64) {
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, x, 0)
	s.hi += int64(carry)
}

// addFloat adds x with Neumaier's compensated summation.
func (s *state) addFloat(x float64) {
	t := s.f + x
	switch {
	case math.IsInf(t, 0) || math.IsNaN(t):
		// Overflow: the compensation is meaningless from here on.
		s.c = 0
	case math.Abs(s.f) >= math.Abs(x):
		s.c += (s.f - t) + x
	default:
		s.c += (x - t) + s.f
	}
	s.f = t
}

// intFloat returns the exact integer total rounded to a float64.
func (s *state) intFloat() float64 {
	if s.hi == int64(s.lo)>>63 {
		return float64(int64(s.lo))
	}
	b := new(big.Int).SetInt64(s.hi)
	b.Lsh(b, 64)
	b.Add(b, new(big.Int).SetUint64(s.lo))
	f, _ := new(big.Float).SetInt(b).Float64()
	return f
}

// total returns the sum of all values as a float64.
func (s *state) total() float64 {
	if math.IsInf(s.f, 0) || math.IsNaN(s.f) {
		return s.f
	}
	t := state{f: s.f, c: s.c}
	t.addFloat(s.intFloat())
	return t.f + t.c
}

// Merge adds other's aggregates into a, as if a had been given other's
// events after its own: on ties min and max keep a's value, first keeps
// a's and last takes other's. It is how the runtime combines the sessions
// an event bridges (merge in session order). other is unchanged; it may be
// a itself.
//
// Merge is atomic: when an aggregate cannot merge (min or max holding
// values of different classes) it returns an [*AggregateError] naming it
// and leaves a unchanged. Accumulators of aggregators with different
// functions cannot be merged.
func (a *Acc) Merge(other *Acc) error {
	if !a.agg.compatible(other.agg) {
		return fmt.Errorf("windows: cannot merge accumulators of different aggregate definitions")
	}
	for i, f := range a.agg.fns {
		if f == fMin || f == fMax {
			if err := a.st[i].check(f, other.st[i].v); err != nil {
				return a.agg.errf(i, err)
			}
		}
	}
	for i, f := range a.agg.fns {
		a.st[i].merge(f, &other.st[i])
	}
	return nil
}

func (s *state) merge(f fn, o *state) {
	switch f {
	case fCount:
		s.n += o.n
	case fSum, fAvg:
		if o.n == 0 {
			return
		}
		s.n += o.n
		var carry uint64
		s.lo, carry = bits.Add64(s.lo, o.lo, 0)
		s.hi += o.hi + int64(carry)
		if o.fl {
			s.fl = true
			c := o.c
			s.addFloat(o.f)
			s.c += c
		}
	case fMin, fMax, fFirst, fLast:
		if o.v.k != kNone {
			s.add(f, o.v, o.t)
		}
	case fCountDistinct:
		if len(o.set) > 0 && s.set == nil {
			s.set = make(map[string]struct{}, len(o.set))
		}
		for k := range o.set {
			s.set[k] = struct{}{}
		}
	}
}

// Clone returns an independent copy of a.
func (a *Acc) Clone() *Acc {
	b := &Acc{agg: a.agg, st: append([]state(nil), a.st...)}
	for i := range b.st {
		if b.st[i].set != nil {
			m := make(map[string]struct{}, len(b.st[i].set))
			for k := range b.st[i].set {
				m[k] = struct{}{}
			}
			b.st[i].set = m
		}
	}
	return b
}

// Result returns the aggregates' values in definition order; see
// [Acc.AppendResult].
func (a *Acc) Result() []any {
	return a.AppendResult(make([]any, 0, len(a.st)))
}

// AppendResult appends the aggregates' values to dst in definition order.
// Their types:
//
//	count           int64, the number of events added
//	sum             int64 when all values were integers and the exact
//	                total fits an int64; float64 otherwise; nil if no values
//	min, max        the winning value with its own type; nil if no values
//	avg             float64; nil if no values
//	first, last     the value with its own type; nil if no values
//	count_distinct  int64
//
// Values are int64, uint64, float64, string, bool or time.Time (UTC).
func (a *Acc) AppendResult(dst []any) []any {
	for i, f := range a.agg.fns {
		dst = append(dst, a.st[i].result(f))
	}
	return dst
}

func (s *state) result(f fn) any {
	switch f {
	case fCount:
		return s.n
	case fSum:
		switch {
		case s.n == 0:
			return nil
		case !s.fl && s.hi == int64(s.lo)>>63:
			return int64(s.lo)
		}
		return s.total()
	case fAvg:
		if s.n == 0 {
			return nil
		}
		return s.total() / float64(s.n)
	case fMin, fMax, fFirst, fLast:
		return s.v.native()
	case fCountDistinct:
		return int64(len(s.set))
	}
	return nil
}

// AppendJSONFields appends the results as JSON object members,
// `"name":value` separated by commas, in definition order and without
// braces, so the runtime can add its own members (key, window bounds)
// around them. Timestamps are RFC 3339 strings in UTC; a non-finite
// float (only a sum overflowing float64 produces one) is null.
func (a *Acc) AppendJSONFields(dst []byte) []byte {
	for i, f := range a.agg.fns {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, a.agg.defs[i].Name)
		dst = append(dst, ':')
		dst = appendJSONValue(dst, a.st[i].result(f))
	}
	return dst
}

// String formats the results for debugging, e.g. "{n:3 total:12}".
func (a *Acc) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range a.Result() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%v", a.agg.defs[i].Name, v)
	}
	b.WriteByte('}')
	return b.String()
}
