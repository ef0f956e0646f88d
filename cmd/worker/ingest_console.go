package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/internal/ingest"
)

// console is worker ingest's stderr: messages (bad lines, failures) and,
// on a terminal, a status line redrawn in place, cleared before each
// message. Safe for concurrent use (the reader, the producer's result
// goroutine and the progress ticker all write to it).
type console struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	shown   bool // a status line is on the screen (tty only)
	limit   int  // bad-line and failure messages printed at most
	printed int  // of them printed
	muted   int  // of them not printed
}

const maxLineMessages = 100

func newConsole(w io.Writer) *console {
	return &console{w: w, tty: isTerminal(w), limit: maxLineMessages}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (c *console) clearLocked() {
	if c.shown {
		io.WriteString(c.w, "\r\033[K")
		c.shown = false
	}
}

// printf prints a message line.
func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	fmt.Fprintf(c.w, format+"\n", args...)
}

// lineMessage prints a message about one record (a bad line, a failed
// delivery): the first c.limit of them; the others are counted.
func (c *console) lineMessage(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.printed >= c.limit {
		if c.muted == 0 {
			c.clearLocked()
			fmt.Fprintf(c.w, "worker ingest: more than %d bad or undelivered records: the rest are counted, not printed\n", c.limit)
		}
		c.muted++
		return
	}
	c.printed++
	c.clearLocked()
	fmt.Fprintf(c.w, format+"\n", args...)
}

// mutedCount is the number of record messages not printed.
func (c *console) mutedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.muted
}

// status shows s: in place on a terminal, else as a line of its own.
func (c *console) status(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty {
		io.WriteString(c.w, "\r\033[K"+s)
		c.shown = true
		return
	}
	io.WriteString(c.w, s+"\n")
}

// ingestProgress prints a status line every interval until end is
// called (which clears it on a terminal).
type ingestProgress struct {
	c        *ingest.Counters
	con      *console
	start    time.Time
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
}

func startProgress(c *ingest.Counters, con *console, interval time.Duration) *ingestProgress {
	if interval <= 0 {
		interval = 5 * time.Second
		if con.tty {
			interval = time.Second
		}
	}
	p := &ingestProgress{c: c, con: con, start: time.Now(), interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *ingestProgress) run() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	last, lastAt := int64(0), p.start
	for {
		select {
		case <-p.stop:
			p.con.mu.Lock()
			p.con.clearLocked()
			p.con.mu.Unlock()
			return
		case now := <-t.C:
			read := p.c.Read.Load()
			rate := float64(read-last) / now.Sub(lastAt).Seconds()
			last, lastAt = read, now
			p.con.status(fmt.Sprintf("ingest %s: %s read  %s sent  %s acked  %s rejected  %s failed  %s lines/s",
				now.Sub(p.start).Round(time.Second), group(read), group(p.c.Sent.Load()), group(p.c.Acked.Load()),
				group(p.c.Rejected.Load()), group(p.c.Failed.Load()), group(int64(rate))))
		}
	}
}

// end stops the status line (nil-safe).
func (p *ingestProgress) end() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
}

// group formats n with thousands separators: 1,234,567.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
