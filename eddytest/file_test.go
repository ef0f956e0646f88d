package eddytest

import (
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
