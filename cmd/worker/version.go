package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// buildVersion is what worker version prints: where the binary comes from.
type buildVersion struct {
	Version    string `json:"version"`               // -ldflags -X main.version, else the module's, else "dev"
	Commit     string `json:"commit"`                // vcs.revision, "unknown" without a VCS stamp
	CommitTime string `json:"commit_time,omitempty"` // vcs.time, RFC 3339
	Modified   bool   `json:"modified,omitempty"`    // built with local changes
	Go         string `json:"go"`                    // the toolchain, e.g. go1.26.8
	Platform   string `json:"platform"`              // GOOS/GOARCH
}

// readBuild reads the build information Go embeds in the binary (nil if
// none); version is main.version, which -ldflags may have set.
func readBuild(info *debug.BuildInfo, version string) buildVersion {
	v := buildVersion{Version: version, Commit: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info == nil {
		return v
	}
	v.Go = info.GoVersion
	if m := info.Main.Version; version == "dev" && m != "" && m != "(devel)" {
		v.Version = m
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value[:min(7, len(s.Value))]
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the line worker version prints, e.g. "eddy worker v0.4.0
// (commit abc1234 of 2026-05-01T10:00:00Z, go1.26.8 linux/amd64)".
func (v buildVersion) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "eddy worker %s (commit %s", v.Version, v.Commit)
	if v.CommitTime != "" {
		b.WriteString(" of " + v.CommitTime)
	}
	if v.Modified {
		b.WriteString(" with local changes")
	}
	fmt.Fprintf(&b, ", %s %s)", v.Go, v.Platform)
	return b.String()
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	asJSON := fs.Bool("json", false, "print the version as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	info, _ := debug.ReadBuildInfo()
	v := readBuild(info, version)
	if *asJSON {
		return writeJSON(stdout, v)
	}
	fmt.Fprintln(stdout, v)
	return nil
}
