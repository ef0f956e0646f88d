package statedb

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrFenced is returned by [Store.Commit] when the partition's epoch in the
// store is newer than the commit's: another owner has acquired the partition
// since this one did. Nothing of the commit was applied. The caller must stop
// processing the partition and discard what it holds in memory.
var ErrFenced = errors.New("statedb: partition fenced by a newer owner")

// NoOffset is the [Claim.Offset] of a partition that has never committed.
const NoOffset int64 = -1

// Partition names one unit of ownership: a partition of a source topic.
// All state, event IDs and timers of a partition live together so that a
// commit touches one partition only (on Redis: one hash tag).
type Partition struct {
	Topic     string
	Partition int32
}

func (p Partition) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// Claim is the result of [Store.Acquire].
type Claim struct {
	// Epoch is the owner's epoch, strictly greater than any earlier one for
	// the partition. Every commit must carry it.
	Epoch int64
	// Offset is the last source offset whose effects are persisted
	// (the partition's offset watermark), or NoOffset.
	Offset int64
	// Meta is the opaque metadata of the last successful commit (the task's
	// event-time watermark, for example), or nil. An empty Meta comes back
	// as nil.
	Meta []byte
}

// Entry is one state value to write.
//
// Keys are arbitrary byte strings (binary, unicode, braces, colons): backends
// compare them byte-exact. A nil Value is stored as an empty one.
type Entry struct {
	Key   string
	Value []byte
	// TTL, when positive, makes the entry expire that long after the commit.
	// A put without TTL makes the key permanent, dropping an earlier TTL.
	TTL time.Duration
}

// Timer is a key due at an ordering value (the runtime uses event time in
// Unix milliseconds). Timers let a new owner find, without scanning state,
// the work its predecessor left open (windows to close, for example).
//
// Backends may keep Due as a float64 (Redis sorted-set scores): it is exact
// for |Due| <= 2^53, which Unix milliseconds are.
type Timer struct {
	Key string
	Due int64
}

// Commit is one flush of one partition, applied all-or-nothing by
// [Store.Commit] and only while Epoch is the partition's current epoch.
// An Epoch that is not the current one (older, newer, or on a partition
// never acquired) fails with ErrFenced. The store copies what it keeps:
// the caller may reuse the Commit and its slices once Commit returns.
type Commit struct {
	Partition Partition
	Epoch     int64
	// Offset becomes the partition's offset watermark.
	Offset int64
	// Meta replaces the partition's metadata (returned by the next Acquire).
	Meta []byte

	// Puts writes entries, in order (a key put twice keeps the last put);
	// Deletes removes keys (a missing key is no error). A key in both is
	// deleted first, then put.
	Puts    []Entry
	Deletes []string

	// IDs are event IDs to record as seen, each for IDTTL (0: forever).
	IDs   []string
	IDTTL time.Duration

	// SetTimers adds or moves timers; ClearTimers removes them by key.
	// A key in both is cleared first, then set.
	SetTimers   []Timer
	ClearTimers []string
}

// Store is the state database behind the runtime. A Store is namespaced at
// construction (one namespace per pipeline), so two pipelines never see each
// other's partitions. All methods are safe for concurrent use; the runtime
// calls them from one goroutine per partition.
//
// The contract, checked for every backend by statedbtest.Run:
//   - Acquire bumps the epoch atomically and returns the stored offset
//     watermark and metadata.
//   - Commit applies everything in it or nothing, and nothing at all when
//     the epoch is stale (ErrFenced).
//   - Load, Seen and Due see exactly what earlier commits wrote, minus what
//     has expired.
//   - Each method is one network round trip (Commit: one script or one
//     transaction), whatever the number of keys.
type Store interface {
	// Acquire claims p for a new owner.
	Acquire(ctx context.Context, p Partition) (Claim, error)
	// Load returns the live values of keys in p; absent keys are missing
	// from the map. The values belong to the caller.
	Load(ctx context.Context, p Partition, keys []string) (map[string][]byte, error)
	// Seen reports which of ids are recorded (and not expired) for p; the
	// map may hold only the seen ones.
	Seen(ctx context.Context, p Partition, ids []string) (map[string]bool, error)
	// Due returns up to limit timers of p whose key begins with prefix and
	// whose Due <= until, earliest first (equal Due: by key). Timers of
	// other prefixes never count against limit, so an operator that asks
	// with its own prefix (its key scope) sees all of its due timers
	// however many other operators have. An empty prefix matches every
	// timer. A limit <= 0 returns none. Due only reads.
	Due(ctx context.Context, p Partition, prefix string, until int64, limit int) ([]Timer, error)
	// Commit applies c atomically; see Commit. A stale epoch is ErrFenced.
	Commit(ctx context.Context, c *Commit) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases connections.
	Close() error
}
