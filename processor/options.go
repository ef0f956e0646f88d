package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/eddy-streams/eddy/internal/zaplog"
	"github.com/eddy-streams/eddy/statedb"
)

// Option configures a Worker.
type Option func(*options)

type options struct {
	log         *zap.Logger
	logOut      io.Writer // the default logger's (os.Stderr; tests change it)
	store       statedb.Store
	brokers     []string
	group       string
	instanceID  string
	factories   map[string]Factory
	commitEvery time.Duration
	fetchWait   time.Duration // 0: sarama's default (500ms)
	retryMax    time.Duration
	opTimeout   time.Duration
	cacheSize   int
	onOutput    func(*Record)
	onFlush     FlushHook
	// stateUpgrade accepts state written before per-step scopes with
	// custom processor steps (see task.checkLayout).
	stateUpgrade bool
	// tables are the sources of the tables the user keeps, by name.
	tables map[string]TableSource
	// unreadyAfter: a partition paused this long makes the worker unready.
	unreadyAfter time.Duration
}

func defaultOptions() options {
	return options{
		logOut:      os.Stderr,
		factories:   map[string]Factory{},
		commitEvery: time.Second,
		retryMax:    10 * time.Second,
		opTimeout:   30 * time.Second,
		cacheSize:   100_000,

		unreadyAfter: 30 * time.Second,
	}
}

// WithUnreadyAfter sets how long a partition may stay paused (a produce or
// store call retried) before Health, /readyz and eddy_ready say the worker
// is not ready (default 30s).
func WithUnreadyAfter(d time.Duration) Option { return func(o *options) { o.unreadyAfter = d } }

// WithLogger sets the logger. The default writes JSON lines to stderr at
// info and above, the lines of worker run (ts, level, msg, fields);
// WithLogger(zap.NewNop()) silences the Worker, and nil is the default.
// Each partition task logs through a child with the pipeline, topic and
// partition fields.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// withLogOutput sets where the default logger writes (tests).
func withLogOutput(w io.Writer) Option { return func(o *options) { o.logOut = w } }

// WithStore sets the state store, in place of the one the pipeline's
// state section names: New logs a warning naming both when that is redis
// or singlestore, whose settings are then unused. The Worker does not close
// a store given this way. Without WithStore, Run opens the pipeline's
// store itself (statedb/backends.Open, as worker run does: namespaced by
// the pipeline's name) and closes it when it returns.
func WithStore(s statedb.Store) Option { return func(o *options) { o.store = s } }

// WithBrokers overrides the pipeline's kafka.brokers.
func WithBrokers(addrs ...string) Option { return func(o *options) { o.brokers = addrs } }

// WithGroup overrides the consumer group id (default: kafka.group, else
// "eddy-<pipeline name>").
func WithGroup(id string) Option { return func(o *options) { o.group = id } }

// WithInstanceID sets a static group instance id (overrides
// kafka.instance_id): a restarted member with the same id gets its
// partitions back without a rebalance.
func WithInstanceID(id string) Option { return func(o *options) { o.instanceID = id } }

// WithProcessor registers a custom Processor under name, for pipeline steps
// `processor: {name: ...}`. It is the only registration: New fails when a
// step names a processor not registered, at the step's line, listing the
// registered names.
func WithProcessor(name string, f Factory) Option {
	return func(o *options) { o.factories[name] = f }
}

// WithStateUpgrade lets a worker whose pipeline has custom processor steps
// take over state written by an eddy before per-step state scopes (see the
// README, "Upgrading"). Without it such a worker refuses that state, since
// a processor would no longer find its keys. Pass it only when no
// processor of the pipeline keeps state, or its state may start empty.
func WithStateUpgrade() Option { return func(o *options) { o.stateUpgrade = true } }

// WithCommitInterval sets how often Kafka offsets are committed (default
// 1s). The store, not Kafka, is the truth about progress: a longer interval
// only means more messages are read again, and skipped, after a failover.
func WithCommitInterval(d time.Duration) Option { return func(o *options) { o.commitEvery = d } }

// WithFetchWait sets how long a fetch waits for records to arrive before
// the broker answers with none (sarama's Consumer.MaxWaitTime, default
// 500ms). A bounded test run sets it low: a broker may answer a waiting
// read_committed fetch only at the end of the wait when the records it
// waited for became readable through a transaction's commit.
func WithFetchWait(d time.Duration) Option { return func(o *options) { o.fetchWait = d } }

// WithRetryBackoff sets the cap of the exponential backoff used while the
// store or the broker is unreachable (default 10s).
func WithRetryBackoff(max time.Duration) Option { return func(o *options) { o.retryMax = max } }

// WithCacheSize bounds the number of state entries each partition task
// keeps in memory between flushes (default 100,000).
func WithCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// WithOutputHook calls f with every record the sink has produced and the
// store has committed. f runs on partition task goroutines and must be
// safe for concurrent use and quick. It is meant for tests and `worker dev`.
func WithOutputHook(f func(*Record)) Option { return func(o *options) { o.onOutput = f } }

func (o *options) validate() error {
	var errs []error
	if len(o.brokers) == 0 {
		errs = append(errs, errors.New("processor: kafka.brokers: no brokers"))
	}
	if o.log == nil {
		o.log = zaplog.JSON(o.logOut, zapcore.InfoLevel)
	}
	if o.commitEvery <= 0 {
		errs = append(errs, fmt.Errorf("processor: commit interval %v must be positive", o.commitEvery))
	}
	if o.cacheSize <= 0 {
		errs = append(errs, fmt.Errorf("processor: cache size %d must be positive", o.cacheSize))
	}
	return errors.Join(errs...)
}

// TableSource reads the rows of a table the user keeps (tables[] with
// redis or sql; package dimension implements it, with a cache): the rows
// of the keys found, in one round trip. An error pauses the partition and
// is retried, as a state store error is. It must be safe for concurrent
// use: every partition task of the Worker calls it.
type TableSource interface {
	Get(ctx context.Context, keys []string) (map[string]map[string]any, error)
}

// WithTableSource gives the source of the pipeline's table name (one with
// redis or sql). New fails when such a table has none.
func WithTableSource(name string, src TableSource) Option {
	return func(o *options) {
		if o.tables == nil {
			o.tables = map[string]TableSource{}
		}
		o.tables[name] = src
	}
}
