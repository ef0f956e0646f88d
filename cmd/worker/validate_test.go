package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const validPipeline = `name: orders
kafka: {brokers: ["127.0.0.1:9092"]}
source: {topics: [orders]}
steps:
  - filter: event.qty > 0
sink: {topic: orders-out}
`

const invalidPipeline = `name: orders
kafka: {brokers: ["127.0.0.1:9092"]}
source: {topics: [orders]}
steps:
  - filter: event.qty >
sink: {topic: orders-out}
`

// TestValidatePartitionsWarning checks `worker validate --partitions N
// --max-replicas M`: more replicas than partitions is a warning on stderr
// (exit 0), not an error; a lone or non-positive flag is a usage error.
func TestValidatePartitionsWarning(t *testing.T) {
	valid, invalid := writePipeline(t, validPipeline), writePipeline(t, invalidPipeline)
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		ok         bool     // stdout says the file is ok
		stderrHas  []string // all of these in stderr
		quietError bool     // stderr must be empty
	}{
		{"no flags", []string{"-c", valid}, 0, true, nil, true},
		{"replicas beyond partitions", []string{"-c", valid, "--partitions", "12", "--max-replicas", "16"}, 0, true,
			[]string{"warning", "-max-replicas 16 exceeds -partitions 12", `"eddy-orders"`, "4 of 16 replicas would sit idle", "<= 12"}, false},
		{"single-dash flags", []string{"-c", valid, "-partitions", "6", "-max-replicas", "7"}, 0, true,
			[]string{"warning", "1 of 7 replicas would sit idle"}, false},
		{"as many replicas as partitions", []string{"-c", valid, "--partitions", "12", "--max-replicas", "12"}, 0, true, nil, true},
		{"fewer replicas", []string{"-c", valid, "--partitions", "12", "--max-replicas", "4"}, 0, true, nil, true},
		{"max-replicas alone", []string{"-c", valid, "--max-replicas", "4"}, 2, false, []string{"-partitions and -max-replicas go together"}, false},
		{"partitions alone", []string{"-c", valid, "--partitions", "4"}, 2, false, []string{"go together"}, false},
		{"zero partitions", []string{"-c", valid, "--partitions", "0", "--max-replicas", "3"}, 2, false, []string{"-partitions 0: must be at least 1"}, false},
		{"negative replicas", []string{"-c", valid, "--partitions", "3", "--max-replicas", "-1"}, 2, false, []string{"-max-replicas -1: must be at least 1"}, false},
		{"not a number", []string{"-c", valid, "--partitions", "many", "--max-replicas", "3"}, 2, false, []string{"invalid value"}, false},
		{"invalid pipeline", []string{"-c", invalid, "--partitions", "2", "--max-replicas", "3"}, 1, false, []string{"steps[0].filter", "1 error(s)"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"validate"}, tc.args...), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d; want %d (stdout %q, stderr %q)", code, tc.code, stdout.String(), stderr.String())
			}
			if got := strings.Contains(stdout.String(), ": ok (pipeline"); got != tc.ok {
				t.Errorf("stdout %q; ok reported %v, want %v", stdout.String(), got, tc.ok)
			}
			for _, want := range tc.stderrHas {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q lacks %q", stderr.String(), want)
				}
			}
			if tc.quietError && stderr.Len() > 0 {
				t.Errorf("stderr %q; want nothing", stderr.String())
			}
			if tc.code != 0 && strings.Contains(stderr.String(), "warning") {
				t.Errorf("a failed validation also warned: %q", stderr.String())
			}
		})
	}
}

// TestValidateKubernetesExample runs the check the HPA's comment suggests
// on the pipeline the Kubernetes manifests ship, with the variables the
// Deployment sets: the file is valid and 12 replicas for 12 partitions
// draw no warning.
func TestValidateKubernetesExample(t *testing.T) {
	for k, v := range map[string]string{
		"KAFKA_BROKERS": "kafka:9093", "KAFKA_USERNAME": "eddy", "KAFKA_PASSWORD": "pw",
		"REDIS_ADDR": "redis:6379", "REDIS_PASSWORD": "pw",
	} {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"validate", "-c", "../../deploy/k8s/base/pipeline.yaml", "--partitions", "12", "--max-replicas", "12"}, &stdout, &stderr)
	if code != 0 || stderr.Len() > 0 || !strings.Contains(stdout.String(), `ok (pipeline "orders"`) {
		t.Errorf("exit %d, stdout %q, stderr %q; want ok and no warning", code, stdout.String(), stderr.String())
	}
}

// TestValidateShowsSubTopologies: a pipeline with a repartition step is
// listed as its sub-topologies, with the internal topic between them.
func TestValidateShowsSubTopologies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.yaml")
	src := `name: shop
kafka: {brokers: [localhost:9092]}
source: {topics: [orders], event_time: event.ts}
steps:
  - filter: event.qty > 0
  - repartition: {name: by-region, key: event.region, partitions: 8}
  - aggregate: {key: event.region, window: {tumbling: 1m}, values: {n: count()}}
sink: {topic: totals, router: consistent-hash}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-c", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		"2 sub-topologies, one consumer group (eddy-shop):",
		"  0: orders -> steps[0] filter, steps[1] repartition -> internal topic eddy-shop-by-region (8 partitions, router hash, read deduplicated)",
		"  1: eddy-shop-by-region -> steps[2] aggregate -> sink totals (router consistent-hash)",
	} {
		if !strings.Contains(stdout.String(), want+"\n") {
			t.Errorf("stdout %q lacks the line %q", stdout.String(), want)
		}
	}
}

// TestValidateExamples runs `worker validate` on the cascade example's
// stages: both files are valid as they are.
func TestValidateExamples(t *testing.T) {
	for _, f := range []string{"enrich.yaml", "aggregate.yaml"} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"validate", "-c", "../../examples/cascade/" + f}, &stdout, &stderr)
		if code != 0 || stderr.Len() > 0 || !strings.Contains(stdout.String(), ": ok (pipeline") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want ok", f, code, stdout.String(), stderr.String())
		}
	}
}

// TestValidateKubernetesCascade runs `worker validate --partitions N
// --max-replicas M` on each stage of the Kubernetes cascade overlay, with N
// the source partitions its HPA documents (annotation) and M the HPA's
// maxReplicas, and the variables the Deployment sets: each file is valid
// and no replica would sit idle.
func TestValidateKubernetesCascade(t *testing.T) {
	for k, v := range map[string]string{
		"KAFKA_BROKERS": "kafka:9093", "KAFKA_USERNAME": "eddy", "KAFKA_PASSWORD": "pw",
		"REDIS_ADDR": "redis:6379", "REDIS_PASSWORD": "pw",
	} {
		t.Setenv(k, v)
	}
	for _, stage := range []string{"enrich", "aggregate"} {
		t.Run(stage, func(t *testing.T) {
			dir := "../../deploy/k8s/overlays/cascade/" + stage
			b, err := os.ReadFile(dir + "/hpa.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var hpa struct {
				Metadata struct {
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"metadata"`
				Spec struct {
					MaxReplicas int `yaml:"maxReplicas"`
				} `yaml:"spec"`
			}
			if err := yaml.Unmarshal(b, &hpa); err != nil {
				t.Fatal(err)
			}
			parts := hpa.Metadata.Annotations["eddy-streams.io/source-partitions"]
			if parts == "" || hpa.Spec.MaxReplicas < 1 {
				t.Fatalf("hpa.yaml: partitions annotation %q, maxReplicas %d", parts, hpa.Spec.MaxReplicas)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"validate", "-c", dir + "/pipeline.yaml", "--partitions", parts, "--max-replicas", strconv.Itoa(hpa.Spec.MaxReplicas)}, &stdout, &stderr)
			if code != 0 || stderr.Len() > 0 || !strings.Contains(stdout.String(), `ok (pipeline "cascade-`+stage+`"`) {
				t.Errorf("--partitions %s --max-replicas %d: exit %d, stdout %q, stderr %q; want ok and no warning",
					parts, hpa.Spec.MaxReplicas, code, stdout.String(), stderr.String())
			}
		})
	}
}

// TestValidateFiles checks `worker validate` with files as arguments (as
// well as -c): every file is checked and every error of each is listed,
// the exit status is 1 when one is invalid and 2 for a usage mistake, and
// flags may come after the files.
func TestValidateFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.yaml", validPipeline)
	bad := write("bad.yaml", invalidPipeline)
	twice := write("twice.yaml", "name: t\nkafka: {brokers: [k:1], balance: fastest}\nsource: {topics: [in]}\nsink: {topic: out, colour: red}\n")
	missing := filepath.Join(dir, "missing.yaml")
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		stdoutHas []string
		stderrHas []string
	}{
		{"one file", []string{good}, 0, []string{good + `: ok (pipeline "orders", 1 steps)`}, nil},
		{"-c and a file", []string{"-c", good, twice}, 1, []string{good + ": ok"},
			[]string{twice + ":2:34: kafka.balance:", twice + ":4:20: sink.colour:", twice + ": 2 error(s)"}},
		{"invalid first, all checked", []string{bad, twice, good}, 1, []string{good + ": ok"},
			[]string{bad + ":5:24: steps[0].filter:", bad + ": 1 error(s)", twice + ": 2 error(s)"}},
		{"missing file", []string{missing, good}, 1, []string{good + ": ok"}, []string{"missing.yaml: no such file or directory"}},
		{"flags after the files", []string{good, good, "--partitions", "1", "--max-replicas", "2"}, 0, []string{good + ": ok"},
			[]string{"warning: -max-replicas 2 exceeds -partitions 1"}},
		{"no file", nil, 2, nil, []string{"a pipeline file is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"validate"}, tc.args...), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d; want %d (stdout %q, stderr %q)", code, tc.code, stdout.String(), stderr.String())
			}
			for _, want := range tc.stdoutHas {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout %q lacks %q", stdout.String(), want)
				}
			}
			for _, want := range tc.stderrHas {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q lacks %q", stderr.String(), want)
				}
			}
		})
	}
}

// TestValidateJSON checks `worker validate --json`: one JSON document on
// stdout with, per file, ok or every error with its file, line, column,
// field and message; nothing on stderr; exit 1 when a file is invalid.
func TestValidateJSON(t *testing.T) {
	good := writePipeline(t, validPipeline)
	bad := writePipeline(t, "name: t\nkafka: {brokers: [k:1], balance: fastest}\nsource: {topics: [in]}\nsink: {topic: out, colour: red}\n")
	syntax := writePipeline(t, "name: t\nkafka: {brokers: [k:1]\n")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	var stdout, stderr bytes.Buffer
	code := run([]string{"validate", "--json", good, bad, syntax, missing}, &stdout, &stderr)
	if code != 1 || stderr.Len() > 0 {
		t.Errorf("exit %d, stderr %q; want 1 and nothing", code, stderr.String())
	}
	var got struct {
		OK    bool `json:"ok"`
		Files []struct {
			File     string `json:"file"`
			OK       bool   `json:"ok"`
			Pipeline string `json:"pipeline"`
			Errors   []struct {
				File    string `json:"file"`
				Line    int    `json:"line"`
				Column  int    `json:"column"`
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"errors"`
		} `json:"files"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
	}
	if got.OK || len(got.Files) != 4 {
		t.Fatalf("ok %v, %d files; want false, 4:\n%s", got.OK, len(got.Files), stdout.String())
	}
	if f := got.Files[0]; f.File != good || !f.OK || f.Pipeline != "orders" || len(f.Errors) != 0 {
		t.Errorf("valid file: %+v", f)
	}
	f := got.Files[1]
	if f.File != bad || f.OK || len(f.Errors) != 2 {
		t.Fatalf("invalid file: %+v; want 2 errors", f)
	}
	if e := f.Errors[0]; e.File != bad || e.Line != 2 || e.Column != 34 || e.Field != "kafka.balance" || !strings.Contains(e.Message, `"fastest" is not one of`) {
		t.Errorf("first error %+v", e)
	}
	if e := f.Errors[1]; e.Line != 4 || e.Column != 20 || e.Field != "sink.colour" || !strings.Contains(e.Message, `unknown field "colour"`) {
		t.Errorf("second error %+v", e)
	}
	if f := got.Files[2]; f.OK || len(f.Errors) != 1 || f.Errors[0].Line == 0 || f.Errors[0].Field != "" || !strings.Contains(f.Errors[0].Message, "invalid YAML") {
		t.Errorf("syntax error: %+v", f)
	}
	if f := got.Files[3]; f.OK || len(f.Errors) != 1 || f.Errors[0].File != missing || f.Errors[0].Line != 0 || !strings.Contains(f.Errors[0].Message, "no such file") {
		t.Errorf("missing file: %+v", f)
	}

	stdout.Reset()
	if code := run([]string{"validate", "-json", "-c", good}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), `"ok": true`) {
		t.Errorf("valid file: exit %d, stdout %s", code, stdout.String())
	}
}
