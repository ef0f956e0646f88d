package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/internal/kafkaconf"
	"github.com/eddy-streams/eddy/offsets"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/backends"
)

const offsetsUsage = `usage:
  worker offsets show -c pipeline.yaml [--group G] [--brokers B] [--json]
      per partition of each source topic: log start and end, the group's committed
      offset, the store's offset watermark W, lag; the group's state and members
  worker offsets reset -c pipeline.yaml --topic T
      (--to-earliest | --to-latest | --to-time RFC3339 | --to-offset N)
      [--partitions 0,2,5] [--group G] [--brokers B] [--dry-run] [--force] [--json]
      move the group's committed offsets to replay T from a point; refused while
      the group has live members unless --force

A reset moves Kafka's committed offsets. Offsets at or below the store's
watermark W are skipped on replay (already in state): a replay never counts an
event twice, and never recomputes one either. A reset forward past W+1 skips
the events in between on purpose: the store's watermark is moved too (the state
itself is untouched). See "go doc github.com/eddy-streams/eddy/offsets" for
how to rebuild state from scratch.
`

// forceHelp explains --force where a reset was refused.
const forceHelp = `Or use --force: it removes these members from the group and commits the new offsets. ` +
	`Running workers then rejoin within a heartbeat and resume from the new offsets; ` +
	`their unflushed batches are read again (skipped or processed once: never counted twice). ` +
	`If a worker rejoins before the commit lands, the reset fails with nothing changed.`

func cmdOffsets(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, offsetsUsage)
		return errUsage
	}
	switch args[0] {
	case "show":
		return cmdOffsetsShow(args[1:], stdout, stderr)
	case "reset":
		return cmdOffsetsReset(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, offsetsUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "worker offsets: unknown subcommand %q\n\n%s", args[0], offsetsUsage)
		return errUsage
	}
}

// offsetsFlags are the flags show and reset share.
type offsetsFlags struct {
	path, group, brokers string
	json                 bool
}

func (o *offsetsFlags) register(fs *flag.FlagSet) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\nflags of %s:\n", offsetsUsage, fs.Name())
		fs.PrintDefaults()
	}
	fs.StringVar(&o.path, "c", "", "pipeline file (required)")
	fs.StringVar(&o.group, "group", "", `consumer group (default: kafka.group, else "eddy-<name>")`)
	fs.StringVar(&o.brokers, "brokers", "", "override kafka.brokers (comma-separated host:port)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
}

func cmdOffsetsShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("offsets show", stderr)
	var o offsetsFlags
	o.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.path == "" {
		fmt.Fprintln(stderr, "worker offsets show: -c pipeline.yaml is required")
		return errUsage
	}
	p, err := pipeline.Load(o.path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := openOffsets(ctx, p, &o)
	if err != nil {
		return err
	}
	defer env.close()
	// The source topics, and the internal topics of repartition steps
	// once a worker has created them.
	topics := slices.Clone(p.Spec.Source.Topics)
	for _, t := range p.Topics()[len(topics):] {
		ok, err := env.tool.HasTopic(t)
		if err != nil {
			return err
		}
		if ok {
			topics = append(topics, t)
		} else {
			fmt.Fprintf(stderr, "worker offsets: internal topic %s does not exist yet (a worker creates it when it starts)\n", t)
		}
	}
	st, err := env.tool.Status(ctx, topics...)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(stdout, st)
	}
	writeStatus(stdout, st, env.storeNote)
	return nil
}

// resetArgs are the checked arguments of `worker offsets reset`.
type resetArgs struct {
	offsetsFlags
	topic      string
	to         offsets.To
	partitions []int32 // nil: all
	dryRun     bool
	force      bool
}

// parseResetArgs parses and checks the flags of `worker offsets reset`.
// Flag-level mistakes (help, unknown flags) come back as flag.ErrHelp or
// errUsage, already reported on stderr; the other errors are for the
// caller to print.
func parseResetArgs(args []string, stderr io.Writer) (*resetArgs, error) {
	fs := newFlags("offsets reset", stderr)
	var r resetArgs
	r.register(fs)
	fs.StringVar(&r.topic, "topic", "", "source topic whose offsets to reset (required)")
	earliest := fs.Bool("to-earliest", false, "reset to the log start (oldest retained message)")
	latest := fs.Bool("to-latest", false, "reset to the log end (skip everything not yet read)")
	at := fs.String("to-time", "", "reset to the first message at or after this RFC 3339 time")
	offset := fs.Int64("to-offset", 0, "reset to this offset (clamped to each partition's log)")
	parts := fs.String("partitions", "", "comma-separated partitions to reset (default: all)")
	fs.BoolVar(&r.dryRun, "dry-run", false, "print the plan and change nothing")
	fs.BoolVar(&r.force, "force", false, "reset even while the group has live members: remove them from the group first")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if r.path == "" {
		return nil, errors.New("-c pipeline.yaml is required")
	}
	if r.topic == "" {
		return nil, errors.New("--topic is required")
	}
	var tos []string
	for _, name := range []string{"to-earliest", "to-latest", "to-time", "to-offset"} {
		if set[name] {
			tos = append(tos, "--"+name)
		}
	}
	switch {
	case len(tos) == 0:
		return nil, errors.New("one of --to-earliest, --to-latest, --to-time or --to-offset is required")
	case len(tos) > 1:
		return nil, fmt.Errorf("%s are exclusive: give exactly one --to-* flag", joinAnd(tos))
	}
	switch {
	case set["to-earliest"]:
		if !*earliest {
			return nil, errors.New("--to-earliest=false: leave the flag out instead")
		}
		r.to = offsets.ToEarliest()
	case set["to-latest"]:
		if !*latest {
			return nil, errors.New("--to-latest=false: leave the flag out instead")
		}
		r.to = offsets.ToLatest()
	case set["to-time"]:
		t, err := time.Parse(time.RFC3339Nano, *at)
		if err != nil {
			return nil, fmt.Errorf("--to-time %q: not an RFC 3339 time such as 2024-05-01T12:00:00Z", *at)
		}
		r.to = offsets.ToTime(t)
	case set["to-offset"]:
		if *offset < 0 {
			return nil, fmt.Errorf("--to-offset %d: must be >= 0", *offset)
		}
		r.to = offsets.ToOffset(*offset)
	}
	if set["partitions"] {
		ps, err := parsePartitions(*parts)
		if err != nil {
			return nil, fmt.Errorf("--partitions %q: %w", *parts, err)
		}
		r.partitions = ps
	}
	return &r, nil
}

// parsePartitions parses "0,2,5".
func parsePartitions(s string) ([]int32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty list")
	}
	var out []int32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, errors.New("empty entry")
		}
		n, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a partition number", f)
		}
		if n < 0 {
			return nil, fmt.Errorf("partition %d is negative", n)
		}
		if slices.Contains(out, int32(n)) {
			return nil, fmt.Errorf("partition %d is listed twice", n)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

// joinAnd joins "a", "b", "c" as "a, b and c".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// checkTopic checks that topic is one of the topics the pipeline reads:
// a source topic or a repartition's internal topic (whose records are
// deduplicated when read again).
func checkTopic(p *pipeline.Pipeline, topic string) error {
	if slices.Contains(p.Topics(), topic) {
		return nil
	}
	return fmt.Errorf("--topic %q is not a topic pipeline %q reads (source.topics and internal topics: %s)",
		topic, p.Spec.Name, strings.Join(p.Topics(), ", "))
}

func cmdOffsetsReset(args []string, stdout, stderr io.Writer) error {
	r, err := parseResetArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
		return err
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker offsets reset:", err)
		return errUsage
	}
	p, err := pipeline.Load(r.path)
	if err != nil {
		return err
	}
	if err := checkTopic(p, r.topic); err != nil {
		fmt.Fprintln(stderr, "worker offsets reset:", err)
		return errUsage
	}
	return resetOffsets(p, r, stdout)
}

func resetOffsets(p *pipeline.Pipeline, r *resetArgs, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := openOffsets(ctx, p, &r.offsetsFlags)
	if err != nil {
		return err
	}
	defer env.close()
	plan, err := env.tool.Plan(ctx, offsets.Reset{Topic: r.topic, Partitions: r.partitions, To: r.to})
	if err != nil {
		if r.partitions != nil {
			return fmt.Errorf("--partitions: %w", err)
		}
		return err
	}
	var applied *offsets.Applied
	if !r.dryRun {
		applied, err = env.tool.Apply(ctx, plan, r.force)
		var active *offsets.ActiveGroupError
		if errors.As(err, &active) {
			if !r.json {
				writePlan(stdout, plan, env.storeNote, "refused: nothing changed")
			}
			return fmt.Errorf("%w. %s", err, forceHelp)
		}
		if err != nil {
			return err
		}
	}
	if r.json {
		return writeJSON(stdout, struct {
			Plan    *offsets.Plan    `json:"plan"`
			DryRun  bool             `json:"dry_run"`
			Applied *offsets.Applied `json:"applied"`
		}{plan, r.dryRun, applied})
	}
	var outcome string
	switch {
	case r.dryRun && plan.Group.Active():
		outcome = fmt.Sprintf("dry run: nothing changed. The group has %d live member(s): without --dry-run the reset is refused unless the workers are stopped (or --force)",
			len(plan.Group.Members))
	case r.dryRun:
		outcome = "dry run: nothing changed"
	default:
		var b strings.Builder
		if len(applied.Removed) > 0 {
			fmt.Fprintf(&b, "removed %d member(s) from group %s (--force)\n", len(applied.Removed), plan.Group.ID)
		}
		fmt.Fprintf(&b, "committed: %d partition(s) of %s for group %s now at the new offsets (read back from the coordinator)",
			len(plan.Moves), plan.Topic, plan.Group.ID)
		if len(applied.Advanced) > 0 {
			fmt.Fprintf(&b, "\nstore: the watermark of partition(s) %v moved to the new offset - 1: the events in between are skipped", applied.Advanced)
		}
		outcome = b.String()
	}
	writePlan(stdout, plan, env.storeNote, outcome)
	return nil
}

// offsetsEnv is what show and reset work with.
type offsetsEnv struct {
	tool      *offsets.Tool
	store     statedb.Store // nil for the memory backend
	storeNote string
}

func (e *offsetsEnv) close() {
	_ = e.tool.Close()
	if e.store != nil {
		_ = e.store.Close()
	}
}

// openOffsets connects to the pipeline's cluster and its state store.
func openOffsets(ctx context.Context, p *pipeline.Pipeline, o *offsetsFlags) (*offsetsEnv, error) {
	cfg, err := offsetsKafkaConfig(p)
	if err != nil {
		return nil, err
	}
	brokers := p.Spec.Kafka.Brokers
	if o.brokers != "" {
		brokers = strings.Split(o.brokers, ",")
	}
	group := o.group
	if group == "" {
		group = offsets.GroupOf(p)
	}
	env := &offsetsEnv{}
	opts := []offsets.Option{offsets.WithSaramaConfig(cfg)}
	switch backend := p.Spec.State.Backend; backend {
	case pipeline.BackendMemory, "":
		env.storeNote = "watermarks: unknown: state.backend is memory, so they live inside each worker process " +
			"(a restarted worker starts with empty state and processes everything from the committed offset)"
	default:
		st, err := backends.Open(ctx, p, nil)
		if err != nil {
			return nil, err
		}
		env.store = st
		if in, ok := st.(statedb.Inspector); ok {
			opts = append(opts, offsets.WithStore(in))
			env.storeNote = fmt.Sprintf("watermarks: from the %s store (W: last offset whose effects are in state; offsets <= W are skipped)", backend)
		} else {
			env.storeNote = fmt.Sprintf("watermarks: unknown: the %s store cannot be inspected", backend)
		}
	}
	tool, err := offsets.New(brokers, group, opts...)
	if err != nil {
		if env.store != nil {
			_ = env.store.Close()
		}
		return nil, err
	}
	env.tool = tool
	return env, nil
}

// offsetsKafkaConfig is the client configuration of the offsets commands:
// the pipeline's protocol version, client id, SASL and TLS (kafkaconf),
// with a shorter dial timeout for an interactive tool.
func offsetsKafkaConfig(p *pipeline.Pipeline) (*sarama.Config, error) {
	cfg, err := kafkaconf.New(&p.Spec.Kafka)
	if err != nil {
		return nil, err
	}
	cfg.Net.DialTimeout = 10 * time.Second
	return cfg, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeGroup prints the group's state and members.
func writeGroup(w io.Writer, g *offsets.Group) {
	switch n := len(g.Members); {
	case n == 0:
		fmt.Fprintf(w, "group %s: %s, no live members\n", g.ID, g.State)
	default:
		fmt.Fprintf(w, "group %s: %s, %d live member(s):\n", g.ID, g.State, n)
		for _, m := range g.Members {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
}

func writeStatus(w io.Writer, st *offsets.Status, storeNote string) {
	writeGroup(w, st.Group)
	fmt.Fprintln(w, storeNote)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLOG-START\tLOG-END\tCOMMITTED\tW\tEPOCH\tLAG")
	for _, p := range st.Partitions {
		wm, epoch := "?", "?"
		if p.Watermark != nil {
			wm, epoch = offsetText(p.Watermark.Offset), strconv.FormatInt(p.Watermark.Epoch, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n", p.Topic, p.Partition, p.LogStart, p.LogEnd,
			offsetText(p.Committed), wm, epoch, p.Lag)
	}
	_ = tw.Flush()
	writeWarnings(w, st.Partitions)
}

func writeWarnings(w io.Writer, ps []offsets.PartitionStatus) {
	for _, p := range ps {
		for _, warn := range p.Warnings {
			fmt.Fprintf(w, "warning: %s/%d: %s\n", p.Topic, p.Partition, warn)
		}
	}
}

func writePlan(w io.Writer, plan *offsets.Plan, storeNote, outcome string) {
	writeGroup(w, plan.Group)
	fmt.Fprintln(w, storeNote)
	fmt.Fprintf(w, "\nreset %s to %s:\n", plan.Topic, plan.To)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tCOMMITTED\tLOG-START\tLOG-END\tW\tREPLAY")
	statuses := make([]offsets.PartitionStatus, 0, len(plan.Moves))
	for _, m := range plan.Moves {
		wm := "?"
		if m.Watermark != nil {
			wm = offsetText(m.Watermark.Offset)
		}
		move := offsetText(m.Committed) + " -> " + strconv.FormatInt(m.New, 10)
		if m.Clamped {
			move += " (clamped to the log)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\n", m.Partition, move, m.LogStart, m.LogEnd, wm, m.Replay)
		statuses = append(statuses, m.PartitionStatus)
	}
	_ = tw.Flush()
	writeWarnings(w, statuses)
	fmt.Fprintln(w, outcome)
}

// offsetText prints an offset, "-" for none.
func offsetText(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}
