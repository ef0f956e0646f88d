// Package testenv gives integration tests the real services they run
// against: Apache Kafka brokers, a Redis server and a MySQL-compatible
// database (MariaDB standing in for SingleStore), and isolates each test on
// them.
//
// # Finding the services
//
// Each service is looked up, in order:
//
//  1. its environment variable: EDDY_KAFKA_BROKERS (comma-separated
//     host:port list), EDDY_REDIS_ADDR (host:port), EDDY_MYSQL_DSN (a
//     go-sql-driver/mysql DSN of a user that may create databases);
//  2. a container started with testcontainers-go, when a Docker engine
//     answers (images apache/kafka:3.9.1, redis:7, mariadb:11). Set
//     EDDY_TESTCONTAINERS=off to skip this step. Containers are started
//     once per test binary, shared by its tests, and removed by
//     testcontainers' reaper when the binary exits;
//  3. the local services that `make services` starts on loopback
//     ([DefaultKafka], [DefaultRedis], [DefaultMySQL]).
//
// If none answers, the test fails (it is never skipped) and says to run
// `make services`.
//
// # Isolation
//
// [Topic] creates a fresh topic, [Group] names a fresh consumer group,
// [RedisPrefix] hands out a fresh key prefix and [MySQL] a fresh database.
// Topics, keys and databases are removed by t.Cleanup when the test ends, so
// tests can run in parallel against the same services and leave nothing
// behind. Names carry the test's name, to find them in broker or server logs.
//
// # Concurrency
//
// All functions may be called from parallel tests. The only state shared
// between calls is the set of containers of step 2, started at most once per
// service and process.
package testenv
