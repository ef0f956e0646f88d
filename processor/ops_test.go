package processor

import (
	"testing"

	"github.com/eddy-streams/eddy/pipeline"
)

// TestEveryStepKindHasABuilder ties the runtime to package pipeline's
// kinds table: a step kind that can be parsed can be run.
func TestEveryStepKindHasABuilder(t *testing.T) {
	for _, k := range pipeline.StepKinds() {
		if builders[k] == nil {
			t.Errorf("step kind %s has no builder in processor/ops.go", k)
		}
	}
	if len(builders) != len(pipeline.StepKinds()) {
		t.Errorf("%d builders for %d step kinds", len(builders), len(pipeline.StepKinds()))
	}
}
