package main

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisPersistence reads Redis's appendonly and appendfsync back from the
// server, as "appendonly yes, appendfsync everysec".
func redisPersistence(ctx context.Context, addr string) (string, error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv, err := rdb.ConfigGet(cctx, "append*").Result()
	if err != nil {
		return "", fmt.Errorf("redis %s: CONFIG GET append*: %w", addr, err)
	}
	return fmt.Sprintf("appendonly %s, appendfsync %s", kv["appendonly"], kv["appendfsync"]), nil
}

// setAppendfsync sets Redis's appendfsync to value (CONFIG SET) and
// returns a function that sets it back to what it was before, read first
// with CONFIG GET. The caller defers restore whatever happens in between;
// restore works after ctx ended.
func setAppendfsync(ctx context.Context, addr, value string) (restore func() error, err error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv, err := rdb.ConfigGet(cctx, "appendfsync").Result()
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis %s: CONFIG GET appendfsync: %w", addr, err)
	}
	prev, ok := kv["appendfsync"]
	if !ok || prev == "" {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis %s: CONFIG GET appendfsync returned no value", addr)
	}
	if err := rdb.ConfigSet(cctx, "appendfsync", value).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis %s: CONFIG SET appendfsync %s: %w", addr, value, err)
	}
	logf("redis: appendfsync %s -> %s (until the scenario ends)", prev, value)
	return func() error {
		defer rdb.Close()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := rdb.ConfigSet(rctx, "appendfsync", prev).Err(); err != nil {
			return fmt.Errorf("redis %s: restoring appendfsync %s: %w (set it back by hand: CONFIG SET appendfsync %s)", addr, prev, err, prev)
		}
		logf("redis: appendfsync restored to %s", prev)
		return nil
	}, nil
}
