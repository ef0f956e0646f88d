package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/eddytest"
)

// testOptions are the settings of `worker test`, from its flags.
type testOptions struct {
	paths   []string
	update  bool
	run     *regexp.Regexp
	verbose bool
	level   string
	timeout time.Duration
}

func parseTest(args []string, stderr io.Writer) (*testOptions, error) {
	o := &testOptions{}
	fs := newFlags("test", stderr)
	fs.BoolVar(&o.update, "update", false, "rewrite each case's expected output, dead_letters and late from what the pipeline wrote")
	run := fs.String("run", "", "run only the cases whose name matches this regular expression")
	fs.BoolVar(&o.verbose, "v", false, "list every case, not only the failures")
	fs.StringVar(&o.level, "log-level", "error", "level of the workers' logs on stderr: debug, info, warn, error")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "longest a case may take")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage
	}
	o.paths = fs.Args()
	if len(o.paths) == 0 {
		o.paths = []string{"."}
	}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			fmt.Fprintf(stderr, "worker test: -run: %v\n", err)
			return nil, errUsage
		}
		o.run = re
	}
	return o, nil
}

// cmdTest runs the cases of pipeline test files (*_test.yaml) in process:
// an embedded broker and memory state per case, the runtime of worker
// run, the input closed at the end so that every window closes. It exits
// 1 when a case fails.
func cmdTest(args []string, stdout, stderr io.Writer) error {
	o, err := parseTest(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(o.level, true, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	files, err := testFiles(o.paths)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runTests(ctx, o, files, stdout, log)
}

// testFiles expands the paths: a file as it is, a folder to its
// *_test.yaml files, dir/... to those of dir and every folder below it.
func testFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		recursive := false
		if rest, ok := strings.CutSuffix(p, "..."); ok {
			recursive, p = true, filepath.Clean(rest+".")
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && path != p && (!recursive || strings.HasPrefix(d.Name(), ".")):
				return filepath.SkipDir
			case !d.IsDir() && isTestFile(d.Name()):
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no test files (*_test.yaml) there", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")
}

func runTests(ctx context.Context, o *testOptions, files []string, stdout io.Writer, log *zap.Logger) error {
	var cases, failed int
	for _, path := range files {
		f, err := eddytest.LoadFile(path)
		if err != nil {
			return err
		}
		results, err := f.Run(ctx, eddytest.FileConfig{Logger: log, Run: o.run, Timeout: o.timeout})
		if err != nil {
			return err
		}
		for _, r := range results {
			cases++
			took := r.Took.Round(10 * time.Millisecond)
			switch {
			case r.Err != nil:
				failed++
				fmt.Fprintf(stdout, "FAIL  %s:%d  %s (%v)\n      could not run: %v\n", path, r.Case.Line, r.Case.Name, took, r.Err)
			case len(r.Diff) > 0 && !o.update:
				failed++
				fmt.Fprintf(stdout, "FAIL  %s:%d  %s (%v)\n", path, r.Case.Line, r.Case.Name, took)
				for _, l := range r.Diff {
					fmt.Fprintf(stdout, "      %s\n", l)
				}
			case o.verbose || (o.update && len(r.Diff) > 0):
				what := "ok  "
				if len(r.Diff) > 0 {
					what = "upd "
				}
				fmt.Fprintf(stdout, "%s  %s:%d  %s (%v)\n", what, path, r.Case.Line, r.Case.Name, took)
			}
		}
		if o.update && len(results) > 0 {
			if err := f.Update(results); err != nil {
				return err
			}
		}
	}
	switch {
	case cases == 0:
		return fmt.Errorf("no case ran (-run %v)", o.run)
	case failed > 0:
		fmt.Fprintf(stdout, "worker test: %d of %d cases failed\n", failed, cases)
		return exitStatus(1)
	case o.update:
		fmt.Fprintf(stdout, "worker test: %d cases run, expectations rewritten from their results\n", cases)
	default:
		fmt.Fprintf(stdout, "worker test: %d cases passed\n", cases)
	}
	return nil
}
