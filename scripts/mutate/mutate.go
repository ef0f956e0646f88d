package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Mutation is one entry of the list.
type Mutation struct {
	Name  string `yaml:"name"`
	Why   string `yaml:"why"`
	File  string `yaml:"file"`
	Edits []Edit `yaml:"edits"`
	Tests []Test `yaml:"tests"`
	// Fault marks an injected fault for make faults: its killer is the
	// chaos test, whose failure summary is reported.
	Fault bool `yaml:"fault"`
}

// Edit replaces Find, which must occur exactly once in the file.
type Edit struct {
	Find    string `yaml:"find"`
	Replace string `yaml:"replace"`
}

// Test is a go test run that must fail under the mutation.
type Test struct {
	Pkg     string        `yaml:"pkg"`
	Run     string        `yaml:"run"`
	Tags    string        `yaml:"tags"`
	Timeout time.Duration `yaml:"timeout"` // default 5m
	Env     []string      `yaml:"env"`
}

// Verdict is a mutation's outcome.
type Verdict string

const (
	Killed   Verdict = "killed"
	Survived Verdict = "SURVIVED"
	Broken   Verdict = "ERROR"
)

// Result is one line of the table.
type Result struct {
	Name    string
	Verdict Verdict
	Took    time.Duration
	Detail  string // why it is an error, or the killer's failure summary
}

func load(path string) ([]Mutation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ms []Mutation
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&ms); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, m := range ms {
		where := fmt.Sprintf("%s: entry %d (%q)", path, i+1, m.Name)
		switch {
		case m.Name == "":
			return nil, fmt.Errorf("%s: name is empty", where)
		case seen[m.Name]:
			return nil, fmt.Errorf("%s: name used twice", where)
		case m.File == "":
			return nil, fmt.Errorf("%s: file is empty", where)
		case m.Why == "":
			return nil, fmt.Errorf("%s: why is empty: say what the mutation breaks", where)
		case len(m.Edits) == 0:
			return nil, fmt.Errorf("%s: no edits", where)
		case len(m.Tests) == 0:
			return nil, fmt.Errorf("%s: no tests to kill it", where)
		}
		for j, e := range m.Edits {
			if e.Find == "" || e.Find == e.Replace {
				return nil, fmt.Errorf("%s: edit %d: find is empty or equal to replace", where, j+1)
			}
		}
		for j, t := range m.Tests {
			if t.Pkg == "" || t.Run == "" {
				return nil, fmt.Errorf("%s: test %d: pkg and run are required", where, j+1)
			}
			if _, err := regexp.Compile(t.Run); err != nil {
				return nil, fmt.Errorf("%s: test %d: run: %w", where, j+1, err)
			}
		}
		seen[m.Name] = true
	}
	return ms, nil
}

func selectMutations(ms []Mutation, faults bool, names []string) []Mutation {
	var out []Mutation
	for _, m := range ms {
		if m.Fault == faults && (len(names) == 0 || slices.Contains(names, m.Name)) {
			out = append(out, m)
		}
	}
	return out
}

// apply returns src with m's edits, or an error naming the edit whose
// snippet is missing or not unique.
func apply(m Mutation, src string) (string, error) {
	for i, e := range m.Edits {
		switch n := strings.Count(src, e.Find); n {
		case 1:
			src = strings.Replace(src, e.Find, e.Replace, 1)
		case 0:
			return "", fmt.Errorf("%s: edit %d: snippet not found (the code changed: update the snippet)", m.File, i+1)
		default:
			return "", fmt.Errorf("%s: edit %d: snippet occurs %d times, want exactly once", m.File, i+1, n)
		}
	}
	return src, nil
}

type runner struct {
	root string // the repository (or module) to copy
	out  io.Writer
	keep bool
}

func (r *runner) run(ms []Mutation) ([]Result, error) {
	scratch, err := os.MkdirTemp("", "eddy-mutate-")
	if err != nil {
		return nil, err
	}
	if r.keep {
		fmt.Fprintln(r.out, "scratch copy:", scratch)
	} else {
		defer os.RemoveAll(scratch)
	}
	if err := copyTree(r.root, scratch); err != nil {
		return nil, err
	}
	var results []Result
	for _, m := range ms {
		start := time.Now()
		res := r.one(scratch, m)
		res.Name, res.Took = m.Name, time.Since(start)
		fmt.Fprintf(r.out, "%-28s %-8s %5.0fs %s\n", res.Name, res.Verdict, res.Took.Seconds(), firstLine(res.Detail))
		results = append(results, res)
	}
	return results, nil
}

// one applies m in dir, tests it and reverts it.
func (r *runner) one(dir string, m Mutation) Result {
	path := filepath.Join(dir, filepath.FromSlash(m.File))
	orig, err := os.ReadFile(path)
	if err != nil {
		return Result{Verdict: Broken, Detail: err.Error()}
	}
	mutated, err := apply(m, string(orig))
	if err != nil {
		return Result{Verdict: Broken, Detail: err.Error()}
	}
	if err := os.WriteFile(path, []byte(mutated), 0o644); err != nil {
		return Result{Verdict: Broken, Detail: err.Error()}
	}
	defer os.WriteFile(path, orig, 0o644) //nolint:errcheck // the scratch copy

	// The mutated package must compile to prove anything; building it
	// alone is enough (a one-line change inside it cannot break its
	// importers' compilation, and the tests' packages are compiled by vet
	// and test below) and saves linking every command per mutation.
	pkg := "./" + filepath.ToSlash(filepath.Dir(filepath.FromSlash(m.File)))
	if out, err := goCmd(dir, 10*time.Minute, nil, "build", pkg); err != nil {
		return Result{Verdict: Broken, Detail: "does not build (a mutation must compile to prove anything):\n" + out}
	}
	for _, t := range m.Tests {
		args := []string{"vet"}
		if t.Tags != "" {
			args = append(args, "-tags", t.Tags)
		}
		if out, err := goCmd(dir, 10*time.Minute, nil, append(args, t.Pkg)...); err != nil {
			return Result{Verdict: Broken, Detail: "go vet fails:\n" + out}
		}
	}
	var failures []string
tests:
	for _, t := range m.Tests {
		timeout := t.Timeout
		if timeout == 0 {
			timeout = 5 * time.Minute
		}
		args := []string{"test", "-count=1", "-timeout", timeout.String(), "-run", t.Run}
		if t.Tags != "" {
			args = append(args, "-tags", t.Tags)
		}
		if m.Fault {
			args = append(args, "-v")
		}
		out, err := goCmd(dir, timeout+2*time.Minute, t.Env, append(args, t.Pkg)...)
		var exit *exec.ExitError
		switch {
		case err == nil:
			if strings.Contains(out, "no tests to run") {
				return Result{Verdict: Broken, Detail: fmt.Sprintf("%s -run %q matches no test", t.Pkg, t.Run)}
			}
			continue
		case errors.As(err, &exit) && strings.Contains(out, "FAIL"):
			if strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]") {
				return Result{Verdict: Broken, Detail: "the tests do not build:\n" + out}
			}
			failures = append(failures, summarize(out))
			if !m.Fault {
				break tests // killed: the other killers need not run
			}
		default:
			return Result{Verdict: Broken, Detail: fmt.Sprintf("go test %s: %v\n%s", t.Pkg, err, out)}
		}
	}
	if len(failures) == 0 {
		return Result{Verdict: Survived, Detail: "no test failed"}
	}
	return Result{Verdict: Killed, Detail: strings.Join(failures, "; ")}
}

// figure matches the lines of a failed test that say what went wrong: the
// chaos test's "N of M windows wrong", a zombie's late commit, an ID
// count, else the first "--- FAIL" line.
var figure = regexp.MustCompile(`\d+ of \d+ windows \w+|zombie \S+ committed partition \d+[^\n]*|store records \d+ event IDs, want \d+|\.\.\. \d+ output problems in all`)

func summarize(out string) string {
	if ms := figure.FindAllString(out, -1); len(ms) > 0 {
		ms = dedupe(ms)
		if len(ms) > 2 {
			ms = append(ms[:2], fmt.Sprintf("and %d more", len(ms)-2))
		}
		return strings.Join(ms, ", ")
	}
	for line := range strings.Lines(out) {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "--- FAIL") || strings.HasPrefix(s, "panic:") {
			return s
		}
	}
	return "failed"
}

func dedupe(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func goCmd(dir string, timeout time.Duration, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// copyTree copies the files git knows in root (tracked, and untracked ones
// not ignored: the working tree as it is) to dst.
func copyTree(root, dst string) error {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("git ls-files in %s: %w", root, err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		info, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(to, b, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func printTable(w io.Writer, rs []Result) {
	fmt.Fprintf(w, "\n%-28s %-8s %6s  %s\n", "mutation", "verdict", "secs", "detail")
	var total time.Duration
	for _, r := range rs {
		total += r.Took
		fmt.Fprintf(w, "%-28s %-8s %6.0f  %s\n", r.Name, r.Verdict, r.Took.Seconds(), firstLine(r.Detail))
	}
	fmt.Fprintf(w, "%d mutations in %.0fs\n", len(rs), total.Seconds())
	for _, r := range rs {
		if r.Verdict == Broken && strings.Contains(r.Detail, "\n") {
			fmt.Fprintf(w, "\n%s: %s\n", r.Name, r.Detail)
		}
	}
}
