package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
	"github.com/eddy-streams/eddy/statedb/redis"
	"github.com/eddy-streams/eddy/statedb/singlestore"
)

// countingStore counts a store's calls per method and times every Commit.
// It is safe for concurrent use (the partition tasks call it at once).
type countingStore struct {
	statedb.Store
	acquire, load, seen, due, commit atomic.Uint64

	mu      sync.Mutex
	commits []time.Duration
}

func (s *countingStore) Acquire(ctx context.Context, p statedb.Partition) (statedb.Claim, error) {
	s.acquire.Add(1)
	return s.Store.Acquire(ctx, p)
}

func (s *countingStore) Load(ctx context.Context, p statedb.Partition, keys []string) (map[string][]byte, error) {
	s.load.Add(1)
	return s.Store.Load(ctx, p, keys)
}

func (s *countingStore) Seen(ctx context.Context, p statedb.Partition, ids []string) (map[string]bool, error) {
	s.seen.Add(1)
	return s.Store.Seen(ctx, p, ids)
}

func (s *countingStore) Due(ctx context.Context, p statedb.Partition, prefix string, until int64, limit int) ([]statedb.Timer, error) {
	s.due.Add(1)
	return s.Store.Due(ctx, p, prefix, until, limit)
}

func (s *countingStore) Commit(ctx context.Context, c *statedb.Commit) error {
	s.commit.Add(1)
	start := time.Now()
	err := s.Store.Commit(ctx, c)
	d := time.Since(start)
	s.mu.Lock()
	s.commits = append(s.commits, d)
	s.mu.Unlock()
	return err
}

// Inspect reads a partition's watermark without claiming it (not counted:
// only the bench calls it, to see when the last offset is persisted).
func (s *countingStore) Inspect(ctx context.Context, p statedb.Partition) (statedb.Claim, error) {
	in, ok := s.Store.(statedb.Inspector)
	if !ok {
		return statedb.Claim{}, errors.New("store has no Inspect")
	}
	return in.Inspect(ctx, p)
}

func (s *countingStore) calls() map[string]uint64 {
	return map[string]uint64{"acquire": s.acquire.Load(), "load": s.load.Load(), "seen": s.seen.Load(),
		"due": s.due.Load(), "commit": s.commit.Load()}
}

func (s *countingStore) commitDurations() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.commits...)
}

// openStore opens the backend of a scenario in a namespace of its own.
func openStore(ctx context.Context, cfg *config, backend, ns string) (statedb.Store, error) {
	switch backend {
	case "memory":
		return memory.New(), nil
	case "redis":
		s, err := redis.New(ctx, redis.Config{Addrs: []string{cfg.redis}, KeyPrefix: "eddybench:" + cfg.run + ":" + ns + ":"})
		if err != nil {
			return nil, fmt.Errorf("%w (run `make services`, or set %s)", err, envRedis)
		}
		return s, nil
	case "mariadb":
		s, err := singlestore.New(ctx, singlestore.Config{DSN: cfg.mysql, Dialect: singlestore.DialectMySQL,
			Namespace: "eddybench_" + cfg.run + "_" + ns})
		if err != nil {
			return nil, fmt.Errorf("%w (run `make services`, or set %s)", err, envMySQL)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown backend %q", backend)
}
