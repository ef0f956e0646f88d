package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

const devInputPipeline = `
name: my
source:
  topics: [clicks]
  event_time: event.ts
dead_letter: {topic: my-dlq}
steps:
  - aggregate:
      name: per_user
      key: event.user
      window: {tumbling: 1m}
      values: {clicks: count()}
      late: {topic: my-late}
sink: {topic: counts}
`

// TestDevRunsYourPipelineOnYourEvents runs worker dev on a pipeline of
// one's own with a file of events, as JSON lines keyed by -key and as
// records (-records): every result is printed, the dead letter and the
// late event are shown with their reasons, and at the end of the file
// the last windows close and dev stops by itself.
func TestDevRunsYourPipelineOnYourEvents(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "my.yaml")
	write := func(name, s string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("my.yaml", devInputPipeline)
	// One partition: ann's third click (00:00:30) comes after her
	// 00:02:05 one has closed the first minute, so it is late.
	events := write("events.jsonl", `{"user":"ann","ts":1704067201000}
{"user":"bob","ts":1704067202000}

not json
{"user":"ann","ts":1704067325000}
{"user":"ann","ts":1704067230000}
`)
	records := write("records.jsonl", `{"key":"ann","value":{"user":"ann","ts":1704067201000}}
{"key":"bob","value":{"user":"bob","ts":1704067202000}}
{"value":"not json"}
{"key":"ann","value":{"user":"ann","ts":1704067325000}}
{"key":"ann","value":{"user":"ann","ts":1704067230000}}
{"kye":"typo"}
`)
	for _, tc := range []struct {
		name string
		args []string
		late string // the late event as printed
		skip string // what the input's bad line prints
	}{
		{"lines", []string{"-input", events, "-key", "event.user"}, `{"user":"ann","ts":1704067230000}`, ""},
		{"records", []string{"-input", records, "-records"}, `{"ts":1704067230000,"user":"ann"}`,
			`records.jsonl:6: not a record, skipped: line 1: unknown field "kye" (known: topic, partition, key, value, time, headers, error)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr syncBuffer
			o, err := parseDev(append([]string{"-c", pipe, "-partitions", "1"}, tc.args...), &stderr)
			if err != nil {
				t.Fatalf("flags: %v (%s)", err, stderr.String())
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out syncBuffer
			if err := dev(ctx, o, &out, zap.NewNop()); err != nil {
				t.Fatalf("dev: %v\n%s", err, out.String())
			}
			if ctx.Err() != nil {
				t.Fatal("dev did not stop at the end of its input")
			}
			stdout := out.String()
			for _, want := range []string{
				`eddy dev: pipeline "my" on the events of ` + tc.args[1],
				`→ key=ann  {"clicks":1,"key":"ann","window_end":"2024-01-01T00:01:00Z","window_start":"2024-01-01T00:00:00Z"}`,
				`→ key=bob  {"clicks":1,"key":"bob","window_end":"2024-01-01T00:01:00Z","window_start":"2024-01-01T00:00:00Z"}`,
				`→ key=ann  {"clicks":1,"key":"ann","window_end":"2024-01-01T00:03:00Z","window_start":"2024-01-01T00:02:00Z"}`,
				`✗ dead letter key=  not json  (decode json: value is not an object`,
				`✗ late key=ann  ` + tc.late + `  (late: event time 2024-01-01T00:00:30Z is behind the partition's watermark 2024-01-01T00:02:05Z`,
				"eddy dev: done: 5 events in, 3 out, 0 filtered, 0 duplicates dropped, 1 late, 1 poison (1 dead-lettered)",
				tc.skip,
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if n := strings.Count(stdout, "→ "); n != 3 {
				t.Errorf("%d results printed, want 3:\n%s", n, stdout)
			}
		})
	}
}

// TestDevNeedsEventsForYourPipeline: a pipeline of one's own without
// -input has no events to run on, and an example's generator that writes
// to another topic than it reads is refused rather than left to feed
// nothing.
func TestDevNeedsEventsForYourPipeline(t *testing.T) {
	pipe := filepath.Join(t.TempDir(), "my.yaml")
	if err := os.WriteFile(pipe, []byte(devInputPipeline), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", pipe}, "no events for " + pipe + ": give -input events.jsonl"},
		{[]string{"-c", pipe, "-generator", "orders"}, "-generator orders writes to [orders], which " + pipe + " does not read: give -input"},
	} {
		var stderr syncBuffer
		o, err := parseDev(tc.args, &stderr)
		if err != nil {
			t.Fatalf("flags: %v (%s)", err, stderr.String())
		}
		var out syncBuffer
		err = dev(context.Background(), o, &out, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dev %v: %v; want %q", tc.args, err, tc.want)
		}
	}
	var stderr syncBuffer
	if _, err := parseDev([]string{"-c", pipe, "-input", "-", "-generator", "orders"}, &stderr); err == nil ||
		!strings.Contains(stderr.String(), "-input and -generator/-events do not go together") {
		t.Errorf("-input with -generator: %v %q; want a usage error", err, stderr.String())
	}
}

// TestDevRunsAnAvroPipelineOnJSONEvents: worker dev on the avro example
// with -schema encodes the JSON events with the source's schema for an
// in-process registry, runs the pipeline (which decodes them by schema
// ID) and prints the totals it wrote in Avro; a line not in the wire
// format is a dead letter naming it.
func TestDevRunsAnAvroPipelineOnJSONEvents(t *testing.T) {
	events := filepath.Join(t.TempDir(), "orders.jsonl")
	if err := os.WriteFile(events, []byte(`{"order_id":"o1","store":"berlin","amount":12.5,"at":"2024-03-01T10:00:10Z"}
{"order_id":"o2","store":"berlin","amount":2.25,"at":"2024-03-01T10:00:20Z","coupon":"X"}
{"order_id":"o3","store":"paris","amount":1,"at":"2024-03-01T10:00:30Z"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	o, err := parseDev([]string{"-c", "../../examples/avro/pipeline.yaml", "-partitions", "1", "-input", events, "-key", "event.store",
		"-schema", "../../examples/avro/order.avsc"}, &stderr)
	if err != nil {
		t.Fatalf("flags: %v (%s)", err, stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out syncBuffer
	if err := dev(ctx, o, &out, zap.NewNop()); err != nil {
		t.Fatalf("dev: %v\n%s", err, out.String())
	}
	stdout := out.String()
	for _, want := range []string{
		`→ key=berlin  {"key":"berlin","orders":2,"revenue":14.75,"window_end":"2024-03-01T10:01:00Z","window_start":"2024-03-01T10:00:00Z","with_coupon":1}`,
		`→ key=paris  {"key":"paris","orders":1,"revenue":1.0,"window_end":"2024-03-01T10:01:00Z","window_start":"2024-03-01T10:00:00Z","with_coupon":0}`,
		"eddy dev: done: 3 events in, 2 out",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	// Without -schema the events cannot be encoded: dev says what to give.
	o, _ = parseDev([]string{"-c", "../../examples/avro/pipeline.yaml", "-partitions", "1", "-input", events}, &stderr)
	out = syncBuffer{}
	err = dev(ctx, o, &out, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "topic avro-orders is read as avro: give the schema") {
		t.Errorf("dev without -schema: %v, want the missing schema named", err)
	}
}
