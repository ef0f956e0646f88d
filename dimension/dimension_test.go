package dimension

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// TestRedisRows reads hash rows and JSON rows from a real Redis, in one
// pipeline each: numbers are numbers, a missing key is absent.
func TestRedisRows(t *testing.T) {
	addr, prefix := testenv.RedisAddr(t), testenv.RedisPrefix(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	ctx := t.Context()
	rdb.HSet(ctx, prefix+"h:u1", "name", "Ann", "age", "41", "score", "9.5")
	rdb.Set(ctx, prefix+"j:u1", `{"name":"Ann","tags":["a","b"],"n":3}`, 0)

	h, err := NewRedis(ctx, RedisConfig{Addrs: []string{addr}, KeyPrefix: prefix + "h:"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	got, err := h.Get(ctx, []string{"u1", "u2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]map[string]any{"u1": {"name": "Ann", "age": int64(41), "score": 9.5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("hash rows %v, want %v", got, want)
	}
	j, err := NewRedis(ctx, RedisConfig{Addrs: []string{addr}, KeyPrefix: prefix + "j:", JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	got, err = j.Get(ctx, []string{"u1", "u2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]map[string]any{"u1": {"name": "Ann", "tags": []any{"a", "b"}, "n": int64(3)}}; !reflect.DeepEqual(got, want) {
		t.Errorf("json rows %v, want %v", got, want)
	}
	rdb.Set(ctx, prefix+"j:bad", `not json`, 0)
	if _, err := j.Get(ctx, []string{"bad"}); err == nil {
		t.Error("a row that is not JSON: no error")
	}
}

// TestSQLRows reads rows of a real MariaDB table by key with one SELECT.
func TestSQLRows(t *testing.T) {
	dsn := testenv.MySQL(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	table := fmt.Sprintf("dim_%d", time.Now().UnixNano()%1_000_000_000)
	for _, q := range []string{
		"CREATE TABLE " + table + " (id VARCHAR(20) PRIMARY KEY, name VARCHAR(40), qty INT, price DECIMAL(8,2), at DATETIME NULL)",
		"INSERT INTO " + table + " VALUES ('p1', 'pen', 3, 1.50, '2026-01-02 03:04:05'), ('p2', 'ink', 7, 12.00, NULL)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE " + table) })
	s, err := NewSQL(t.Context(), SQLConfig{DSN: dsn, Table: table, KeyColumn: "id"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(t.Context(), []string{"p1", "p2", "p3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]any{
		"p1": {"id": "p1", "name": "pen", "qty": int64(3), "price": "1.50", "at": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		"p2": {"id": "p2", "name": "ink", "qty": int64(7), "price": "12.00", "at": nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	if _, err := NewSQL(t.Context(), SQLConfig{DSN: dsn, Table: table, KeyColumn: "nope"}); err == nil {
		t.Error("a key column the table lacks: no error at start")
	}
	if _, err := NewSQL(t.Context(), SQLConfig{DSN: dsn, Table: "x; DROP TABLE y", KeyColumn: "id"}); err == nil {
		t.Error("a table name that is not an identifier: accepted")
	}
}

// fakeSource counts the keys it is asked for and can fail.
type fakeSource struct {
	rows  map[string]map[string]any
	asked atomic.Int64
	fail  atomic.Bool
}

func (f *fakeSource) Get(_ context.Context, keys []string) (map[string]map[string]any, error) {
	if f.fail.Load() {
		return nil, errors.New("down")
	}
	f.asked.Add(int64(len(keys)))
	out := map[string]map[string]any{}
	for _, k := range keys {
		if r, ok := f.rows[k]; ok {
			out[k] = r
		}
	}
	return out, nil
}

func (f *fakeSource) Close() error { return nil }

// TestCache: hits and misses (found or not) are cached for the TTL, then
// read again; the least recently used key goes first past the size; an
// error reaches the caller and caches nothing.
func TestCache(t *testing.T) {
	src := &fakeSource{rows: map[string]map[string]any{"a": {"v": 1}, "b": {"v": 2}}}
	c := Cached(src, 2, time.Minute)
	now := time.Unix(0, 0)
	c.now = func() time.Time { return now }
	ctx := t.Context()
	get := func(keys ...string) map[string]map[string]any {
		t.Helper()
		got, err := c.Get(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := get("a", "x"); len(got) != 1 || got["a"]["v"] != 1 || src.asked.Load() != 2 {
		t.Fatalf("first read %v, %d keys asked", got, src.asked.Load())
	}
	get("a", "x") // both cached, x as missing
	if n := src.asked.Load(); n != 2 {
		t.Errorf("cached keys asked again: %d", n)
	}
	src.rows["a"] = map[string]any{"v": 10}
	now = now.Add(time.Minute) // expired
	if got := get("a"); got["a"]["v"] != 10 {
		t.Errorf("after the TTL: %v, want the new row", got)
	}
	get("b") // a, b cached; x was least recently used and is evicted
	get("x")
	if n := src.asked.Load(); n != 5 {
		t.Errorf("%d keys asked, want 5 (x evicted, read again)", n)
	}
	src.fail.Store(true)
	now = now.Add(time.Hour)
	if _, err := c.Get(ctx, []string{"a"}); err == nil {
		t.Error("a failing source: no error")
	}
	if hits, misses := c.Stats(); hits != 2 || misses != 5 {
		t.Errorf("hits %d misses %d, want 2 and 5", hits, misses)
	}
}
