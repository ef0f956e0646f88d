package integration_test

import (
	"bytes"
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// TestMySQLRoundTrip: in a database of its own, values and timestamps come
// back unchanged from a real MariaDB, upserts report what they did,
// clientFoundRows makes a no-op UPDATE count its matched row (the epoch
// fence depends on it), and a rolled-back transaction leaves nothing.
func TestMySQLRoundTrip(t *testing.T) {
	db, err := sql.Open("mysql", testenv.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE TABLE kv (
		k VARCHAR(255) NOT NULL PRIMARY KEY,
		v LONGBLOB NOT NULL,
		at DATETIME(6) NOT NULL
	)`); err != nil {
		t.Fatalf("create table: %v", err)
	}
	upsert := `INSERT INTO kv (k, v, at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v), at = VALUES(at)`
	at := time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	tests := []struct {
		name     string
		key      string
		value    []byte
		affected int64 // ON DUPLICATE KEY UPDATE: 1 inserted, 2 updated, with clientFoundRows 1 if unchanged
	}{
		{"text", "text", []byte("hello, eddy"), 1},
		{"binary", "binary", binary, 1},
		{"large", "large", bytes.Repeat([]byte{0xAB}, 4<<20), 1},
		{"update", "text", []byte("changed"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := db.ExecContext(ctx, upsert, tt.key, tt.value, at)
			if err != nil {
				t.Fatalf("upsert %s: %v", tt.key, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != tt.affected {
				t.Errorf("upsert %s: %d rows affected (%v), want %d", tt.key, n, err, tt.affected)
			}
			var (
				got   []byte
				gotAt time.Time
			)
			if err := db.QueryRowContext(ctx, `SELECT v, at FROM kv WHERE k = ?`, tt.key).Scan(&got, &gotAt); err != nil {
				t.Fatalf("select %s: %v", tt.key, err)
			}
			if !bytes.Equal(got, tt.value) {
				t.Errorf("value of %s: %d bytes differ from the %d written", tt.key, len(got), len(tt.value))
			}
			if !gotAt.Equal(at.Truncate(time.Microsecond)) {
				t.Errorf("time of %s: %s, want %s", tt.key, gotAt, at)
			}
		})
	}

	t.Run("clientFoundRows", func(t *testing.T) {
		res, err := db.ExecContext(ctx, `UPDATE kv SET v = v WHERE k = ?`, "binary")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Errorf("no-op UPDATE reports %d rows, want 1 matched row (clientFoundRows=true)", n)
		}
	})

	t.Run("rollback", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, upsert, "rolled-back", []byte("x"), at); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM kv WHERE k = 'rolled-back'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows of a rolled-back transaction are visible", n)
		}
	})
}
