//go:build chaos

package chaos_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildWorker builds the worker binary once into dir.
func buildWorker(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "worker")
	// The chaos build: SIGUSR1 freezes it before its next state commit
	// (cmd/worker/chaos_hook.go).
	cmd := exec.Command("go", "build", "-tags", "chaos", "-o", bin, "github.com/eddy-streams/eddy/cmd/worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/worker: %v\n%s", err, out)
	}
	return bin
}

// proc is one run of the worker binary: one process in its own process
// group, its stderr (JSON logs) in its own file.
type proc struct {
	slot     string // w1, w2, w3: the worker's place in the cluster
	instance string // its static group instance id
	log      string // path of its log file
	cmd      *exec.Cmd
	started  time.Time
	done     chan struct{} // closed when the process has exited
	state    *os.ProcessState
}

// stopped reports whether the process is stopped (state T in
// /proc/<pid>/stat).
func (p *proc) stopped() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces, the state follows the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'T'
}

// signal sends sig to the process's group.
func (p *proc) signal(sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cluster runs the workers of one test.
type cluster struct {
	t       *testing.T
	bin     string
	config  string
	logs    string
	mu      sync.Mutex
	running map[string]*proc // by slot
	all     []*proc          // every process started, in order
}

func newCluster(t *testing.T, bin, config, logs string) *cluster {
	c := &cluster{t: t, bin: bin, config: config, logs: logs, running: map[string]*proc{}}
	t.Cleanup(c.killAll)
	return c
}

// start runs a worker in slot with the given instance id.
func (c *cluster) start(slot, instance string) *proc {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.all)
	p := &proc{slot: slot, instance: instance, log: filepath.Join(c.logs, fmt.Sprintf("%02d-%s-%s.log", n, slot, instance))}
	f, err := os.Create(p.log)
	if err != nil {
		c.t.Fatalf("worker log: %v", err)
	}
	p.cmd = exec.Command(c.bin, "run", "-c", c.config, "-instance-id", instance, "-http", "127.0.0.1:0")
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		c.t.Fatalf("start worker %s: %v", slot, err)
	}
	p.started = time.Now()
	p.done = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		_ = f.Close()
		close(p.done)
	}()
	c.running[slot] = p
	c.all = append(c.all, p)
	return p
}

// get returns the process running in slot.
func (c *cluster) get(slot string) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running[slot]
}

// slots returns the slots, sorted.
func (c *cluster) slots() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s []string
	for k := range c.running {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// kill SIGKILLs the worker in slot and waits until it is gone.
func (c *cluster) kill(slot string) *proc {
	c.t.Helper()
	p := c.get(slot)
	if err := p.signal(syscall.SIGKILL); err != nil && !p.exited() {
		c.t.Fatalf("kill %s: %v", slot, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("worker %s did not die within 30s of SIGKILL", slot)
	}
	return p
}

// stop SIGTERMs the worker in slot and waits for its graceful exit; it
// returns an error if the worker was not running, did not exit within
// timeout (it is then killed), or exited with a failure.
func (c *cluster) stop(slot string, timeout time.Duration) error {
	p := c.get(slot)
	if p.exited() {
		return fmt.Errorf("worker %s (%s) had already exited: %v", slot, p.instance, p.state)
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM %s: %w", slot, err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("worker %s (%s) did not exit within %s of SIGTERM (killed)", slot, p.instance, timeout)
	}
	if !p.state.Success() {
		return fmt.Errorf("worker %s (%s) exited with %v after SIGTERM; log tail:\n%s", slot, p.instance, p.state, tail(p.log, 10))
	}
	return nil
}

// stopAll stops every worker gracefully, in parallel.
func (c *cluster) stopAll(timeout time.Duration) []error {
	slots := c.slots()
	errs := make([]error, len(slots))
	var wg sync.WaitGroup
	for i, s := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.stop(s, timeout)
		}()
	}
	wg.Wait()
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// unexpected reports workers that exited without being told to.
func (c *cluster) unexpected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.running {
		if p.exited() {
			out = append(out, fmt.Sprintf("%s (%s) exited by itself: %v; log tail:\n%s", p.slot, p.instance, p.state, tail(p.log, 10)))
		}
	}
	return out
}

func (c *cluster) killAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.all {
		if !p.exited() {
			_ = p.signal(syscall.SIGCONT)
			_ = p.signal(syscall.SIGKILL)
			<-p.done
		}
	}
}

// logLine is what the test reads from the workers' JSON logs.
type logLine struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Partition *int32 `json:"partition"`
	Epoch     int64  `json:"epoch"`
	Stored    int64  `json:"stored_offset"`
	Initial   int64  `json:"initial_offset"`

	raw string // the line as written
}

// Messages of the runtime the test looks for.
const (
	msgClaimed  = "partition claimed"
	msgReleased = "partition released"
	msgFenced   = "partition fenced by a newer owner"
	msgFailed   = "final flush failed"
)

// readLog parses a worker's log; lines that are not JSON (a panic, say)
// come back with only Msg set.
func readLog(path string) []logLine {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			l = logLine{Msg: sc.Text()}
		}
		l.raw = sc.Text()
		out = append(out, l)
	}
	return out
}

// owned returns the partitions a worker's log says it holds now, with the
// epoch it claimed each at.
func owned(path string) map[int32]int64 {
	own := map[int32]int64{}
	for _, l := range readLog(path) {
		if l.Partition == nil {
			continue
		}
		switch {
		case l.Msg == msgClaimed:
			own[*l.Partition] = l.Epoch
		case l.Msg == msgReleased, strings.HasPrefix(l.Msg, msgFenced), strings.HasPrefix(l.Msg, msgFailed):
			delete(own, *l.Partition)
		}
	}
	return own
}

// claims returns every claim in a worker's log.
func claims(path string) []logLine {
	var out []logLine
	for _, l := range readLog(path) {
		if l.Msg == msgClaimed && l.Partition != nil {
			out = append(out, l)
		}
	}
	return out
}

// countMsg counts the log lines of path whose message starts with prefix.
func countMsg(path, prefix string) int {
	n := 0
	for _, l := range readLog(path) {
		if strings.HasPrefix(l.Msg, prefix) {
			n++
		}
	}
	return n
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
