package testenv

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// refused reports whether nothing accepts TCP connections at addr.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}

// TestPrivateRedisKeepsAcknowledgedWrites writes to a private Redis, takes
// it down (SIGKILL, then SIGTERM) and starts it again: the address stays,
// the server is unreachable while down, and every acknowledged write is
// back after each restart.
func TestPrivateRedisKeepsAcknowledgedWrites(t *testing.T) {
	s := PrivateRedis(t)
	other := PrivateRedis(t)
	if s.Addr() == other.Addr() {
		t.Fatalf("two private servers share the address %s", s.Addr())
	}
	addr := s.Addr()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer func() { _ = c.Close() }()

	tests := []struct {
		name string
		down func()
	}{
		{"kill", s.Kill},
		{"stop", s.Stop},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "k" + tt.name
			for n := range 100 {
				if err := c.IncrBy(ctx, key, int64(n)).Err(); err != nil {
					t.Fatalf("INCRBY %s: %v", key, err)
				}
			}
			tt.down()
			if s.Running() {
				t.Fatal("Running() is true after the server went down")
			}
			if !refused(addr) {
				t.Fatalf("%s still accepts connections after %s", addr, tt.name)
			}
			s.Start()
			if s.Addr() != addr || !s.Running() {
				t.Fatalf("after Start: address %s (was %s), running %v", s.Addr(), addr, s.Running())
			}
			for j := 0; j <= i; j++ { // this step's key and the earlier steps'
				k := "k" + tests[j].name
				got, err := c.Get(ctx, k).Int()
				if err != nil || got != 4950 {
					t.Errorf("after %s and Start: %s = %d, %v; want 4950 (the sum of 0..99)", tt.name, k, got, err)
				}
			}
		})
	}
	if err := redis.NewClient(&redis.Options{Addr: other.Addr()}).Ping(ctx).Err(); err != nil {
		t.Errorf("the other private server went down with the first: %v", err)
	}
}

// TestPrivateMariaDBKeepsCommittedRows commits rows in a private MariaDB,
// takes it down (SIGKILL with a transaction open, then SIGTERM) and starts
// it again: committed rows are back, the open transaction's row is not,
// and user eddy logs in over the same DSN.
func TestPrivateMariaDBKeepsCommittedRows(t *testing.T) {
	start := time.Now()
	s := PrivateMariaDB(t)
	t.Logf("private mariadbd (data dir initialised, server started, user created) in %v", time.Since(start))
	for _, p := range []string{"parseTime=true", "clientFoundRows=true", "tcp(" + s.Addr() + ")/eddy"} {
		if !strings.Contains(s.DSN(), p) {
			t.Errorf("DSN %q lacks %s", s.DSN(), p)
		}
	}
	ctx := context.Background()
	db, err := sql.Open("mysql", s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	db.SetMaxIdleConns(0) // every statement on a fresh connection: none survives a restart
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (k VARCHAR(20) PRIMARY KEY, n INT) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		down func()
	}{
		{"kill", s.Kill},
		{"stop", s.Stop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (?, 1)", tt.name); err != nil {
				t.Fatal(err)
			}
			// A transaction left open when the server goes down.
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (?, 2)", tt.name+"-open"); err != nil {
				t.Fatal(err)
			}
			downAt := time.Now()
			tt.down()
			if !refused(s.Addr()) {
				t.Fatalf("%s still accepts connections after %s", s.Addr(), tt.name)
			}
			if err := tx.Commit(); err == nil {
				t.Fatal("a transaction committed on a server that was down")
			}
			s.Start()
			t.Logf("%s and Start took %v", tt.name, time.Since(downAt))
			var n int
			if err := db.QueryRowContext(ctx, "SELECT n FROM t WHERE k = ?", tt.name).Scan(&n); err != nil || n != 1 {
				t.Errorf("committed row %s after %s: n = %d, %v; want 1", tt.name, tt.name, n, err)
			}
			err = db.QueryRowContext(ctx, "SELECT n FROM t WHERE k = ?", tt.name+"-open").Scan(&n)
			if !errors.Is(err, sql.ErrNoRows) {
				t.Errorf("row of the transaction open at %s: %v (n = %d); want no row", tt.name, err, n)
			}
		})
	}
}
