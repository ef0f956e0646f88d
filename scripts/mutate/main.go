// Command mutate applies named source mutations, one at a time, to a
// scratch copy of the repository and runs the tests that must kill each:
// a mutation that no test notices is an unguarded invariant.
//
//	go run ./scripts/mutate [-list mutations.yaml] [-faults] [-only name,...]
//
// Each entry of the list names a file, one or more edits (an exact snippet
// that must occur exactly once in the file, and its replacement) and the
// tests that must fail under it. A snippet that is missing or occurs twice,
// or a mutation that does not build or vet, is an error, never a pass.
// Entries marked `fault: true` (injected faults whose killer is the chaos
// test) run only with -faults; the others only without it.
//
// The tree (git ls-files) is copied once to a scratch directory; each
// mutation is applied there, tested, and reverted, so the build cache is
// shared across mutations. Mutations run one after another: the tests of
// several at once would compete for 2 cores and time out.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	list := flag.String("list", "mutations.yaml", "the mutation list")
	faults := flag.Bool("faults", false, "run the fault entries (killed by the chaos test) instead of the mutations")
	only := flag.String("only", "", "comma-separated names to run (default: all of the selected kind)")
	keep := flag.Bool("keep", false, "keep the scratch copy")
	flag.Parse()
	ms, err := load(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	ms = selectMutations(ms, *faults, names)
	if len(ms) == 0 {
		fmt.Fprintln(os.Stderr, "mutate: no mutation selected")
		os.Exit(2)
	}
	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	r := &runner{root: root, out: os.Stdout, keep: *keep}
	results, err := r.run(ms)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	printTable(os.Stdout, results)
	for _, res := range results {
		if res.Verdict != Killed {
			os.Exit(1)
		}
	}
}
