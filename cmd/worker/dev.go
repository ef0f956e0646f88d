package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/dimension"
	"github.com/eddy-streams/eddy/eddytest"
	"github.com/eddy-streams/eddy/examples"
	"github.com/eddy-streams/eddy/internal/clientlog"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// devOptions are the settings of `worker dev`, from its flags.
type devOptions struct {
	files      []string // -c, upstream first
	example    string
	generator  string
	seed       uint64 // 0: from the clock
	rate       int
	events     int
	duration   time.Duration
	partitions int
	printRate  int
	level      string
	httpAddr   string
	query      bool     // -query: the state query endpoints on -http
	input      string   // -input: a file of events, "-" for stdin
	key        string   // -key: CEL over the event giving its key
	records    bool     // -records: each input line is a record, not an event
	topic      string   // -topic: where the input's events go
	schemas    []string // -schema [topic=]file: what -input's events are encoded with

	// onProduce, when set, is called with every generated event as it is
	// handed to the producer, from the generator's goroutine (tests).
	onProduce func(examples.Event)
}

// fileList is a repeatable string flag.
type fileList []string

func (l *fileList) String() string { return strings.Join(*l, ",") }

func (l *fileList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func parseDev(args []string, stderr io.Writer) (*devOptions, error) {
	o := &devOptions{}
	fs := newFlags("dev", stderr)
	fs.Var((*fileList)(&o.files), "c", "pipeline file; repeat it to run a cascade, upstream first: each pipeline is its own group with its own memory store (default: the "+examples.Default+" example)")
	fs.StringVar(&o.example, "example", "", "run an example's embedded pipelines (one of "+strings.Join(examples.Names(), ", ")+"); not with -c")
	fs.StringVar(&o.generator, "generator", "", "example whose generator feeds the source (default: from the first -c's folder name, or -example)")
	fs.Uint64Var(&o.seed, "seed", 0, "the generator's random seed, to repeat a run (0: a new one each run)")
	fs.IntVar(&o.rate, "rate", 100, "events generated per second")
	fs.IntVar(&o.events, "events", 0, "stop generating after this many events (0: no limit)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of every topic")
	fs.IntVar(&o.printRate, "print", 10, "outputs printed per second at most (the rest are counted); in a cascade, the outputs of its last stage")
	fs.StringVar(&o.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.httpAddr, "http", "", "address of /healthz, /readyz and /metrics (e.g. :9100; default off)")
	fs.BoolVar(&o.query, "query", false, "with -http: serve the state query endpoints too ("+PathState+"/<step>/<key>, "+PathTables+"/<table>/<key>)")
	fs.StringVar(&o.input, "input", "", `run on your events: a file of JSON lines, one event per line ("-": stdin); at its end every window closes and dev stops`)
	fs.StringVar(&o.key, "key", "", "with -input: CEL expression over event giving each record's key, e.g. event.user (default: no key)")
	fs.BoolVar(&o.records, "records", false, `with -input: each line is a record, {"key": ..., "value": {...}, "time": ..., "topic": ..., "partition": ...} (the input of worker test), not an event`)
	fs.StringVar(&o.topic, "topic", "", "with -input: the topic the events go to (default: the first pipeline's first source topic)")
	fs.Var((*fileList)(&o.schemas), "schema", "with -input, for a topic read as avro, protobuf or json_schema: [topic=]file, the schema (.avsc, .proto, JSON Schema) its events, given as JSON, are encoded with (default topic: -topic's); repeat it for several topics. An in-process schema registry stands in for the pipeline's")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if o.input == "" && (o.key != "" || o.records || o.topic != "" || len(o.schemas) > 0) {
		fmt.Fprintln(stderr, "worker dev: -key, -records, -topic and -schema go with -input")
		return nil, errUsage
	}
	if o.input != "" && (o.generator != "" || o.events != 0) {
		fmt.Fprintln(stderr, "worker dev: -input and -generator/-events do not go together")
		return nil, errUsage
	}
	if len(o.files) > 0 && o.example != "" {
		fmt.Fprintln(stderr, "worker dev: -c and -example do not go together")
		return nil, errUsage
	}
	return o, nil
}

// cmdDev runs a pipeline, or a cascade of pipelines, with nothing
// installed: an in-process Kafka-protocol broker (franz-go's kfake, spoken
// to over TCP by sarama like any broker), memory state, and the events of
// -input or an example's generator feeding the (first) pipeline's source.
func cmdDev(args []string, stdout, stderr io.Writer) error {
	o, err := parseDev(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(o.level, true, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	clientlog.InstallRedis(log) // go-redis's own lines: through zap, rate-limited
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return dev(ctx, o, stdout, log)
}

// devStage is one pipeline of a dev run: its own consumer group (the
// pipeline's), memory store and worker.
type devStage struct {
	p     *pipeline.Pipeline
	store *memory.Store
	w     *processor.Worker
	last  bool // no other stage reads its sink: its outputs are printed
}

// devFiles returns the pipeline files to run, upstream first, and the name
// of the example whose generator feeds them.
func devFiles(o *devOptions) ([]examples.File, string, error) {
	gen := o.generator
	if len(o.files) == 0 {
		name := o.example
		if name == "" {
			name = examples.Default
		}
		ex, err := examples.Get(name)
		if err != nil {
			return nil, "", fmt.Errorf("-example: %w", err)
		}
		if gen == "" {
			gen = ex.Name
		}
		return ex.Pipelines, gen, nil
	}
	var fs []examples.File
	for _, path := range o.files {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, "", err
		}
		fs = append(fs, examples.File{Path: path, Data: b})
	}
	if gen == "" {
		gen = filepath.Base(filepath.Dir(o.files[0]))
	}
	return fs, gen, nil
}

// devStages parses the pipelines and checks that they can run side by
// side: distinct names (their state and metrics) and consumer groups.
func devStages(files []examples.File) ([]*devStage, error) {
	var stages []*devStage
	names, groups := map[string]string{}, map[string]string{}
	for _, f := range files {
		// The pipeline's brokers are the embedded broker's, whatever the
		// file says; they are known once the broker is up.
		p, err := pipeline.Parse(f.Path, f.Data, pipeline.WithBrokers("embedded:9092"))
		if err != nil {
			return nil, err
		}
		if other, ok := names[p.Spec.Name]; ok {
			return nil, fmt.Errorf("%s and %s are both pipeline %q: each stage needs its own name", other, f.Path, p.Spec.Name)
		}
		if other, ok := groups[p.Spec.Kafka.Group]; ok {
			return nil, fmt.Errorf("%s and %s share the consumer group %q: each stage needs its own group", other, f.Path, p.Spec.Kafka.Group)
		}
		names[p.Spec.Name], groups[p.Spec.Kafka.Group] = f.Path, f.Path
		stages = append(stages, &devStage{p: p, last: true})
	}
	for _, s := range stages {
		for _, r := range stages {
			if s.p.Sink == nil || r == s {
				continue
			}
			for _, t := range s.p.Sink.Topics {
				if slices.Contains(r.p.Spec.Source.Topics, t) {
					s.last = false
				}
			}
		}
	}
	return stages, nil
}

// devTopics lists every topic the stages read or write, each once.
func devTopics(stages []*devStage) []string {
	var topics []string
	add := func(t string) {
		if t != "" && !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	for _, s := range stages {
		for _, u := range append(s.p.Inputs(), s.p.Outputs()...) {
			add(u.Topic)
		}
	}
	return topics
}

// dev runs the stages of o on an embedded broker until ctx ends or
// o.duration passes, or, with -input, until the input's events are
// processed and the input's end has closed every window.
func dev(ctx context.Context, o *devOptions, stdout io.Writer, log *zap.Logger) error {
	files, genName, err := devFiles(o)
	if err != nil {
		return err
	}
	stages, err := devStages(files)
	if err != nil {
		return err
	}
	var ex *examples.Example
	if o.input == "" {
		if ex, err = devGenerator(genName, stages); err != nil {
			return err
		}
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}

	pr := newPrinter(stdout, o.printRate)
	var ps []*pipeline.Pipeline
	stageOpts := make([][]processor.Option, len(stages))
	for i, s := range stages {
		ps = append(ps, s.p)
		if s.last {
			stageOpts[i] = append(stageOpts[i], processor.WithOutputHook(pr.print))
		}
		tables, err := dimension.Open(ctx, s.p, log) // the tables you keep: read where they are
		if err != nil {
			return err
		}
		for name, src := range tables {
			defer src.Close()
			stageOpts[i] = append(stageOpts[i], processor.WithTableSource(name, src))
		}
	}
	schemas, err := devSchemas(o, ps)
	if err != nil {
		return err
	}
	r, err := eddytest.Start(ctx, ps, eddytest.Config{
		Partitions: o.partitions, Live: true, Logger: log, Schemas: schemas,
		StageOptions: func(i int, _ *pipeline.Pipeline) []processor.Option { return stageOpts[i] },
	})
	if err != nil {
		return err
	}
	var served []servedWorker
	for i, st := range r.Stages() {
		stages[i].w, stages[i].store = st.Worker, st.Store
		served = append(served, servedWorker{st.Worker, st.Store})
	}
	log.Info("embedded Kafka-protocol broker up", zap.Strings("addrs", r.Brokers()), zap.Strings("topics", devTopics(stages)))
	stopHTTP, err := serveHTTP(o.httpAddr, o.query, log, served...)
	if err != nil {
		return errors.Join(err, r.Close())
	}
	defer stopHTTP()

	var names []string
	for _, s := range stages {
		names = append(names, fmt.Sprintf("%q", s.p.Spec.Name))
	}
	kind := "pipeline"
	if len(stages) > 1 {
		kind = "cascade"
	}
	seed := o.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	if ex != nil {
		fmt.Fprintf(stdout, "eddy dev: %s %s, %s generator at %d events/s (seed %d); Ctrl-C to stop\n",
			kind, strings.Join(names, " → "), ex.Name, o.rate, seed)
	} else {
		fmt.Fprintf(stdout, "eddy dev: %s %s on the events of %s\n", kind, strings.Join(names, " → "), inputName(o.input))
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var produced atomic.Int64
	wg.Go(func() { tailSides(runCtx, r, stages, pr) })
	wg.Go(func() { progress(runCtx, stdout, stages, pr, &produced) })
	var feedErr error
	wg.Go(func() {
		if ex == nil {
			// The input's events, then its end: every window closes, and
			// the run is over.
			if feedErr = feed(runCtx, r, o, pr, &produced); feedErr == nil {
				feedErr = r.End(runCtx)
				cancel()
			}
			if feedErr != nil && runCtx.Err() == nil {
				cancel()
			}
			return
		}
		if err := generate(runCtx, r.Brokers(), ex.New(seed), o.rate, o.events, &produced, o.onProduce); err != nil {
			log.Error("generator stopped", zap.Error(err))
		}
	})
	werr := r.Wait(runCtx) // a worker that stops with an error stops the run
	cancel()
	wg.Wait()
	werr = errors.Join(werr, r.Close())
	if errors.Is(feedErr, context.Canceled) {
		feedErr = nil // Ctrl-C, or a worker failed: its error says why
	}
	for _, s := range stages {
		st := s.w.Stats()
		fmt.Fprintf(stdout, "eddy dev: done: %s%d events in, %d out, %d filtered, %d duplicates dropped, %d late, %d poison (%d dead-lettered)\n",
			stagePrefix(stages, s), st.In, st.Out, st.Filtered, st.Duplicates, st.Late, st.Poison, st.DeadLettered)
	}
	return errors.Join(feedErr, werr)
}

// devGenerator returns the example whose generator feeds the stages, and
// refuses one that writes to no topic they read.
func devGenerator(name string, stages []*devStage) (*examples.Example, error) {
	ex, err := examples.Get(name)
	if err != nil {
		return nil, fmt.Errorf("no events for %s: give -input events.jsonl (JSON lines; - for stdin), or -generator with an example's name (%w)",
			stages[0].p.File, err)
	}
	want := map[string]bool{}
	for _, s := range stages {
		for _, u := range s.p.Inputs() {
			want[u.Topic] = true
		}
	}
	var writes []string
	for _, f := range ex.Pipelines {
		p, err := pipeline.Parse(f.Path, f.Data, pipeline.WithBrokers("embedded:9092"))
		if err != nil {
			return nil, err
		}
		for _, u := range p.Inputs() {
			if want[u.Topic] {
				return &ex, nil
			}
			writes = append(writes, u.Topic)
		}
	}
	return nil, fmt.Errorf("-generator %s writes to %v, which %s does not read: give -input events.jsonl for your own events", ex.Name, writes, stages[0].p.File)
}

// stagePrefix names s in a progress line, when there are several stages.
func stagePrefix(stages []*devStage, s *devStage) string {
	if len(stages) == 1 {
		return ""
	}
	return s.p.Spec.Name + ": "
}

// generate produces the generator's events at rate per second, and hands
// each to onProduce (if set).
func generate(ctx context.Context, brokers []string, g examples.Generator, rate, limit int, n *atomic.Int64, onProduce func(examples.Event)) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	cfg.Producer.Return.Successes = false
	cfg.Producer.Flush.Frequency = 20 * time.Millisecond
	p, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	go func() {
		for range p.Errors() {
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	perTick, carry := float64(rate)/50, 0.0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			carry += perTick
			for ; carry >= 1; carry-- {
				if limit > 0 && n.Load() >= int64(limit) {
					continue
				}
				ev := g.Next(now)
				m := &sarama.ProducerMessage{Topic: ev.Topic, Key: sarama.StringEncoder(ev.Key)}
				if ev.Value != nil { // nil: a tombstone
					m.Value = sarama.ByteEncoder(ev.Value)
				}
				p.Input() <- m
				n.Add(1)
				if onProduce != nil {
					onProduce(ev)
				}
			}
		}
	}
}

// printer prints outputs as they come, at most perSec a second.
type printer struct {
	mu         sync.Mutex
	w          io.Writer
	perSec     int
	second     int64
	inSecond   int
	suppressed int64
}

func newPrinter(w io.Writer, perSec int) *printer { return &printer{w: w, perSec: perSec} }

func (p *printer) print(r *processor.Record) {
	v, err := pipeline.EncodeJSON(r.Event)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := time.Now().Unix(); s != p.second {
		p.second, p.inSecond = s, 0
	}
	if p.inSecond >= p.perSec {
		p.suppressed++
		return
	}
	p.inSecond++
	fmt.Fprintf(p.w, "→ key=%s  %s\n", r.Key, v)
}

// side prints a dead letter or a late event, with its reason: always, not
// counted against the rate of outputs.
func (p *printer) side(what string, r eddytest.Record) {
	p.note("✗ %s key=%s  %s  (%s)", what, r.Key, r.Value, r.Error())
}

// note prints a line among the outputs.
func (p *printer) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// progress prints every 3 seconds what each stage did: one line, or one
// line per stage in a cascade.
func progress(ctx context.Context, w io.Writer, stages []*devStage, pr *printer, produced *atomic.Int64) {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			pr.mu.Lock()
			hidden := pr.suppressed
			pr.mu.Unlock()
			for i, s := range stages {
				st := s.w.Stats()
				line := fmt.Sprintf("· produced %d | %sin %d  out %d  filtered %d  dups %d  late %d  poison %d  windows closed %d | lag %d  partitions %d  flushes %d",
					produced.Load(), stagePrefix(stages, s), st.In, st.Out, st.Filtered, st.Duplicates, st.Late, st.Poison, st.WindowsClosed, st.Lag, st.Partitions, st.Flushes)
				if i == len(stages)-1 {
					line += fmt.Sprintf(" | %d outputs not printed", hidden)
				}
				fmt.Fprintln(w, line)
			}
		}
	}
}

// devSchemas reads -schema's files: per topic, the schema its input
// events are encoded with.
func devSchemas(o *devOptions, ps []*pipeline.Pipeline) (map[string]string, error) {
	if len(o.schemas) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, s := range o.schemas {
		topic, file, ok := strings.Cut(s, "=")
		if !ok {
			topic, file = o.topic, s
			if topic == "" {
				topic = ps[0].Source.Topics[0]
			}
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("-schema: %w", err)
		}
		out[topic] = string(b)
	}
	return out, nil
}
