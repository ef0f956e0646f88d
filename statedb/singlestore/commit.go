package singlestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// Statement sizes of a commit.
const (
	// maxRows is the most rows one multi-row INSERT carries.
	maxRows = 500
	// maxStmtBytes bounds the key and value bytes of one INSERT: escaped
	// (at most twice as long) it stays well inside MariaDB's default
	// max_allowed_packet of 16 MiB. A single larger entry gets a statement
	// of its own.
	maxStmtBytes = 4 << 20
)

// stmt is one statement of a commit.
type stmt struct {
	what string // for errors: "put 500 entries from key \"a\""
	q    string
	args []any
}

// execer is what *sql.DB and *sql.Tx have in common.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Commit applies c in one transaction, all or nothing, and only while
// c.Epoch is p's current epoch.
//
// The transaction's first statement is the fence,
//
//	UPDATE owners SET watermark = ?, meta = ?, commits = commits + 1
//	WHERE topic = ? AND part = ? AND epoch = ?
//
// which must match exactly one row; otherwise the transaction is rolled back
// and Commit returns an error wrapping statedb.ErrFenced. The UPDATE
// write-locks the owner row until COMMIT, so no Acquire can bump the epoch
// between the fence and the commit (see the package documentation). Then come
// one DELETE ... IN for c.Deletes, multi-row upserts (INSERT ... ON
// DUPLICATE KEY UPDATE, at most 500 rows each) for c.Puts and c.IDs, one
// DELETE for c.ClearTimers, upserts for c.SetTimers, and COMMIT. A key both
// deleted and put ends up put; a timer both cleared and set ends up set.
// A commit with nothing but an offset and metadata is the fence UPDATE
// alone, in autocommit mode.
//
// Every part of a commit is idempotent: after an error other than
// ErrFenced (a lost connection, say, when the outcome of COMMIT is unknown),
// running the same Commit again is safe. A deadlock (MySQL error 1213) is
// retried twice before it is returned.
func (s *Store) Commit(ctx context.Context, c *statedb.Commit) error {
	if c == nil {
		return errors.New("singlestore: commit: nil *statedb.Commit")
	}
	if err := checkCommit(c); err != nil {
		return fmt.Errorf("singlestore: commit %s epoch %d: %w", c.Partition, c.Epoch, err)
	}
	fence := s.fenceStmt(c)
	body := s.commitBody(c)
	var err error
	if len(body) == 0 {
		err = execFence(ctx, s.db, fence)
	} else {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if err := execFence(ctx, tx, fence); err != nil {
				return err
			}
			for _, st := range body {
				if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
					return fmt.Errorf("%s: %w", st.what, err)
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("singlestore: commit %s epoch %d offset %d: %w", c.Partition, c.Epoch, c.Offset, err)
	}
	return nil
}

// fenceStmt is the owner-row UPDATE that checks the epoch and sets the
// watermark. commits = commits + 1 makes it change the row every time, so it
// reports one affected row even on a connection without clientFoundRows.
func (s *Store) fenceStmt(c *statedb.Commit) stmt {
	return stmt{
		what: "fence",
		q: "UPDATE " + s.t.owners + " SET `watermark` = ?, `meta` = ?, `commits` = `commits` + 1" +
			" WHERE `topic` = ? AND `part` = ? AND `epoch` = ?",
		args: []any{c.Offset, c.Meta, []byte(c.Partition.Topic), c.Partition.Partition, c.Epoch},
	}
}

func execFence(ctx context.Context, ex execer, f stmt) error {
	res, err := ex.ExecContext(ctx, f.q, f.args...)
	if err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("fence: rows affected: %w", err)
	}
	if n != 1 {
		return statedb.ErrFenced
	}
	return nil
}

// commitBody returns the statements that follow the fence, in order.
func (s *Store) commitBody(c *statedb.Commit) []stmt {
	var out []stmt
	p := c.Partition
	topic := []byte(p.Topic) // shared by every row: the driver only reads it
	for chunk := range slices.Chunk(c.Deletes, maxInList) {
		out = append(out, stmt{
			what: fmt.Sprintf("delete %d keys from %s", len(chunk), showKey(chunk[0])),
			q: "DELETE FROM " + s.t.state + " WHERE `topic` = ? AND `part` = ? AND `k` IN (" +
				placeholders(len(chunk)) + ")",
			args: partArgs(p, chunk),
		})
	}
	for chunk := range putChunks(c.Puts) {
		var q strings.Builder
		args := make([]any, 0, 5*len(chunk))
		q.WriteString("INSERT INTO " + s.t.state + " (`topic`, `part`, `k`, `v`, `expire_at`) VALUES ")
		for i, e := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			v := e.Value
			if v == nil {
				v = []byte{} // a nil []byte would be sent as NULL
			}
			args = append(args, topic, p.Partition, []byte(e.Key), v)
			if us := micros(e.TTL); us > 0 {
				q.WriteString("(?, ?, ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)")
				args = append(args, us)
			} else {
				q.WriteString("(?, ?, ?, ?, NULL)")
			}
		}
		q.WriteString(" ON DUPLICATE KEY UPDATE `v` = VALUES(`v`), `expire_at` = VALUES(`expire_at`)")
		out = append(out, stmt{
			what: fmt.Sprintf("put %d entries from key %s", len(chunk), showKey(chunk[0].Key)),
			q:    q.String(), args: args,
		})
	}
	expire := "NULL"
	us := micros(c.IDTTL)
	if us > 0 {
		expire = "UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND"
	}
	for chunk := range slices.Chunk(c.IDs, maxRows) {
		var q strings.Builder
		args := make([]any, 0, 4*len(chunk))
		q.WriteString("INSERT INTO " + s.t.ids + " (`topic`, `part`, `id`, `expire_at`) VALUES ")
		for i, id := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, " + expire + ")")
			args = append(args, topic, p.Partition, []byte(id))
			if us > 0 {
				args = append(args, us)
			}
		}
		q.WriteString(" ON DUPLICATE KEY UPDATE `expire_at` = VALUES(`expire_at`)")
		out = append(out, stmt{
			what: fmt.Sprintf("record %d ids from %s", len(chunk), showKey(chunk[0])),
			q:    q.String(), args: args,
		})
	}
	for chunk := range slices.Chunk(c.ClearTimers, maxInList) {
		out = append(out, stmt{
			what: fmt.Sprintf("clear %d timers from %s", len(chunk), showKey(chunk[0])),
			q: "DELETE FROM " + s.t.timers + " WHERE `topic` = ? AND `part` = ? AND `k` IN (" +
				placeholders(len(chunk)) + ")",
			args: partArgs(p, chunk),
		})
	}
	for chunk := range slices.Chunk(c.SetTimers, maxRows) {
		var q strings.Builder
		args := make([]any, 0, 4*len(chunk))
		q.WriteString("INSERT INTO " + s.t.timers + " (`topic`, `part`, `k`, `due`) VALUES ")
		for i, t := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?)")
			args = append(args, topic, p.Partition, []byte(t.Key), t.Due)
		}
		q.WriteString(" ON DUPLICATE KEY UPDATE `due` = VALUES(`due`)")
		out = append(out, stmt{
			what: fmt.Sprintf("set %d timers from %s", len(chunk), showKey(chunk[0].Key)),
			q:    q.String(), args: args,
		})
	}
	return out
}

// putChunks yields puts in runs of at most maxRows entries and maxStmtBytes
// key and value bytes (a larger entry alone).
func putChunks(puts []statedb.Entry) func(yield func([]statedb.Entry) bool) {
	return func(yield func([]statedb.Entry) bool) {
		start, size := 0, 0
		for i, e := range puts {
			n := len(e.Key) + len(e.Value)
			if i > start && (i-start == maxRows || size+n > maxStmtBytes) {
				if !yield(puts[start:i]) {
					return
				}
				start, size = i, 0
			}
			size += n
		}
		if start < len(puts) {
			yield(puts[start:])
		}
	}
}

// micros converts a TTL to whole microseconds, rounding a positive TTL
// under one microsecond up to one.
func micros(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Microseconds(), 1)
}

// checkCommit rejects what the tables cannot hold before any statement runs.
func checkCommit(c *statedb.Commit) error {
	if err := checkPartition(c.Partition); err != nil {
		return err
	}
	for i, e := range c.Puts {
		if len(e.Key) > MaxKeyLen {
			return fmt.Errorf("put %d: key %s is %d bytes, more than %d", i, showKey(e.Key), len(e.Key), MaxKeyLen)
		}
	}
	for i, id := range c.IDs {
		if len(id) > MaxKeyLen {
			return fmt.Errorf("id %d: %s is %d bytes, more than %d", i, showKey(id), len(id), MaxKeyLen)
		}
	}
	for i, t := range c.SetTimers {
		if len(t.Key) > MaxKeyLen {
			return fmt.Errorf("timer %d: key %s is %d bytes, more than %d", i, showKey(t.Key), len(t.Key), MaxKeyLen)
		}
	}
	return nil
}

// showKey quotes a key for an error message, cut to 40 bytes.
func showKey(k string) string {
	if len(k) > 40 {
		return fmt.Sprintf("%q...", k[:40])
	}
	return fmt.Sprintf("%q", k)
}
