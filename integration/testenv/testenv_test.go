package testenv

import (
	"context"
	"database/sql"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/redis/go-redis/v9"
)

func TestUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		u := Unique("x")
		if !regexp.MustCompile(`^x_[0-9a-f]{12}$`).MatchString(u) {
			t.Fatalf("Unique(%q) = %q, want x_ and 12 hex digits", "x", u)
		}
		if seen[u] {
			t.Fatalf("Unique returned %q twice", u)
		}
		seen[u] = true
	}
}

func TestTestName(t *testing.T) {
	tests := []struct {
		name string
		max  int
		want string
	}{
		{"Plain", 80, "testtestname_plain"},
		{"With/Slash and Space", 80, "testtestname_with_slash_and_space"},
		{"Truncated", 10, "testtestna"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testName(t, tt.max); got != tt.want {
				t.Errorf("testName(%q, %d) = %q, want %q", t.Name(), tt.max, got, tt.want)
			}
		})
	}
}

func TestTopicCreatedAndDeleted(t *testing.T) {
	brokers := KafkaBrokers(t)
	var name string
	t.Run("create", func(t *testing.T) {
		name = Topic(t, brokers, 4)
		admin, err := sarama.NewClusterAdmin(brokers, SaramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = admin.Close() }()
		md, err := admin.DescribeTopics([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if len(md) != 1 || len(md[0].Partitions) != 4 {
			t.Fatalf("topic %s: metadata %+v, want 4 partitions", name, md)
		}
	})
	// The subtest's cleanup has run: the topic must be gone (deletion is
	// asynchronous in the broker, so poll briefly).
	admin, err := sarama.NewClusterAdmin(brokers, SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		topics, err := admin.ListTopics()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := topics[name]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s still listed 30s after cleanup", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestGroupUnique(t *testing.T) {
	a, b := Group(t), Group(t)
	if a == b {
		t.Fatalf("Group returned %q twice", a)
	}
}

func TestRedisPrefixCleanup(t *testing.T) {
	addr := RedisAddr(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = rdb.Close() }()
	ctx := context.Background()
	var prefix string
	// Another test's keys with a similar name must survive.
	other := "eddytest:other_" + Unique("k")
	if err := rdb.Set(ctx, other, "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	defer rdb.Del(ctx, other)

	t.Run("write", func(t *testing.T) {
		prefix = RedisPrefix(t)
		pipe := rdb.Pipeline()
		for i := range 2500 { // more than one SCAN page
			pipe.Set(ctx, prefix+"k"+string(rune('a'+i%26))+Unique(""), i, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	})
	n, err := deleteRedisKeys(ctx, addr, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d keys with prefix %s left after cleanup", n, prefix)
	}
	if v, err := rdb.Get(ctx, other).Result(); err != nil || v != "v" {
		t.Fatalf("key %s of another prefix: %q, %v; want it untouched", other, v, err)
	}
}

func TestMySQLDatabaseCreatedAndDropped(t *testing.T) {
	server := MySQLServerDSN(t)
	var dsn string
	t.Run("use", func(t *testing.T) {
		dsn = MySQL(t)
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		var name string
		if err := db.QueryRow("SELECT DATABASE()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^eddy_testmysqldatabasecreatedanddropped_use_[0-9a-f]{12}$`).MatchString(name) {
			t.Fatalf("database %q, want a fresh one named after the test", name)
		}
		for _, p := range []string{"parseTime=true", "clientFoundRows=true"} {
			if !strings.Contains(dsn, p) {
				t.Errorf("dsn %q lacks %s", dsn, p)
			}
		}
	})
	db, err := sql.Open("mysql", server)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	rows, err := db.Query("SHOW DATABASES")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "eddy_testmysqldatabasecreatedanddropped_use_") {
			t.Fatalf("database %s still exists after cleanup", n)
		}
	}
}
