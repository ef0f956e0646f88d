package singlestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/statedb"
)

// freshDSN returns the DSN of a new, empty database on the test server,
// dropped when the test ends.
func freshDSN(t testing.TB) string {
	t.Helper()
	return testenv.MySQL(t)
}

// dbName returns the database of dsn.
func dbName(t testing.TB, dsn string) string {
	t.Helper()
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parse test DSN: %v", err)
	}
	return mc.DBName
}

// openAdmin opens a second, independent pool on dsn, closed when the test
// ends.
func openAdmin(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open admin pool: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newTestStore opens a Store on a fresh database (unless cfg.DSN is set),
// closed when the test ends. The background sweep is off unless
// cfg.SweepInterval asks for it.
func newTestStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.DSN == "" {
		cfg.DSN = freshDSN(t)
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = -1
	}
	s, err := New(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustAcquire(t testing.TB, s statedb.Store, p statedb.Partition) statedb.Claim {
	t.Helper()
	c, err := s.Acquire(testCtx(t), p)
	if err != nil {
		t.Fatalf("Acquire(%v): %v", p, err)
	}
	return c
}

func mustCommit(t testing.TB, s statedb.Store, c *statedb.Commit) {
	t.Helper()
	if err := s.Commit(testCtx(t), c); err != nil {
		t.Fatalf("Commit(%v epoch %d offset %d): %v", c.Partition, c.Epoch, c.Offset, err)
	}
}

func mustLoad(t testing.TB, s statedb.Store, p statedb.Partition, keys ...string) map[string][]byte {
	t.Helper()
	m, err := s.Load(testCtx(t), p, keys)
	if err != nil {
		t.Fatalf("Load(%v, %d keys): %v", p, len(keys), err)
	}
	return m
}

// wantValues checks that Load(keys) returns exactly want.
func wantValues(t testing.TB, s statedb.Store, p statedb.Partition, keys []string, want map[string][]byte) {
	t.Helper()
	got := mustLoad(t, s, p, keys...)
	if len(got) != len(want) {
		t.Errorf("Load(%v): %d keys, want %d", p, len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("Load(%v): key %q missing", p, k)
		case !bytes.Equal(g, w):
			t.Errorf("Load(%v): key %q = %q, want %q", p, k, g, w)
		}
	}
}

// ownerRow reads p's owner row directly.
func ownerRow(t testing.TB, s *Store, p statedb.Partition) (epoch, watermark int64) {
	t.Helper()
	err := s.db.QueryRow("SELECT `epoch`, `watermark` FROM "+s.t.owners+" WHERE `topic` = ? AND `part` = ?",
		[]byte(p.Topic), p.Partition).Scan(&epoch, &watermark)
	if err != nil {
		t.Fatalf("read owner row of %v: %v", p, err)
	}
	return epoch, watermark
}

// countRows counts all rows of a table, expired or not.
func countRows(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func keysN(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%06d", prefix, i)
	}
	return out
}

func isFenced(err error) bool { return errors.Is(err, statedb.ErrFenced) }
