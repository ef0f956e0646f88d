package redis_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/statedb"
	redisstore "github.com/eddy-streams/eddy/statedb/redis"
	"github.com/eddy-streams/eddy/statedb/statedbtest"
)

// roundTrips is a go-redis hook that counts round trips: one per command
// sent alone, one per pipeline (a script call is one command; go-redis's
// EVALSHA→EVAL fallback is two).
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// opener makes stores against one Redis server, each under its own key
// prefix, with one client whose round trips are counted.
type opener struct {
	addr   string
	client *goredis.Client
	trips  *roundTrips
	// prefix returns a fresh key prefix for tb, removed when tb ends.
	prefix func(tb testing.TB) string
}

func newOpener(tb testing.TB, addr string, prefix func(tb testing.TB) string) *opener {
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	tb.Cleanup(func() { _ = client.Close() })
	o := &opener{addr: addr, client: client, trips: &roundTrips{}, prefix: prefix}
	client.AddHook(o.trips)
	return o
}

// sharedOpener uses the Redis of testenv (make services, or
// EDDY_REDIS_ADDR).
func sharedOpener(tb testing.TB) *opener {
	return newOpener(tb, testenv.RedisAddr(tb), testenv.RedisPrefix)
}

// store returns a store over the counted shared client.
func (o *opener) store(tb testing.TB) *redisstore.Store {
	tb.Helper()
	st, err := redisstore.NewFromClient(o.client, o.prefix(tb))
	if err != nil {
		tb.Fatalf("NewFromClient: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// owned returns a store made by New, which owns its own client.
func (o *opener) owned(tb testing.TB, prefix string) *redisstore.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := redisstore.New(ctx, redisstore.Config{Addrs: []string{o.addr}, KeyPrefix: prefix})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	o := sharedOpener(t)
	t.Run("NewFromClient", func(t *testing.T) {
		statedbtest.Run(t, func(t *testing.T) statedb.Store { return o.store(t) },
			statedbtest.WithRoundTrips(o.trips.n.Load))
	})
	t.Run("New", func(t *testing.T) {
		// Each reopen closes the store's client and connects a new one.
		statedbtest.Run(t, func(t *testing.T) statedb.Store { return o.owned(t, o.prefix(t)) },
			statedbtest.WithReopen(func(t *testing.T, old statedb.Store) statedb.Store {
				prefix := old.(*redisstore.Store).KeyPrefix()
				if err := old.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if err := old.Ping(t.Context()); err == nil {
					t.Fatal("Ping of a closed store succeeded: Close did not close its client")
				}
				return o.owned(t, prefix)
			}))
	})
}
