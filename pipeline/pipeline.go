package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
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
	// AllowedLateness and IdleTimeout are source.watermark's settings.
	AllowedLateness time.Duration
	IdleTimeout     time.Duration
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
}

// Repartition is a compiled repartition step: the steps after it run on
// Topic, an internal topic the worker creates, whose records are routed
// by Key.
type Repartition struct {
	Name       string       // unique among the pipeline's named steps
	Key        *Expr        // the new key (string or int)
	Partitions int          // of Topic; 0: the source topics' partition count
	Router     route.Policy // how records are placed on Topic
	Topic      string       // "eddy-<pipeline>-<name>"
}

// Stage is one sub-topology: the steps Steps[First:End] of the pipeline,
// run on the partitions of Topics. Stage 0 reads the source topics; each
// repartition step ends a stage, and the next reads its internal topic.
type Stage struct {
	Index       int
	Topics      []string
	First, End  int
	Internal    bool         // Topics is a repartition's internal topic
	Repartition *Repartition // the step that ends the stage; nil for the last
}

// Topics returns every topic the pipeline's consumer group reads: the
// source topics, then each repartition's internal topic.
func (p *Pipeline) Topics() []string {
	out := append([]string(nil), p.Source.Topics...)
	for _, s := range p.Stages()[1:] {
		out = append(out, s.Topics...)
	}
	return out
}

// Stages returns the pipeline's sub-topologies, in order.
func (p *Pipeline) Stages() []Stage {
	stages := []Stage{{Topics: p.Source.Topics}}
	for i := range p.Steps {
		if r := p.Steps[i].Repartition; r != nil {
			cur := &stages[len(stages)-1]
			cur.End, cur.Repartition = i+1, r
			stages = append(stages, Stage{Index: len(stages), Topics: []string{r.Topic}, First: i + 1, Internal: true})
		}
	}
	stages[len(stages)-1].End = len(p.Steps)
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

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlParserErrors are the messages of yaml.v3's parser (as opposed to its
// scanner) errors: yaml.v3 reports their line 0-based, and leaves it out on
// the first line.
var yamlParserErrors = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"found undefined tag handle", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive",
}

// yamlErrorLine splits a yaml.v3 syntax error into a 1-based line (0 if
// unknown) and the message.
func yamlErrorLine(msg string) (int, string) {
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	for _, pe := range yamlParserErrors {
		if msg == pe {
			line++
			break
		}
	}
	return line, msg
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
	dec := yaml.NewDecoder(bytes.NewReader(protectVars(data)))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.add(1, 0, "", "empty pipeline file")
			return nil, errs.result()
		}
		line, msg := yamlErrorLine(err.Error())
		errs.add(line, 0, "", "invalid YAML: %s", msg)
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

	c := &checker{file: file, data: data, subs: x.subs, opts: &o, d: d, errs: errs, red: red, spec: &spec}
	p := c.run()
	if err := errs.result(); err != nil {
		return nil, err
	}
	return p, nil
}
