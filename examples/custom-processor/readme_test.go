package main

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeShowsRun: the README's library snippet ("Using eddy as a Go
// library") is this program's run function, word for word, so that it
// compiles and handles its errors as the program does.
func TestReadmeShowsRun(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	start := strings.Index(s, "\n// run ")
	if start < 0 {
		t.Fatal("main.go has no run function (with its doc comment)")
	}
	end := strings.Index(s[start:], "\n}\n")
	if end < 0 {
		t.Fatal("main.go: the run function does not end")
	}
	fn := s[start+1 : start+end+3]
	if !strings.Contains(string(readme), "```go\n"+fn+"```\n") {
		t.Errorf("README.md does not show main.go's run function as a go block; want:\n%s", fn)
	}
}
