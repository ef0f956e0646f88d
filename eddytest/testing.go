package eddytest

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// TestFile runs the cases of the test file at path as subtests of t, each
// failing with the differences between what it expects and what the
// pipelines wrote: the Go form of `worker test`, for pipelines with
// custom processors (give them in cfg.Worker: processor.WithProcessor).
// Without cfg.Logger the workers log their warnings to t.
func TestFile(t *testing.T, path string, cfg FileConfig) {
	t.Helper()
	f, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Cases {
		if cfg.Run != nil && !cfg.Run.MatchString(c.Name) {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			cc := cfg
			if cc.Logger == nil {
				cc.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
			}
			r := f.runCase(context.Background(), c, cc)
			switch {
			case r.Err != nil:
				t.Fatalf("%s:%d: %v", f.Path, c.Line, r.Err)
			case len(r.Diff) > 0:
				t.Errorf("%s:%d: %s\n%s", f.Path, c.Line, c.Name, strings.Join(r.Diff, "\n"))
			}
		})
	}
}
