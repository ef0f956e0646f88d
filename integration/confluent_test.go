package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// The wire format proved with an independent client: Confluent's own
// Python serializers (confluent-kafka, in the venv of make services)
// write the inputs, eddy reads them, and Confluent's deserializers read
// what eddy wrote, against the real registry and Kafka.

// confluentPy runs integration/confluent/confluent.py with args and
// returns its standard output.
func confluentPy(t *testing.T, args ...string) string {
	t.Helper()
	py := testenv.ConfluentPython(t)
	cmd := exec.Command(py, append([]string{"confluent/confluent.py"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("confluent.py %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func writeLines(t *testing.T, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfluentAvroInEddyAvroOut: orders serialized by Confluent's
// AvroSerializer (a decimal, a timestamp-millis, a nullable union) are
// read by eddy and written as Avro lines, which Confluent's
// AvroDeserializer reads back with the values eddy computed.
func TestConfluentAvroInEddyAvroOut(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	url := testenv.RegistryURL(t)
	in, out, dlq := testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 1)
	const n = 60
	var lines []string
	base := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for i := range n {
		note := "null"
		if i%3 == 0 {
			note = `"gift"`
		}
		lines = append(lines, fmt.Sprintf(`{"key":"u%d","value":{"id":"o-%d","user":"u%d","qty":%d,"price":"%d.%02d","at":%q,"note":%s}}`,
			i%5, i, i%5, 1+i%3, 1+i%9, i%100, base.Add(time.Duration(i)*1500*time.Millisecond).Format(time.RFC3339Nano), note))
	}
	confluentPy(t, "produce", "--brokers", brokers[0], "--registry", url, "--topic", in, "--format", "avro",
		"--schema", "confluent/testdata/order.avsc", "--input", writeLines(t, lines))

	schemaFile := filepath.Join(t.TempDir(), "line.avsc")
	if err := os.WriteFile(schemaFile, []byte(lineAvro), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadPipeline(t, avroPipeline, testenv.Unique("confluent"), url, in, dlq, out, schemaFile)
	w, stop := startWorker(t, "w", p, brokers, testenv.Group(t), memory.New())
	waitFor(t, 60*time.Second, "every order", func() bool { return w.Stats().Out >= n })
	stop()

	got := confluentPy(t, "consume", "--brokers", brokers[0], "--registry", url, "--topic", out, "--format", "avro",
		"--count", fmt.Sprint(n), "--timeout", "60")
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		var rec struct {
			Key   string
			Value map[string]any
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		v := rec.Value
		var i int
		if _, err := fmt.Sscanf(v["id"].(string), "o-%d", &i); err != nil {
			t.Fatalf("output %v", v)
		}
		seen[v["id"].(string)] = true
		price := float64(1+i%9) + float64(i%100)/100
		wantTotal := price * float64(1+i%3)
		if total, _ := v["total"].(float64); total-wantTotal > 1e-9 || wantTotal-total > 1e-9 {
			t.Errorf("%s: total %v, want %v", v["id"], v["total"], wantTotal)
		}
		at, err := time.Parse(time.RFC3339Nano, v["at"].(string))
		if want := base.Add(time.Duration(i) * 1500 * time.Millisecond); err != nil || !at.Equal(want) {
			t.Errorf("%s: at %v, want %v", v["id"], v["at"], want)
		}
		if wantNote := any(nil); i%3 == 0 && v["note"] != "gift" || i%3 != 0 && v["note"] != wantNote {
			t.Errorf("%s: note %v", v["id"], v["note"])
		}
		if v["user"] != fmt.Sprintf("u%d", i%5) || rec.Key != v["user"] {
			t.Errorf("%s: user %v key %q", v["id"], v["user"], rec.Key)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct orders read back, want %d", len(seen), n)
	}
}

const protoPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
schema_registry: {url: %q}
source:
  topics: [%s]
  format: protobuf
  event_id: event.view_id
  event_time: event.at
flush: {max_messages: 100, interval: 50ms}
steps:
  - map:
      view: event.view_id
      user: event.user_id
      ms: event.ms * 2
      os: 'has(event.device) ? event.device.os : "unknown"'
      tags: event.tags
      at: event.at
sink: {topic: %s}
`

// TestConfluentProtobufInEddy: views serialized by Confluent's
// ProtobufSerializer (a nested message, a repeated field, a
// google.protobuf.Timestamp import, message indexes) are read by eddy,
// each field as the value model says.
func TestConfluentProtobufInEddy(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	url := testenv.RegistryURL(t)
	in, out := testenv.Topic(t, brokers, 2), testenv.Topic(t, brokers, 2)
	const n = 40
	base := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	var lines []string
	for i := range n {
		device := ""
		if i%4 != 0 {
			device = fmt.Sprintf(`,"device":{"os":"os%d","width":%d}`, i%3, 300+i)
		}
		lines = append(lines, fmt.Sprintf(`{"key":"u%d","value":{"view_id":"v%d","user_id":"u%d","ms":"%d","at":%q,"tags":["t%d","x"]%s}}`,
			i%4, i, i%4, 10*i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i, device))
	}
	confluentPy(t, "produce", "--brokers", brokers[0], "--registry", url, "--topic", in, "--format", "protobuf",
		"--schema", "confluent/testdata/view.proto", "--input", writeLines(t, lines))

	p := loadPipeline(t, protoPipeline, testenv.Unique("confluentpb"), url, in, out)
	w, stop := startWorker(t, "w", p, brokers, testenv.Group(t), memory.New())
	waitFor(t, 60*time.Second, "every view", func() bool { return w.Stats().Out >= n })
	stop()
	if w.Stats().Poison != 0 {
		t.Fatalf("%d poison events", w.Stats().Poison)
	}
	msgs := testenv.ReadCommitted(t, brokers, out, 30*time.Second)
	if len(msgs) != n {
		t.Fatalf("%d outputs, want %d", len(msgs), n)
	}
	for _, m := range msgs {
		var v map[string]any
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatal(err)
		}
		var i int
		fmt.Sscanf(v["view"].(string), "v%d", &i)
		os := "unknown"
		if i%4 != 0 {
			os = fmt.Sprintf("os%d", i%3)
		}
		want := map[string]any{"view": fmt.Sprintf("v%d", i), "user": fmt.Sprintf("u%d", i%4), "ms": float64(20 * i), "os": os,
			"tags": []any{fmt.Sprintf("t%d", i), "x"}, "at": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)}
		if fmt.Sprint(v) != fmt.Sprint(want) {
			t.Errorf("output %v, want %v", v, want)
		}
	}
}
