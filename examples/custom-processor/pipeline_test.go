package main

import (
	"testing"

	"github.com/eddy-streams/eddy/eddytest"
	"github.com/eddy-streams/eddy/processor"
)

// The test files of this folder's pipelines, run with the processors that
// main.go registers: `worker test` cannot run them, its worker has
// neither.
var config = eddytest.FileConfig{
	Worker: []processor.Option{
		processor.WithProcessor("running-total", newRunningTotal),
		processor.WithProcessor("followed-by", newFollowedBy),
	},
}

func TestRunningTotal(t *testing.T) { eddytest.TestFile(t, "pipeline_gotest.yaml", config) }

func TestFollowedBy(t *testing.T) { eddytest.TestFile(t, "followed-by_gotest.yaml", config) }
