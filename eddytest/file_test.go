package eddytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/eddy-streams/eddy/pipeline"
)

func TestExampleOrders(t *testing.T) {
	TestFile(t, "../examples/orders/pipeline_test.yaml", FileConfig{})
}

// TestValueKeepsDoubles checks that a YAML float is sent as a JSON double
// and a YAML int as a JSON int: the pipeline reads 2.0 as a double and 2
// as an int, and CEL does not mix them (int * double is an error).
func TestValueKeepsDoubles(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("{d: 2.0, e: 1e3, f: 1.5, big: 1.0e+21, i: 2, h: 0x10, l: [3.0, 3]}"), &n); err != nil {
		t.Fatal(err)
	}
	b, raw, err := value(n.Content[0])
	if err != nil || raw {
		t.Fatalf("value: %s, raw %v, %v", b, raw, err)
	}
	ev, err := pipeline.DecodeJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := map[string]any{"d": 2.0, "e": 1000.0, "f": 1.5, "big": 1e21, "i": int64(2), "h": int64(16)}
	for k, w := range want {
		if ev[k] != w {
			t.Errorf("%s: %s is %T %v, want %T %v (JSON sent: %s)", k, k, ev[k], ev[k], w, w, b)
		}
	}
	if l, _ := ev["l"].([]any); len(l) != 2 || l[0] != 3.0 || l[1] != int64(3) {
		t.Errorf("l: %#v, want [3.0 (a double), 3 (an int)] (JSON sent: %s)", ev["l"], b)
	}
}

// TestFileEnv loads a pipeline whose state DSN names a variable that is
// not set: a test replaces the state by memory, and the file's env gives
// the variable a value, so that the test runs in any shell.
func TestFileEnv(t *testing.T) {
	dir := t.TempDir()
	pipe := `
name: env
source: {topics: [in]}
state: {backend: singlestore, singlestore: {dsn: "${EDDYTEST_UNSET_DSN}"}}
sink: {topic: "${EDDYTEST_SINK:-out}"}
`
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(pipe), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := "tests: [{name: a, input: [{value: {}}]}]\n"
	f, err := ParseFile(filepath.Join(dir, "p_test.yaml"), []byte(tests))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(FileConfig{}); err == nil || !strings.Contains(err.Error(), "EDDYTEST_UNSET_DSN is not set") {
		t.Fatalf("without env: %v, want EDDYTEST_UNSET_DSN is not set", err)
	}
	f, err = ParseFile(filepath.Join(dir, "p_test.yaml"), []byte("env: {EDDYTEST_UNSET_DSN: 'u:p@tcp(unused:3306)/unused', EDDYTEST_SINK: sunk}\n"+tests))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDDYTEST_SINK", "from-the-shell")
	ps, err := f.Load(FileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ps[0].Sink.Topics[0]; got != "sunk" {
		t.Errorf("sink topic %q, want sunk: the file's env over the process's", got)
	}
}
