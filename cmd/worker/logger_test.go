package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"
)

// TestDevLoggerColour: worker dev's console logger colours its levels only
// on a terminal, and not even there when NO_COLOR is set (to anything but
// the empty string); redirected to a file or a pipe it writes plain text.
func TestDevLoggerColour(t *testing.T) {
	const esc = "\x1b["
	logTo := func(t *testing.T, w io.Writer) {
		t.Helper()
		log, err := newLogger("info", true, w)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("hello")
		_ = log.Sync()
	}
	onTerminal := func(t *testing.T) string {
		t.Helper()
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		defer ptmx.Close()
		logTo(t, tty)
		tty.Close()
		out, _ := io.ReadAll(ptmx) // EIO once the terminal side is closed
		return string(out)
	}

	t.Run("terminal", func(t *testing.T) {
		t.Setenv("NO_COLOR", "")
		if out := onTerminal(t); !strings.Contains(out, esc) || !strings.Contains(out, "hello") {
			t.Errorf("on a terminal: %q; want colour", out)
		}
	})
	t.Run("terminal with NO_COLOR", func(t *testing.T) {
		t.Setenv("NO_COLOR", "1")
		if out := onTerminal(t); strings.Contains(out, esc) || !strings.Contains(out, "INFO") {
			t.Errorf("NO_COLOR=1: %q; want plain text", out)
		}
	})
	t.Run("file", func(t *testing.T) {
		t.Setenv("NO_COLOR", "")
		f, err := os.Create(filepath.Join(t.TempDir(), "log"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		logTo(t, f)
		out, _ := os.ReadFile(f.Name())
		if strings.Contains(string(out), esc) || !strings.Contains(string(out), "INFO") {
			t.Errorf("to a file: %q; want plain text", out)
		}
	})
	t.Run("pipe", func(t *testing.T) {
		t.Setenv("NO_COLOR", "")
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		logTo(t, w)
		w.Close()
		out, _ := io.ReadAll(r)
		if strings.Contains(string(out), esc) {
			t.Errorf("to a pipe: %q; want plain text", out)
		}
	})
	t.Run("buffer", func(t *testing.T) {
		t.Setenv("NO_COLOR", "")
		var b bytes.Buffer
		logTo(t, &b)
		if strings.Contains(b.String(), esc) {
			t.Errorf("to a buffer: %q; want plain text", b.String())
		}
	})
}
