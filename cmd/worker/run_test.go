package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunCustomProcessorExample: `worker run` on the custom-processor
// example fails before connecting to anything, saying that its processor
// is registered by a Go program (the example's own), not by the worker.
func TestRunCustomProcessorExample(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "-c", "../../examples/custom-processor/pipeline.yaml", "-http", ""}, &stdout, &stderr)
	for _, want := range []string{`unknown processor "running-total" (none are registered`, "processor.WithProcessor", "examples/custom-processor"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	}
	if code != 1 {
		t.Errorf("exit %d; want 1", code)
	}
}
