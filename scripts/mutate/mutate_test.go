package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tool against a tiny module (testdata/fixture): a mutation its test
// catches is killed, one no test catches survives, and a vanished,
// repeated or non-compiling snippet is an error, never a pass.
func TestMutations(t *testing.T) {
	list := filepath.Join(t.TempDir(), "mutations.yaml")
	if err := os.WriteFile(list, []byte(`
- {name: killed, why: w, file: calc.go, edits: [{find: "a + b", replace: "a - b"}], tests: [{pkg: ., run: TestAdd}]}
- {name: survived, why: w, file: calc.go, edits: [{find: "a / 2", replace: "a / 3"}], tests: [{pkg: ., run: TestAdd}]}
- {name: vanished, why: w, file: calc.go, edits: [{find: "a * 4", replace: "a * 5"}], tests: [{pkg: ., run: TestAdd}]}
- {name: repeated, why: w, file: calc.go, edits: [{find: "(a int) int", replace: "(a int) uint"}], tests: [{pkg: ., run: TestAdd}]}
- {name: no-build, why: w, file: calc.go, edits: [{find: "a + b", replace: "a + c"}], tests: [{pkg: ., run: TestAdd}]}
- {name: no-test, why: w, file: calc.go, edits: [{find: "a * 3", replace: "a * 4"}], tests: [{pkg: ., run: TestNothing}]}
- {name: a-fault, fault: true, why: w, file: calc.go, edits: [{find: "a * 3", replace: "a * 4"}], tests: [{pkg: ., run: TestAdd}]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := load(list)
	if err != nil {
		t.Fatal(err)
	}
	ms = selectMutations(ms, false, nil)
	if len(ms) != 6 {
		t.Fatalf("%d mutations selected, want 6 (the fault is left out)", len(ms))
	}
	root, err := filepath.Abs("testdata/fixture")
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&runner{root: root, out: io.Discard}).run(ms)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Verdict{"killed": Killed, "survived": Survived, "vanished": Broken,
		"repeated": Broken, "no-build": Broken, "no-test": Broken}
	for _, r := range got {
		if r.Verdict != want[r.Name] {
			t.Errorf("%s: %s (%s), want %s", r.Name, r.Verdict, firstLine(r.Detail), want[r.Name])
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "calc.go")); !strings.Contains(string(b), "a + b") {
		t.Error("the fixture itself was changed")
	}
}

// A malformed entry is refused when the list is read, naming the entry.
func TestLoadRefusesMalformedEntries(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{`[{name: x, file: f.go, edits: [{find: a, replace: b}], tests: [{pkg: ., run: T}]}]`, "why is empty"},
		{`[{name: x, why: w, file: f.go, edits: [{find: a, replace: b}]}]`, "no tests"},
		{`[{name: x, why: w, file: f.go, edits: [{find: a, replace: a}], tests: [{pkg: ., run: T}]}]`, "find is empty or equal"},
		{`[{name: x, why: w, file: f.go, edits: [{find: a, replace: b}], tests: [{pkg: ., run: "("}]}]`, "run:"},
		{`[{name: x, why: w, file: f.go, edit: [{find: a, replace: b}], tests: [{pkg: ., run: T}]}]`, "field edit not found"},
	} {
		list := filepath.Join(t.TempDir(), "m.yaml")
		if err := os.WriteFile(list, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := load(list); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.yaml, err, tc.want)
		}
	}
}

// The checked-in list is well formed, and every snippet occurs exactly once
// in today's tree.
func TestTheRepositoryListApplies(t *testing.T) {
	ms, err := load("../../mutations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		b, err := os.ReadFile(filepath.Join("../..", m.File))
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if _, err := apply(m, string(b)); err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}
	}
}
