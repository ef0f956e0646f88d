package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// server is a private redis-server process a test starts, kills with
// SIGKILL and restarts, with its files in a temporary directory.
type server struct {
	t    testing.TB
	bin  string
	dir  string
	addr string
	args []string // persistence settings
	// sentinelOf, if set, makes the process a Sentinel monitoring the
	// master at this address as "mymaster".
	sentinelOf string
	cmd        *exec.Cmd
	exit       chan error // the running process's Wait result
}

// aofAlways is the persistence "a store restart loses nothing" needs.
var aofAlways = []string{"--appendonly", "yes", "--appendfsync", "always"}

// startServer starts a private redis-server on a free loopback port with
// the given persistence settings (aofAlways, for example). It fails the
// test if redis-server is not on PATH.
func startServer(t testing.TB, persistence ...string) *server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (%v): run `make services`, which installs it", err)
	}
	s := &server{t: t, bin: bin, dir: t.TempDir(), args: persistence}
	for attempt := 0; ; attempt++ {
		s.addr = testenv.FreeAddr(t)
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("start redis-server: %v", err)
		}
	}
	t.Cleanup(s.kill)
	return s
}

// startSentinel starts a private Sentinel that monitors the master at
// masterAddr under the name "mymaster", with a quorum of 1.
func startSentinel(t testing.TB, masterAddr string) *server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (%v): run `make services`, which installs it", err)
	}
	s := &server{t: t, bin: bin, dir: t.TempDir(), sentinelOf: masterAddr}
	s.addr = testenv.FreeAddr(t)
	if err := s.start(); err != nil {
		t.Fatalf("start redis-server --sentinel: %v", err)
	}
	t.Cleanup(s.kill)
	return s
}

// start runs redis-server on s.addr over s.dir and waits until it answers
// PING (after loading its AOF).
func (s *server) start() error {
	_, port, _ := net.SplitHostPort(s.addr)
	args := []string{
		"--bind", "127.0.0.1", "--port", port, "--dir", s.dir, "--save", "",
		"--maxmemory-policy", "noeviction", "--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}
	if s.sentinelOf != "" {
		conf := filepath.Join(s.dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil { // Sentinel rewrites it: keep it across restarts
			host, mport, _ := net.SplitHostPort(s.sentinelOf)
			text := fmt.Sprintf("sentinel monitor mymaster %s %s 1\n"+
				"sentinel down-after-milliseconds mymaster 1000\n"+
				"sentinel failover-timeout mymaster 3000\n", host, mport)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				return err
			}
		}
		args = []string{conf, "--sentinel", "--bind", "127.0.0.1", "--port", port, "--dir", s.dir,
			"--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log")}
	}
	s.cmd = exec.Command(s.bin, append(args, s.args...)...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exit := make(chan error, 1)
	go func() { exit <- s.cmd.Wait() }()
	s.exit = exit
	client := goredis.NewClient(&goredis.Options{Addr: s.addr, MaxRetries: -1})
	defer func() { _ = client.Close() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil || strings.HasPrefix(err.Error(), "NOAUTH") { // loaded, maybe password-protected
			return nil
		}
		select {
		case werr := <-exit:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited (%v) before answering; log:\n%s", s.addr, werr, tail(log, 2000))
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server on %s did not answer PING within 15 s: %w", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL to the server process (by its pid) and reaps it.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exit:
		s.cmd = nil
		return // already gone
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Errorf("kill redis-server pid %d: %v", s.cmd.Process.Pid, err)
	}
	<-s.exit
	s.cmd = nil
}

// restart kills the server with SIGKILL and starts it again over the same
// directory and port.
func (s *server) restart(t testing.TB) {
	t.Helper()
	pid := s.cmd.Process.Pid
	s.kill()
	var err error
	for range 20 { // the port can take a moment to be free again
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restart redis-server (was pid %d) on %s: %v", pid, s.addr, err)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// uniquePrefix returns a fresh key prefix on a private server, whose data
// goes away with the test's temporary directory.
func uniquePrefix(testing.TB) string {
	return testenv.Unique("eddytest") + ":"
}
