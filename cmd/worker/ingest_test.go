package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/internal/ingest"
	"github.com/eddy-streams/eddy/route"
)

// The tests of worker ingest that need no Kafka: flags. The Kafka tests
// are in ingest_kafka_test.go; parsing, line numbers, IDs and the HTTP
// answers are tested in internal/ingest.

func TestIngestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "orders.jsonl")
	if err := os.WriteFile(in, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"ingest", "-brokers", "127.0.0.1:9092", "-topic", "orders"}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no topic", []string{"ingest", "-brokers", "b:9092"}, "worker ingest: -topic is required"},
		{"no brokers", []string{"ingest", "-topic", "t"}, "-brokers or -c pipeline.yaml is required"},
		{"bad topic name", []string{"ingest", "-brokers", "b:9092", "-topic", "a/b"}, `-topic "a/b": '/' is not allowed in a topic name`},
		{"broker without a port", []string{"ingest", "-brokers", "localhost", "-topic", "t"}, `-brokers "localhost": "localhost" is not host:port`},
		{"unknown format", append(base, "-format", "xml"), `-format: "xml" is not a format: want json or csv`},
		{"key syntax error", append(base, "-key", "event."), `-key "event.": Syntax error`},
		{"key of the wrong type", append(base, "-key", "event.a > 1"), `-key "event.a > 1": "event.a > 1" has type bool, want string or int`},
		{"empty key", append(base, "-key", " "), `-key " ": empty expression`},
		{"unknown router", append(base, "-router", "random"), `-router: unknown policy "random" (want one of hash, consistent-hash, round-robin, multicast)`},
		{"csv flags without csv", append(base, "-csv-types", "n:int"), "-csv-types needs -format csv"},
		{"bad csv types", append(base, "-format", "csv", "-csv-types", "n:float"), `-csv-types: column "n": "float" is not a type`},
		{"bad delimiter", append(base, "-format", "csv", "-csv-delimiter", ";;"), `-csv-delimiter ";;": want one character`},
		{"quote delimiter", append(base, "-format", "csv", "-csv-delimiter", `"`), "cannot be a quote or a line end"},
		{"bad compression", append(base, "-compression", "brotli"), `-compression: "brotli": want none, gzip, snappy, lz4 or zstd`},
		{"zero shutdown timeout", append(base, "-shutdown-timeout", "0s"), "-shutdown-timeout 0s: must be positive"},
		{"http with files", append(base, "-http", ":0", in), "-http serves POST /ingest and reads no files: remove"},
		{"http with a source name", append(base, "-http", ":0", "-source-name", "x"), "-source-name names a file or stdin"},
		{"ack timeout without http", append(base, "-ack-timeout", "1s"), "-ack-timeout needs -http"},
		{"source name for two inputs", append(base, "-source-name", "x", in, in), "-source-name names the single input: 2 are given"},
		{"stdin twice", append(base, "-", "-"), `"-" (stdin) is given more than once`},
		{"reject file is the input", append(base, "-reject", in, in), "is the input"},
		{"max record bytes", append(base, "-max-record-bytes", "0"), "-max-record-bytes 0: must be at least 1"},
		{"unknown flag", append(base, "-nope"), "flag provided but not defined: -nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runWorker(c.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, c.want)
			}
		})
	}
	// The input was not touched by the refused -reject.
	if b, _ := os.ReadFile(in); string(b) != "{}\n" {
		t.Errorf("input overwritten: %q", b)
	}
}

func TestIngestFlagDefaults(t *testing.T) {
	a, err := parseIngestArgs([]string{"-brokers", "a:1,b:2", "-topic", "t"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if a.format != ingest.JSON || a.router != route.Hash || a.key != nil || len(a.inputs) != 1 || a.inputs[0] != "-" ||
		a.allowRejects || !a.progress || a.maxRecordBytes != 1000000 {
		t.Errorf("defaults %+v", a)
	}
	a, err = parseIngestArgs([]string{"-brokers", "a:1", "-topic", "t", "-format", "CSV", "-csv-delimiter", "tab", "-key", "event.user", "x.csv", "-"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if a.format != ingest.CSV || a.csv.Comma != '\t' || a.key.String() != "event.user" || strings.Join(a.inputs, " ") != "x.csv -" {
		t.Errorf("parsed %+v", a)
	}
}

func TestIngestHelp(t *testing.T) {
	code, stdout, _ := runWorker("ingest", "-h")
	if code != 0 || !strings.Contains(stdout, "exit status: 0 every record acknowledged") || !strings.Contains(stdout, "-allow-rejects") {
		t.Errorf("exit %d, help %q", code, stdout)
	}
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}
