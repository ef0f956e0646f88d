package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/eddytest"
)

// TestExamplesPassTheirTests runs `worker test examples/...` as CI or a
// user would and checks that it exits 0 having run every case of every
// test file there, and that every example pipeline has a test file:
// examples/custom-processor's files (*_gotest.yaml, which need the Go
// processors its pipeline_test.go registers) are run by go test in that
// package instead, and only counted here as covering their pipelines.
func TestExamplesPassTheirTests(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every example's test cases, a few seconds")
	}
	const root = "../../examples"
	files, err := testFiles([]string{root + "/..."})
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	covered := map[string]bool{}
	load := func(path string) *eddytest.File {
		f, err := eddytest.LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Pipelines {
			covered[filepath.Clean(p)] = true
		}
		return f
	}
	for _, path := range files {
		cases += len(load(path).Cases)
	}
	var pipelines []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case strings.HasSuffix(path, "_gotest.yaml"):
			load(path)
		case !d.IsDir() && strings.HasSuffix(path, ".yaml") && !isTestFile(d.Name()):
			pipelines = append(pipelines, filepath.Clean(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pipelines {
		if !covered[p] {
			t.Errorf("%s: no test file runs it", p)
		}
	}
	if len(files) < 9 || cases == 0 {
		t.Fatalf("%d test files with %d cases under %s: the examples have at least 9", len(files), cases, root)
	}

	var out, errOut bytes.Buffer
	code := run([]string{"test", "-v", root + "/..."}, &out, &errOut)
	if code != 0 {
		t.Fatalf("worker test exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	if want := fmt.Sprintf("worker test: %d cases passed\n", cases); !strings.HasSuffix(out.String(), want) {
		t.Errorf("worker test wrote:\n%s\nwant it to end with %q: the %d cases of %d files", out.String(), want, cases, len(files))
	}
	t.Logf("%d cases of %d files:\n%s", cases, len(files), out.String())
}
