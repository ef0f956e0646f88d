package processor

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
)

// operator is one compiled pipeline step. Every step kind implements it,
// stateless or not; the partition task knows no concrete operator.
//
// On every batch the task runs the operators in pipeline order. Each gets
// its input (the source records that reached it, then what the previous
// operator's timers fired), and process returns what it passes on, in
// order; then fire closes what the partition's watermark has made due and
// returns what that produced. Both together are the next operator's input,
// so a downstream window sees every upstream result that belongs to it
// before the same watermark closes it.
//
// A record that fails goes to c.poison and is not passed on. process and
// fire return an error only when the batch cannot go on (the task's
// context ended during a retry, or it was fenced): the batch is then
// abandoned, and nothing of it is flushed.
type operator interface {
	process(ctx context.Context, c *opCtx, in []*Record) ([]*Record, error)
	fire(ctx context.Context, c *opCtx) ([]*Record, error)
}

// stateless is embedded by operators that keep no state and set no
// timers: they fire nothing.
type stateless struct{}

func (stateless) fire(context.Context, *opCtx) ([]*Record, error) { return nil, nil }

// scoped is implemented by operators that keep state or set timers: scope
// names their key space in the partition's store. It must be unique in the
// pipeline and stable across versions of it (it is in the stored keys).
type scoped interface {
	scope() string
}

// untimed is implemented by a scoped operator that may never set timers
// (a Processor without OnTimer): the task then never runs it for time
// alone.
type untimed interface {
	untimed() bool
}

// env is what an operator may ask of the runtime that runs it: the
// partition task implements it. Everything else about the task (its batch,
// its buffers, the store, the flush protocol) is out of an operator's
// reach.
type env interface {
	// bind points the reusable CEL variables at r.
	bind(r *Record) *pipeline.Vars
	// poison sends r to the dead-letter path: step says what failed.
	poison(r *Record, step string, err error)
	// late counts r as late and sends it to topic, if any.
	late(r *Record, step, topic string, tm, wm int64)
	// load reads keys into the partition's cache, retrying while the store
	// is down.
	load(ctx context.Context, keys []string) error
	// lookup reads keys of another partition's committed state (a table
	// partition's rows), retrying while the store is down.
	lookup(ctx context.Context, p statedb.Partition, keys []string) (map[string][]byte, error)
	// tableRows reads keys from the source of a table the user keeps,
	// retrying while it is down.
	tableRows(ctx context.Context, table string, keys []string) (map[string]map[string]any, error)
	// due reads stored timers under prefix, retrying while the store is
	// down.
	due(ctx context.Context, prefix string, until int64, limit int) ([]statedb.Timer, error)
	// watermark is the partition's event-time watermark now.
	watermark() int64
	// firedAt is the watermark as it stood when the batch began: what
	// records fired in this batch carry (see Record.wm).
	firedAt() int64
	// origin is where the batch's outputs come from: the partition and the
	// last source offset of the batch.
	origin() (p statedb.Partition, last int64)
	// pipelineName names the pipeline (output IDs).
	pipelineName() string
	// send buffers a record for a topic other than the sink (a
	// repartition's internal topic), produced with the batch's outputs.
	send(m *sarama.ProducerMessage)
	// partitions is the partition count of a topic the operator places
	// records on itself.
	partitions(topic string) int32
	// checkCoPartitioned samples records whose group key is not the
	// message key (see task.checkCoPartitioned).
	checkCoPartitioned(r *Record, group string)
	stats() *counters
	// countAtCommit adds n to c once the batch is committed.
	countAtCommit(c *atomic.Uint64, n uint64)
	logger() *zap.Logger
}

// opCtx is an operator's view of its partition task: keyed state and
// timers scoped to the operator, the partition's watermark (read-only),
// and the emit, late and dead-letter paths. One opCtx per operator per
// task, made when the task starts.
type opCtx struct {
	env
	// state is the operator's keyed state; timers its timers. Both are
	// zero for a stateless operator.
	state  keyed
	timers timers
}

func newOpCtx(e env, c *cache, o operator) *opCtx {
	oc := &opCtx{env: e}
	if scope := scopeOf(o); scope != "" {
		prefix := scopePrefix(scope)
		oc.state = keyed{prefix: prefix, c: c, load: e.load}
		if u, ok := o.(untimed); !ok || !u.untimed() {
			oc.timers = timers{prefix: prefix, c: c, due: e.due, low: math.MinInt64}
		}
	}
	return oc
}

// scopePrefix is the key prefix of a scope: "<scope>\x00". A scope is
// "<kind>\x00<name>" with a name that holds no 0 byte, so no scope's keys
// are under another's.
func scopePrefix(scope string) string { return scope + "\x00" }

// keyed is an operator's keyed state: the partition's cache, seen through
// the operator's key prefix. Keys are full keys (the prefix included), so
// that an operator that builds keys in a buffer pays one allocation per
// key; every key is checked to be under the prefix, and one that is not is
// a programming error, not a runtime condition.
type keyed struct {
	prefix string
	c      *cache
	load   func(ctx context.Context, keys []string) error
}

// key is prefix + local.
func (k *keyed) key(local string) string { return k.prefix + local }

// local is key without the prefix; ok is false for a key not under it.
func (k *keyed) local(key string) (string, bool) { return strings.CutPrefix(key, k.prefix) }

func (k *keyed) check(key string) {
	if !strings.HasPrefix(key, k.prefix) {
		panic(fmt.Sprintf("processor: operator of scope %q used key %q outside its scope", strings.TrimSuffix(k.prefix, "\x00"), key))
	}
}

// prefetch loads keys not cached yet in one round trip (none if all are).
func (k *keyed) prefetch(ctx context.Context, keys []string) error {
	for _, key := range keys {
		k.check(key)
	}
	return k.load(ctx, keys)
}

// get returns a key's value from the cache; the key must have been
// prefetched (or written) in this batch, else it reads as absent.
func (k *keyed) get(key string) ([]byte, bool) {
	k.check(key)
	v, ok, _ := k.c.get(key)
	return v, ok
}

// cached reports whether key is in the cache (present or known absent).
func (k *keyed) cached(key string) bool {
	_, _, known := k.c.get(key)
	return known
}

func (k *keyed) put(key string, val []byte, ttl time.Duration) {
	k.check(key)
	k.c.put(key, val, ttl)
}

func (k *keyed) del(key string) {
	k.check(key)
	k.c.del(key)
}

// dueKeys returns the keys of the operator's timers due at the
// partition's watermark, earliest first, their state prefetched: what an
// operator's fire starts with.
func (c *opCtx) dueKeys(ctx context.Context) ([]string, error) {
	due, err := c.timers.dueAt(ctx, c.watermark())
	if err != nil || len(due) == 0 {
		return nil, err
	}
	keys := make([]string, len(due))
	for i, x := range due {
		keys[i] = x.Key
	}
	if err := c.state.prefetch(ctx, keys); err != nil {
		return nil, err
	}
	return keys, nil
}

// timers are an operator's timers: the partition's stored timers under the
// operator's key prefix, plus the ones set or cleared since the last
// commit (which the commit writes).
type timers struct {
	prefix string
	c      *cache
	due    func(ctx context.Context, prefix string, until int64, limit int) ([]statedb.Timer, error)
	// low is a lower bound of the operator's earliest timer: while the
	// watermark is below it nothing is due and the store is not asked.
	// MinInt64 means unknown (a new owner asks once).
	low int64
}

// dueBatch is the first limit of a Due call; it doubles while a call comes
// back full of due timers.
const dueBatch = 1000

func (tm *timers) set(key string, due int64) {
	if !strings.HasPrefix(key, tm.prefix) {
		panic(fmt.Sprintf("processor: timer %q outside the operator's scope %q", key, tm.prefix))
	}
	tm.c.setTimer(key, due)
	tm.low = min(tm.low, due)
}

func (tm *timers) clear(key string) { tm.c.clearTimer(key) }

// pending reports whether a timer may be due at wm.
func (tm *timers) pending(wm int64) bool { return tm.prefix != "" && wm >= tm.low }

// dueAt returns the operator's timers due at wm, earliest first (ties by
// key): the committed ones the task has not cleared or moved since, and
// the ones it set since. It asks the store only when the watermark has
// reached low, and then for all of them (in rounds of doubling limits).
func (tm *timers) dueAt(ctx context.Context, wm int64) ([]statedb.Timer, error) {
	if !tm.pending(wm) {
		return nil, nil
	}
	var out []statedb.Timer
	next := int64(math.MaxInt64) // earliest timer after wm
	for limit := dueBatch; ; limit *= 2 {
		stored, err := tm.due(ctx, tm.prefix, math.MaxInt64, limit)
		if err != nil {
			return nil, err
		}
		out = out[:0]
		for _, x := range stored {
			if _, cleared := tm.c.clrT[x.Key]; cleared {
				continue
			}
			if _, moved := tm.c.setT[x.Key]; moved {
				continue // the uncommitted timer below wins
			}
			if x.Due > wm {
				next = min(next, x.Due)
				break
			}
			out = append(out, x)
		}
		if len(stored) < limit || stored[len(stored)-1].Due > wm {
			break // every stored timer due at wm has been seen
		}
	}
	for k, d := range tm.c.setT {
		if !strings.HasPrefix(k, tm.prefix) {
			continue
		}
		if d <= wm {
			out = append(out, statedb.Timer{Key: k, Due: d})
		} else {
			next = min(next, d)
		}
	}
	tm.low = next
	slices.SortFunc(out, func(a, b statedb.Timer) int {
		if c := cmp.Compare(a.Due, b.Due); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}
