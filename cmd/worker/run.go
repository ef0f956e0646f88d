package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/eddy-streams/eddy/dimension"
	"github.com/eddy-streams/eddy/internal/clientlog"
	"github.com/eddy-streams/eddy/internal/zaplog"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
)

const runUsage = `usage: worker run -c pipeline.yaml [flags]

Joins the pipeline's consumer group and processes its share of the
partitions until SIGTERM or SIGINT, then flushes, commits and leaves.
Logs are JSON lines on stderr.

flags:
`

func cmdRun(args []string, _, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runUsage)
		fs.PrintDefaults()
	}
	path := fs.String("c", "", "pipeline file (required)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	brokers := fs.String("brokers", "", "override kafka.brokers (comma-separated host:port)")
	instance := fs.String("instance-id", os.Getenv("EDDY_INSTANCE_ID"),
		"static group membership id: $EDDY_INSTANCE_ID when set, else kafka.instance_id")
	query := fs.Bool("query", envOr("EDDY_QUERY", "") == "true", "serve the state query endpoints, "+PathState+"/<step>/<key> and "+PathTables+"/<table>/<key>, read-only, on -http's port (env EDDY_QUERY=true)")
	httpAddr := fs.String("http", envOr("EDDY_HTTP_ADDR", DefaultHTTPAddr),
		"address of /healthz, /readyz and /metrics, empty: off; $EDDY_HTTP_ADDR when set")
	unreadyAfter := fs.Duration("unready-after", 30*time.Second, "a partition paused this long (a produce or store call retried) makes /readyz answer 503")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "worker run: -c pipeline.yaml is required")
		return errUsage
	}
	log, err := newLogger(*level, false, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	clientlog.InstallRedis(log) // go-redis's own lines: through zap, rate-limited

	p, err := pipeline.Load(*path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The worker opens the store the pipeline names when Run starts and
	// closes it when Run returns.
	opts := []processor.Option{processor.WithLogger(log), processor.WithUnreadyAfter(*unreadyAfter)}
	tables, err := dimension.Open(ctx, p, log)
	if err != nil {
		return err
	}
	for name, src := range tables {
		defer src.Close()
		opts = append(opts, processor.WithTableSource(name, src))
	}
	if *brokers != "" {
		opts = append(opts, processor.WithBrokers(strings.Split(*brokers, ",")...))
	}
	if *instance != "" {
		opts = append(opts, processor.WithInstanceID(*instance))
	}
	opts = append(opts, chaosOptions(log)...)
	w, err := processor.New(p, opts...)
	if err != nil {
		return err
	}
	stopHTTP, err := serveHTTP(*httpAddr, *query, log, servedWorker{w: w})
	if err != nil {
		return err
	}
	defer stopHTTP()
	return runUntilSignal(ctx, w, p.Spec.Flush.ShutdownTimeout, log)
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// runUntilSignal runs w until ctx ends (SIGINT/SIGTERM), then gives it the
// shutdown timeout (plus a margin to leave the group) to flush, commit and
// leave, and fails if it takes longer.
func runUntilSignal(ctx context.Context, w *processor.Worker, shutdown time.Duration, log *zap.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: flushing partitions and leaving the group", zap.Duration("deadline", shutdown+5*time.Second))
	select {
	case err := <-errc:
		return err
	case <-time.After(shutdown + 5*time.Second):
		return errors.New("shutdown deadline exceeded; uncommitted work will be replayed by the next owner")
	}
}

// newLogger makes the binary's logger: JSON for run, console text for dev,
// its levels coloured when w is a terminal and NO_COLOR is not set
// (https://no-color.org).
func newLogger(level string, console bool, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	if console {
		return zaplog.Console(w, lvl, isTerminal(w) && os.Getenv("NO_COLOR") == ""), nil
	}
	return zaplog.JSON(w, lvl), nil
}

// describeStage is one line of worker validate's sub-topology list:
// "<n>: <topics> -> <steps> -> <where its records go>".
func describeStage(p *pipeline.Pipeline, st pipeline.Stage) string {
	var steps []string
	for i := st.First; i < st.End; i++ {
		steps = append(steps, p.Steps[i].Field+" "+p.Steps[i].Kind.String())
	}
	to := "no sink"
	switch r := st.Repartition; {
	case r != nil:
		parts := "the source topics' partition count"
		if r.Partitions > 0 {
			parts = strconv.Itoa(r.Partitions) + " partitions"
		}
		to = fmt.Sprintf("internal topic %s (%s, router %s, read deduplicated)", r.Topic, parts, r.Router)
		if r.Side != pipeline.SideNone {
			side := map[pipeline.Side]string{pipeline.SideLeft: "left", pipeline.SideRight: "right"}[r.Side]
			to = fmt.Sprintf("join %s, %s side: internal topic %s by join key %s (%s, read deduplicated)", r.Name, side, r.Topic, r.Key.Text, parts)
		}
	case st.Table != nil:
		to = fmt.Sprintf("table %s (rows upserted into the state store, read by lookups from any worker)", st.Table.Name)
	case p.Sink != nil:
		to = fmt.Sprintf("sink %s (router %s)", strings.Join(p.Sink.Topics, ", "), p.Sink.Router)
		if len(p.Sink.Topics) > 1 {
			to = fmt.Sprintf("sinks %s (each a copy, router %s)", strings.Join(p.Sink.Topics, ", "), p.Sink.Router)
		}
	}
	if len(steps) == 0 {
		steps = []string{"(no steps)"}
	}
	return fmt.Sprintf("%d: %s -> %s -> %s", st.Index, strings.Join(st.Topics, ", "), strings.Join(steps, ", "), to)
}

const validateUsage = `usage: worker validate [flags] pipeline.yaml...

Checks each pipeline file and lists every error as file:line:col: field:
message (exit 1 when a file is invalid). -c names a file too.

flags:
`

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), validateUsage)
		fs.PrintDefaults()
	}
	path := fs.String("c", "", "pipeline file (or give the files as arguments)")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout: per file, ok or its errors")
	partitions := fs.Int("partitions", 0, "partitions of the source topics, all together; with -max-replicas, warn when workers would sit idle")
	maxReplicas := fs.Int("max-replicas", 0, "the most workers the deployment runs (an HPA's maxReplicas); needs -partitions")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *path != "" {
		files = append([]string{*path}, files...)
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "worker validate: a pipeline file is required (worker validate pipeline.yaml...)")
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range []struct {
		name string
		v    int
	}{{"partitions", *partitions}, {"max-replicas", *maxReplicas}} {
		if set[f.name] && f.v < 1 {
			fmt.Fprintf(stderr, "worker validate: -%s %d: must be at least 1\n", f.name, f.v)
			return errUsage
		}
	}
	if set["partitions"] != set["max-replicas"] {
		fmt.Fprintln(stderr, "worker validate: -partitions and -max-replicas go together")
		return errUsage
	}
	report := validationReport{OK: true}
	for _, file := range files {
		r := validateFile(file, *partitions, *maxReplicas)
		report.OK = report.OK && r.OK
		report.Files = append(report.Files, r)
		if !*asJSON {
			r.print(stdout, stderr)
		}
	}
	if *asJSON {
		if err := writeJSON(stdout, report); err != nil {
			return err
		}
	}
	if !report.OK {
		return exitStatus(1)
	}
	return nil
}

// validationReport is what `worker validate` found, as --json prints it.
type validationReport struct {
	OK    bool            `json:"ok"` // every file is valid
	Files []fileValidated `json:"files"`
}

// fileValidated is the verdict on one pipeline file: ok with a summary,
// or its errors.
type fileValidated struct {
	File     string            `json:"file"`
	OK       bool              `json:"ok"`
	Pipeline string            `json:"pipeline,omitempty"`
	Steps    int               `json:"steps,omitempty"`
	Stages   []string          `json:"sub_topologies,omitempty"` // when more than one
	Warnings []string          `json:"warnings,omitempty"`
	Errors   []validationError `json:"errors,omitempty"`

	group      string // the consumer group, when ok
	unreadable bool   // the file could not be read: Errors holds why
}

// validationError is one pipeline.Error; Line and Column are 0 when not
// known (a file that cannot be read).
type validationError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`

	text string // as printed: file:line:col: field: message
}

func validateFile(file string, partitions, maxReplicas int) fileValidated {
	r := fileValidated{File: file}
	p, err := pipeline.Load(file)
	if err != nil {
		var errs pipeline.Errors
		if !errors.As(err, &errs) {
			r.Errors, r.unreadable = []validationError{{File: file, Message: err.Error(), text: err.Error()}}, true
			return r
		}
		for _, e := range errs {
			r.Errors = append(r.Errors, validationError{File: e.File, Line: e.Line, Column: e.Col, Field: e.Field, Message: e.Msg, text: e.Error()})
		}
		return r
	}
	r.OK, r.Pipeline, r.Steps = true, p.Spec.Name, len(p.Steps)
	var stages []string
	for _, st := range p.Stages() {
		stages = append(stages, describeStage(p, st))
	}
	if len(stages) > 1 {
		r.Stages = stages
	}
	// A partition is consumed by one member of the group at a time, so
	// workers beyond the partition count get nothing to do. A warning, not
	// an error: the file itself is fine.
	if maxReplicas > partitions {
		r.Warnings = append(r.Warnings, fmt.Sprintf("-max-replicas %d exceeds -partitions %d: each partition goes to one worker of the group %q, so %d of %d replicas would sit idle; keep max replicas <= %d",
			maxReplicas, partitions, p.Spec.Kafka.Group, maxReplicas-partitions, maxReplicas, partitions))
	}
	r.group = p.Spec.Kafka.Group
	return r
}

// print writes r the way worker validate does without --json: the summary
// on stdout, errors and warnings on stderr.
func (r *fileValidated) print(stdout, stderr io.Writer) {
	switch {
	case r.unreadable:
		fmt.Fprintln(stderr, "worker:", r.Errors[0].text)
		return
	case !r.OK:
		for _, e := range r.Errors {
			fmt.Fprintln(stderr, e.text)
		}
		fmt.Fprintf(stderr, "worker: %s: %d error(s)\n", r.File, len(r.Errors))
		return
	}
	fmt.Fprintf(stdout, "%s: ok (pipeline %q, %d steps)\n", r.File, r.Pipeline, r.Steps)
	if len(r.Stages) > 0 {
		fmt.Fprintf(stdout, "%d sub-topologies, one consumer group (%s):\n", len(r.Stages), r.group)
		for _, st := range r.Stages {
			fmt.Fprintln(stdout, "  "+st)
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintln(stderr, "worker validate: warning:", w)
	}
}
