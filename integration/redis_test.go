package integration_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// TestRedisRoundTrip: values of every shape come back byte for byte from a
// real Redis, with their TTL, and a Lua script writes keys of one hash tag
// atomically (the primitive of the Redis store's commit).
func TestRedisRoundTrip(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := testenv.RedisPrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	tests := []struct {
		name  string
		value []byte
		ttl   time.Duration
	}{
		{"text", []byte("hello, eddy"), 0},
		{"empty", []byte{}, 0},
		{"binary", binary, time.Minute},
		{"large", bytes.Repeat([]byte("0123456789abcdef"), 1<<16), time.Hour}, // 1 MiB
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := prefix + tt.name
			if err := rdb.Set(ctx, key, tt.value, tt.ttl).Err(); err != nil {
				t.Fatalf("set %s: %v", key, err)
			}
			got, err := rdb.Get(ctx, key).Bytes()
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			if !bytes.Equal(got, tt.value) {
				t.Fatalf("get %s: %d bytes differ from the %d written", key, len(got), len(tt.value))
			}
			ttl, err := rdb.PTTL(ctx, key).Result()
			if err != nil {
				t.Fatalf("pttl %s: %v", key, err)
			}
			switch {
			case tt.ttl == 0 && ttl != -1:
				t.Errorf("key %s: ttl %s, want none", key, ttl)
			case tt.ttl > 0 && (ttl <= 0 || ttl > tt.ttl):
				t.Errorf("key %s: ttl %s, want in (0, %s]", key, ttl, tt.ttl)
			}
		})
	}

	t.Run("lua", func(t *testing.T) {
		// Two keys of one hash tag and a version check, as the store's
		// commit script does: SET both only if the version matches.
		script := redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1`)
		ver, state := prefix+"{p0}:version", prefix+"{p0}:state"
		if err := rdb.Set(ctx, ver, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			expect, next, value string
			applied             int64
			wantVer, wantState  string
		}{
			{"1", "2", "a", 1, "2", "a"},
			{"1", "3", "b", 0, "2", "a"}, // stale version: nothing written
			{"2", "3", "c", 1, "3", "c"},
		}
		for i, s := range steps {
			got, err := script.Run(ctx, rdb, []string{ver, state}, s.expect, s.next, s.value).Int64()
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			v, _ := rdb.Get(ctx, ver).Result()
			st, _ := rdb.Get(ctx, state).Result()
			if got != s.applied || v != s.wantVer || st != s.wantState {
				t.Errorf("step %d: applied %d, version %q, state %q; want %d, %q, %q", i, got, v, st, s.applied, s.wantVer, s.wantState)
			}
		}
	})
}
