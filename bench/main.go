package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

// Environment variables naming the services (as in integration/testenv).
const (
	envKafka = "EDDY_KAFKA_BROKERS"
	envRedis = "EDDY_REDIS_ADDR"
	envMySQL = "EDDY_MYSQL_DSN"
)

// config is everything a run needs; the parent passes the relevant part
// to each child on its command line.
type config struct {
	brokers []string
	redis   string
	mysql   string

	events     int
	size       int
	keys       int
	partitions int
	scenarios  []string
	repeat     int
	out        string
	profileDir string
	timeout    time.Duration
	keep       bool
	// maxMessages, when > 0, is flush.max_messages of the pipelines of b
	// to h (default: the pipeline default, 1,000).
	maxMessages int
	// backlogMessages, when > 0, is flush.backlog_messages of b to h
	// (default: the pipeline default, 10,000; -max-messages's value turns
	// adaptive batching off).
	backlogMessages int

	latencySeconds int
	latencyKeys    int
	latencyTxn     bool
	latencyRate    int
	failoverSizes  []int
	failoverKills  int
	failoverRate   int
	sessionTimeout time.Duration
	workerBin      string

	// Set for a child.
	scenario   string
	run        string
	topic      string
	result     string
	rate       int
	cpuprofile string
}

// throughput are the scenarios that read the filled topic, in run order.
var throughput = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}

var scenarioNames = map[string]string{
	"a": "consume", "b": "stateless", "c": "agg-memory", "d": "agg-redis",
	"e": "agg-mariadb", "f": "agg-dedup", "g": "agg-redis-notxn", "h": "agg-redis-always",
	"i":       "agg-repartition",
	"latency": "latency", "failover": "failover",
}

// scenarioList is every scenario name, for the flag's messages.
const scenarioList = "a,b,c,d,e,f,g,h,i,latency,failover"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.scenario != "" {
		return runChild(ctx, cfg)
	}
	return runParent(ctx, cfg, stdout, stderr)
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: go run ./bench [flags]

Fills a topic once, then measures on the same data, each in a child process:
  a consume, b stateless, c agg-memory, d agg-redis, e agg-mariadb,
  f agg-dedup, g agg-redis-notxn (d without transactions), h
  agg-redis-always (d with Redis appendfsync always), i agg-repartition (c
  behind a repartition by user: the cost of the hop); then latency (d with
  emit on_update at half of d's rate) and failover (two worker processes,
  one SIGKILLed). g is not run by default.
Services: $EDDY_KAFKA_BROKERS, $EDDY_REDIS_ADDR, $EDDY_MYSQL_DSN
(defaults: those of make services).

flags:
`)
		fs.PrintDefaults()
	}
	c := &config{}
	fs.IntVar(&c.events, "events", 1_000_000, "events in the topic")
	fs.IntVar(&c.size, "size", 100, "bytes per event (JSON, padded)")
	fs.IntVar(&c.keys, "keys", 10_000, "distinct keys (users)")
	fs.IntVar(&c.partitions, "partitions", 6, "partitions of the topics")
	scen := fs.String("scenarios", "a,b,c,d,e,f,h,i,latency,failover", "scenarios to run, comma-separated, of "+scenarioList)
	fs.IntVar(&c.repeat, "repeat", 1, "run the throughput scenarios this many times, interleaved; the median is reported")
	fs.StringVar(&c.out, "out", "bench/results/latest.json", "write the result as JSON here (empty: don't)")
	fs.StringVar(&c.profileDir, "cpuprofile-dir", "", "write each child's CPU profile to <dir>/<scenario>.prof")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "give up on a scenario after this long")
	fs.BoolVar(&c.keep, "keep", false, "keep topics, groups, Redis keys and tables")
	fs.IntVar(&c.maxMessages, "max-messages", 0, "flush.max_messages of the pipelines of b to h (0: the default, 1000)")
	fs.IntVar(&c.backlogMessages, "backlog-messages", 0, "flush.backlog_messages of the pipelines of b to h (0: the default, 10000; the -max-messages value, or 1000, turns adaptive batching off)")
	fs.IntVar(&c.latencySeconds, "latency-seconds", 20, "latency: seconds of paced producing (the first 3 are not sampled)")
	fs.BoolVar(&c.latencyTxn, "latency-transactions", true, "latency: kafka.transactions of the pipeline (false: the shared idempotent producer; the cost of fencing the outputs)")
	fs.IntVar(&c.latencyKeys, "latency-keys", 1000, "latency: distinct keys (fewer than -keys, so that emit on_update makes about as many outputs per event as d)")
	fs.IntVar(&c.latencyRate, "latency-rate", 0, "latency: events/s (0: half of d's measured rate)")
	sizes := fs.String("failover-sizes", "10000,1000000", "failover: keys of state, comma-separated, measured in this order")
	fs.IntVar(&c.failoverKills, "failover-kills", 3, "failover: SIGKILLs per state size")
	fs.IntVar(&c.failoverRate, "failover-rate", 2000, "failover: events/s the paced producer writes meanwhile")
	fs.DurationVar(&c.sessionTimeout, "failover-session-timeout", 10*time.Second,
		"failover: the workers' kafka.session_timeout (the broker's group.min.session.timeout.ms, 6s by default, is the floor)")
	fs.StringVar(&c.workerBin, "worker-bin", "", "failover: a built ./cmd/worker (default: go build it)")
	// A child's flags.
	fs.StringVar(&c.scenario, "scenario", "", "(internal) run this scenario in this process")
	fs.StringVar(&c.run, "run", "", "(internal) the run id")
	fs.StringVar(&c.topic, "topic", "", "(internal) the filled topic")
	fs.StringVar(&c.result, "result", "", "(internal) write the scenario's result here")
	fs.IntVar(&c.rate, "rate", 0, "(internal) latency: events/s")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "(internal) write the child's CPU profile here")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.brokers = splitList(envOr(envKafka, "127.0.0.1:9092"))
	c.redis = envOr(envRedis, "127.0.0.1:6379")
	c.mysql = envOr(envMySQL, "eddy:eddy@tcp(127.0.0.1:3306)/eddy")
	for _, s := range splitList(*scen) {
		if _, ok := scenarioNames[s]; !ok {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q (want some of %s)", s, scenarioList)
		}
		c.scenarios = append(c.scenarios, s)
	}
	for _, s := range splitList(*sizes) {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
			return nil, fmt.Errorf("-failover-sizes: %q is not a positive number", s)
		}
		c.failoverSizes = append(c.failoverSizes, n)
	}
	switch {
	case c.events <= 0:
		return nil, fmt.Errorf("-events: %d must be positive", c.events)
	case c.size < 16:
		return nil, fmt.Errorf("-size: %d is below 16 bytes", c.size)
	case c.keys <= 0:
		return nil, fmt.Errorf("-keys: %d must be positive", c.keys)
	case c.partitions <= 0:
		return nil, fmt.Errorf("-partitions: %d must be positive", c.partitions)
	case c.maxMessages < 0:
		return nil, fmt.Errorf("-max-messages: %d is negative", c.maxMessages)
	case c.backlogMessages < 0:
		return nil, fmt.Errorf("-backlog-messages: %d is negative", c.backlogMessages)
	case c.repeat <= 0:
		return nil, fmt.Errorf("-repeat: %d must be positive", c.repeat)
	case c.latencyKeys <= 0:
		return nil, fmt.Errorf("-latency-keys: %d must be positive", c.latencyKeys)
	case c.latencySeconds < 5:
		return nil, fmt.Errorf("-latency-seconds: %d is below 5", c.latencySeconds)
	case c.failoverKills <= 0:
		return nil, fmt.Errorf("-failover-kills: %d must be positive", c.failoverKills)
	case c.sessionTimeout < time.Second:
		return nil, fmt.Errorf("-failover-session-timeout: %v is below 1s", c.sessionTimeout)
	case c.failoverRate <= 0:
		return nil, fmt.Errorf("-failover-rate: %d must be positive", c.failoverRate)
	}
	if c.scenario != "" {
		if c.run == "" || c.result == "" {
			return nil, errors.New("-scenario needs -run and -result")
		}
	}
	return c, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// logf prints a progress line on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func runParent(ctx context.Context, cfg *config, stdout, _ io.Writer) error {
	cfg.run = newRunID()
	rep := &Report{
		Run: cfg.run, Started: time.Now().UTC(), Machine: describeMachine(ctx, cfg),
		Command: "go run ./bench " + strings.Join(os.Args[1:], " "),
		Params: Params{Events: cfg.events, Size: cfg.size, Keys: cfg.keys, Partitions: cfg.partitions,
			Repeat: cfg.repeat, Scenarios: cfg.scenarios, MaxMessages: cfg.maxMessages, BacklogMessages: cfg.backlogMessages,
			GOGC: os.Getenv("GOGC")},
	}
	logf("run %s: %d events of ~%d bytes, %d keys, %d partitions; load %s", cfg.run, cfg.events, cfg.size,
		cfg.keys, cfg.partitions, loadAvg())
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return err
		}
	}
	k, err := newKafka(cfg.brokers)
	if err != nil {
		return err
	}
	defer k.close()
	defer func() {
		if !cfg.keep {
			cleanupRun(context.WithoutCancel(ctx), cfg, k)
		}
	}()

	var want, wantHop map[winKey]aggResult // what the aggregate scenarios must emit (wantHop: i)
	needTopic := false
	for _, s := range cfg.scenarios {
		if slices.Contains(throughput, s) {
			needTopic = true
		}
	}
	if needTopic {
		topic := "eddybench-" + cfg.run + "-in"
		if err := k.createTopic(topic, cfg.partitions); err != nil {
			return err
		}
		start := time.Now()
		n, ref, err := fill(ctx, cfg, topic)
		if err != nil {
			return fmt.Errorf("fill %s: %w", topic, err)
		}
		took := time.Since(start)
		want, wantHop = ref.emitted(), ref.emittedAfterHop()
		rep.Fill = &FillResult{Topic: topic, Events: n, Seconds: took.Seconds(), EventsPerSec: float64(n) / took.Seconds(),
			ReferenceWindows: len(want), OpenWindows: len(ref.wins) - len(want)}
		logf("filled %s: %d events in %.1fs (%.0f/s); reference: %d windows closed, %d left open at the end (never emitted)",
			topic, n, took.Seconds(), rep.Fill.EventsPerSec, len(want), rep.Fill.OpenWindows)
		cfg.topic = topic
	}

	results := map[string][]*Result{}
	var differ []string // the aggregate scenarios whose outputs differ from the reference
	for r := 0; r < cfg.repeat; r++ {
		for _, s := range throughput {
			if !slices.Contains(cfg.scenarios, s) {
				continue
			}
			res, err := runThroughput(ctx, cfg, s, fmt.Sprintf("%s-%d", s, r))
			if err != nil {
				return fmt.Errorf("scenario %s (%s): %w", s, scenarioNames[s], err)
			}
			logf("%s %-16s %9.0f events/s  %5.2f µs CPU/event (%.2f cores)  %6.4f store calls/event  flush p50 %6.2f ms p99 %6.2f ms  rss %4.0f MB  (%.1fs)",
				s, scenarioNames[s], res.EventsPerSec, res.CPUPerEventUs, res.CPUCores, res.StoreCallsPerEvent,
				res.FlushP50Ms, res.FlushP99Ms, res.PeakRSSMB, res.Seconds)
			if slices.Contains(aggregates, s) {
				w := want
				if s == "i" {
					w = wantHop
				}
				c, err := compareScenario(k.client, res, w)
				if err != nil {
					return fmt.Errorf("scenario %s (%s): %w", s, scenarioNames[s], err)
				}
				res.OutputsCompared = c
				logf("%s %-16s outputs compared: %s", s, scenarioNames[s], c.Summary)
				if !c.Equal() {
					differ = append(differ, fmt.Sprintf("scenario %s (%s), repetition %d: outputs differ from the reference: %s",
						s, scenarioNames[s], r+1, c.Summary))
				}
			}
			results[s] = append(results[s], res)
		}
	}
	rep.summarize(results)

	if slices.Contains(cfg.scenarios, "latency") {
		rate := cfg.latencyRate
		if rate == 0 {
			d := rep.scenario("d")
			if d == nil {
				return errors.New("latency: needs d's rate: add d to -scenarios or set -latency-rate")
			}
			rate = int(d.EventsPerSec / 2)
		}
		cfg.rate = rate
		persistence, err := redisPersistence(ctx, cfg.redis)
		if err != nil {
			return fmt.Errorf("scenario latency: %w", err)
		}
		res, err := runChildProcess(ctx, cfg, "latency", "latency")
		if err != nil {
			return fmt.Errorf("scenario latency: %w", err)
		}
		res.RedisPersistence = persistence
		rep.Latency = res
		logf("latency at %d/s (achieved %.0f/s): p50 %.1f ms p99 %.1f ms max %.1f ms over %d outputs",
			rate, res.Latency.AchievedRate, res.Latency.P50Ms, res.Latency.P99Ms, res.Latency.MaxMs, res.Latency.Samples)
	}
	if slices.Contains(cfg.scenarios, "failover") {
		fo, err := runFailover(ctx, cfg, k)
		if err != nil {
			return fmt.Errorf("failover: %w", err)
		}
		rep.Failover = fo
	}
	rep.Finished = time.Now().UTC()
	rep.Machine.LoadAfter = loadAvg()
	rep.print(stdout)
	if cfg.out != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err != nil {
			return err
		}
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		logf("wrote %s", cfg.out)
	}
	if len(differ) > 0 {
		return errors.New(strings.Join(differ, "\n"))
	}
	return nil
}

// compareScenario reads the outputs of an aggregate scenario's run (its
// worker has stopped) and compares them by content with want.
func compareScenario(client sarama.Client, res *Result, want map[winKey]aggResult) (*Comparison, error) {
	if res.OutputTopic == "" {
		return nil, errors.New("the child reported no output topic")
	}
	msgs, err := readCommitted(client, res.OutputTopic, time.Now().Add(2*time.Minute))
	if err != nil {
		return nil, fmt.Errorf("reading the outputs: %w", err)
	}
	return compareOutputs(want, msgs), nil
}

// runThroughput runs throughput scenario s once in a child process. For h
// it sets Redis's appendfsync to always first and restores the previous
// value when the child is done, whether it succeeded or not (also when the
// run is interrupted: the child is killed, then restore runs). A scenario
// with Redis state records the persistence it ran with.
func runThroughput(ctx context.Context, cfg *config, s, tag string) (res *Result, err error) {
	if s == "h" {
		restore, err := setAppendfsync(ctx, cfg.redis, "always")
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, restore()) }()
	}
	var persistence string
	if scenarioBackend(s) == "redis" {
		if persistence, err = redisPersistence(ctx, cfg.redis); err != nil {
			return nil, err
		}
		if s == "h" && !strings.HasPrefix(persistence, "appendonly yes") {
			logf("h: NOTE Redis runs with %s: appendfsync always changes nothing without appendonly yes", persistence)
		}
	}
	res, err = runChildProcess(ctx, cfg, s, tag)
	if err != nil {
		return nil, err
	}
	res.RedisPersistence = persistence
	return res, nil
}

// runChildProcess runs scenario s in a child process (this program
// re-executed with -scenario) and returns its result.
func runChildProcess(ctx context.Context, cfg *config, s, tag string) (*Result, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "eddybench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	resFile := filepath.Join(dir, "result.json")
	args := []string{"-scenario", s, "-run", cfg.run, "-topic", cfg.topic, "-result", resFile,
		"-events", fmt.Sprint(cfg.events), "-size", fmt.Sprint(cfg.size), "-keys", fmt.Sprint(cfg.keys),
		"-partitions", fmt.Sprint(cfg.partitions), "-rate", fmt.Sprint(cfg.rate),
		"-latency-seconds", fmt.Sprint(cfg.latencySeconds), "-latency-keys", fmt.Sprint(cfg.latencyKeys),
		"-latency-transactions=" + fmt.Sprint(cfg.latencyTxn),
		"-timeout", cfg.timeout.String(),
		"-max-messages", fmt.Sprint(cfg.maxMessages), "-backlog-messages", fmt.Sprint(cfg.backlogMessages)}
	if cfg.profileDir != "" {
		args = append(args, "-cpuprofile", filepath.Join(cfg.profileDir, tag+".prof"))
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, self, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), envKafka+"="+strings.Join(cfg.brokers, ","), envRedis+"="+cfg.redis, envMySQL+"="+cfg.mysql)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("child process: %w", err)
	}
	b, err := os.ReadFile(resFile)
	if err != nil {
		return nil, fmt.Errorf("child result: %w", err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("child result %s: %w", resFile, err)
	}
	return &res, nil
}
