package pipeline

import (
	"math"
	"strconv"
	"time"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// The commonest expressions — a field (event.user), a field compared with
// a constant (event.v > 500), arithmetic on fields (event.qty * event.price),
// the plain conversions (double(event.qty), timestamp(event.ts)) and these
// combined with &&, || and ! — are evaluated here, without the
// CEL interpreter, on the Go values of the event. The rule that makes this
// safe: a fast evaluation either gives the value CEL would give or gives
// up, and giving up runs the CEL program. It gives up on everything that
// is not plainly int, double, string or bool, on a missing field, on mixed
// int and double operands (CEL's cross-type rules stay CEL's), on NaN, and
// on every operation that is an error in CEL (integer overflow, division
// or modulus by zero): the errors and their messages are always CEL's.
// TestFastMatchesCEL checks this against CEL over generated expressions
// and events.

// fkind is the type of a fast value.
type fkind uint8

const (
	fInt fkind = iota + 1
	fDouble
	fString
	fBool
	fTime
)

// fval is a value of a fast evaluation, not boxed: an int or a bool in i,
// a double in f, a string in s, a timestamp in t.
type fval struct {
	k fkind
	i int64
	f float64
	s string
	t time.Time
}

// fastNode is one node of a fast expression. eval reports false to give
// up (the caller then runs CEL).
type fastNode interface {
	eval(ev map[string]any) (fval, bool)
}

// compileFast returns e as a fast expression, or nil when any part of it
// is outside what fast.go evaluates.
func compileFast(e celast.Expr) fastNode {
	switch e.Kind() {
	case celast.LiteralKind:
		switch x := e.AsLiteral().(type) {
		case types.Int:
			return litNode{fval{k: fInt, i: int64(x)}}
		case types.Double:
			return litNode{fval{k: fDouble, f: float64(x)}}
		case types.String:
			return litNode{fval{k: fString, s: string(x)}}
		case types.Bool:
			return litNode{fval{k: fBool, i: b2i(bool(x))}}
		}
		return nil
	case celast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() {
			return nil
		}
		return fieldOf(s.Operand(), s.FieldName())
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			return nil
		}
		args := c.Args()
		fn := c.FunctionName()
		if fn == operators.Index && len(args) == 2 {
			if f, ok := stringLiteral(args[1]); ok {
				return fieldOf(args[0], f)
			}
			return nil
		}
		nodes := make([]fastNode, len(args))
		for i, a := range args {
			if nodes[i] = compileFast(a); nodes[i] == nil {
				return nil
			}
		}
		switch len(nodes) {
		case 1:
			switch fn {
			case operators.LogicalNot:
				return notNode{nodes[0]}
			case operators.Negate:
				return negNode{nodes[0]}
			case "double", "int", "string", "timestamp":
				return convNode{fn, nodes[0]}
			}
		case 2:
			l, r := nodes[0], nodes[1]
			switch fn {
			case operators.LogicalAnd:
				return andNode{l, r}
			case operators.LogicalOr:
				return orNode{l, r}
			case operators.Add, operators.Subtract, operators.Multiply, operators.Divide, operators.Modulo:
				return arithNode{fn[1], l, r}
			case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals,
				operators.Greater, operators.GreaterEquals:
				return cmpNode{fn, l, r}
			}
		}
	}
	return nil
}

// fieldOf returns the field node of operand.name, when operand is event
// or a field node.
func fieldOf(operand celast.Expr, name string) fastNode {
	if isEvent(operand) {
		return fieldNode{[]string{name}}
	}
	if inner, ok := compileFast(operand).(fieldNode); ok {
		return fieldNode{append(append([]string(nil), inner.path...), name)}
	}
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

type litNode struct{ v fval }

func (n litNode) eval(map[string]any) (fval, bool) { return n.v, true }

// fieldNode is event.a(.b...): maps all the way down to a plain value.
type fieldNode struct{ path []string }

func (n fieldNode) eval(ev map[string]any) (fval, bool) {
	m := ev
	for i, name := range n.path {
		x, ok := m[name]
		if !ok {
			return fval{}, false // CEL's "no such key"
		}
		if i < len(n.path)-1 {
			if m, ok = x.(map[string]any); !ok {
				return fval{}, false
			}
			continue
		}
		switch x := x.(type) {
		case int64:
			return fval{k: fInt, i: x}, true
		case float64:
			if math.IsNaN(x) {
				return fval{}, false
			}
			return fval{k: fDouble, f: x}, true
		case string:
			return fval{k: fString, s: x}, true
		case bool:
			return fval{k: fBool, i: b2i(x)}, true
		}
	}
	return fval{}, false
}

type notNode struct{ x fastNode }

func (n notNode) eval(ev map[string]any) (fval, bool) {
	x, ok := n.x.eval(ev)
	if !ok || x.k != fBool {
		return fval{}, false
	}
	return fval{k: fBool, i: 1 - x.i}, true
}

type negNode struct{ x fastNode }

func (n negNode) eval(ev map[string]any) (fval, bool) {
	x, ok := n.x.eval(ev)
	switch {
	case !ok:
	case x.k == fInt && x.i != math.MinInt64:
		return fval{k: fInt, i: -x.i}, true
	case x.k == fDouble:
		return fval{k: fDouble, f: -x.f}, true
	}
	return fval{}, false
}

// convNode is a type conversion of the cases that cannot fail or that
// CEL's own conversion decides: double(int), int(int), string(string),
// string(int), double(double), and timestamp(string) through cel-go's
// String.ConvertToType (its RFC 3339 checks and range, exactly).
type convNode struct {
	to string
	x  fastNode
}

func (n convNode) eval(ev map[string]any) (fval, bool) {
	x, ok := n.x.eval(ev)
	if !ok {
		return fval{}, false
	}
	switch {
	case n.to == "double" && x.k == fInt:
		return fval{k: fDouble, f: float64(x.i)}, true
	case n.to == "double" && x.k == fDouble, n.to == "int" && x.k == fInt, n.to == "string" && x.k == fString:
		return x, true
	case n.to == "string" && x.k == fInt:
		return fval{k: fString, s: strconv.FormatInt(x.i, 10)}, true
	case n.to == "timestamp" && x.k == fString:
		if ts, ok := types.String(x.s).ConvertToType(types.TimestampType).(types.Timestamp); ok {
			return fval{k: fTime, t: ts.Time}, true
		}
	}
	return fval{}, false
}

// andNode and orNode follow CEL's commutative logic where it decides: a
// false (true) left side decides alone, as in CEL whatever the right side
// is; otherwise both sides must be bools.
type andNode struct{ l, r fastNode }

func (n andNode) eval(ev map[string]any) (fval, bool) {
	l, ok := n.l.eval(ev)
	if !ok || l.k != fBool {
		return fval{}, false
	}
	if l.i == 0 {
		return l, true
	}
	r, ok := n.r.eval(ev)
	if !ok || r.k != fBool {
		return fval{}, false
	}
	return r, true
}

type orNode struct{ l, r fastNode }

func (n orNode) eval(ev map[string]any) (fval, bool) {
	l, ok := n.l.eval(ev)
	if !ok || l.k != fBool {
		return fval{}, false
	}
	if l.i == 1 {
		return l, true
	}
	r, ok := n.r.eval(ev)
	if !ok || r.k != fBool {
		return fval{}, false
	}
	return r, true
}

// arithNode is + - * / % on two ints or two doubles (+ also on two
// strings), giving up where CEL fails.
type arithNode struct {
	op   byte
	l, r fastNode
}

func (n arithNode) eval(ev map[string]any) (fval, bool) {
	l, ok := n.l.eval(ev)
	if !ok {
		return fval{}, false
	}
	r, ok := n.r.eval(ev)
	if !ok || l.k != r.k {
		return fval{}, false
	}
	switch l.k {
	case fInt:
		a, b := l.i, r.i
		var c int64
		switch n.op {
		case '+':
			if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
				return fval{}, false
			}
			c = a + b
		case '-':
			if (b < 0 && a > math.MaxInt64+b) || (b > 0 && a < math.MinInt64+b) {
				return fval{}, false
			}
			c = a - b
		case '*':
			if a != 0 && b != 0 {
				c = a * b
				if c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
					return fval{}, false
				}
			}
		case '/', '%':
			if b == 0 || (a == math.MinInt64 && b == -1) {
				return fval{}, false
			}
			if n.op == '/' {
				c = a / b
			} else {
				c = a % b
			}
		}
		return fval{k: fInt, i: c}, true
	case fDouble:
		a, b := l.f, r.f
		var c float64
		switch n.op {
		case '+':
			c = a + b
		case '-':
			c = a - b
		case '*':
			c = a * b
		case '/':
			c = a / b
		default: // CEL has no double modulus
			return fval{}, false
		}
		if math.IsNaN(c) {
			return fval{}, false
		}
		return fval{k: fDouble, f: c}, true
	case fString:
		if n.op == '+' {
			return fval{k: fString, s: l.s + r.s}, true
		}
	}
	return fval{}, false
}

// cmpNode compares two values of one kind: ints, doubles or strings
// (ordered and equal), bools (equal only).
type cmpNode struct {
	op   string
	l, r fastNode
}

func (n cmpNode) eval(ev map[string]any) (fval, bool) {
	l, ok := n.l.eval(ev)
	if !ok {
		return fval{}, false
	}
	r, ok := n.r.eval(ev)
	if !ok || l.k != r.k {
		return fval{}, false
	}
	var c int // -1, 0, 1
	switch l.k {
	case fInt:
		c = cmp3(l.i < r.i, l.i > r.i)
	case fDouble:
		c = cmp3(l.f < r.f, l.f > r.f)
	case fString:
		c = cmp3(l.s < r.s, l.s > r.s)
	case fBool:
		if n.op != operators.Equals && n.op != operators.NotEquals {
			return fval{}, false
		}
		c = cmp3(l.i < r.i, l.i > r.i)
	default:
		return fval{}, false
	}
	var res bool
	switch n.op {
	case operators.Equals:
		res = c == 0
	case operators.NotEquals:
		res = c != 0
	case operators.Less:
		res = c < 0
	case operators.LessEquals:
		res = c <= 0
	case operators.Greater:
		res = c > 0
	case operators.GreaterEquals:
		res = c >= 0
	}
	return fval{k: fBool, i: b2i(res)}, true
}

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

// native returns x as the Go value Expr.Value gives for it.
func (x fval) native() any {
	switch x.k {
	case fInt:
		return x.i
	case fDouble:
		return x.f
	case fString:
		return x.s
	case fTime:
		return x.t.UTC()
	}
	return x.i == 1
}
