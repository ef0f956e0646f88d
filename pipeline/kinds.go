package pipeline

import (
	"strconv"

	"github.com/eddy-streams/eddy/route"
)

// kindDef is everything this package knows about one kind of step, in one
// place: its name in the file, which StepConfig field holds it (decoding),
// its checks (validation) and how it becomes a Step (compilation). The
// runtime's builder of each kind is the one other place, processor's
// builders table; a test there fails when a kind of kinds has none.
//
// Adding a kind: a StepKind constant, its StepConfig field, an entry here,
// its fields in Step, and a builder in processor/ops.go.
type kindDef struct {
	kind StepKind
	name string // the key in the file, "filter", ...
	// set reports whether the step's field is present in a decoded
	// StepConfig (Kind's answer: the first kind whose field is set).
	set func(*StepConfig) bool
	// effect: the step does something without a sink (it keeps state or
	// calls user code), so a pipeline of it and no sink is not pointless.
	effect bool
	// check validates the step at path (steps[i].<name>), applying its
	// defaults. names holds the aggregate names seen so far (name -> line).
	check func(c *checker, path string, i int, sc *StepConfig, names map[string]int)
	// compile fills the kind's fields of st from sc (path as in check).
	compile func(c *checker, path string, sc *StepConfig, st *Step)
}

// kinds lists every step kind, in StepKind order.
var kinds = [...]kindDef{
	{
		kind: FilterStep, name: "filter",
		set:   func(s *StepConfig) bool { return s.Filter != "" },
		check: checkExprText(func(s *StepConfig) string { return s.Filter }),
		compile: func(c *checker, path string, sc *StepConfig, st *Step) {
			st.Filter = c.expr(path, sc.Filter, 0, boolKinds, "bool")
		},
	},
	{
		kind: SetStep, name: "set",
		set:   func(s *StepConfig) bool { return s.Set != nil },
		check: checkFields(func(s *StepConfig) FieldExprs { return s.Set }),
		compile: func(c *checker, path string, sc *StepConfig, st *Step) {
			st.Fields = c.fields(path, sc.Set)
		},
	},
	{
		kind: MapStep, name: "map",
		set:   func(s *StepConfig) bool { return s.Map != nil },
		check: checkFields(func(s *StepConfig) FieldExprs { return s.Map }),
		compile: func(c *checker, path string, sc *StepConfig, st *Step) {
			st.Fields = c.fields(path, sc.Map)
		},
	},
	{
		kind: KeyStep, name: "key",
		set:   func(s *StepConfig) bool { return s.Key != "" },
		check: checkExprText(func(s *StepConfig) string { return s.Key }),
		compile: func(c *checker, path string, sc *StepConfig, st *Step) {
			st.Key = c.expr(path, sc.Key, 0, keyKinds, "string or int")
		},
	},
	{
		kind: ProcessorStep, name: "processor", effect: true,
		set: func(s *StepConfig) bool { return s.Processor != nil },
		check: func(c *checker, path string, _ int, sc *StepConfig, _ map[string]int) {
			c.processor(path, sc.Processor)
		},
		compile: func(c *checker, path string, sc *StepConfig, st *Step) {
			st.Processor = &ProcessorRef{Name: sc.Processor.Name, Config: sc.Processor.Config}
			if n, ok := c.d.nodes[path+".config"]; ok && !isNull(n) {
				st.Processor.Node = n
			}
		},
	},
	{
		kind: AggregateStep, name: "aggregate", effect: true,
		set: func(s *StepConfig) bool { return s.Aggregate != nil },
		check: func(c *checker, path string, i int, sc *StepConfig, names map[string]int) {
			c.aggregate(path, i, sc.Aggregate, names)
		},
		compile: func(c *checker, path string, sc *StepConfig, st *Step) {
			st.Aggregate = c.aggregateExprs(path, sc.Aggregate)
		},
	},
	{
		kind: RepartitionStep, name: "repartition",
		set: func(s *StepConfig) bool { return s.Repartition != nil },
		check: func(c *checker, path string, i int, sc *StepConfig, names map[string]int) {
			c.repartition(path, i, sc.Repartition, names)
		},
		compile: func(c *checker, path string, sc *StepConfig, st *Step) {
			r := sc.Repartition
			st.Repartition = &Repartition{Name: r.Name, Partitions: r.Partitions, Router: route.Policy(r.Router),
				Topic: InternalTopic(c.spec.Name, r.Name)}
			st.Repartition.Key = c.expr(path+".key", r.Key, 0, keyKinds, "string or int")
		},
	},
	{
		kind: JoinStep, name: "join", effect: false,
		set: func(s *StepConfig) bool { return s.Join != nil },
		check: func(c *checker, path string, i int, sc *StepConfig, names map[string]int) {
			c.join(path, i, sc.Join, names)
		},
		compile: func(c *checker, path string, sc *StepConfig, st *Step) {
			st.Join = c.joinExprs(path, sc.Join)
		},
	},
	{
		kind: LookupStep, name: "lookup",
		set: func(s *StepConfig) bool { return s.Lookup != nil },
		check: func(c *checker, path string, _ int, sc *StepConfig, _ map[string]int) {
			c.lookup(path, sc.Lookup)
		},
		compile: func(c *checker, path string, sc *StepConfig, st *Step) {
			l := sc.Lookup
			st.Lookup = &Lookup{Type: l.Type, As: l.As}
			for _, t := range c.tables {
				if t.Name == l.Table {
					st.Lookup.Table = t
				}
			}
			st.Lookup.Key = c.expr(path+".key", l.Key, 0, keyKinds, "string or int")
		},
	},
}

// InternalTopic is the name of the internal topic of the repartition step
// named step in pipeline.
func InternalTopic(pipeline, step string) string { return "eddy-" + pipeline + "-" + step }

// StepKinds returns every step kind, in StepKind order.
func StepKinds() []StepKind {
	out := make([]StepKind, len(kinds))
	for i := range kinds {
		out[i] = kinds[i].kind
	}
	return out
}

// def returns k's entry in kinds, nil for an unknown kind.
func (k StepKind) def() *kindDef {
	if k < 1 || int(k) > len(kinds) {
		return nil
	}
	return &kinds[k-1]
}

// String returns the kind's name as written in the file ("filter", ...).
func (k StepKind) String() string {
	if d := k.def(); d != nil {
		return d.name
	}
	return "StepKind(" + strconv.Itoa(int(k)) + ")"
}

// Kind reports which kind of step s is (its one set field).
func (s *StepConfig) Kind() StepKind {
	for i := range kinds {
		if kinds[i].set(s) {
			return kinds[i].kind
		}
	}
	return 0
}

// kindNames are the names of every kind, in StepKind order.
func kindNames() []string {
	out := make([]string, len(kinds))
	for i := range kinds {
		out[i] = kinds[i].name
	}
	return out
}

// checkExprText checks that a step holding one expression has one.
func checkExprText(text func(*StepConfig) string) func(*checker, string, int, *StepConfig, map[string]int) {
	return func(c *checker, path string, _ int, sc *StepConfig, _ map[string]int) {
		if text(sc) == "" {
			c.fail(path, "empty expression")
		}
	}
}

// checkFields checks that a step holding fields has at least one.
func checkFields(fields func(*StepConfig) FieldExprs) func(*checker, string, int, *StepConfig, map[string]int) {
	return func(c *checker, path string, _ int, sc *StepConfig, _ map[string]int) {
		if len(fields(sc)) == 0 {
			c.fail(path, "want at least one field")
		}
	}
}
