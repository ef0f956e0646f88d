package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisPrefix returns a unique key prefix for the calling test, of the form
// "eddytest:<test name>_<random>:". When the test ends, every key that
// starts with it is deleted (SCAN + UNLINK).
//
// The prefix contains no glob characters and no hash tag braces, so the
// caller may add a hash tag after it.
func RedisPrefix(t testing.TB) string {
	t.Helper()
	addr := RedisAddr(t)
	prefix := "eddytest:" + Unique(testName(t, 80)) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := deleteRedisKeys(ctx, addr, prefix)
		if err != nil {
			t.Errorf("cleanup: delete redis keys %s* (%d deleted): %v", prefix, n, err)
		}
	})
	return prefix
}

// deleteRedisKeys deletes every key of the Redis server at addr that starts
// with prefix, which must contain no glob characters (*?[]\), and returns
// how many it deleted.
func deleteRedisKeys(ctx context.Context, addr, prefix string) (int, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = rdb.Close() }()
	var (
		cursor  uint64
		deleted int
	)
	for {
		keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return deleted, err
		}
		if len(keys) > 0 {
			n, err := rdb.Unlink(ctx, keys...).Result()
			deleted += int(n)
			if err != nil {
				return deleted, err
			}
		}
		if next == 0 {
			return deleted, nil
		}
		cursor = next
	}
}
