package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"github.com/IBM/sarama"
	"gopkg.in/yaml.v3"

	"github.com/eddy-streams/eddy/route"
)

// checker validates a decoded Spec, applies its defaults and compiles its
// expressions into a Pipeline. One checker serves one Parse.
type checker struct {
	file  string
	data  []byte
	opts  *options
	d     *decoder
	errs  *errList
	red   *redactor
	spec  *Spec
	env   *cel.Env
	lines [][]byte // data split into lines, made on first use
	subs  map[*yaml.Node][]subst
	outs  map[string]output // the topics the pipeline writes, by name
	// inputs are the topics of joins' other inputs, by the field naming
	// each.
	inputs map[string]string
	tables []*Table // compiled before the steps, which look them up

	kafkaVersion sarama.KafkaVersion
}

// Result types accepted for each kind of expression (dyn is always accepted
// and checked at run time).
var (
	boolKinds   = []types.Kind{types.BoolKind}
	keyKinds    = []types.Kind{types.StringKind, types.IntKind, types.UintKind}
	timeKinds   = []types.Kind{types.TimestampKind, types.IntKind}
	numberKinds = []types.Kind{types.IntKind, types.UintKind, types.DoubleKind}
	orderKinds  = []types.Kind{types.IntKind, types.UintKind, types.DoubleKind, types.StringKind, types.TimestampKind, types.DurationKind}
	scalarKinds = []types.Kind{types.BoolKind, types.IntKind, types.UintKind, types.DoubleKind, types.StringKind, types.BytesKind, types.TimestampKind, types.DurationKind}
)

// aggArgKinds are the argument types of each aggregate function; nil means
// any type.
var aggArgKinds = map[AggFunc][]types.Kind{
	AggSum:           numberKinds,
	AggAvg:           numberKinds,
	AggMin:           orderKinds,
	AggMax:           orderKinds,
	AggFirst:         nil,
	AggLast:          nil,
	AggCountDistinct: scalarKinds,
}

const aggFuncList = "count(), sum(x), avg(x), min(x), max(x), first(x), last(x), count_distinct(x)"

func (c *checker) run() *Pipeline {
	c.validate()
	env, err := newCELEnv()
	if err != nil {
		c.errs.add(0, 0, "", "internal error: cel environment: %v", err)
		return nil
	}
	c.env = env
	s := c.spec
	p := &Pipeline{File: c.file, KafkaVersion: c.kafkaVersion}
	p.Source = c.input("source", &s.Source)
	for i := range s.Tables {
		t := &s.Tables[i]
		tb := &Table{Name: t.Name, Topic: t.Topic, Format: t.Format}
		if t.Redis != nil || t.SQL != nil {
			tb.External = t
		}
		c.tables = append(c.tables, tb)
	}
	p.Tables = c.tables
	for i := range s.Steps {
		if st, ok := c.step(i, &s.Steps[i]); ok {
			p.Steps = append(p.Steps, st)
		}
	}
	if k := s.Sink; k != nil {
		p.Sink = &Sink{Topics: k.Topics, Router: route.Policy(k.Router), Format: k.Format}
		if k.Topic != "" {
			p.Sink.Topics = []string{k.Topic}
		}
		if k.Key != "" {
			p.Sink.Key = c.expr("sink.key", k.Key, 0, keyKinds, "string or int")
		}
		if sc := k.Schema; sc != nil {
			p.Sink.Schema = &SinkSchema{Subject: sc.Subject, Strategy: sc.Strategy, Register: sc.Register == nil || *sc.Register, Message: sc.Message}
			if sc.File != "" {
				p.Sink.Schema.File = sc.File
				if !filepath.IsAbs(sc.File) && c.file != "" {
					p.Sink.Schema.File = filepath.Join(filepath.Dir(c.file), sc.File)
				}
				b, err := os.ReadFile(p.Sink.Schema.File)
				if err != nil {
					c.fail("sink.schema.file", "%v", err)
				}
				p.Sink.Schema.Text = string(b)
			}
		}
	}
	p.Spec = *s
	return p
}

// input compiles a source section at path (the source, or a join's
// other input).
func (c *checker) input(path string, sc *SourceConfig) Source {
	src := Source{
		Topics:          sc.Topics,
		Format:          sc.Format,
		Start:           sc.Start,
		AllowedLateness: sc.Watermark.AllowedLateness,
		IdleTimeout:     sc.Watermark.IdleTimeout,
		MaxFuture:       sc.Watermark.MaxFuture,
	}
	if sc.EventID != "" {
		src.EventID = c.expr(path+".event_id", sc.EventID, 0, keyKinds, "string or int")
	}
	if sc.EventTime != "" {
		src.EventTime = c.expr(path+".event_time", sc.EventTime, 0, timeKinds, "timestamp or int (Unix milliseconds)")
	}
	return src
}

// joinExprs compiles a join step at path. Its select sees left and right
// (the two events) besides the usual variables.
func (c *checker) joinExprs(path string, j *JoinConfig) *Join {
	out := &Join{Name: j.Name, Within: j.Within, Grace: j.Grace, Type: j.Type, Partitions: j.Partitions,
		Topic: InternalTopic(c.spec.Name, j.Name)}
	out.With = c.input(path+".with", &j.With)
	out.With.Start = c.spec.Source.Start
	out.LeftKey = c.expr(path+".on.left", j.On.Left, 0, keyKinds, "string or int")
	out.RightKey = c.expr(path+".on.right", j.On.Right, 0, keyKinds, "string or int")
	if j.Late != nil {
		out.LateTopic, out.LateRouter = j.Late.Topic, route.Policy(j.Late.Router)
	}
	if len(j.Select) > 0 {
		env, err := c.env.Extend(
			cel.Variable("left", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("right", cel.MapType(cel.StringType, cel.DynType)))
		if err != nil {
			c.errs.add(0, 0, path, "internal error: cel environment: %v", err)
			return out
		}
		base := c.env
		c.env = env
		out.Select = c.fields(path+".select", j.Select)
		c.env = base
	}
	return out
}

func (c *checker) step(i int, sc *StepConfig) (Step, bool) {
	path := indexPath("steps", i)
	if c.errs.has(path) {
		return Step{}, false
	}
	st := Step{Kind: sc.Kind(), Index: i, Field: path}
	if n := c.d.node(path); n != nil {
		st.Line = n.Line
	}
	d := st.Kind.def()
	if d == nil {
		return Step{}, false
	}
	d.compile(c, path+"."+d.name, sc, &st)
	return st, true
}

func (c *checker) fields(path string, fes FieldExprs) []Field {
	out := make([]Field, 0, len(fes))
	for _, fe := range fes {
		out = append(out, Field{Name: fe.Name, Expr: c.expr(joinPath(path, fe.Name), fe.Expr, 0, nil, "")})
	}
	return out
}

func (c *checker) aggregateExprs(path string, a *AggregateConfig) *Aggregate {
	out := &Aggregate{Name: a.Name, Emit: a.Emit, Retention: a.Retention}
	if a.Late != nil {
		out.LateTopic, out.LateRouter = a.Late.Topic, route.Policy(a.Late.Router)
	}
	w := a.Window
	switch {
	case c.d.has(path + ".window.tumbling"):
		out.Window = WindowSpec{Kind: Tumbling, Size: w.Tumbling, Advance: w.Tumbling, Grace: w.Grace}
	case c.d.has(path + ".window.hopping"):
		out.Window = WindowSpec{Kind: Hopping, Size: w.Hopping, Advance: w.Advance, Grace: w.Grace}
	case c.d.has(path + ".window.session"):
		out.Window = WindowSpec{Kind: Session, Gap: w.Session, Grace: w.Grace}
	}
	if a.Key != "" {
		out.Key = c.expr(path+".key", a.Key, 0, keyKinds, "string or int")
	}
	for _, fe := range a.Values {
		if v, ok := c.aggValue(joinPath(path+".values", fe.Name), fe); ok {
			out.Values = append(out.Values, v)
		}
	}
	return out
}

// aggValue compiles one aggregate value, "func(expr)".
func (c *checker) aggValue(path string, fe FieldExpr) (AggValue, bool) {
	text := strings.TrimSpace(fe.Expr)
	lead := strings.Index(fe.Expr, text)
	open := strings.IndexByte(text, '(')
	if open <= 0 || !strings.HasSuffix(text, ")") {
		c.fail(path, "%q: want one of %s", text, aggFuncList)
		return AggValue{}, false
	}
	fn := AggFunc(strings.TrimSpace(text[:open]))
	if _, ok := aggArgKinds[fn]; !ok && fn != AggCount {
		c.fail(path, "unknown aggregate function %q: want one of %s", string(fn), aggFuncList)
		return AggValue{}, false
	}
	// The text must be exactly one call of fn.
	ast, iss := c.env.Parse(text)
	if iss.Err() != nil {
		c.celErrors(path, text, utf8.RuneCountInString(fe.Expr[:lead]), iss)
		return AggValue{}, false
	}
	root := ast.NativeRep().Expr()
	if root.Kind() != celast.CallKind || root.AsCall().FunctionName() != string(fn) || root.AsCall().IsMemberFunction() {
		c.fail(path, "%q: want a single call such as sum(event.price), one of %s", text, aggFuncList)
		return AggValue{}, false
	}
	nargs := len(root.AsCall().Args())
	v := AggValue{Name: fe.Name, Func: fn}
	if fn == AggCount {
		if nargs != 0 {
			c.fail(path, "count() takes no argument; use a filter step to count some events only")
			return AggValue{}, false
		}
		return v, true
	}
	if nargs != 1 {
		c.fail(path, "%s takes one argument, got %d", fn, nargs)
		return AggValue{}, false
	}
	want := aggArgKinds[fn]
	desc := kindsDesc(want)
	argOffset := utf8.RuneCountInString(fe.Expr[:lead+open+1])
	v.Arg = c.expr(path, text[open+1:len(text)-1], argOffset, want, desc)
	return v, v.Arg != nil
}

func kindsDesc(kinds []types.Kind) string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = celKindName[k]
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

var celKindName = map[types.Kind]string{
	types.BoolKind: "bool", types.IntKind: "int", types.UintKind: "uint", types.DoubleKind: "double",
	types.StringKind: "string", types.BytesKind: "bytes", types.TimestampKind: "timestamp",
	types.DurationKind: "duration",
}

// expr compiles one expression found at path. offset is the expression's
// byte offset inside the YAML scalar (non-zero for aggregate arguments).
// want lists the accepted result kinds (nil: any); desc describes them.
func (c *checker) expr(path, text string, offset int, want []types.Kind, desc string) *Expr {
	if c.errorUnder(path) {
		return nil
	}
	display := c.red.apply(strings.TrimSpace(text))
	if strings.TrimSpace(text) == "" {
		c.fail(path, "empty expression")
		return nil
	}
	ast, iss := c.env.Compile(text)
	if iss.Err() != nil {
		c.celErrors(path, text, offset, iss)
		return nil
	}
	line, col, _ := c.celPos(path, offset, 1, 0)
	t := ast.OutputType()
	if want != nil && !kindIn(t.Kind(), want) {
		c.errs.add(line, col, path, "%q has type %s, want %s", display, t, desc)
		return nil
	}
	prg, err := c.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		c.errs.add(line, col, path, "%q: %v", display, err)
		return nil
	}
	root := ast.NativeRep().Expr()
	fields, all := eventRefs(root)
	return &Expr{
		Text: strings.TrimSpace(text), File: c.file, Line: line, Col: col, Field: path,
		Type: t.String(), prg: prg, display: display,
		fields: fields, allFields: all, fast: compileFast(root),
	}
}

func kindIn(k types.Kind, want []types.Kind) bool {
	if k == types.DynKind || k == types.AnyKind {
		return true
	}
	for _, w := range want {
		if k == w {
			return true
		}
	}
	return false
}

// celErrors records CEL's compile errors at their positions in the file.
func (c *checker) celErrors(path, text string, offset int, iss *cel.Issues) {
	display := c.red.apply(strings.TrimSpace(text))
	for _, e := range iss.Errors() {
		line, col, exact := c.celPos(path, offset, e.Location.Line(), e.Location.Column())
		msg := e.Message
		if !exact {
			msg = fmt.Sprintf("%s (expression line %d, column %d)", msg, e.Location.Line(), e.Location.Column()+1)
		}
		c.errs.add(line, col, path, "%s in %q", msg, display)
	}
}

// celPos maps a CEL position (1-based line, 0-based column in runes, both
// relative to the expression, which starts offset runes into its YAML
// scalar) to the file. Single-line scalars map exactly, ${VAR} expansions
// accounted for (quoted scalars assume no escapes before the position);
// literal blocks ("|") map line and column; other multi-line forms map to
// the scalar's start and report exact=false.
func (c *checker) celPos(path string, offset, celLine, celCol int) (line, col int, exact bool) {
	n := c.d.node(path)
	if n == nil {
		return 1, 1, false
	}
	switch {
	case n.Style&yaml.LiteralStyle != 0:
		// The block's indentation is that of its first line; CEL's
		// columns count from there.
		return n.Line + max(celLine, 1), c.indent(n.Line+1) + offset + celCol + 1, true
	case strings.Contains(n.Value, "\n") || n.Style&yaml.FoldedStyle != 0 || celLine > 1:
		return n.Line, n.Column, false
	}
	col = n.Column + sourceOffset(c.subs[n], offset+celCol)
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		col++
	}
	return n.Line, col, true
}

// indent returns the number of leading blanks of a 1-based file line.
func (c *checker) indent(line int) int {
	if c.lines == nil {
		c.lines = bytes.Split(c.data, []byte("\n"))
	}
	if line < 1 || line > len(c.lines) {
		return 0
	}
	l := c.lines[line-1]
	return len(l) - len(bytes.TrimLeft(l, " \t"))
}
