package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/internal/ingest"
	"github.com/eddy-streams/eddy/internal/kafkaconf"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/route"
)

const ingestUsage = `usage:
  worker ingest -topic T (-brokers B | -c pipeline.yaml) [flags] [file ...]
      publish JSON lines (or CSV) from files, or stdin ("-" or no file), to T
  worker ingest -topic T (-brokers B | -c pipeline.yaml) -http :8080 [flags]
      serve POST /ingest (a body of JSON lines or CSV) until SIGTERM/SIGINT

Every record gets an eddy-id header "<source>:<line>" (the file name as
given, or -source-name; for HTTP "http:<Idempotency-Key>"), the same on
every run over the same input: an eddy pipeline with dedup drops what a
re-run sends again. Bad lines are reported as file:line, counted, written
to -reject, and the run goes on. Flags come before the files.

exit status: 0 every record acknowledged by Kafka; 1 some record not
delivered, an input not read to its end, or interrupted; 2 bad flags;
3 bad lines rejected (the rest delivered) without -allow-rejects.
With -http: 0 after a clean shutdown, 1 otherwise.
`

// Exit statuses of worker ingest besides 0, 1 and 2 (errUsage).
const exitRejected = 3

// ingestArgs are the checked arguments of worker ingest.
type ingestArgs struct {
	path, brokers   string
	topic           string
	format          ingest.Format
	key             *ingest.Key
	router          route.Policy
	reject          string
	allowRejects    bool
	httpAddr        string
	sourceName      string
	csv             ingest.CSVOptions
	progress        bool
	progressEvery   time.Duration
	shutdownTimeout time.Duration
	ackTimeout      time.Duration
	maxBody         int64
	maxRecordBytes  int
	compression     sarama.CompressionCodec
	inputs          []string // "-" is stdin; none: stdin (unless -http)
}

// parseIngestArgs parses and checks worker ingest's flags. Flag-level
// mistakes come back as flag.ErrHelp or errUsage, already reported; the
// other errors are for the caller to print (all are usage errors).
func parseIngestArgs(args []string, stderr io.Writer) (*ingestArgs, error) {
	fs := newFlags("ingest", stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\nflags:\n", ingestUsage)
		fs.PrintDefaults()
	}
	a := &ingestArgs{}
	fs.StringVar(&a.path, "c", "", "pipeline file to take the kafka settings from (brokers, version, client_id, sasl, tls)")
	fs.StringVar(&a.brokers, "brokers", "", "comma-separated host:port (overrides -c's kafka.brokers)")
	fs.StringVar(&a.topic, "topic", "", "topic to publish to (required; it must exist)")
	format := fs.String("format", "json", "input format: json (one JSON object per line) or csv (a header line, then rows)")
	key := fs.String("key", "", `CEL expression over event giving the record key, e.g. event.user (default: no key)`)
	router := fs.String("router", string(route.Hash), "partition routing: hash, consistent-hash, round-robin or multicast")
	fs.StringVar(&a.reject, "reject", "", "write bad lines to this file, each after a comment line '# file:line: reason'")
	fs.BoolVar(&a.allowRejects, "allow-rejects", false, "exit 0 even if lines were rejected (when everything else was delivered)")
	fs.StringVar(&a.httpAddr, "http", "", "serve POST /ingest on this address (e.g. :8080) instead of reading files")
	fs.StringVar(&a.sourceName, "source-name", "", `name of the single input in eddy-ids and messages (default: the file name as given; stdin: a name unique to the run)`)
	comma := fs.String("csv-delimiter", ",", `CSV field delimiter: one character, or "tab"`)
	types := fs.String("csv-types", "", "CSV column types, e.g. qty:int,price:double,gift:bool (default: all strings)")
	fs.BoolVar(&a.progress, "progress", true, "print progress to stderr (in place on a terminal, else a line every 5s)")
	fs.DurationVar(&a.progressEvery, "progress-interval", 0, "time between progress lines (default 1s on a terminal, else 5s)")
	fs.DurationVar(&a.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM/SIGINT, how long to wait for the acknowledgements of what was read")
	fs.DurationVar(&a.ackTimeout, "ack-timeout", 30*time.Second, "with -http: how long a request waits for Kafka before 503")
	fs.Int64Var(&a.maxBody, "http-max-body", 32<<20, "with -http: largest request body, in bytes (413 beyond)")
	fs.IntVar(&a.maxRecordBytes, "max-record-bytes", 1000000, "largest Kafka record (value, key and headers); larger lines are rejected")
	compression := fs.String("compression", "none", "record batch compression: none, gzip, snappy, lz4 or zstd")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	a.inputs = fs.Args()
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if a.topic == "" {
		return nil, errors.New("-topic is required")
	}
	if err := checkTopicName(a.topic); err != nil {
		return nil, fmt.Errorf("-topic %q: %w", a.topic, err)
	}
	if a.brokers == "" && a.path == "" {
		return nil, errors.New("-brokers or -c pipeline.yaml is required")
	}
	if set["brokers"] {
		if _, err := splitBrokers(a.brokers); err != nil {
			return nil, fmt.Errorf("-brokers %q: %w", a.brokers, err)
		}
	}
	var err error
	if a.format, err = ingest.ParseFormat(*format); err != nil {
		return nil, fmt.Errorf("-format: %w", err)
	}
	if set["key"] {
		if a.key, err = ingest.CompileKey(*key); err != nil {
			return nil, fmt.Errorf("-key %q: %w", *key, err)
		}
	}
	a.router = route.Policy(*router)
	if _, err := route.New(a.router); err != nil {
		return nil, fmt.Errorf("-router: %s", strings.TrimPrefix(err.Error(), "route: "))
	}
	if a.csv.Comma, err = parseDelimiter(*comma); err != nil {
		return nil, fmt.Errorf("-csv-delimiter %q: %w", *comma, err)
	}
	if set["csv-types"] {
		if a.csv.Types, err = ingest.ParseTypes(*types); err != nil {
			return nil, fmt.Errorf("-csv-types: %w", err)
		}
	}
	if a.httpAddr == "" && a.format != ingest.CSV {
		for _, name := range []string{"csv-delimiter", "csv-types"} {
			if set[name] {
				return nil, fmt.Errorf("-%s needs -format csv (or -http, where a request may be CSV)", name)
			}
		}
	}
	if a.compression, err = parseCompression(*compression); err != nil {
		return nil, fmt.Errorf("-compression: %w", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"shutdown-timeout", a.shutdownTimeout}, {"ack-timeout", a.ackTimeout}} {
		if d.v <= 0 {
			return nil, fmt.Errorf("-%s %s: must be positive", d.name, d.v)
		}
	}
	if a.progressEvery < 0 {
		return nil, fmt.Errorf("-progress-interval %s: must not be negative", a.progressEvery)
	}
	if a.maxBody < 1 {
		return nil, fmt.Errorf("-http-max-body %d: must be at least 1", a.maxBody)
	}
	if a.maxRecordBytes < 1 {
		return nil, fmt.Errorf("-max-record-bytes %d: must be at least 1", a.maxRecordBytes)
	}
	if a.httpAddr != "" {
		if len(a.inputs) > 0 {
			return nil, fmt.Errorf("-http serves POST /ingest and reads no files: remove %q", a.inputs[0])
		}
		if set["source-name"] {
			return nil, errors.New("-source-name names a file or stdin: with -http, each request is named by its Idempotency-Key")
		}
	} else {
		for _, name := range []string{"ack-timeout", "http-max-body"} {
			if set[name] {
				return nil, fmt.Errorf("-%s needs -http", name)
			}
		}
		if len(a.inputs) == 0 {
			a.inputs = []string{"-"}
		}
	}
	stdins := 0
	for _, in := range a.inputs {
		if in == "-" {
			stdins++
		}
	}
	if stdins > 1 {
		return nil, errors.New(`"-" (stdin) is given more than once`)
	}
	if set["source-name"] {
		if a.sourceName == "" {
			return nil, errors.New("-source-name: empty")
		}
		if len(a.inputs) != 1 {
			return nil, fmt.Errorf("-source-name names the single input: %d are given", len(a.inputs))
		}
	}
	if a.reject != "" {
		for _, in := range a.inputs {
			if in != "-" && sameFile(in, a.reject) {
				return nil, fmt.Errorf("-reject %q is the input %q: it would be overwritten", a.reject, in)
			}
		}
	}
	return a, nil
}

// checkTopicName applies Kafka's rules for topic names.
func checkTopicName(t string) error {
	if t == "." || t == ".." {
		return errors.New("not a valid topic name")
	}
	if len(t) > 249 {
		return fmt.Errorf("%d characters, at most 249", len(t))
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q is not allowed in a topic name (letters, digits, '.', '_' and '-' only)", r)
		}
	}
	return nil
}

// splitBrokers splits "a:9092,b:9092".
func splitBrokers(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return nil, fmt.Errorf("%q is not host:port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no broker address")
	}
	return out, nil
}

func parseDelimiter(s string) (rune, error) {
	if s == "tab" || s == `\t` {
		return '\t', nil
	}
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || n != len(s) || r == utf8.RuneError {
		return 0, errors.New("want one character")
	}
	if r == '"' || r == '\r' || r == '\n' {
		return 0, errors.New("cannot be a quote or a line end")
	}
	return r, nil
}

func parseCompression(s string) (sarama.CompressionCodec, error) {
	switch s {
	case "none", "":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return 0, fmt.Errorf("%q: want none, gzip, snappy, lz4 or zstd", s)
}

// sameFile reports whether the paths name one existing file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

func cmdIngest(args []string, stdin io.Reader, stderr io.Writer) error {
	a, err := parseIngestArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
		return err
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker ingest:", err)
		return errUsage
	}
	// The first SIGTERM/SIGINT stops the reading (and the HTTP server);
	// a second one stops waiting for acknowledgements.
	stop, cancelStop := context.WithCancel(context.Background())
	defer cancelStop()
	abort, cancelAbort := context.WithCancel(context.Background())
	defer cancelAbort()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for _, cancel := range []context.CancelFunc{cancelStop, cancelAbort} {
			select {
			case <-sigs:
				cancel()
			case <-abort.Done():
				return
			}
		}
	}()
	return runIngest(stop, abort, a, stdin, stderr)
}

// ingestKafka builds the brokers and sarama configuration of worker
// ingest from -c's kafka section and -brokers.
func ingestKafka(a *ingestArgs) ([]string, *sarama.Config, error) {
	k := pipeline.KafkaConfig{ClientID: "eddy-ingest"}
	var brokers []string
	if a.brokers != "" {
		brokers, _ = splitBrokers(a.brokers) // checked by parseIngestArgs
	}
	if a.path != "" {
		var opts []pipeline.Option
		if brokers != nil {
			opts = append(opts, pipeline.WithBrokers(brokers...))
		}
		p, err := pipeline.Load(a.path, opts...)
		if err != nil {
			return nil, nil, err
		}
		k = p.Spec.Kafka
		brokers = k.Brokers
	}
	cfg, err := kafkaconf.New(&k)
	if err != nil {
		return nil, nil, err
	}
	cfg.Producer.MaxMessageBytes = a.maxRecordBytes
	cfg.Producer.Compression = a.compression
	return brokers, cfg, nil
}

// ingester runs one worker ingest.
type ingester struct {
	a       *ingestArgs
	c       ingest.Counters
	con     *console
	pub     *ingest.Publisher
	rejects *ingest.Rejects
	batches []*ingest.Batch
	// inputErrs counts the inputs not read to their end.
	inputErrs int
	// interrupted is where reading stopped on a signal ("" if it did not).
	interrupted string
}

// runIngest runs worker ingest until its inputs end or stop is done; then
// it waits for the acknowledgements of what it sent, for at most
// -shutdown-timeout after stop, and not after abort.
func runIngest(stop, abort context.Context, a *ingestArgs, stdin io.Reader, stderr io.Writer) error {
	start := time.Now()
	in := &ingester{a: a, con: newConsole(stderr)}
	brokers, cfg, err := ingestKafka(a)
	if err != nil {
		return err
	}
	in.pub, err = ingest.NewPublisher(brokers, cfg, a.topic, a.router, &in.c)
	if err != nil {
		return err
	}
	if a.reject != "" {
		f, err := os.Create(a.reject)
		if err != nil {
			_ = in.pub.Close(abort)
			return fmt.Errorf("-reject: %w", err)
		}
		defer f.Close()
		in.rejects = ingest.NewRejects(f)
	}
	var prog *ingestProgress
	if a.progress {
		prog = startProgress(&in.c, in.con, a.progressEvery)
	}

	// flush bounds the wait for acknowledgements: until abort, and at
	// most -shutdown-timeout once stop is done.
	flush, cancelFlush := context.WithCancel(abort)
	defer cancelFlush()
	go func() {
		select {
		case <-stop.Done():
		case <-flush.Done():
			return
		}
		t := time.NewTimer(a.shutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelFlush()
		case <-flush.Done():
		}
	}()

	var serveErr error
	if a.httpAddr != "" {
		serveErr = in.serve(stop, flush)
	} else {
		for i, name := range a.inputs {
			if stop.Err() != nil {
				in.interrupted = fmt.Sprintf("before %s (%d of %d inputs read)", name, i, len(a.inputs))
				break
			}
			in.readInput(stop, name, stdin)
			if in.interrupted != "" {
				break
			}
		}
	}
	if in.interrupted != "" {
		in.con.printf("worker ingest: interrupted: stopped reading %s; waiting up to %s for %s records in flight (again to give up)",
			in.interrupted, a.shutdownTimeout, group(in.c.Sent.Load()-in.c.Acked.Load()-in.c.Failed.Load()))
	}
	waitErr := in.wait(flush)
	closeCtx, cancelClose := context.WithTimeout(abort, 5*time.Second)
	defer cancelClose()
	_ = in.pub.Close(closeCtx)
	prog.end()
	rejErr := in.rejects.Flush()

	code := in.summary(time.Since(start), serveErr, waitErr, rejErr)
	if code != 0 {
		return exitStatus(code)
	}
	return nil
}

// wait waits for every batch's acknowledgements, or for ctx.
func (in *ingester) wait(ctx context.Context) error {
	for _, b := range in.batches {
		if err := b.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// summary prints the final line(s) and returns the exit status.
func (in *ingester) summary(took time.Duration, serveErr, waitErr, rejErr error) int {
	c := &in.c
	read, rejected := c.Read.Load(), c.Rejected.Load()
	sent, acked, failed := c.Sent.Load(), c.Acked.Load(), c.Failed.Load()
	unacked := sent - acked - failed
	rate := float64(read) / took.Seconds()
	what := "lines"
	if in.a.httpAddr != "" {
		what = "lines received"
	}
	in.con.printf("worker ingest: %s %s, %s rejected; %s records sent to %s, %s acknowledged, %s failed; %s (%s lines/s)",
		group(read), what, group(rejected), group(sent), in.a.topic, group(acked), group(failed),
		took.Round(time.Millisecond), group(int64(rate)))
	if muted := in.con.mutedCount(); muted > 0 {
		in.con.printf("worker ingest: %s more bad or undelivered records were not printed", group(int64(muted)))
	}
	code := 0
	fail := func(format string, args ...any) {
		in.con.printf("worker ingest: "+format, args...)
		code = 1
	}
	if unacked > 0 {
		fail("%s records unacknowledged: gave up waiting (%v)", group(unacked), waitErr)
	}
	if failed > 0 && in.a.httpAddr == "" { // with -http, each request's answer told its client
		fail("%s records not delivered", group(failed))
	}
	if in.inputErrs > 0 {
		fail("%d input(s) not read to the end", in.inputErrs)
	}
	if in.interrupted != "" {
		fail("interrupted: the input was not read to its end (run it again: records sent again carry the same eddy-id)")
	}
	if serveErr != nil {
		fail("%v", serveErr)
	}
	if rejErr != nil {
		fail("-reject %s: %v", in.a.reject, rejErr)
	}
	if code == 0 && rejected > 0 && in.a.httpAddr == "" && !in.a.allowRejects {
		in.con.printf("worker ingest: %s lines rejected (exit status %d; -allow-rejects accepts them)", group(rejected), exitRejected)
		code = exitRejected
	}
	return code
}

// readInput reads one input (a file, or stdin for "-") to its end or
// until stop, sending its good records and rejecting its bad ones.
func (in *ingester) readInput(stop context.Context, path string, stdin io.Reader) {
	name := in.a.sourceName
	var r io.Reader
	if path == "-" {
		r = stdin
		if name == "" {
			name = ingest.RunName("stdin")
			in.con.printf("worker ingest: stdin is named %s in eddy-ids, unique to this run (-source-name gives it a name a re-run keeps)", name)
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			in.con.printf("worker ingest: %v", err)
			in.inputErrs++
			return
		}
		defer f.Close()
		r = f
		if name == "" {
			name = filepath.Clean(path)
		}
	}
	b := ingest.NewBatch()
	b.OnFail = func(line int, err error) {
		in.con.lineMessage("%s:%d: not delivered: %v", name, line, err)
	}
	in.batches = append(in.batches, b)
	defer b.Seal()

	// The decoder runs in a goroutine of its own, which may block in a
	// read (of stdin) for ever: this one stops at once on stop. Records
	// go one by one through a buffered channel, so that each is sent as
	// soon as it is read (tail -f | worker ingest), and the decoder reads
	// ahead while this goroutine waits for the producer.
	decoded := make(chan decodedRecord, 512)
	quit := make(chan struct{})
	defer close(quit)
	go decodeInput(ingest.NewDecoder(r, in.a.format, in.a.csv), decoded, quit)

	var vars pipeline.Vars
	vars.Topic = in.a.topic
	last := 0
	for {
		var d decodedRecord
		select {
		case <-stop.Done():
			in.interrupted = fmt.Sprintf("after %s:%d", name, last)
			return
		case d = <-decoded:
		}
		if d.err != nil {
			if !errors.Is(d.err, io.EOF) {
				var le *ingest.LineError
				if errors.As(d.err, &le) {
					in.con.printf("%s:%d: %v", name, le.Line, le.Err)
				} else {
					in.con.printf("worker ingest: %s: %v", name, d.err)
				}
				in.inputErrs++
			}
			return
		}
		rec := &d.rec
		in.c.Read.Add(1)
		var key []byte
		if rec.Err == nil && in.a.key != nil {
			vars.Event = rec.Event
			k, err := in.a.key.Eval(&vars)
			rec.Err = err
			key = []byte(k)
		}
		if rec.Err == nil {
			err := in.pub.Send(stop, b, rec.Line, key, ingest.ID(name, rec.Line), rec.Value)
			switch {
			case errors.Is(err, ingest.ErrTooLarge):
				rec.Err = err
			case err != nil:
				in.interrupted = fmt.Sprintf("at %s:%d", name, rec.Line)
				return
			}
		}
		if rec.Err != nil {
			in.reject(name, rec)
		}
		last = rec.Line
	}
}

func (in *ingester) reject(source string, rec *ingest.Record) {
	in.c.Rejected.Add(1)
	in.con.lineMessage("%s:%d: %v", source, rec.Line, rec.Err)
	if err := in.rejects.Write(source, rec); err != nil {
		in.con.lineMessage("worker ingest: -reject %s: %v", in.a.reject, err)
	}
}

// decodedRecord is a record of an input, or the error that ended it
// (io.EOF at its end).
type decodedRecord struct {
	rec ingest.Record
	err error
}

// decodeInput decodes records into out until the input ends or quit is
// closed.
func decodeInput(dec *ingest.Decoder, out chan<- decodedRecord, quit <-chan struct{}) {
	for {
		rec, err := dec.Next()
		select {
		case out <- decodedRecord{rec: rec, err: err}:
		case <-quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// serve runs the HTTP endpoint until stop, then shuts it down: the
// requests in progress finish (each waits for its acknowledgements, at
// most -ack-timeout), until flush ends.
func (in *ingester) serve(stop, flush context.Context) error {
	ln, err := net.Listen("tcp", in.a.httpAddr)
	if err != nil {
		return fmt.Errorf("-http %s: %w", in.a.httpAddr, err)
	}
	h := ingest.NewHandler(in.pub, ingest.HTTPConfig{
		Key: in.a.key, Format: in.a.format, CSV: in.a.csv, Counters: &in.c, Rejects: in.rejects,
		AckTimeout: in.a.ackTimeout, MaxBody: in.a.maxBody,
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	in.con.printf("worker ingest: serving POST http://%s%s into topic %s (%d partitions, %s)",
		ln.Addr(), ingest.PathIngest, in.a.topic, in.pub.Partitions(), in.a.router)
	select {
	case err := <-errc:
		return fmt.Errorf("-http %s: %w", in.a.httpAddr, err)
	case <-stop.Done():
	}
	in.con.printf("worker ingest: shutting down: finishing the requests in progress")
	if err := srv.Shutdown(flush); err != nil {
		return fmt.Errorf("shutdown: requests still in progress: %w", err)
	}
	return nil
}
