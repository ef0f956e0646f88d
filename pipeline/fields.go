package pipeline

import (
	"slices"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// eventRefs returns the top-level event fields a checked expression reads:
// event.f, event["f"], event.?f, event[?"f"] and has(event.f) read f (and
// whatever lies below it). Any other use of event (the whole map as a
// value, a computed index, "f" in event, event as a comprehension's range)
// needs the whole event: all is true. An expression that rebinds the name
// event (a comprehension variable) needs it too, conservatively.
func eventRefs(e celast.Expr) (fields []string, all bool) {
	var walk func(e celast.Expr)
	add := func(f string) {
		if !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	walk = func(e celast.Expr) {
		if all {
			return
		}
		switch e.Kind() {
		case celast.IdentKind:
			if e.AsIdent() == "event" {
				all = true // event itself, not one of its fields
			}
		case celast.SelectKind:
			s := e.AsSelect()
			if isEvent(s.Operand()) {
				add(s.FieldName())
				return
			}
			walk(s.Operand())
		case celast.CallKind:
			c := e.AsCall()
			switch c.FunctionName() {
			case operators.Index, operators.OptIndex, operators.OptSelect:
				if args := c.Args(); len(args) == 2 && isEvent(args[0]) {
					if f, ok := stringLiteral(args[1]); ok {
						add(f)
						return
					}
				}
			}
			if c.IsMemberFunction() {
				walk(c.Target())
			}
			for _, a := range c.Args() {
				walk(a)
			}
		case celast.ListKind:
			for _, x := range e.AsList().Elements() {
				walk(x)
			}
		case celast.MapKind:
			for _, en := range e.AsMap().Entries() {
				me := en.AsMapEntry()
				walk(me.Key())
				walk(me.Value())
			}
		case celast.StructKind:
			for _, en := range e.AsStruct().Fields() {
				walk(en.AsStructField().Value())
			}
		case celast.ComprehensionKind:
			c := e.AsComprehension()
			if c.IterVar() == "event" || c.IterVar2() == "event" || c.AccuVar() == "event" {
				all = true
				return
			}
			walk(c.IterRange())
			walk(c.AccuInit())
			walk(c.LoopCondition())
			walk(c.LoopStep())
			walk(c.Result())
		}
	}
	walk(e)
	if all {
		return nil, true
	}
	slices.Sort(fields)
	return fields, false
}

func isEvent(e celast.Expr) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == "event"
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// EventFields returns the top-level event fields e reads, sorted, or
// all=true when it needs the whole event (see Pipeline.EventFields).
func (e *Expr) EventFields() (fields []string, all bool) {
	return e.fields, e.allFields
}

// EventFields returns the top-level fields of a decoded event that stage
// s reads before anything replaces or writes out the whole event, sorted;
// all is true when the stage needs the whole event. The runtime decodes
// only these fields (a Projection), which gives the same results as a
// full decode: nothing in the stage can see the other fields.
//
// A stage needs the whole event when the event leaves it as it is: a
// sink or a repartition writes it, a join buffers it, a table keeps it,
// a custom processor sees it. A map step or an aggregate replaces the
// event, so nothing after it reads the decoded one; the fields of filter,
// set, key, lookup, map and aggregate expressions and of the source's
// event_id and event_time are what the stage reads.
func (p *Pipeline) EventFields(s Stage) (fields []string, all bool) {
	if s.Table != nil {
		return nil, true
	}
	var set []string
	read := func(e *Expr) {
		if e == nil || all {
			return
		}
		fs, a := e.EventFields()
		if a {
			all = true
			return
		}
		for _, f := range fs {
			if !slices.Contains(set, f) {
				set = append(set, f)
			}
		}
	}
	if s.Source != nil {
		read(s.Source.EventID)
		read(s.Source.EventTime)
	}
	replaced := false
	for i := s.First; i < s.End && !all && !replaced; i++ {
		st := &p.Steps[i]
		switch st.Kind {
		case FilterStep:
			read(st.Filter)
		case KeyStep:
			read(st.Key)
		case SetStep:
			for _, f := range st.Fields {
				read(f.Expr)
			}
		case MapStep:
			for _, f := range st.Fields {
				read(f.Expr)
			}
			replaced = true
		case LookupStep:
			read(st.Lookup.Key)
		case AggregateStep:
			read(st.Aggregate.Key)
			for _, v := range st.Aggregate.Values {
				read(v.Arg)
			}
			replaced = true
		default: // processor, repartition, join: the event leaves as it is
			all = true
		}
	}
	if !replaced && !all {
		switch {
		case s.Repartition != nil:
			all = true // the event is written to the internal topic
		case p.Sink != nil:
			all = true // the sink writes the event
		}
	}
	if all {
		return nil, true
	}
	slices.Sort(set)
	return set, false
}
