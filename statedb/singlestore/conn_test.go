package singlestore

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/statedb"
)

// killStoreConnections kills every connection whose current database is db,
// from admin (which must use another database), and returns how many it
// killed.
func killStoreConnections(t *testing.T, admin *sql.DB, db string) int {
	t.Helper()
	conn, err := admin.Conn(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	rows, err := conn.QueryContext(testCtx(t),
		"SELECT `ID` FROM information_schema.PROCESSLIST WHERE `DB` = ? AND `ID` <> CONNECTION_ID()", db)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := conn.ExecContext(testCtx(t), fmt.Sprintf("KILL %d", id)); err != nil {
			t.Fatalf("KILL %d: %v", id, err)
		}
	}
	return len(ids)
}

// TestKilledConnectionRecovers kills the store's connections with KILL from
// a second connection, both while they sit idle in the pool and in the
// middle of a commit's transaction. The store answers the next call on a
// new connection (database/sql and the driver's liveness check replace the
// dead one), and every commit that returned nil is still there.
func TestKilledConnectionRecovers(t *testing.T) {
	dsn := freshDSN(t)
	s := newTestStore(t, Config{DSN: dsn, Namespace: "ns", MaxOpenConns: 2})
	db := dbName(t, dsn)
	// The admin pool sits in the server's default database, so that the
	// kills spare it (and the lock it holds).
	admin := openAdmin(t, testenv.MySQLServerDSN(t))
	p := statedb.Partition{Topic: "t", Partition: 0}
	c := mustAcquire(t, s, p)

	want := map[string][]byte{}
	var keys []string
	offset := int64(0)
	commitKey := func(k string) error {
		offset++
		err := s.Commit(testCtx(t), &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: offset,
			Puts: []statedb.Entry{{Key: k, Value: []byte(k)}}, IDs: []string{k}})
		keys = append(keys, k)
		if err == nil {
			want[k] = []byte(k)
		}
		return err
	}

	// Idle connections killed between calls: the next call must not fail.
	for round := range 5 {
		if err := commitKey(fmt.Sprintf("idle-%d", round)); err != nil {
			t.Fatalf("round %d: commit: %v", round, err)
		}
		if n := killStoreConnections(t, admin, db); n == 0 {
			t.Fatalf("round %d: no store connection to kill", round)
		}
		wantValues(t, s, p, keys, want) // first call after the kill
		if err := s.Ping(testCtx(t)); err != nil {
			t.Fatalf("round %d: Ping after kill: %v", round, err)
		}
	}

	// A connection killed in the middle of a commit: hold a row lock so the
	// commit waits inside its transaction, kill it there.
	lock, err := admin.BeginTx(testCtx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(testCtx(t), "SELECT `v` FROM `"+db+"`.`ns_state` WHERE `topic` = ? AND `part` = ? AND `k` = ? FOR UPDATE",
		[]byte(p.Topic), p.Partition, []byte("idle-0")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Commit(testCtx(t), &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 100,
			Puts: []statedb.Entry{{Key: "midway", Value: []byte("m")}, {Key: "idle-0", Value: []byte("overwritten")}}})
	}()
	waitForStatement(t, admin, db, "INSERT INTO `ns_state`")
	if n := killStoreConnections(t, admin, db); n == 0 {
		t.Fatal("no store connection to kill mid-commit")
	}
	if err := <-done; err == nil || isFenced(err) {
		t.Fatalf("commit whose connection was killed = %v, want a connection error", err)
	} else {
		t.Logf("killed commit: %v", err)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}

	// The store carries on: the same owner commits, nothing of the killed
	// transaction is there, everything committed before is.
	if err := commitKey("after"); err != nil {
		t.Fatalf("first commit after the kill: %v", err)
	}
	wantValues(t, s, p, append(keys, "midway"), want)
	seen, err := s.Seen(testCtx(t), p, keys)
	if err != nil || len(seen) != len(keys) {
		t.Errorf("Seen after the kills: %d of %d ids, %v", len(seen), len(keys), err)
	}
	if _, wm := ownerRow(t, s, p); wm != offset {
		t.Errorf("watermark %d, want %d (the killed commit's 100 must not land)", wm, offset)
	}
	if cl := mustAcquire(t, s, p); cl.Offset != offset {
		t.Errorf("next claim offset %d, want %d", cl.Offset, offset)
	}
}
