package singlestore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/internal/clientlog"
)

// Dialects accepted by Config.Dialect. They differ only in the DDL the store
// emits; every read and write is the same SQL on both.
const (
	// DialectMySQL emits InnoDB DDL for MySQL and MariaDB (the default).
	DialectMySQL = "mysql"
	// DialectSingleStore emits SingleStore rowstore DDL with shard keys.
	DialectSingleStore = "singlestore"
)

// Defaults applied by New and NewFromDB to zero Config fields.
const (
	DefaultNamespace     = "eddy"
	DefaultMaxOpenConns  = 32
	DefaultSweepInterval = time.Minute
	DefaultSweepBatch    = 1000
	DefaultWaitTimeout   = 30 * time.Second
)

// maxNamespace keeps the longest table name (namespace + "_timers") within
// the 64 characters MySQL, MariaDB and SingleStore allow.
const maxNamespace = 48

// Config configures a Store. The zero value of every field but DSN selects
// its default. A Config is a plain value: New copies what it needs and
// never modifies the caller's Config (nor its TLS config).
type Config struct {
	// DSN is a go-sql-driver/mysql data source name,
	// "user:password@tcp(host:3306)/database?param=value". New forces
	// clientFoundRows=true, parseTime=true and interpolateParams=true on top
	// of whatever it says. The password never appears in an error or a log
	// line of this package, nor in the output of Config.String.
	DSN string
	// Dialect is DialectMySQL ("mysql", the default) or DialectSingleStore
	// ("singlestore"). It selects the DDL (and, for "mysql", the session's
	// isolation level); the DML is identical.
	Dialect string
	// Namespace prefixes the store's four tables: <Namespace>_owners,
	// <Namespace>_state, <Namespace>_ids and <Namespace>_timers. Letters,
	// digits and '_' only, at most 48 characters; default "eddy". Stores
	// with different namespaces in one database never see each other's
	// data; stores with the same namespace share it (that is how several
	// workers of one pipeline share their state).
	Namespace string
	// TLS, when set, encrypts the connections with this configuration
	// (overriding any tls= parameter of the DSN). New clones it. Without
	// ServerName, the host of the DSN's address is verified.
	TLS *tls.Config
	// MaxOpenConns caps the connection pool (default 32). The runtime holds
	// one connection per partition while that partition commits; more
	// partitions than connections queue for one.
	MaxOpenConns int
	// SweepInterval is how often the background sweep deletes expired
	// state entries and event IDs (default one minute). Negative disables
	// the sweep: expired rows then stay in the tables (still invisible to
	// reads) until Sweep is called.
	SweepInterval time.Duration
	// SweepBatch bounds the rows one sweep statement deletes (default 1000),
	// so the sweep never holds many row locks at once.
	SweepBatch int
	// WaitTimeout is the session wait_timeout New sets on each
	// connection: the server closes a connection that has sent nothing for
	// this long, rolling back any transaction it left open. It bounds how
	// long a worker frozen in the middle of a commit (SIGSTOP, a paused
	// VM, a long stall) keeps its partition's rows locked: the partition's
	// next owner waits for those locks, at most this long, and the frozen
	// worker's commit is undone, to be fenced when it retries. Whole
	// seconds, default 30s; negative leaves the server's setting (8 hours
	// by default). A server that refuses to set it per session gets a
	// warning in the log, naming what is lost, and the store works
	// without it. Ignored by NewFromDB: put wait_timeout=30 in that pool's
	// DSN instead.
	WaitTimeout time.Duration
	// Logger receives the sweep's errors and the driver's messages
	// (default: none).
	Logger *zap.Logger
}

// String describes c with the DSN's password replaced by "xxxxx", so that a
// Config printed with %v or %+v never leaks it.
func (c Config) String() string {
	tlsSet := "nil"
	if c.TLS != nil {
		tlsSet = "set"
	}
	return fmt.Sprintf("singlestore.Config{DSN:%q Dialect:%q Namespace:%q TLS:%s MaxOpenConns:%d SweepInterval:%s SweepBatch:%d WaitTimeout:%s}",
		RedactDSN(c.DSN), c.Dialect, c.Namespace, tlsSet, c.MaxOpenConns, c.SweepInterval, c.SweepBatch, c.WaitTimeout)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// RedactDSN returns dsn with its password replaced by "xxxxx", for logs.
// A DSN that does not parse is replaced whole.
func RedactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	if mc.Passwd != "" {
		mc.Passwd = "xxxxx"
	}
	mc.TLS = nil // FormatDSN would otherwise try to name it
	return mc.FormatDSN()
}

// withDefaults returns c validated and with defaults filled in. fromDB is
// true for NewFromDB, where the connection fields must stay empty.
func (c Config) withDefaults(fromDB bool) (Config, error) {
	switch c.Dialect {
	case "":
		c.Dialect = DialectMySQL
	case DialectMySQL, DialectSingleStore:
	default:
		return c, fmt.Errorf("singlestore: Config.Dialect %q: want %q or %q", c.Dialect, DialectMySQL, DialectSingleStore)
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if err := validNamespace(c.Namespace); err != nil {
		return c, err
	}
	if fromDB {
		switch {
		case c.DSN != "":
			return c, errors.New("singlestore: Config.DSN must be empty with NewFromDB (the *sql.DB is already open)")
		case c.TLS != nil:
			return c, errors.New("singlestore: Config.TLS must be nil with NewFromDB (configure TLS on the *sql.DB)")
		case c.MaxOpenConns != 0:
			return c, errors.New("singlestore: Config.MaxOpenConns must be 0 with NewFromDB (call SetMaxOpenConns on the *sql.DB)")
		}
	} else {
		if c.DSN == "" {
			return c, errors.New("singlestore: Config.DSN is empty")
		}
		switch {
		case c.MaxOpenConns < 0:
			return c, fmt.Errorf("singlestore: Config.MaxOpenConns %d is negative", c.MaxOpenConns)
		case c.MaxOpenConns == 0:
			c.MaxOpenConns = DefaultMaxOpenConns
		}
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	switch {
	case c.SweepBatch < 0:
		return c, fmt.Errorf("singlestore: Config.SweepBatch %d is negative", c.SweepBatch)
	case c.SweepBatch == 0:
		c.SweepBatch = DefaultSweepBatch
	}
	switch {
	case c.WaitTimeout == 0:
		c.WaitTimeout = DefaultWaitTimeout
	case c.WaitTimeout > 0 && c.WaitTimeout%time.Second != 0:
		return c, fmt.Errorf("singlestore: Config.WaitTimeout %s is not a whole number of seconds", c.WaitTimeout)
	case c.WaitTimeout > 365*24*time.Hour:
		return c, fmt.Errorf("singlestore: Config.WaitTimeout %s is more than a year, the server's maximum", c.WaitTimeout)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

func validNamespace(ns string) error {
	if len(ns) > maxNamespace {
		return fmt.Errorf("singlestore: Config.Namespace %q is %d characters, more than %d", ns, len(ns), maxNamespace)
	}
	for i, r := range ns {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("singlestore: Config.Namespace %q: character %q at %d is not a letter, digit or '_'", ns, r, i)
		}
	}
	return nil
}

// driverConfig parses c.DSN into the driver's configuration and forces the
// parameters the store relies on.
func (c Config) driverConfig() (*mysql.Config, error) {
	mc, err := mysql.ParseDSN(c.DSN)
	if err != nil {
		return nil, fmt.Errorf("singlestore: Config.DSN: %w", redactErr(err, dsnPassword(c.DSN)))
	}
	// Rows-affected must count matched rows, not changed ones: the fence
	// UPDATE checks it is exactly 1 (see Commit).
	mc.ClientFoundRows = true
	mc.ParseTime = true
	// One round trip per statement instead of prepare/execute/close. The
	// driver escapes []byte arguments as _binary'...' literals.
	mc.InterpolateParams = true
	// The driver's pool liveness check lets database/sql replace a
	// connection the server closed (KILL, restart) before using it.
	mc.CheckConnLiveness = true
	if c.TLS != nil {
		mc.TLS = c.TLS.Clone()
	}
	mc.Logger = clientlog.MySQL(c.Logger)
	return mc, nil
}

// dsnPassword extracts the password of a DSN that may not parse, so that it
// can be cut out of an error message: the text between the first ':' and the
// last '@' before the database part.
func dsnPassword(dsn string) string {
	at := strings.LastIndexByte(dsn, '@')
	if at < 0 {
		return ""
	}
	userinfo := dsn[:at]
	colon := strings.IndexByte(userinfo, ':')
	if colon < 0 {
		return ""
	}
	return userinfo[colon+1:]
}

// redactedError is an error whose message had a secret cut out. It does not
// unwrap: the wrapped error's own message would bring the secret back.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }

// redactErr returns err, or a copy of its message without secret when the
// message contains it.
func redactErr(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx")}
}
