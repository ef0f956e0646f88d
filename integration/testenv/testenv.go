package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Defaults of `make services`.
const (
	DefaultKafka = "127.0.0.1:9092"
	DefaultRedis = "127.0.0.1:6379"
	DefaultMySQL = "eddy:eddy@tcp(127.0.0.1:3306)/eddy"
	// DefaultRegistry is the Confluent API of the Apicurio Registry that
	// make services runs.
	DefaultRegistry = "http://127.0.0.1:8081/apis/ccompat/v7"
)

// Environment variables that point the tests at other services.
const (
	EnvKafkaBrokers   = "EDDY_KAFKA_BROKERS"
	EnvRedisAddr      = "EDDY_REDIS_ADDR"
	EnvMySQLDSN       = "EDDY_MYSQL_DSN"
	EnvTestcontainers = "EDDY_TESTCONTAINERS"
	EnvRegistryURL    = "EDDY_REGISTRY_URL"
	// EnvConfluentPython is the Python with Confluent's client
	// (confluent-kafka) that make services installs.
	EnvConfluentPython = "EDDY_CONFLUENT_PYTHON"
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
	if v := os.Getenv(EnvKafkaBrokers); v != "" {
		return splitList(v)
	}
	if c := containersFor(t); c != nil {
		return []string{c.kafka(t)}
	}
	local(t, DefaultKafka, "Kafka", EnvKafkaBrokers)
	return []string{DefaultKafka}
}

// RedisAddr returns the address (host:port) of a real Redis server.
func RedisAddr(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvRedisAddr); v != "" {
		return v
	}
	if c := containersFor(t); c != nil {
		return c.redis(t)
	}
	local(t, DefaultRedis, "Redis", EnvRedisAddr)
	return DefaultRedis
}

// RegistryURL returns the URL of the Confluent API of a real schema
// registry (Apicurio's, from make services).
func RegistryURL(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvRegistryURL); v != "" {
		return v
	}
	if c := containersFor(t); c != nil {
		return c.registry(t)
	}
	local(t, "127.0.0.1:8081", "The schema registry", EnvRegistryURL)
	return DefaultRegistry
}

// ConfluentPython returns a Python that has Confluent's own client and
// serializers (confluent-kafka), in the venv make services makes.
func ConfluentPython(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvConfluentPython); v != "" {
		return v
	}
	dir := os.Getenv(EnvServicesDir)
	if dir == "" {
		dir = "/tmp/eddy-services"
	}
	py := filepath.Join(dir, "py", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("no Python with confluent-kafka at %s: run `make services` (or set %s)", py, EnvConfluentPython)
	}
	return py
}

// MySQLServerDSN returns a DSN of a real MySQL-compatible server (MariaDB
// or SingleStore), without isolation; prefer [MySQL]. Its user may create
// and drop databases.
func MySQLServerDSN(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvMySQLDSN); v != "" {
		return v
	}
	if c := containersFor(t); c != nil {
		return c.mysql(t)
	}
	local(t, "127.0.0.1:3306", "MariaDB", EnvMySQLDSN)
	return DefaultMySQL
}

// local fails t unless addr accepts TCP connections.
func local(t testing.TB, addr, name, env string) {
	t.Helper()
	if !answers(addr) {
		t.Fatalf("%s is not reachable at %s: run `make services` (or set %s)", name, addr, env)
	}
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// testName turns t.Name() into a fragment that is valid in topic, group,
// key and database names: lowercase letters, digits and underscores, at
// most max bytes.
func testName(t testing.TB, max int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= max {
			break
		}
	}
	return b.String()
}
