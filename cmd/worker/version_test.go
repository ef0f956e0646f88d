package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionLine: worker version names the version (-ldflags -X
// main.version wins over the module's), the commit and its time, local
// changes and the Go toolchain, and says "unknown" for what the binary
// does not carry (go run and go test builds have no VCS stamp).
func TestVersionLine(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "abc1234def5678"},
		{Key: "vcs.time", Value: "2026-05-01T10:00:00Z"}, {Key: "vcs.modified", Value: "false"},
	}}
	modified := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc1234def5678"}, {Key: "vcs.modified", Value: "true"},
	}}
	bare := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}
	for _, tc := range []struct {
		name     string
		info     *debug.BuildInfo
		override string
		want     string
	}{
		{"stamped", stamped, "dev", "eddy worker v0.4.0 (commit abc1234 of 2026-05-01T10:00:00Z, go1.26.8 " + platform + ")"},
		{"ldflags override", stamped, "v0.4.1-rc1", "eddy worker v0.4.1-rc1 (commit abc1234 of 2026-05-01T10:00:00Z, go1.26.8 " + platform + ")"},
		{"local changes", modified, "dev", "eddy worker dev (commit abc1234 with local changes, go1.26.8 " + platform + ")"},
		{"no vcs stamp", bare, "dev", "eddy worker dev (commit unknown, go1.26.8 " + platform + ")"},
		{"no build info", nil, "dev", "eddy worker dev (commit unknown, " + runtime.Version() + " " + platform + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readBuild(tc.info, tc.override).String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestVersionCommand runs worker version, plain and with -json, on the
// test binary (no VCS stamp).
func TestVersionCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 || stderr.Len() > 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	line := stdout.String()
	if !strings.HasPrefix(line, "eddy worker ") || !strings.Contains(line, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+")") {
		t.Errorf("version line %q", line)
	}
	stdout.Reset()
	if code := run([]string{"version", "-json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-json: exit %d, stderr %q", code, stderr.String())
	}
	var v struct {
		Version, Commit, Go, Platform string
	}
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Fatalf("-json: %v: %s", err, stdout.String())
	}
	if v.Version == "" || v.Commit == "" || v.Go != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("-json: %+v", v)
	}
}
