package singlestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/statedb"
)

// Store is the SingleStore (and MySQL/MariaDB) backend of statedb.Store.
//
// All methods are safe for concurrent use. Each call takes a connection
// from the pool for its duration; Commit and Acquire hold it for their
// transaction. A Store starts one goroutine, the background sweep, which
// Close stops.
type Store struct {
	db      *sql.DB
	ownsDB  bool
	dialect string
	t       tables
	// txOpts is nil when the session already runs at READ COMMITTED.
	txOpts *sql.TxOptions
	log    *zap.Logger

	sweepInterval time.Duration
	sweepBatch    int
	stopSweep     context.CancelFunc
	sweepDone     chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var _ statedb.Store = (*Store)(nil)

// readCommitted is the isolation level of every transaction of the store:
// SingleStore's only level, and the one where InnoDB takes no gap locks, so
// that commits of different partitions never block each other.
const readCommitted = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"

// New opens a connection pool for cfg, creates those of the namespace's
// tables that do not exist yet (the DSN's user needs the CREATE privilege
// only then; see DDL to create them ahead of time) and starts the
// background sweep.
// ctx bounds the connection and the DDL only.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		return nil, err
	}
	mc, err := cfg.driverConfig()
	if err != nil {
		return nil, err
	}
	secret := mc.Passwd
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("singlestore: Config.DSN: %w", redactErr(err, secret))
	}
	sc := &sessionConnector{Connector: connector, log: cfg.Logger}
	if cfg.Dialect == DialectMySQL {
		sc.init = append(sc.init, readCommitted)
	}
	maxIdle := 5 * time.Minute
	if cfg.WaitTimeout > 0 {
		sc.optional = append(sc.optional, optionalStmt{
			q: fmt.Sprintf("SET SESSION wait_timeout = %d", cfg.WaitTimeout/time.Second),
			without: "a worker frozen in the middle of a commit keeps its partition's rows locked " +
				"until it resumes or the server's own wait_timeout ends its connection",
		})
		// Retire idle pooled connections before the server closes them.
		maxIdle = min(maxIdle, cfg.WaitTimeout/2)
	}
	var c driver.Connector = connector
	if len(sc.init)+len(sc.optional) > 0 {
		c = sc
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxOpenConns)
	db.SetConnMaxIdleTime(maxIdle)

	s := newStore(db, true, cfg, nil)
	// Errors from here on come from the server or the network, and neither
	// ever quotes the password (the server says "using password: YES"):
	// they keep their chain for errors.Is.
	if err := s.createTables(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.startSweep()
	return s, nil
}

// NewFromDB is New over a pool the caller opened (with go-sql-driver/mysql
// or a compatible driver). cfg.DSN, cfg.TLS and cfg.MaxOpenConns must be
// empty: they belong to db. Close stops the sweep but leaves db open.
//
// With DialectMySQL each transaction first sets READ COMMITTED, one more
// round trip than New's connections, which set it once per session. The
// pool should use interpolateParams=true (else every statement is a
// prepare, an execute and a close); clientFoundRows is not required.
func NewFromDB(ctx context.Context, db *sql.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("singlestore: NewFromDB: db is nil")
	}
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		return nil, err
	}
	var opts *sql.TxOptions
	if cfg.Dialect == DialectMySQL {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	s := newStore(db, false, cfg, opts)
	if err := s.createTables(ctx); err != nil {
		return nil, err
	}
	s.startSweep()
	return s, nil
}

func newStore(db *sql.DB, owns bool, cfg Config, opts *sql.TxOptions) *Store {
	return &Store{
		db:            db,
		ownsDB:        owns,
		dialect:       cfg.Dialect,
		t:             newTables(cfg.Namespace),
		txOpts:        opts,
		log:           cfg.Logger,
		sweepInterval: cfg.SweepInterval,
		sweepBatch:    cfg.SweepBatch,
	}
}

// DDL returns the statements that create the tables of namespace in dialect
// ("" meaning DialectMySQL, namespace "" meaning DefaultNamespace), for an
// operator who creates them ahead of time. New runs the same statements.
func DDL(dialect, namespace string) ([]string, error) {
	cfg, err := Config{Dialect: dialect, Namespace: namespace}.withDefaults(true)
	if err != nil {
		return nil, err
	}
	return ddl(cfg.Dialect, newTables(cfg.Namespace)), nil
}

func (s *Store) createTables(ctx context.Context) error {
	quoted := []string{s.t.owners, s.t.state, s.t.ids, s.t.timers}
	names := make([]any, len(quoted))
	for i, q := range quoted {
		names[i] = strings.Trim(q, "`")
	}
	// Create only the missing tables: a user without the CREATE privilege
	// (the tables made ahead of time from DDL) must still be able to start.
	existing := map[string]bool{}
	err := s.query(ctx, "SELECT `TABLE_NAME` FROM information_schema.`TABLES`"+
		" WHERE `TABLE_SCHEMA` = DATABASE() AND `TABLE_NAME` IN ("+placeholders(len(names))+")", names,
		func(rows *sql.Rows) error {
			var name string
			if err := rows.Scan(&name); err != nil {
				return err
			}
			existing[name] = true
			return nil
		})
	if err != nil {
		return fmt.Errorf("singlestore: list tables: %w", err)
	}
	for i, q := range ddl(s.dialect, s.t) {
		if existing[names[i].(string)] {
			continue
		}
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("singlestore: create table %s: %w", quoted[i], err)
		}
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("singlestore: ping: %w", err)
	}
	return nil
}

// Close stops the sweep and, unless the store came from NewFromDB, closes
// the pool. It waits for a sweep in progress to stop. Calls after the first
// return the first's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stopSweep != nil {
			s.stopSweep()
			<-s.sweepDone
		}
		if s.ownsDB {
			s.closeErr = s.db.Close()
		}
	})
	return s.closeErr
}

// Acquire claims p: in one transaction it inserts p's owner row with epoch 1
// or bumps its epoch, then reads the row back. The bump write-locks the row
// until COMMIT, so concurrent Acquires of p run one after the other and each
// sees the epoch its predecessor committed: epochs are unique and strictly
// increasing. It costs four statements (BEGIN, INSERT, SELECT, COMMIT).
func (s *Store) Acquire(ctx context.Context, p statedb.Partition) (statedb.Claim, error) {
	var c statedb.Claim
	if err := checkPartition(p); err != nil {
		return c, fmt.Errorf("singlestore: acquire: %w", err)
	}
	topic := []byte(p.Topic)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO "+s.t.owners+
			" (`topic`, `part`, `epoch`, `watermark`) VALUES (?, ?, 1, ?)"+
			" ON DUPLICATE KEY UPDATE `epoch` = `epoch` + 1",
			topic, p.Partition, statedb.NoOffset)
		if err != nil {
			return fmt.Errorf("bump epoch: %w", err)
		}
		err = tx.QueryRowContext(ctx, "SELECT `epoch`, `watermark`, `meta` FROM "+s.t.owners+
			" WHERE `topic` = ? AND `part` = ?", topic, p.Partition).
			Scan(&c.Epoch, &c.Offset, &c.Meta)
		if err != nil {
			return fmt.Errorf("read owner row: %w", err)
		}
		return nil
	})
	if err != nil {
		return statedb.Claim{}, fmt.Errorf("singlestore: acquire %s: %w", p, err)
	}
	return c, nil
}

// liveRow is the condition of a row that has not expired, on the server's
// clock.
const liveRow = "(`expire_at` IS NULL OR `expire_at` > UTC_TIMESTAMP(6))"

// maxInList is the most keys one SELECT or DELETE names in its IN list.
// Load and Seen issue one statement per call up to this many keys, and one
// per maxInList keys beyond.
const maxInList = 1000

// Load returns the live values of keys in p, with one SELECT per call (one
// per 1,000 keys above that). Keys never stored, deleted or expired are
// absent from the map.
func (s *Store) Load(ctx context.Context, p statedb.Partition, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if err := checkPartition(p); err != nil {
		return nil, fmt.Errorf("singlestore: load: %w", err)
	}
	for chunk := range slices.Chunk(keys, maxInList) {
		q := "SELECT `k`, `v` FROM " + s.t.state + " WHERE `topic` = ? AND `part` = ? AND `k` IN (" +
			placeholders(len(chunk)) + ") AND " + liveRow
		err := s.query(ctx, q, partArgs(p, chunk), func(rows *sql.Rows) error {
			var k, v []byte
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			if v == nil {
				v = []byte{}
			}
			out[string(k)] = v
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("singlestore: load %s (%d keys): %w", p, len(keys), err)
		}
	}
	return out, nil
}

// Seen reports which of ids are recorded for p and not expired, with one
// SELECT per call (one per 1,000 ids above that). Only seen ids are in the
// map.
func (s *Store) Seen(ctx context.Context, p statedb.Partition, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if err := checkPartition(p); err != nil {
		return nil, fmt.Errorf("singlestore: seen: %w", err)
	}
	for chunk := range slices.Chunk(ids, maxInList) {
		q := "SELECT `id` FROM " + s.t.ids + " WHERE `topic` = ? AND `part` = ? AND `id` IN (" +
			placeholders(len(chunk)) + ") AND " + liveRow
		err := s.query(ctx, q, partArgs(p, chunk), func(rows *sql.Rows) error {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out[string(id)] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("singlestore: seen %s (%d ids): %w", p, len(ids), err)
		}
	}
	return out, nil
}

// Due returns up to limit timers of p under prefix with Due <= until,
// earliest first (ties by key), with one SELECT over the (topic, part, due)
// index; the prefix is a byte range on the key (k >= prefix AND k <
// the prefix's successor). A limit of 0 or less returns none.
func (s *Store) Due(ctx context.Context, p statedb.Partition, prefix string, until int64, limit int) ([]statedb.Timer, error) {
	if limit <= 0 {
		return nil, nil
	}
	if err := checkPartition(p); err != nil {
		return nil, fmt.Errorf("singlestore: due: %w", err)
	}
	var out []statedb.Timer
	q := "SELECT `k`, `due` FROM " + s.t.timers + " WHERE `topic` = ? AND `part` = ? AND `due` <= ?"
	args := []any{[]byte(p.Topic), p.Partition, until}
	if prefix != "" {
		q += " AND `k` >= ?"
		args = append(args, []byte(prefix))
		if end, ok := prefixEnd(prefix); ok {
			q += " AND `k` < ?"
			args = append(args, end)
		}
	}
	q += " ORDER BY `due`, `k` LIMIT ?"
	args = append(args, limit)
	err := s.query(ctx, q, args, func(rows *sql.Rows) error {
		var k []byte
		var t statedb.Timer
		if err := rows.Scan(&k, &t.Due); err != nil {
			return err
		}
		t.Key = string(k)
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("singlestore: due %s until %d: %w", p, until, err)
	}
	return out, nil
}

// query runs q and calls scan for each row.
func (s *Store) query(ctx context.Context, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// maxTxAttempts bounds the retries of a transaction the server aborted as a
// deadlock victim (it rolled it back whole, so running it again is safe).
const maxTxAttempts = 3

// inTx runs fn in a transaction and commits it, retrying deadlocks.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, fn)
		if err == nil || !isDeadlock(err) || attempt == maxTxAttempts || ctx.Err() != nil {
			return err
		}
		s.log.Debug("retrying deadlocked transaction", zap.Int("attempt", attempt), zap.Error(err))
	}
}

func (s *Store) tryTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, s.txOpts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// isDeadlock reports a MySQL/SingleStore deadlock (ER_LOCK_DEADLOCK).
func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1213
}

func checkPartition(p statedb.Partition) error {
	switch {
	case p.Topic == "":
		return fmt.Errorf("partition %s: empty topic", p)
	case len(p.Topic) > MaxTopicLen:
		return fmt.Errorf("partition %.40q...: topic is %d bytes, more than %d", p.Topic, len(p.Topic), MaxTopicLen)
	}
	return nil
}

// partArgs returns the arguments topic, part, keys... as binary values.
func partArgs(p statedb.Partition, keys []string) []any {
	args := make([]any, 0, 2+len(keys))
	args = append(args, []byte(p.Topic), p.Partition)
	for _, k := range keys {
		args = append(args, []byte(k))
	}
	return args
}

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// sessionConnector runs init statements on every new connection, then
// the optional ones: a server that does not know or will not set an
// optional statement's variable (MySQL errors 1193, 1228, 1229, 1238) gets
// the connection anyway, and the first such refusal is logged as a
// warning.
type sessionConnector struct {
	driver.Connector
	init     []string
	optional []optionalStmt
	log      *zap.Logger
	warned   sync.Once
}

// optionalStmt is a session setting the store can do without, and what
// is lost without it.
type optionalStmt struct{ q, without string }

func (c *sessionConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("singlestore: driver connection cannot execute statements")
	}
	for _, q := range c.init {
		if _, err := ex.ExecContext(ctx, q, nil); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("singlestore: session setup %q: %w", q, err)
		}
	}
	for _, o := range c.optional {
		_, err := ex.ExecContext(ctx, o.q, nil)
		var me *mysql.MySQLError
		switch {
		case err == nil:
		case errors.As(err, &me) && (me.Number == 1193 || me.Number == 1228 || me.Number == 1229 || me.Number == 1238):
			c.warned.Do(func() {
				c.log.Warn("the server refused a session setting; going on without it",
					zap.String("statement", o.q), zap.String("without_it", o.without), zap.Error(err))
			})
		default:
			_ = conn.Close()
			return nil, fmt.Errorf("singlestore: session setup %q: %w", o.q, err)
		}
	}
	return conn, nil
}

// prefixEnd is the least byte string greater than every string that begins
// with prefix: prefix with its last byte below 0xff incremented and what
// follows it dropped. ok is false when there is none (prefix is all 0xff).
func prefixEnd(prefix string) (end []byte, ok bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return b[:i+1], true
		}
	}
	return nil, false
}
