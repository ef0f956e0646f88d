// Package testenv gives integration tests the real services they run
// against: Apache Kafka brokers, a Redis address and a MySQL-compatible DSN.
//
// Each service is found, in order: from its environment variable
// (EDDY_KAFKA_BROKERS, EDDY_REDIS_ADDR, EDDY_MYSQL_DSN); else from the local
// services that `make services` starts on loopback. If none answers the test
// fails and says to run `make services`.
//
// Every helper isolates the calling test: Topic creates a fresh topic,
// RedisPrefix a fresh key prefix, MySQL a fresh database, each removed when
// the test ends.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// Defaults of `make services`.
const (
	DefaultKafka = "127.0.0.1:9092"
	DefaultRedis = "127.0.0.1:6379"
	DefaultMySQL = "eddy:eddy@tcp(127.0.0.1:3306)/eddy"
)

// Unique returns a short random name with the given prefix, for topics,
// groups, key prefixes and databases.
func Unique(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// KafkaBrokers returns the bootstrap brokers of a real Kafka cluster.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	addrs := strings.Split(service(t, "EDDY_KAFKA_BROKERS", DefaultKafka, "Kafka"), ",")
	return addrs
}

// RedisAddr returns the address of a real Redis server.
func RedisAddr(t testing.TB) string {
	t.Helper()
	return service(t, "EDDY_REDIS_ADDR", DefaultRedis, "Redis")
}

// MySQLServerDSN returns a DSN of a real MySQL-compatible server (MariaDB
// or SingleStore), without isolation; prefer MySQL.
func MySQLServerDSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("EDDY_MYSQL_DSN"); dsn != "" {
		return dsn
	}
	service(t, "", "127.0.0.1:3306", "MariaDB")
	return DefaultMySQL
}

func service(t testing.TB, env, def, name string) string {
	t.Helper()
	if v := os.Getenv(env); env != "" && v != "" {
		return v
	}
	if answers(def) {
		return def
	}
	t.Fatalf("%s is not reachable at %s: run `make services` (or set %s)", name, def, env)
	return ""
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
