package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestHelpAndUsageErrors checks the one convention of every command: help
// asked for (-h, --help, help) is normal output, on stdout with exit 0 and
// nothing on stderr; a usage mistake goes to stderr with exit 2 and
// nothing on stdout.
func TestHelpAndUsageErrors(t *testing.T) {
	t.Setenv("EDDY_HTTP_ADDR", "")
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"},
		{"run", "-h"}, {"run", "--help"}, {"validate", "-h"}, {"dev", "-h"},
		{"offsets", "-h"}, {"offsets", "show", "-h"}, {"offsets", "reset", "-h"},
		{"topics", "-h"}, {"topics", "check", "-h"}, {"topics", "create", "-h"},
		{"ingest", "-h"}, {"version", "-h"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			if code != 0 || stderr.Len() > 0 || !strings.Contains(stdout.String(), "usage") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 0, the usage on stdout, nothing on stderr", code, stdout.String(), stderr.String())
			}
		})
	}
	for _, args := range [][]string{
		{}, {"nope"},
		{"run", "-nope"}, {"run"}, {"validate", "-nope"}, {"validate"}, {"dev", "-nope"},
		{"offsets"}, {"offsets", "nope"}, {"offsets", "show", "-nope"}, {"offsets", "reset", "-nope"},
		{"topics"}, {"topics", "nope"}, {"topics", "check", "-nope"}, {"topics", "create", "-nope"},
		{"ingest", "-nope"}, {"version", "-nope"}, {"version", "extra"},
	} {
		t.Run(strings.Join(append([]string{"mistake:"}, args...), " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			if code != 2 || stdout.Len() > 0 || stderr.Len() == 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, a message on stderr, nothing on stdout", code, stdout.String(), stderr.String())
			}
		})
	}
}

// TestRunHelpShowsDefaultsOnce: every flag of `worker run -h` states its
// default once (-http said ":9100" twice).
func TestRunHelpShowsDefaultsOnce(t *testing.T) {
	for _, k := range []string{"EDDY_HTTP_ADDR", "EDDY_INSTANCE_ID"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	var stdout, stderr bytes.Buffer
	run([]string{"run", "-h"}, &stdout, &stderr)
	help := stdout.String() + stderr.String()
	flags := strings.Split(help, "\n  -")[1:]
	if len(flags) < 6 {
		t.Fatalf("%d flags in %q", len(flags), help)
	}
	for _, f := range flags {
		if n := strings.Count(f, "default"); n > 1 {
			t.Errorf("flag -%s: %d defaults stated", f, n)
		}
		if strings.HasPrefix(f, "http ") && strings.Count(f, ":9100") != 1 {
			t.Errorf("flag -%s: want :9100 once", f)
		}
	}
}
