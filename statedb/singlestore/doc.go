// Package singlestore is the SingleStore backend of statedb.Store. It also
// runs on MySQL and MariaDB (the tests run on MariaDB), through database/sql
// and github.com/go-sql-driver/mysql.
//
//	st, err := singlestore.New(ctx, singlestore.Config{
//		DSN:       os.Getenv("EDDY_SINGLESTORE_DSN"), // user:pass@tcp(host:3306)/db
//		Dialect:   singlestore.DialectSingleStore,
//		Namespace: "clicks_per_user",
//	})
//
// # Schema
//
// A store owns four tables, named after its Config.Namespace. New creates
// those missing (CREATE TABLE IF NOT EXISTS, after a look at
// information_schema, so a user without the CREATE privilege can start on
// tables an operator created ahead of time from DDL):
//
//	<ns>_owners (topic, part) -> epoch, watermark, meta, commits
//	<ns>_state  (topic, part, k) -> v, expire_at        index (expire_at)
//	<ns>_ids    (topic, part, id) -> expire_at          index (expire_at)
//	<ns>_timers (topic, part, k) -> due                 index (topic, part, due)
//
// Topics, keys and IDs are VARBINARY and values LONGBLOB, compared byte for
// byte: any byte string is a key, up to MaxKeyLen (1,024) bytes; a longer one
// makes Commit fail before it writes anything. A value is bounded by the
// server's max_allowed_packet (16 MiB on MariaDB, 64 MiB on MySQL by
// default). Stores with different namespaces in one database use different
// tables and never see each other.
//
// # Dialects
//
// Config.Dialect changes the DDL only. "mysql" (the default) creates InnoDB
// tables. "singlestore" creates rowstore tables (CREATE ROWSTORE TABLE) with
// SHARD KEY (topic, part), so that all rows of a partition live in one
// SingleStore partition and a commit is a single-partition transaction;
// every primary key begins with (topic, part) and so contains the shard key,
// as SingleStore requires. Every read and write is the same SQL on both,
// restricted to what both accept: INSERT ... ON DUPLICATE KEY UPDATE with
// VALUES(), DELETE ... WHERE ... IN (...) and DELETE ... LIMIT, SELECT ...
// ORDER BY ... LIMIT, UTC_TIMESTAMP(6) and INTERVAL ... MICROSECOND, and
// transactions.
//
// The SingleStore features relied on are: rowstore tables with shard keys;
// transactions at READ COMMITTED (its only level); INSERT ... ON DUPLICATE
// KEY UPDATE; row locks taken by UPDATE and INSERT held until COMMIT; and
// the session variable wait_timeout.
// On MySQL/MariaDB each connection of New's pool is put at READ COMMITTED as
// well (SET SESSION TRANSACTION ISOLATION LEVEL once per connection), which
// also spares the commits of different partitions InnoDB's gap locks.
//
// # Operations
//
// Acquire is one transaction: INSERT the owner row with epoch 1 ... ON
// DUPLICATE KEY UPDATE epoch = epoch + 1, then SELECT it back. Commit is one
// transaction whose first statement is the fence, UPDATE owners SET
// watermark, meta WHERE topic, part AND epoch = ?, which must match one row
// (else rollback and statedb.ErrFenced); then one DELETE ... IN for deletes,
// multi-row upserts of at most 500 rows for puts, IDs and timers, one
// DELETE ... IN for cleared timers, and COMMIT. Load and Seen are one
// SELECT ... IN each (one per 1,000 keys beyond 1,000 keys), Due one SELECT
// ... ORDER BY due LIMIT. Every statement is sent with its arguments
// interpolated (interpolateParams=true), so it costs one round trip; a
// transaction adds BEGIN and COMMIT. A commit that only moves the offset is
// the fence UPDATE alone, in autocommit mode.
//
// # Why a stale owner can never commit after a newer Acquire
//
// Every write to a partition's rows happens inside a Commit transaction
// that first ran the fence UPDATE on the partition's owner row, and an
// UPDATE keeps its row write-locked until the transaction ends. An Acquire
// must write-lock the same row to bump the epoch. So a Commit at epoch e and
// the Acquire that creates epoch e+1 cannot overlap: one of them holds the
// lock from its first statement to its COMMIT and the other waits. (The
// sweep's deletes are the one write outside a Commit; they remove only rows
// that have expired, which no read returns anyway.)
//
//   - If the Commit's fence gets the lock first, the whole Commit is
//     applied before the Acquire bumps, and the Acquire's SELECT (after its
//     own bump, under its own lock) reads the watermark and metadata that
//     Commit wrote: the successor resumes exactly after it.
//   - If the Acquire gets it first, the fence waits for the Acquire's
//     COMMIT and then evaluates epoch = e against the row as last committed
//     (an UPDATE is a locking read: it never uses a snapshot, at READ
//     COMMITTED or at InnoDB's REPEATABLE READ), finds e+1, matches no row,
//     and the Commit rolls back having written nothing.
//
// There is no third order, whatever the number of connections or workers.
// Concurrent Acquires serialise on the same lock, and each bump computes
// epoch + 1 from the last committed epoch, so epochs are unique and
// strictly increasing. A fence that matches nothing is indistinguishable
// from one at an epoch never handed out, or on a partition never acquired:
// all three are ErrFenced. The fence also bumps a commits counter so that it
// changes the row on every commit, and so reports one affected row even on
// a connection without clientFoundRows (New forces clientFoundRows=true
// anyway; NewFromDB cannot).
//
// If the connection breaks mid-commit, the server rolls the transaction
// back; its locks are released when the server notices, which for a
// statement waiting on a lock may be when that wait ends. Until then
// the partition's next Acquire or Commit waits. If COMMIT itself fails the
// outcome is unknown, but every part of a commit is idempotent (upserts,
// deletes, setting the watermark), so the runtime may retry it as it is.
//
// If the client stops talking in the middle of a commit while its
// connection stays up (the worker is SIGSTOPped, its VM paused, its
// process stalled), the transaction and its locks would stay until the
// server's wait_timeout, 8 hours by default: the partition could not be
// taken over meanwhile. New therefore sets the session wait_timeout to
// Config.WaitTimeout (30 s by default) on every connection. The server
// then closes the silent connection and rolls the half-done commit back;
// the next owner's Acquire, which was waiting for the owner row, goes
// through and reads the watermark as it was before; the frozen worker,
// when it resumes, finds its connection gone, and its retried commit is
// fenced. TestFrozenCommitIsUndoneAndTakenOver freezes a commit at its
// COMMIT with a TCP proxy and checks each step. (A server that refuses
// the setting gets a warning in the log and the store goes on without it.)
//
// # TTL and the sweep
//
// An entry or event ID with a TTL gets expire_at = UTC_TIMESTAMP(6) +
// INTERVAL ttl MICROSECOND, on the server's clock, so workers' clocks do
// not matter; UTC rather than NOW(6) keeps expiry independent of the
// session time zone and of daylight-saving changes. Every read adds
// expire_at IS NULL OR expire_at > UTC_TIMESTAMP(6), so an expired row is
// invisible at once. A background goroutine started by New reclaims the
// space: every Config.SweepInterval (default one minute) it runs DELETE ...
// WHERE expire_at <= UTC_TIMESTAMP(6) LIMIT Config.SweepBatch (default 1,000)
// on the state and ID tables, repeatedly, until a batch comes back short.
// Close stops it and waits for it. Each worker's store sweeps the whole
// namespace; concurrent sweeps only compete for the same rows.
//
// # TLS and secrets
//
// Config.TLS sets the driver's TLS configuration on the store's own
// connector (the driver's Config.TLS field, which takes precedence over the
// DSN's tls= parameter), so nothing is registered in the driver's
// process-wide registry and two stores with different TLS settings never
// share one by name. The DSN's password never appears in this package's
// errors or logs: Config's String and GoString print the DSN through
// RedactDSN, and an error from parsing the DSN that happens to quote the
// password has it cut out. (Errors from the server and the network never
// quote it: MySQL answers "using password: YES".)
//
// # Files
//
//	config.go  Config, defaults, validation, DSN parsing and redaction
//	schema.go  table names, DDL per dialect
//	store.go   Store, New, NewFromDB, Acquire, Load, Seen, Due, Ping, Close
//	commit.go  Commit: the fence and the statements of a commit
//	sweep.go   the background sweep and Sweep
package singlestore
