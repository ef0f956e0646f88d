package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"gopkg.in/yaml.v3"

	"github.com/eddy-streams/eddy/route"
)

// Pipeline is a loaded pipeline file: the decoded, defaulted Spec and the
// compiled parts the runtime runs. A Pipeline is immutable after Load or
// Parse and safe for concurrent use (the Exprs in it are too).
type Pipeline struct {
	// Spec is the file as decoded, with every default filled in.
	Spec Spec
	// File is the file name errors refer to.
	File string
	// KafkaVersion is Spec.Kafka.Version parsed for sarama.
	KafkaVersion sarama.KafkaVersion
	// Source is the compiled source section.
	Source Source
	// Steps are the compiled steps, in order.
	Steps []Step
	// Sink is the compiled sink, nil when the pipeline has none.
	Sink *Sink
	// Tables are the compiled tables, in file order.
	Tables []*Table
}

// Source is the compiled source section.
type Source struct {
	Topics []string // the topics to consume
	Format Format   // how record values are decoded (see Decode)
	Start  Start    // where a group without committed offsets starts
	// EventID computes an event's id; nil means "<topic>-<partition>-<offset>".
	EventID *Expr
	// EventTime computes an event's time; nil means the record timestamp.
	EventTime *Expr
	// AllowedLateness, IdleTimeout and MaxFuture are source.watermark's
	// settings.
	AllowedLateness time.Duration
	IdleTimeout     time.Duration
	MaxFuture       time.Duration
}

// StepKind says what a step does.
type StepKind int

// The step kinds.
const (
	FilterStep      StepKind = iota + 1 // drop events for which Filter is false
	SetStep                             // add or replace fields of the event
	MapStep                             // replace the event with new fields
	KeyStep                             // change the record key
	ProcessorStep                       // run a registered custom processor
	AggregateStep                       // windowed aggregation
	RepartitionStep                     // re-key through an internal topic
	JoinStep                            // join with another stream within an interval
	LookupStep                          // join with a table's row
)

// Step is one compiled step. Which fields are set depends on Kind.
type Step struct {
	Kind  StepKind // which of the fields below is set
	Index int      // position in steps, from 0
	Field string   // "steps[<Index>]", the prefix of its errors
	Line  int      // line of the step in the file
	// Filter is the condition of a FilterStep.
	Filter *Expr
	// Fields are the fields of a SetStep or MapStep, in file order.
	Fields []Field
	// Key is the new key of a KeyStep.
	Key *Expr
	// Processor names the custom processor of a ProcessorStep.
	Processor *ProcessorRef
	// Aggregate is the aggregation of an AggregateStep.
	Aggregate *Aggregate
	// Repartition is the hop of a RepartitionStep.
	Repartition *Repartition
	// Join is the join of a JoinStep.
	Join *Join
	// Lookup is the table lookup of a LookupStep.
	Lookup *Lookup
}

// Table is a compiled tables item: Topic materialized into the state
// store, a row per message key, under each table partition's state (so
// committed with the partition's offset, fenced like any partition).
type Table struct {
	Name   string
	Topic  string // "" for a table the user keeps (External)
	Format Format
	// External, when set, is the tables item of a Redis or SQL table the
	// user keeps: read only, through a per-worker cache; the runtime gets
	// it as a processor.TableSource.
	External *TableConfig
}

// Lookup is a compiled lookup step.
type Lookup struct {
	Table *Table
	Key   *Expr    // the row key (string or int)
	Type  JoinType // inner or left
	As    string   // the event field that receives the row
}

// Join is a compiled join step: an interval join of the stream so far (the
// left side) with another input (the right side, With). Both sides are
// routed by join key into Topic, an internal topic, each record tagged
// with its side, and the join runs on that one log (see Stages).
type Join struct {
	Name string // unique among the pipeline's named steps
	// With is the right side's input, compiled like the source section.
	With Source
	// LeftKey and RightKey give each side's join key (string or int).
	LeftKey, RightKey *Expr
	// Within bounds the event-time distance of a matching pair; Grace is
	// how far behind the watermark an event is still joined.
	Within, Grace time.Duration
	Type          JoinType
	// Select builds an output from left and right; nil: {left, right}.
	Select []Field
	// LateTopic receives late events ("" counts and drops them), placed by
	// LateRouter.
	LateTopic  string
	LateRouter route.Policy
	Partitions int    // of Topic; 0: the source topics' partition count
	Topic      string // "eddy-<pipeline>-<name>"
}

// Emits reports whether the join emits the unmatched events of side
// (SideLeft or SideRight) once their interval has closed.
func (j *Join) Emits(side Side) bool {
	switch j.Type {
	case JoinOuter:
		return true
	case JoinLeft:
		return side == SideLeft
	case JoinRight:
		return side == SideRight
	}
	return false
}

// Side is the side of a join a record comes from.
type Side byte

// The sides of a join; SideNone marks a plain repartition.
const (
	SideNone  Side = 0
	SideLeft  Side = 'l'
	SideRight Side = 'r'
)

// Repartition is a compiled repartition step: the steps after it run on
// Topic, an internal topic the worker creates, whose records are routed
// by Key.
type Repartition struct {
	Name       string       // unique among the pipeline's named steps
	Key        *Expr        // the new key (string or int)
	Partitions int          // of Topic; 0: the source topics' partition count
	Router     route.Policy // how records are placed on Topic
	Topic      string       // "eddy-<pipeline>-<name>"
	// Side, for the routing of a join's input into its internal topic,
	// tags every record with its side; SideNone for a repartition step.
	Side Side
}

// Stage is one sub-topology: the steps Steps[First:End] of the pipeline,
// run on the partitions of Topics, decoded per Source. Stage 0 reads the
// source topics. Each repartition step ends a stage, and the next reads
// its internal topic. A join step ends the stage before it too, and adds
// one that reads the join's other input (no steps of its own); both are
// routed (Repartition, tagged by Side) into the join's internal topic,
// which the stage starting with the join step reads.
type Stage struct {
	Index      int
	Topics     []string
	Source     *Source // how Topics' records are decoded; nil on an internal topic
	First, End int
	Internal   bool // Topics is an internal topic
	// Repartition routes the stage's records into the next stage's
	// internal topic: the repartition step that ends the stage (Side
	// SideNone, run as its last step), or a join's routing of one side (run
	// after Steps[First:End]); nil for the stage that feeds the sink.
	Repartition *Repartition
	// Upstream are the indexes of the stages that write Topics, on an
	// internal topic: its watermark is the minimum over their partitions.
	Upstream []int
	// Table, for a table's stage, is the table its topic materializes; it
	// runs no steps.
	Table *Table
}

// Topics returns every topic the pipeline's consumer group reads: the
// source topics, each join's other input, then each internal topic.
func (p *Pipeline) Topics() []string {
	var out []string
	stages := p.Stages()
	for _, s := range stages {
		if !s.Internal {
			out = append(out, s.Topics...)
		}
	}
	for _, s := range stages {
		if s.Internal {
			out = append(out, s.Topics...)
		}
	}
	return out
}

// TopicUse is a topic a pipeline reads or writes, with the field that
// names it; for a topic it writes, the router that places its records and
// whether it is a side output (dead letters, late events) rather than a
// sink topic.
type TopicUse struct {
	Topic, Field string
	Router       route.Policy // outputs only
	Side         bool         // a dead-letter or late topic
}

// Inputs are the topics the pipeline reads that others write: the source
// topics, each join's other input, each table's topic (not the internal
// topics, which the worker creates).
func (p *Pipeline) Inputs() []TopicUse {
	var out []TopicUse
	for i, t := range p.Source.Topics {
		out = append(out, TopicUse{Topic: t, Field: fmt.Sprintf("source.topics[%d]", i)})
	}
	for _, st := range p.Steps {
		if j := st.Join; j != nil {
			for i, t := range j.With.Topics {
				out = append(out, TopicUse{Topic: t, Field: fmt.Sprintf("%s.join.with.topics[%d]", st.Field, i)})
			}
		}
	}
	for i, t := range p.Tables {
		if t.Topic != "" {
			out = append(out, TopicUse{Topic: t.Topic, Field: fmt.Sprintf("tables[%d].topic", i)})
		}
	}
	return out
}

// Outputs are the topics the pipeline writes besides its internal ones:
// the sink topics, the dead-letter topic and the late topics, each with
// its router.
func (p *Pipeline) Outputs() []TopicUse {
	var out []TopicUse
	if k := p.Sink; k != nil {
		for i, t := range k.Topics {
			f := "sink.topic"
			if len(p.Spec.Sink.Topics) > 0 {
				f = fmt.Sprintf("sink.topics[%d]", i)
			}
			out = append(out, TopicUse{Topic: t, Field: f, Router: k.Router})
		}
	}
	if dl := p.Spec.DeadLetter; dl != nil {
		out = append(out, TopicUse{Topic: dl.Topic, Field: "dead_letter.topic", Router: route.Policy(dl.Router), Side: true})
	}
	for _, st := range p.Steps {
		switch {
		case st.Aggregate != nil && st.Aggregate.LateTopic != "":
			out = append(out, TopicUse{Topic: st.Aggregate.LateTopic, Field: st.Field + ".aggregate.late.topic", Router: st.Aggregate.LateRouter, Side: true})
		case st.Join != nil && st.Join.LateTopic != "":
			out = append(out, TopicUse{Topic: st.Join.LateTopic, Field: st.Field + ".join.late.topic", Router: st.Join.LateRouter, Side: true})
		}
	}
	return out
}

// Stages returns the pipeline's sub-topologies, in order of the steps,
// then one per table (materializing its topic; no steps).
func (p *Pipeline) Stages() []Stage {
	stages := []Stage{{Topics: p.Source.Topics, Source: &p.Source}}
	cur := 0 // the stage the steps so far run in
	for i := range p.Steps {
		switch st := &p.Steps[i]; {
		case st.Repartition != nil:
			stages[cur].End, stages[cur].Repartition = i+1, st.Repartition
			stages = append(stages, Stage{Index: len(stages), Topics: []string{st.Repartition.Topic},
				First: i + 1, Internal: true, Upstream: []int{cur}})
			cur = len(stages) - 1
		case st.Join != nil:
			j := st.Join
			route := func(key *Expr, side Side) *Repartition {
				return &Repartition{Name: j.Name, Key: key, Partitions: j.Partitions, Router: route.Hash, Topic: j.Topic, Side: side}
			}
			stages[cur].End, stages[cur].Repartition = i, route(j.LeftKey, SideLeft)
			right := len(stages)
			stages = append(stages, Stage{Index: right, Topics: j.With.Topics, Source: &j.With,
				First: i, End: i, Repartition: route(j.RightKey, SideRight)})
			stages = append(stages, Stage{Index: len(stages), Topics: []string{j.Topic},
				First: i, Internal: true, Upstream: []int{cur, right}})
			cur = len(stages) - 1
		}
	}
	stages[cur].End = len(p.Steps)
	for _, t := range p.Tables {
		if t.External != nil {
			continue // nothing to materialize
		}
		stages = append(stages, Stage{Index: len(stages), Topics: []string{t.Topic},
			Source: &Source{Topics: []string{t.Topic}, Format: t.Format, Start: StartEarliest},
			First:  len(p.Steps), End: len(p.Steps), Table: t})
	}
	return stages
}

// Field is one named expression of a set or map step.
type Field struct {
	Name string // the event field written
	Expr *Expr  // its value
}

// ProcessorRef is a processor step: the registered name and its config.
type ProcessorRef struct {
	Name string // the registered processor name
	// Config is the step's config mapping (nil when absent).
	Config map[string]any
	// Node is the config's YAML node (nil when absent), after ${VAR}
	// expansion, for processors that decode it into their own struct.
	Node *yaml.Node
}

// Decode decodes the processor's config into v (a pointer) with yaml.v3;
// a missing config leaves v unchanged.
func (p *ProcessorRef) Decode(v any) error {
	if p.Node == nil {
		return nil
	}
	if err := p.Node.Decode(v); err != nil {
		return fmt.Errorf("processor %s: config: %w", p.Name, err)
	}
	return nil
}

// Aggregate is a compiled aggregate step.
type Aggregate struct {
	Name   string     // unique in the pipeline
	Key    *Expr      // the group key (string or int)
	Window WindowSpec // the window
	Values []AggValue // the aggregates, in file order
	Emit   Emit       // when results are emitted
	// LateTopic receives late events; "" means count and drop them.
	LateTopic string
	// LateRouter places late events on LateTopic's partitions.
	LateRouter route.Policy
	// Retention is extra state lifetime after a window's end + grace.
	Retention time.Duration
}

// WindowKind is a kind of window.
type WindowKind int

// The window kinds.
const (
	Tumbling WindowKind = iota + 1
	Hopping
	Session
)

var windowKindNames = [...]string{"", "tumbling", "hopping", "session"}

// String returns the kind's name as written in the file.
func (k WindowKind) String() string {
	if k > 0 && int(k) < len(windowKindNames) {
		return windowKindNames[k]
	}
	return "WindowKind(" + strconv.Itoa(int(k)) + ")"
}

// WindowSpec describes a window. Tumbling windows have Size == Advance;
// hopping windows have 0 < Advance <= Size; session windows have Gap and
// no Size.
type WindowSpec struct {
	Kind    WindowKind
	Size    time.Duration // window length (tumbling, hopping)
	Advance time.Duration // distance between window starts (tumbling: Size)
	Gap     time.Duration // inactivity that closes a session window
	Grace   time.Duration // how long after its end a window accepts events
}

// AggFunc is an aggregate function.
type AggFunc string

// The aggregate functions.
const (
	AggCount         AggFunc = "count"          // number of events; no argument
	AggSum           AggFunc = "sum"            // sum of a number
	AggAvg           AggFunc = "avg"            // mean of a number (a double)
	AggMin           AggFunc = "min"            // smallest number, string, timestamp or duration
	AggMax           AggFunc = "max"            // largest one
	AggFirst         AggFunc = "first"          // value of the earliest event (by event time)
	AggLast          AggFunc = "last"           // value of the latest event (by event time)
	AggCountDistinct AggFunc = "count_distinct" // number of distinct values
)

// AggValue is one aggregate of an aggregate step: Name = Func(Arg).
type AggValue struct {
	Name string  // the result field
	Func AggFunc // the function
	Arg  *Expr   // its argument; nil for count
}

// Sink is the compiled sink section.
type Sink struct {
	// Topics are the output topics: every output goes to each (one, unless
	// sink.topics multicasts).
	Topics []string
	// Key computes the output key; nil means the record's current key.
	Key    *Expr
	Router route.Policy // how output partitions are chosen
	Format Format       // how events are encoded (see Encode)
	// Schema is what an avro, protobuf or json_schema sink writes; nil:
	// the subject's latest version under the topic-name strategy.
	Schema *SinkSchema
}

// SinkSchema is the compiled sink.schema.
type SinkSchema struct {
	File     string // the schema file's path, resolved against the pipeline file's
	Text     string // its contents; "" for the subject's latest version
	Subject  string
	Strategy string
	Register bool
	Message  string
}

// Option configures Load and Parse.
type Option func(*options)

type options struct {
	processors map[string]bool // nil: processor names are not checked
	lookup     func(string) (string, bool)
	brokers    []string
}

// WithProcessors gives the names of the registered custom processors;
// processor steps naming anything else are errors. Without this option,
// processor names are not checked.
//
// Deprecated: processor.New checks every processor step's name against
// the processors registered with processor.WithProcessor, at the step's
// line and listing the registered names: load the pipeline without this
// option and register each processor once.
func WithProcessors(names ...string) Option {
	return func(o *options) {
		if o.processors == nil {
			o.processors = make(map[string]bool, len(names))
		}
		for _, n := range names {
			o.processors[n] = true
		}
	}
}

// WithEnv sets the lookup used for ${VAR} expansion (default os.LookupEnv).
func WithEnv(lookup func(string) (string, bool)) Option {
	return func(o *options) { o.lookup = lookup }
}

// WithBrokers supplies the Kafka brokers, replacing kafka.brokers (the
// binary's dev mode uses it for its embedded broker). With it, the file need
// not name brokers.
func WithBrokers(addrs ...string) Option {
	return func(o *options) { o.brokers = append([]string(nil), addrs...) }
}

// Load reads a pipeline file, expands ${VAR} references, decodes, validates
// and compiles it. An invalid file yields Errors listing every problem.
func Load(path string, opts ...Option) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline: %w", err)
	}
	return Parse(path, data, opts...)
}

// Parse is Load for a file already in memory; file names it in errors.
func Parse(file string, data []byte, opts ...Option) (*Pipeline, error) {
	o := options{lookup: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	red := &redactor{}
	errs := newErrList(file, red)

	var doc yaml.Node
	src := protectVars(data)
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.add(1, 0, "", "empty pipeline file")
			return nil, errs.result()
		}
		line, col, msg := syntaxError(src, err)
		errs.add(line, col, "", "invalid YAML: %s", msg)
		return nil, errs.result()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs.add(extra.Line, extra.Column, "", "a pipeline file holds one YAML document, found another")
	}

	x := &expander{lookup: o.lookup, errs: errs, redact: red, subs: make(map[*yaml.Node][]subst)}
	x.walk(&doc, "")

	d := newDecoder(errs)
	var spec Spec
	root := &doc
	if len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	d.value(root, "", reflect.ValueOf(&spec).Elem())

	c := &checker{file: file, data: data, subs: x.subs, opts: &o, d: d, errs: errs, red: red, spec: &spec, inputs: map[string]string{}}
	p := c.run()
	if err := errs.result(); err != nil {
		return nil, err
	}
	return p, nil
}
