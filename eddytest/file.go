package eddytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
)

// A test file (YAML, named *_test.yaml by convention) gives a pipeline's
// cases: input events, table rows, and the outputs, dead letters and late
// events expected. See the package doc for its shape.

// File is a parsed test file.
type File struct {
	Path string
	// Pipelines are the pipeline files the cases run, upstream first,
	// resolved against the test file's folder.
	Pipelines []string
	// Env gives environment variables for the pipelines' ${VAR}s (env:),
	// over the process's: a test needs no value for what it replaces (a
	// state backend's DSN), and should not depend on the shell's.
	Env map[string]string
	// Schemas holds, per topic read as avro, protobuf or json_schema,
	// the schema its events (given as JSON) are encoded with (schemas:
	// topic: file, resolved against the test file's folder).
	Schemas map[string]string
	Cases   []*Case
	doc     yaml.Node
}

// Case is one test of a file.
type Case struct {
	Name       string
	Line       int // where it starts in the file
	Partitions int
	// KeepOpen leaves the windows the events did not close open
	// (end_of_input: open); by default the input's end closes them all.
	KeepOpen bool
	// Tables holds the rows given per table name; Input the events, in
	// order.
	Tables map[string][]Event
	Input  []Event
	// Output, DeadLetters and Late are what the case expects.
	Output, DeadLetters, Late []Expect
	// Counts are counters expected at the end (counts:), summed over the
	// file's pipelines: what no topic shows (late events without a late
	// topic, filtered events, duplicates dropped).
	Counts map[string]uint64
	node   *yaml.Node
}

// Expect is one record a case expects.
type Expect struct {
	Line      int
	Topic     string // "": any of the pipeline's topics of its kind
	Partition *int32
	Key       string
	// Value is the record value: JSON, compared by meaning (key order and
	// number spelling do not matter), or, when Raw, the exact bytes.
	Value []byte
	Raw   bool
	// Error, for a dead letter or a late event, is a part of the reason
	// it carries.
	Error   string
	Headers map[string]string // compared when given
}

// spec types: the file as written.
type fileSpec struct {
	Pipeline  string            `yaml:"pipeline"`
	Pipelines []string          `yaml:"pipelines"`
	Env       map[string]string `yaml:"env"`
	Schemas   map[string]string `yaml:"schemas"`
	Tests     []caseSpec        `yaml:"tests"`
}

type caseSpec struct {
	Name        string                  `yaml:"name"`
	Partitions  int                     `yaml:"partitions"`
	EndOfInput  string                  `yaml:"end_of_input"`
	Tables      map[string][]recordSpec `yaml:"tables"`
	Input       []recordSpec            `yaml:"input"`
	Output      []recordSpec            `yaml:"output"`
	DeadLetters []recordSpec            `yaml:"dead_letters"`
	Late        []recordSpec            `yaml:"late"`
	Counts      map[string]uint64       `yaml:"counts"`
}

type recordSpec struct {
	Topic     string            `yaml:"topic"`
	Partition *int32            `yaml:"partition"`
	Key       yaml.Node         `yaml:"key"`
	Value     yaml.Node         `yaml:"value"`
	Time      yaml.Node         `yaml:"time"`
	Headers   map[string]string `yaml:"headers"`
	Error     string            `yaml:"error"`
}

// LoadFile reads and checks a test file. Errors name the file and line.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseFile(path, data)
}

// ParseFile parses a test file's contents; path names it in errors and
// locates the pipelines.
func ParseFile(path string, data []byte) (*File, error) {
	f := &File{Path: path}
	if err := yaml.Unmarshal(data, &f.doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var spec fileSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, yamlError(err))
	}
	f.Env = spec.Env
	dir := filepath.Dir(path)
	for topic, file := range spec.Schemas {
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: schemas: %s: %w", path, topic, err)
		}
		if f.Schemas == nil {
			f.Schemas = map[string]string{}
		}
		f.Schemas[topic] = string(b)
	}
	switch {
	case spec.Pipeline != "" && len(spec.Pipelines) > 0:
		return nil, fmt.Errorf("%s: pipeline and pipelines do not go together", path)
	case spec.Pipeline != "":
		f.Pipelines = []string{filepath.Join(dir, spec.Pipeline)}
	case len(spec.Pipelines) > 0:
		for _, p := range spec.Pipelines {
			f.Pipelines = append(f.Pipelines, filepath.Join(dir, p))
		}
	default:
		base := filepath.Base(path)
		name := strings.TrimSuffix(strings.TrimSuffix(base, filepath.Ext(base)), "_test")
		if name+filepath.Ext(base) == base {
			return nil, fmt.Errorf("%s: no pipeline: name it (pipeline: file.yaml), or name the test file after it (file_test.yaml)", path)
		}
		f.Pipelines = []string{filepath.Join(dir, name+filepath.Ext(base))}
	}
	nodes := caseNodes(&f.doc)
	if len(spec.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests", path)
	}
	names := map[string]bool{}
	for i, cs := range spec.Tests {
		c, err := parseCase(cs, nodes[i])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: tests[%d]: %w", path, nodes[i].Line, i, err)
		}
		if c.Name == "" {
			c.Name = fmt.Sprintf("tests[%d]", i)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("%s:%d: tests[%d]: a second test named %q", path, c.Line, i, c.Name)
		}
		names[c.Name] = true
		f.Cases = append(f.Cases, c)
	}
	return f, nil
}

// caseNodes returns the mapping node of each item of the file's tests.
func caseNodes(doc *yaml.Node) []*yaml.Node {
	if len(doc.Content) == 0 {
		return nil
	}
	if v := mapValue(doc.Content[0], "tests"); v != nil && v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func parseCase(cs caseSpec, node *yaml.Node) (*Case, error) {
	c := &Case{Name: cs.Name, Line: node.Line, Partitions: cs.Partitions, node: node, Tables: map[string][]Event{}}
	switch cs.EndOfInput {
	case "", "close":
	case "open":
		c.KeepOpen = true
	default:
		return nil, fmt.Errorf("end_of_input: %q is neither close (the default: every window closes at the end) nor open", cs.EndOfInput)
	}
	for name := range cs.Counts {
		if _, ok := countOf[name]; !ok {
			return nil, fmt.Errorf("counts: unknown counter %q (known: %s)", name, strings.Join(slices.Sorted(maps.Keys(countOf)), ", "))
		}
	}
	c.Counts = cs.Counts
	if cs.Partitions < 0 {
		return nil, fmt.Errorf("partitions: %d is negative", cs.Partitions)
	}
	for name, rows := range cs.Tables {
		for i, rs := range rows {
			ev, err := rs.event()
			if err != nil {
				return nil, fmt.Errorf("tables.%s[%d]: %w", name, i, err)
			}
			c.Tables[name] = append(c.Tables[name], ev)
		}
	}
	for i, rs := range cs.Input {
		ev, err := rs.event()
		if err != nil {
			return nil, fmt.Errorf("input[%d]: %w", i, err)
		}
		c.Input = append(c.Input, ev)
	}
	for _, l := range []struct {
		name string
		in   []recordSpec
		out  *[]Expect
	}{{"output", cs.Output, &c.Output}, {"dead_letters", cs.DeadLetters, &c.DeadLetters}, {"late", cs.Late, &c.Late}} {
		for i, rs := range l.in {
			e, err := rs.expect()
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", l.name, i, err)
			}
			*l.out = append(*l.out, e)
		}
	}
	return c, nil
}

// value turns a value node into record bytes: a string is sent as it is
// (raw), anything else as JSON; null is a tombstone (nil).
func value(n *yaml.Node) (b []byte, raw bool, err error) {
	switch {
	case n.Kind == 0:
		return nil, false, errors.New("value: missing (null for a tombstone)")
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil, false, nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		return []byte(n.Value), true, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("value (line %d): %w", n.Line, err)
	}
	b, err = json.Marshal(jsonable(v))
	if err != nil {
		return nil, false, fmt.Errorf("value (line %d): %w", n.Line, err)
	}
	return b, false, nil
}

// jsonable converts what YAML decodes into what encoding/json encodes as
// the same JSON: maps with non-string keys, timestamps in RFC 3339, floats
// as JSON doubles (2.0 stays 2.0: a pipeline reads 2 as an int, and CEL
// does not mix ints and doubles in arithmetic).
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case float64:
		return jsonFloat(x)
	default:
		return v
	}
}

// jsonFloat is a YAML float, written as a JSON number with a fraction or
// an exponent, so that it reads back as a double: encoding/json writes
// 2.0 as 2.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(float64(f)) // NaN and infinities: an error
	if err == nil && !bytes.ContainsAny(b, ".eE") {
		b = append(b, ".0"...)
	}
	return b, err
}

func scalar(n *yaml.Node, field string) (string, error) {
	switch {
	case n.Kind == 0 || n.Tag == "!!null":
		return "", nil
	case n.Kind != yaml.ScalarNode:
		return "", fmt.Errorf("%s (line %d): want a string", field, n.Line)
	}
	return n.Value, nil
}

func (rs recordSpec) event() (Event, error) {
	ev := Event{Topic: rs.Topic, Partition: rs.Partition, Headers: rs.Headers}
	if rs.Error != "" {
		return ev, errors.New("error: only expected dead letters and late events have one")
	}
	var err error
	if ev.Key, err = scalar(&rs.Key, "key"); err != nil {
		return ev, err
	}
	if ev.Value, _, err = value(&rs.Value); err != nil {
		return ev, err
	}
	if t := &rs.Time; t.Kind != 0 {
		if ev.Time, err = parseTime(t); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

// ParseRecord reads one input record written as a test file's input item
// is, in YAML or JSON: {"key": "u1", "value": {...}, "time": ..., "topic":
// ..., "partition": 0, "headers": {...}} (worker dev -records).
func ParseRecord(b []byte) (Event, error) {
	var rs recordSpec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rs); err != nil {
		return Event{}, yamlError(err)
	}
	return rs.event()
}

// fieldsOf names the fields of each part of a test file, for errors.
var fieldsOf = map[string]string{
	"fileSpec":   "pipeline, pipelines, env, schemas, tests",
	"caseSpec":   "name, partitions, end_of_input, tables, input, output, dead_letters, late, counts",
	"recordSpec": "topic, partition, key, value, time, headers, error",
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type eddytest\.(\w+)`)

// yamlError rewrites yaml.v3's decoding errors for a reader of the file:
// one line per problem, unknown fields listed with the known ones.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = unknownField.ReplaceAllStringFunc(m, func(s string) string {
			g := unknownField.FindStringSubmatch(s)
			return fmt.Sprintf("unknown field %q (known: %s)", g[1], fieldsOf[g[2]])
		})
	}
	return errors.New(strings.Join(msgs, "; "))
}

// parseTime reads an event's time: RFC 3339, or Unix milliseconds.
func parseTime(n *yaml.Node) (time.Time, error) {
	if ms, err := strconv.ParseInt(n.Value, 10, 64); err == nil && n.Kind == yaml.ScalarNode {
		return time.UnixMilli(ms).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, n.Value); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("time (line %d): %q is neither RFC 3339 (2024-01-01T00:00:00Z) nor Unix milliseconds", n.Line, n.Value)
}

func (rs recordSpec) expect() (Expect, error) {
	e := Expect{Line: rs.Value.Line, Topic: rs.Topic, Partition: rs.Partition, Error: rs.Error, Headers: rs.Headers}
	if rs.Time.Kind != 0 {
		return e, errors.New("time: not compared; leave it out")
	}
	var err error
	if e.Key, err = scalar(&rs.Key, "key"); err != nil {
		return e, err
	}
	if e.Value, e.Raw, err = value(&rs.Value); err != nil {
		return e, err
	}
	return e, nil
}

// FileConfig says how a test file's cases run.
type FileConfig struct {
	// Parse are the options of pipeline.Load for the pipelines (the
	// brokers are the embedded broker's whatever they say).
	Parse []pipeline.Option
	// Worker are options for every worker (custom processors).
	Worker []processor.Option
	// Logger receives the workers' logs. Default: none.
	Logger *zap.Logger
	// Run, when set, runs only the cases whose name it matches.
	Run *regexp.Regexp
	// Timeout bounds each case. Default 1 minute.
	Timeout time.Duration
}

// CaseResult is how a case ran.
type CaseResult struct {
	Case   *Case
	Result *Result // nil when Err is set
	Err    error   // the case could not run
	// Diff lists the differences between what was expected and what the
	// pipelines wrote; empty when the case passed.
	Diff []string
	Took time.Duration
}

// Failed reports whether the case failed or could not run.
func (r *CaseResult) Failed() bool { return r.Err != nil || len(r.Diff) > 0 }

// Load parses the file's pipelines, with the file's env over the
// process environment (a pipeline.WithEnv in cfg.Parse replaces both).
func (f *File) Load(cfg FileConfig) ([]*pipeline.Pipeline, error) {
	var ps []*pipeline.Pipeline
	var opts []pipeline.Option
	if len(f.Env) > 0 {
		opts = append(opts, pipeline.WithEnv(func(name string) (string, bool) {
			if v, ok := f.Env[name]; ok {
				return v, true
			}
			return os.LookupEnv(name)
		}))
	}
	opts = append(append(opts, cfg.Parse...), pipeline.WithBrokers("embedded:9092"))
	for _, path := range f.Pipelines {
		p, err := pipeline.Load(path, opts...)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// Run runs the file's cases (those cfg.Run selects), each on a fresh
// embedded broker and fresh memory stores.
func (f *File) Run(ctx context.Context, cfg FileConfig) ([]*CaseResult, error) {
	if _, err := f.Load(cfg); err != nil {
		return nil, err
	}
	var out []*CaseResult
	for _, c := range f.Cases {
		if cfg.Run != nil && !cfg.Run.MatchString(c.Name) {
			continue
		}
		out = append(out, f.runCase(ctx, c, cfg))
	}
	return out, nil
}

func (f *File) runCase(ctx context.Context, c *Case, cfg FileConfig) *CaseResult {
	start := time.Now()
	res := &CaseResult{Case: c}
	defer func() { res.Took = time.Since(start) }()
	ps, err := f.Load(cfg) // fresh pipelines: a run may not share them
	if err != nil {
		res.Err = err
		return res
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := slices.Clone(cfg.Worker)
	events, tableOpts, err := caseTables(c, ps)
	if err != nil {
		res.Err = err
		return res
	}
	opts = append(opts, tableOpts...)
	events = append(events, c.Input...)
	res.Result, res.Err = Run(ctx, ps, events, Config{Partitions: c.Partitions, Logger: cfg.Logger, Options: opts, Schemas: f.Schemas}, c.KeepOpen)
	if res.Err == nil {
		res.Diff = compare(c, res.Result)
	}
	return res
}

// caseTables turns a case's table rows into events on the tables' topics,
// and, for tables the user keeps (redis, sql), into sources serving them.
// Every table kept elsewhere is served, empty when the case gives no rows:
// a test never reads a real database.
func caseTables(c *Case, ps []*pipeline.Pipeline) ([]Event, []processor.Option, error) {
	var events []Event
	var opts []processor.Option
	known := map[string]bool{}
	for _, p := range ps {
		for _, t := range p.Tables {
			known[t.Name] = true
			rows := c.Tables[t.Name]
			if t.External == nil {
				for _, ev := range rows {
					ev.Topic = t.Topic
					events = append(events, ev)
				}
				continue
			}
			src := staticTable{}
			for i, ev := range rows {
				if ev.Value == nil {
					delete(src, ev.Key)
					continue
				}
				row, err := pipeline.DecodeJSON(ev.Value)
				if err != nil {
					return nil, nil, fmt.Errorf("tables.%s[%d]: a row of a table kept in redis or sql is a JSON object: %w", t.Name, i, err)
				}
				src[ev.Key] = row
			}
			opts = append(opts, processor.WithTableSource(t.Name, src))
		}
	}
	for name := range c.Tables {
		if !known[name] {
			return nil, nil, fmt.Errorf("tables: the pipelines have no table %q", name)
		}
	}
	return events, opts, nil
}

// staticTable serves a table's rows from memory.
type staticTable map[string]map[string]any

func (s staticTable) Get(_ context.Context, keys []string) (map[string]map[string]any, error) {
	out := make(map[string]map[string]any, len(keys))
	for _, k := range keys {
		if row, ok := s[k]; ok {
			out[k] = row
		}
	}
	return out, nil
}
