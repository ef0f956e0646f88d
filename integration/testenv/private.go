package testenv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// Time limits of private servers: starting one (MariaDB's crash recovery
// included) and a clean shutdown on SIGTERM.
const (
	privateStartTimeout = 30 * time.Second
	privateStopTimeout  = 60 * time.Second
)

// Server is a private database server process that a test starts, stops
// and starts again: redis-server from [PrivateRedis], mariadbd from
// [PrivateMariaDB]. It listens on a loopback port chosen when it is made
// and keeps its files in a temporary directory of the test; Start after
// Stop or Kill reuses both, so what the server had made durable before it
// went down is there again. When the test ends the process is killed and
// its files removed.
//
// The process is started with Linux's parent-death signal set to SIGKILL,
// so a test binary that dies (a -timeout panic, say) takes its servers
// with it instead of leaving them running.
//
// # Concurrency
//
// The methods may be called from any goroutine; a mutex orders them.
// Start fails the test with t.Fatal when the server does not come up, so
// like t.Fatal it belongs on the test's goroutine. Stop and Kill report
// problems with t.Error.
type Server struct {
	t    testing.TB
	name string // binary name, for messages
	bin  string
	dir  string // the test's directory for this server
	log  string // the server's log file
	addr string
	dsn  string // MariaDB only

	args  func() []string
	ready func(ctx context.Context, pid int) error // the process pid answers
	setup func(ctx context.Context) error          // after the first start only

	// startTimeout bounds one start (privateStartTimeout when 0);
	// cleanExit, when set, says whether Wait's error after SIGTERM is a
	// clean shutdown (a JVM reports exit status 143).
	startTimeout time.Duration
	cleanExit    func(err error) bool

	mu      sync.Mutex
	proc    *process // nil when not started by this Server, or killed
	started bool     // setup has run
}

// process is one run of the server.
type process struct {
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has exited
	err  error         // cmd.Wait's result, once exit is closed
}

func (p *process) exited() bool {
	select {
	case <-p.exit:
		return true
	default:
		return false
	}
}

// Addr returns the server's host:port on loopback. It stays the same
// across Stop, Kill and Start.
func (s *Server) Addr() string { return s.addr }

// DSN returns a go-sql-driver/mysql DSN of database eddy as user eddy
// (password eddy) over TCP, with parseTime=true and clientFoundRows=true
// (see [MySQL]). It fails the test when s is not a MariaDB server.
func (s *Server) DSN() string {
	if s.dsn == "" {
		s.t.Fatalf("%s on %s has no DSN: only PrivateMariaDB servers have one", s.name, s.addr)
	}
	return s.dsn
}

// LogFile returns the path of the server's log file, which keeps the
// output of every run of the process.
func (s *Server) LogFile() string { return s.log }

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

func (s *Server) runningLocked() bool { return s.proc != nil && !s.proc.exited() }

// Start starts the server again on the same port over the same files and
// waits until it answers (for Redis: has loaded its append-only file; for
// MariaDB: has recovered and accepts user eddy). It does nothing if the
// server is running. It retries for a while when the port is not free
// again yet, then fails the test.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runningLocked() {
		return
	}
	deadline := time.Now().Add(s.startLimit())
	for {
		err := s.startLocked()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("restart %s on %s: %v", s.name, s.addr, err)
		}
		time.Sleep(200 * time.Millisecond) // the port may not be free again yet
	}
}

// Kill sends SIGKILL to the server and waits until the process has gone:
// a crash, which loses what the server had not made durable. It does
// nothing if the server is not running.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

// Stop sends SIGTERM to the server and waits until it has shut down
// cleanly; if it has not within a minute, it is killed and the test
// fails. It does nothing if the server is not running.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		return
	}
	p := s.proc
	pid := p.cmd.Process.Pid
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Errorf("stop %s pid %d: SIGTERM: %v", s.name, pid, err)
	}
	select {
	case <-p.exit:
		if p.err != nil && (s.cleanExit == nil || !s.cleanExit(p.err)) {
			s.t.Errorf("stop %s pid %d: it exited with %v after SIGTERM; log %s:\n%s",
				s.name, pid, p.err, s.log, logTail(s.log))
		}
		s.proc = nil
	case <-time.After(privateStopTimeout):
		s.t.Errorf("stop %s pid %d: still running %v after SIGTERM; killing it", s.name, pid, privateStopTimeout)
		s.killLocked()
	}
}

func (s *Server) killLocked() {
	p := s.proc
	if p == nil {
		return
	}
	if !p.exited() {
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.t.Errorf("kill %s pid %d: %v", s.name, p.cmd.Process.Pid, err)
		}
		<-p.exit
	}
	s.proc = nil
}

// startLimit is how long one start may take.
func (s *Server) startLimit() time.Duration {
	if s.startTimeout > 0 {
		return s.startTimeout
	}
	return privateStartTimeout
}

// startLocked runs the process once and waits until it answers, or exits,
// or s.startLimit() passes.
func (s *Server) startLocked() error {
	cmd := exec.Command(s.bin, s.args()...)
	cmd.SysProcAttr = procAttr()
	out, err := os.OpenFile(filepath.Join(s.dir, s.name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = out.Close() }() // the child has its own copy
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, exit: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exit)
	}()
	s.proc = p

	limit := s.startLimit()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.ready(actx, cmd.Process.Pid)
		acancel()
		if err == nil {
			break
		}
		select {
		case <-p.exit:
			s.proc = nil
			return fmt.Errorf("%s exited (%v) before answering on %s; log %s:\n%s",
				s.name, p.err, s.addr, s.log, logTail(s.log))
		case <-ctx.Done():
			s.killLocked()
			return fmt.Errorf("%s did not answer on %s within %v (last error: %w); log %s:\n%s",
				s.name, s.addr, limit, err, s.log, logTail(s.log))
		case <-time.After(25 * time.Millisecond):
		}
	}
	if !s.started && s.setup != nil {
		if err := s.setup(ctx); err != nil {
			s.killLocked()
			return fmt.Errorf("set up %s on %s: %w", s.name, s.addr, err)
		}
	}
	s.started = true
	return nil
}

// startNew starts s for the first time on a fresh free port, trying
// another port when the chosen one was taken meanwhile, and registers its
// cleanup.
func (s *Server) startNew() {
	s.t.Helper()
	s.t.Cleanup(s.Kill)
	var err error
	for range 3 {
		s.addr = FreeAddr(s.t)
		s.mu.Lock()
		err = s.startLocked()
		s.mu.Unlock()
		if err == nil {
			return
		}
	}
	s.t.Fatalf("start %s: %v", s.name, err)
}

// PrivateRedis starts a redis-server of the test's own on a free loopback
// port, with every write made durable before it is acknowledged
// (--appendonly yes --appendfsync always, no RDB snapshots), its files in a
// temporary directory, and noeviction. It waits until the server answers
// PING. redis-server must be on PATH (`make services` installs it); if it
// is not, the test fails.
func PrivateRedis(t testing.TB) *Server {
	t.Helper()
	bin := lookBinary(t, "redis-server")
	s := &Server{t: t, name: "redis-server", bin: bin, dir: t.TempDir()}
	s.log = filepath.Join(s.dir, "redis.log")
	s.args = func() []string {
		_, port, _ := net.SplitHostPort(s.addr)
		return []string{
			"--bind", "127.0.0.1", "--port", port, "--dir", s.dir,
			"--appendonly", "yes", "--appendfsync", "always", "--save", "",
			"--maxmemory-policy", "noeviction", "--daemonize", "no",
			"--logfile", s.log,
		}
	}
	s.ready = func(ctx context.Context, pid int) error {
		// PING answers LOADING while the append-only file is replayed.
		c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
		defer func() { _ = c.Close() }()
		if err := c.Ping(ctx).Err(); err != nil {
			return err
		}
		// Another server may have taken the port meanwhile: make sure
		// this one answered.
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("process_id:%d\r\n", pid); !strings.Contains(info, want) {
			return fmt.Errorf("%s is answered by another redis-server, not pid %d", s.addr, pid)
		}
		return nil
	}
	s.startNew()
	return s
}

// PrivateMariaDB starts a mariadbd of the test's own on a free loopback
// port, over a data directory initialised for it with mariadb-install-db
// (about 2 s) and a unix socket in a temporary directory, with durable
// InnoDB commits (innodb_flush_log_at_trx_commit=1, the default), a small
// buffer pool and redo log. On its first start it creates database eddy
// and user eddy (password eddy) with all privileges; [Server.DSN] logs in
// as that user. Running as root, the server runs as root (--user=root), so
// that the test's temporary directory needs no other owner.
//
// mariadbd and mariadb-install-db must be installed (`make services`
// installs them); if they are not, the test fails.
func PrivateMariaDB(t testing.TB) *Server {
	t.Helper()
	bin := lookBinary(t, "mariadbd", "/usr/sbin/mariadbd")
	installDB := lookBinary(t, "mariadb-install-db")
	s := &Server{t: t, name: "mariadbd", bin: bin, dir: t.TempDir()}
	s.log = filepath.Join(s.dir, "mariadb.log")
	data := filepath.Join(s.dir, "data")
	sock := socketPath(t, s.dir, "mysqld.sock")
	var user []string
	if os.Geteuid() == 0 {
		user = []string{"--user=root"} // mariadbd refuses root unless told
	}
	// Small InnoDB files: the defaults (128 MB pool, 96 MB redo log) cost
	// memory and disk that a test never needs.
	innodb := []string{"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M"}

	install := exec.Command(installDB, append(append([]string{
		"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve",
	}, user...), innodb...)...)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db --datadir=%s: %v\n%s", data, err, tail(out, 3000))
	}

	s.args = func() []string {
		_, port, _ := net.SplitHostPort(s.addr)
		return append(append([]string{
			"--no-defaults", "--datadir=" + data, "--socket=" + sock,
			"--pid-file=" + filepath.Join(s.dir, "mariadbd.pid"), "--log-error=" + s.log,
			"--bind-address=127.0.0.1", "--port=" + port, "--skip-name-resolve",
			"--max-connections=200",
		}, user...), innodb...)
	}
	root := (&mysql.Config{User: "root", Net: "unix", Addr: sock, Timeout: 2 * time.Second,
		AllowNativePasswords: true}).FormatDSN()
	s.setup = func(ctx context.Context) error {
		db, err := sql.Open("mysql", root)
		if err != nil {
			return err
		}
		defer func() { _ = db.Close() }()
		for _, q := range []string{
			"CREATE DATABASE IF NOT EXISTS eddy",
			"CREATE USER IF NOT EXISTS 'eddy'@'127.0.0.1' IDENTIFIED BY 'eddy'",
			"GRANT ALL ON *.* TO 'eddy'@'127.0.0.1'",
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("as root over %s: %s: %w", sock, q, err)
			}
		}
		return nil
	}
	// Ready means: the server has recovered and answers on its own
	// socket, which it creates only once it listens on its TCP port too.
	// (User eddy exists only after setup, which runs next.)
	s.ready = func(ctx context.Context, _ int) error { return pingMySQL(ctx, root) }
	s.startNew()

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "eddy", "eddy", "tcp", s.addr, "eddy"
	cfg.ParseTime, cfg.ClientFoundRows = true, true
	s.dsn = cfg.FormatDSN()
	if err := pingMySQL(context.Background(), s.dsn); err != nil {
		t.Fatalf("mariadbd on %s: user eddy cannot log in over TCP: %v", s.addr, err)
	}
	return s
}

func pingMySQL(ctx context.Context, dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	return db.PingContext(ctx)
}

// lookBinary finds a server binary on PATH, or at one of the fallback
// paths (Debian keeps mariadbd in /usr/sbin, which a user's PATH may
// lack), or fails the test.
func lookBinary(t testing.TB, name string, fallback ...string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err == nil {
		return bin
	}
	for _, f := range fallback {
		if st, serr := os.Stat(f); serr == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return f
		}
	}
	t.Fatalf("%s is not installed (%v): run `make services`, which installs it", name, err)
	return ""
}

// socketPath returns dir/name, or the same name in a shorter temporary
// directory when that path is too long for a unix socket (108 bytes on
// Linux, with the test's name in dir).
func socketPath(t testing.TB, dir, name string) string {
	t.Helper()
	if p := filepath.Join(dir, name); len(p) < 100 {
		return p
	}
	short, err := os.MkdirTemp("", "eddy-sock-")
	if err != nil {
		t.Fatalf("temporary directory for a unix socket: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(short) })
	return filepath.Join(short, name)
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// for a server a test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// logTail returns the end of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return strings.TrimSpace(string(tail(b, 3000)))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
