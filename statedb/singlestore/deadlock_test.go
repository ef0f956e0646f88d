package singlestore

import (
	"database/sql"
	"errors"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/eddy-streams/eddy/statedb"
)

// TestDeadlockIsRetried makes the server pick a store transaction as the
// victim of a real deadlock: the store's transaction is rolled back whole
// and run again, and succeeds.
func TestDeadlockIsRetried(t *testing.T) {
	dsn := freshDSN(t)
	s := newTestStore(t, Config{DSN: dsn, Namespace: "ns"})
	p := statedb.Partition{Topic: "t", Partition: 0}
	c := mustAcquire(t, s, p)
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Puts: []statedb.Entry{
		{Key: "a", Value: []byte("a")}, {Key: "b", Value: []byte("b")}, {Key: "c", Value: []byte("c")}, {Key: "d", Value: []byte("d")}}})

	admin := openAdmin(t, dsn)
	ctx := testCtx(t)
	other, err := admin.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Rollback() }()
	// The other transaction writes several rows, so that InnoDB, which rolls
	// back the transaction that changed the fewest, picks the store's.
	if _, err := other.ExecContext(ctx, "UPDATE `ns_state` SET `v` = ? WHERE `topic` = ? AND `part` = 0 AND `k` IN (?, ?, ?)",
		[]byte("x"), []byte("t"), []byte("b"), []byte("c"), []byte("d")); err != nil {
		t.Fatal(err)
	}

	lock := "SELECT `v` FROM `ns_state` WHERE `topic` = _binary't' AND `part` = 0 AND `k` = ? FOR UPDATE"
	attempts := 0
	holdsA := make(chan struct{}, 1)
	otherDone := make(chan error, 1)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		attempts++
		if _, err := tx.ExecContext(ctx, lock, []byte("a")); err != nil {
			return err
		}
		if attempts == 1 {
			holdsA <- struct{}{}
			go func() { // the other transaction now waits for a...
				<-holdsA
				waitForStatement(t, admin, dbName(t, dsn), "SELECT `v` FROM `ns_state`")
				_, err := other.ExecContext(ctx, lock, []byte("a"))
				if err == nil {
					err = other.Commit()
				}
				otherDone <- err
			}()
		}
		// ...while this one waits for b: a deadlock on the first attempt.
		_, err := tx.ExecContext(ctx, lock, []byte("b"))
		return err
	})
	if err != nil {
		t.Fatalf("inTx = %v, want success after a retry", err)
	}
	if attempts != 2 {
		t.Errorf("%d attempts, want 2 (one deadlock, one retry)", attempts)
	}
	if err := <-otherDone; err != nil {
		t.Errorf("the other transaction: %v", err)
	}

	if !isDeadlock(&mysql.MySQLError{Number: 1213}) || isDeadlock(&mysql.MySQLError{Number: 1205}) || isDeadlock(errors.New("1213")) {
		t.Error("isDeadlock misclassifies errors")
	}
}
