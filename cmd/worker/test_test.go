package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testedPipeline = `
name: totals
source: {topics: [orders], event_id: event.id, event_time: timestamp(event.ts)}
dedup: {enabled: true}
dead_letter: {topic: totals-dlq}
steps:
  - filter: event.qty > 0
  - aggregate:
      name: per_user
      key: event.user
      window: {tumbling: 1m}
      values: {orders: count(), items: sum(event.qty)}
sink: {topic: totals}
`

// Two cases, the second with a wrong expectation (ann bought 3 items,
// not 4) and a dead letter it does not expect.
const testedCases = `# the totals pipeline
tests:
  - name: per user and minute
    input:
      - {key: ann, value: {id: "1", user: ann, qty: 1, ts: "2024-01-01T00:00:01Z"}}
      - {key: ann, value: {id: "2", user: ann, qty: 2, ts: "2024-01-01T00:00:40Z"}}
      - {key: ann, value: {id: "2", user: ann, qty: 2, ts: "2024-01-01T00:00:40Z"}} # a repeat: dropped
      - {key: bob, value: {id: "3", user: bob, qty: 0, ts: "2024-01-01T00:00:41Z"}} # filtered
      - {key: bob, value: {id: "4", user: bob, qty: 5, ts: "2024-01-01T00:01:02Z"}}
    output:
      - {key: ann, value: {key: ann, orders: 2, items: 3, window_start: "2024-01-01T00:00:00Z", window_end: "2024-01-01T00:01:00Z"}}
      - {key: bob, value: {key: bob, orders: 1, items: 5, window_start: "2024-01-01T00:01:00Z", window_end: "2024-01-01T00:02:00Z"}}
    counts: {duplicates: 1, filtered: 1}
  - name: wrong
    input:
      - {key: ann, value: {id: "1", user: ann, qty: 3, ts: "2024-01-01T00:00:01Z"}}
      - {value: "oops"}
    output:
      - {key: ann, value: {key: ann, orders: 1, items: 4, window_start: "2024-01-01T00:00:00Z", window_end: "2024-01-01T00:01:00Z"}}
    counts: {poison: 0}
`

func writeTestFiles(t *testing.T) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "totals.yaml"), []byte(testedPipeline), 0o600); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "totals_test.yaml")
	if err := os.WriteFile(file, []byte(testedCases), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// TestWorkerTestReportsAndUpdates: worker test passes the right case,
// fails the wrong one with a diff that names the field and the dead
// letter, exits 1; -update rewrites the expectations from the results,
// keeping the inputs and comments, after which every case passes.
func TestWorkerTestReportsAndUpdates(t *testing.T) {
	dir, file := writeTestFiles(t)
	var out, errOut syncBuffer
	if code := run([]string{"test", "-v", dir}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"ok    " + file + ":3  per user and minute",
		"FAIL  " + file + ":14  wrong",
		"output: 1 expected, 1 written: 1 missing, 1 unexpected",
		"items: want 4, got 3",
		"dead_letters: 0 expected, 1 written: 0 missing, 1 unexpected",
		"counts.poison: want 0, got 1",
		`+ unexpected: totals-dlq key="" "oops" error="decode json: value is not an object`,
		"worker test: 1 of 2 cases failed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}

	out.b.Reset()
	if code := run([]string{"test", "-update", file}, &out, &errOut); code != 0 {
		t.Fatalf("-update: exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	updated := string(b)
	for _, want := range []string{"# the totals pipeline", "# a repeat: dropped", "items: 3", "dead_letters:", "value: \"oops\"", "counts: {poison: 1}"} {
		if !strings.Contains(updated, want) {
			t.Errorf("updated file lacks %q:\n%s", want, updated)
		}
	}
	if strings.Contains(updated, "items: 4") {
		t.Errorf("updated file still expects 4 items:\n%s", updated)
	}
	out.b.Reset()
	if code := run([]string{"test", dir + "/..."}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "worker test: 2 cases passed") {
		t.Errorf("after -update: exit %d:\n%s", code, out.String())
	}
	out.b.Reset()
	if code := run([]string{"test", "-run", "^per", file}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "worker test: 1 cases passed") {
		t.Errorf("-run: exit %d:\n%s", code, out.String())
	}
}

// TestWorkerTestRefusesBadFiles: a test file's mistakes are named with
// the file, line and field before anything runs.
func TestWorkerTestRefusesBadFiles(t *testing.T) {
	_, file := writeTestFiles(t)
	for _, tc := range []struct{ content, want string }{
		{"tests:\n  - name: a\n    inputs: []\n", `line 3: unknown field "inputs" (known: name, partitions, end_of_input, tables, input, output, dead_letters, late, counts)`},
		{"tests:\n  - name: a\n    input:\n      - {key: k}\n", "tests[0]: input[0]: value: missing (null for a tombstone)"},
		{"tests:\n  - name: a\n    input:\n      - {value: {}, time: yesterday}\n", `time (line 4): "yesterday" is neither RFC 3339`},
		{"tests:\n  - name: a\n    end_of_input: later\n", `end_of_input: "later" is neither close`},
		{"tests:\n  - name: a\n    counts: {lat: 1}\n", `counts: unknown counter "lat" (known: dead_lettered, duplicates, filtered, in, late, out, poison)`},
		{"tests:\n  - name: a\n    tables: {nope: [{key: k, value: {}}]}\n", `tables: the pipelines have no table "nope"`},
		{"tests:\n  - name: a\n  - name: a\n", `tests[1]: a second test named "a"`},
		{"pipeline: missing.yaml\ntests:\n  - name: a\n", "missing.yaml"},
	} {
		if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut syncBuffer
		code := run([]string{"test", file}, &out, &errOut)
		if code == 0 || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("%q: exit %d, output:\n%s%s\nwant %q", tc.content, code, out.String(), errOut.String(), tc.want)
		}
	}
	if code := run([]string{"test", t.TempDir()}, new(syncBuffer), new(syncBuffer)); code != 1 {
		t.Errorf("a folder without test files: exit %d, want 1", code)
	}
}
