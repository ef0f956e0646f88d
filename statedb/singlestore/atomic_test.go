package singlestore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// TestCommitFailingMidwayLeavesNothing makes the server reject a statement
// in the middle of a commit, after the fence, the deletes and the puts have
// run inside the transaction: none of them may survive.
func TestCommitFailingMidwayLeavesNothing(t *testing.T) {
	tests := []struct {
		name     string
		sabotage string // %s is the namespace
		wantErr  string
	}{
		// An ID longer than the (shrunk) column: "Data too long" in
		// strict mode, which MariaDB enables by default.
		{"value too large for its column", "ALTER TABLE `%s_ids` MODIFY `id` VARBINARY(4) NOT NULL", "record 2 ids"},
		// The last statement of the commit violates a constraint.
		{"constraint violated by the last statement", "ALTER TABLE `%s_timers` ADD CONSTRAINT `small_due` CHECK (`due` < 1000)", "set 1 timers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := freshDSN(t)
			s := newTestStore(t, Config{DSN: dsn, Namespace: "ns"})
			p := statedb.Partition{Topic: "t", Partition: 0}
			c := mustAcquire(t, s, p)
			mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Meta: []byte("m1"),
				Puts: []statedb.Entry{{Key: "keep", Value: []byte("v1")}, {Key: "doomed", Value: []byte("d1")}}})

			admin := openAdmin(t, dsn)
			if _, err := admin.Exec(strings.ReplaceAll(tt.sabotage, "%s", "ns")); err != nil {
				t.Fatalf("sabotage: %v", err)
			}
			err := s.Commit(testCtx(t), &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2, Meta: []byte("m2"),
				Deletes:   []string{"doomed"},
				Puts:      []statedb.Entry{{Key: "keep", Value: []byte("v2")}, {Key: "new", Value: []byte("n2")}},
				IDs:       []string{"ok", "too-long-for-4-bytes"},
				SetTimers: []statedb.Timer{{Key: "w", Due: 5000}},
			})
			if err == nil || isFenced(err) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Commit = %v, want a server error from %q", err, tt.wantErr)
			}
			t.Logf("commit error: %v", err)

			wantValues(t, s, p, []string{"keep", "doomed", "new"}, map[string][]byte{"keep": []byte("v1"), "doomed": []byte("d1")})
			if seen, _ := s.Seen(testCtx(t), p, []string{"ok"}); seen["ok"] {
				t.Error("an id of the failed commit was recorded")
			}
			if due, _ := s.Due(testCtx(t), p, "", 1<<40, 10); len(due) != 0 {
				t.Errorf("timers of the failed commit: %v", due)
			}
			if got := mustAcquire(t, s, p); got.Offset != 1 || string(got.Meta) != "m1" {
				t.Errorf("claim after the failed commit: offset %d meta %q, want 1, m1", got.Offset, got.Meta)
			}
		})
	}
}

// TestCommitCanceledMidwayLeavesNothing blocks a commit on a row lock after
// its fence and part of its puts have run, cancels its context there, and
// checks that nothing of it lands, even after the lock is released and the
// server finishes the orphaned statement. The owner's next commit succeeds.
func TestCommitCanceledMidwayLeavesNothing(t *testing.T) {
	dsn := freshDSN(t)
	s := newTestStore(t, Config{DSN: dsn, Namespace: "ns"})
	p := statedb.Partition{Topic: "t", Partition: 0}
	c := mustAcquire(t, s, p)
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1,
		Puts: []statedb.Entry{{Key: "blocker", Value: []byte("b1")}}})

	admin := openAdmin(t, dsn)
	ctx := testCtx(t)
	lock, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback() }()
	var v []byte
	if err := lock.QueryRowContext(ctx, "SELECT `v` FROM `ns_state` WHERE `topic` = ? AND `part` = ? AND `k` = ? FOR UPDATE",
		[]byte(p.Topic), p.Partition, []byte("blocker")).Scan(&v); err != nil {
		t.Fatalf("lock the blocker row: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- s.Commit(cctx, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2,
			Deletes: []string{"gone"},
			Puts:    []statedb.Entry{{Key: "fresh", Value: []byte("f2")}, {Key: "blocker", Value: []byte("b2")}},
			IDs:     []string{"id2"}})
	}()
	waitForStatement(t, admin, dbName(t, dsn), "INSERT INTO `ns_state`")
	cancel()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Commit did not return after its context was canceled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Commit = %v, want context.Canceled", err)
	}
	// Let the orphaned statement run to its end on the server.
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	// The next commit of the owner takes the owner row's lock, so it runs
	// only after the server rolled the orphan back.
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 3, Puts: []statedb.Entry{{Key: "after", Value: []byte("a3")}}})
	wantValues(t, s, p, []string{"blocker", "fresh", "after"}, map[string][]byte{"blocker": []byte("b1"), "after": []byte("a3")})
	if seen, _ := s.Seen(testCtx(t), p, []string{"id2"}); seen["id2"] {
		t.Error("the canceled commit's id was recorded")
	}
	if _, wm := ownerRow(t, s, p); wm != 3 {
		t.Errorf("watermark %d, want 3", wm)
	}
}

// waitForStatement waits until a connection whose database is db runs a
// statement starting with prefix (and so is blocked in it).
func waitForStatement(t *testing.T, admin *sql.DB, db, prefix string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE `DB` = ? AND `INFO` LIKE ?",
			db, prefix+"%").Scan(&n)
		if err != nil {
			t.Fatalf("read processlist: %v", err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no statement %q showed up in the processlist", prefix)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
