package singlestore

import (
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// stmtCounter counts the statements the server executed for a set of
// stores, each with a pool of one connection, from the server's per-session
// Questions counter. Every statement of the store is one COM_QUERY (its
// arguments are interpolated), so statements are also round trips. The
// counter's own SHOW statements are subtracted; a store that has been
// closed keeps its last count.
type stmtCounter struct {
	mu     sync.Mutex
	stores []*counted
}

type counted struct {
	s     *Store
	shows int64 // SHOW statements the counter ran on s
	last  int64 // last statement count of s
}

func (c *stmtCounter) add(s *Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stores = append(c.stores, &counted{s: s})
}

func (c *stmtCounter) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var total int64
	for _, st := range c.stores {
		var name string
		var n int64
		if err := st.s.db.QueryRow("SHOW SESSION STATUS LIKE 'Questions'").Scan(&name, &n); err == nil {
			st.shows++
			st.last = n - st.shows
		}
		total += st.last
	}
	return total
}

// TestStatementsPerCall pins, from the server's own count, how many
// statements (and so round trips) each call costs.
func TestStatementsPerCall(t *testing.T) {
	s := newTestStore(t, Config{MaxOpenConns: 1})
	var counter stmtCounter
	counter.add(s)
	p := statedb.Partition{Topic: "t", Partition: 0}
	c := mustAcquire(t, s, p)
	keys := keysN("k", 1000)
	big := &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, IDs: keys, IDTTL: time.Hour}
	for _, k := range keys {
		big.Puts = append(big.Puts, statedb.Entry{Key: k, Value: []byte(k)})
	}
	ctx := testCtx(t)
	tests := []struct {
		name string
		want int64
		op   func() error
	}{
		{"Acquire (BEGIN, INSERT, SELECT, COMMIT)", 4, func() error { var err error; c, err = s.Acquire(ctx, p); return err }},
		{"Commit of an offset only (the fence)", 1, func() error {
			return s.Commit(ctx, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1})
		}},
		{"Commit of 1 entry and 1 id", 5, func() error {
			return s.Commit(ctx, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 2,
				Puts: []statedb.Entry{{Key: "a", Value: []byte("1")}}, IDs: []string{"x"}})
		}},
		{"Commit of 1000 entries and 1000 ids", 7, func() error { big.Epoch = c.Epoch; return s.Commit(ctx, big) }},
		{"Commit of everything", 8, func() error {
			return s.Commit(ctx, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 3,
				Puts: []statedb.Entry{{Key: "a", Value: []byte("1")}}, Deletes: []string{"b"}, IDs: []string{"y"},
				SetTimers: []statedb.Timer{{Key: "t", Due: 1}}, ClearTimers: []string{"u"}})
		}},
		{"fenced Commit (BEGIN, fence, ROLLBACK)", 3, func() error {
			err := s.Commit(ctx, &statedb.Commit{Partition: p, Epoch: c.Epoch - 1, Offset: 9, Puts: big.Puts})
			if isFenced(err) {
				return nil
			}
			return err
		}},
		{"Load of 1000 keys", 1, func() error { _, err := s.Load(ctx, p, keys); return err }},
		{"Load of 1001 keys", 2, func() error { _, err := s.Load(ctx, p, append(keys, "one more")); return err }},
		{"Seen of 1000 ids", 1, func() error { _, err := s.Seen(ctx, p, keys); return err }},
		{"Due", 1, func() error { _, err := s.Due(ctx, p, "", 100, 10); return err }},
		{"Ping (COM_PING is not a statement)", 0, func() error { return s.Ping(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counter.count()
			if err := tt.op(); err != nil {
				t.Fatal(err)
			}
			if got := counter.count() - before; got != tt.want {
				t.Errorf("%d statements, want %d", got, tt.want)
			}
		})
	}
}

// TestReadCommitted checks that the store's transactions run at READ
// COMMITTED on MariaDB, as they do on SingleStore: New's connections are set
// to it once per session; NewFromDB sets it per transaction, one statement
// more per Acquire.
func TestReadCommitted(t *testing.T) {
	s := newTestStore(t, Config{MaxOpenConns: 1})
	var level string
	if err := s.db.QueryRow("SELECT @@SESSION.tx_isolation").Scan(&level); err != nil {
		if err := s.db.QueryRow("SELECT @@SESSION.transaction_isolation").Scan(&level); err != nil {
			t.Fatal(err)
		}
	}
	if level != "READ-COMMITTED" {
		t.Errorf("session isolation of New's connections = %s, want READ-COMMITTED", level)
	}
	var wait int
	if err := s.db.QueryRow("SELECT @@SESSION.wait_timeout").Scan(&wait); err != nil {
		t.Fatal(err)
	}
	if wait != int(DefaultWaitTimeout/time.Second) {
		t.Errorf("session wait_timeout of New's connections = %d, want %d", wait, DefaultWaitTimeout/time.Second)
	}

	db := openAdmin(t, freshDSN(t))
	db.SetMaxOpenConns(1)
	fromDB, err := NewFromDB(testCtx(t), db, Config{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fromDB.Close() })
	var counter stmtCounter
	counter.add(fromDB)
	before := counter.count()
	mustAcquire(t, fromDB, statedb.Partition{Topic: "t", Partition: 0})
	if n := counter.count() - before; n != 5 {
		t.Errorf("Acquire through NewFromDB ran %d statements, want 5 (SET TRANSACTION ISOLATION LEVEL first)", n)
	}
}

// TestNewCreatesOnlyMissingTables counts the statements New runs: on an empty
// database the four CREATE TABLEs, on an existing schema none (so a user
// without the CREATE privilege can start).
func TestNewCreatesOnlyMissingTables(t *testing.T) {
	dsn := freshDSN(t)
	newCount := func() int64 {
		s := newTestStore(t, Config{DSN: dsn, Namespace: "ns", MaxOpenConns: 1})
		var counter stmtCounter
		counter.add(s)
		return counter.count()
	}
	// SET SESSION TRANSACTION ISOLATION LEVEL, SET SESSION wait_timeout,
	// the information_schema query, and the CREATE TABLEs.
	if n := newCount(); n != 3+4 {
		t.Errorf("New on an empty database ran %d statements, want 7", n)
	}
	if n := newCount(); n != 3 {
		t.Errorf("New on an existing schema ran %d statements, want 3 (no CREATE)", n)
	}
	admin := openAdmin(t, dsn)
	if _, err := admin.Exec("DROP TABLE `ns_timers`"); err != nil {
		t.Fatal(err)
	}
	if n := newCount(); n != 4 {
		t.Errorf("New with one table missing ran %d statements, want 4", n)
	}
	if _, err := admin.Exec("SELECT `k`, `due` FROM `ns_timers` LIMIT 0"); err != nil {
		t.Errorf("the missing table was not created: %v", err)
	}
}
