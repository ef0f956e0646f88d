// Package integration holds eddy's tests against real services: Apache
// Kafka, Redis and a MySQL-compatible database (MariaDB standing in for
// SingleStore). It has no code of its own; the tests are in package
// integration_test and find their services through [testenv].
//
// # Running
//
//	make services   # Kafka, Redis, MariaDB on loopback (idempotent)
//	go test -race ./integration/...
//
// Point the tests at other services with EDDY_KAFKA_BROKERS,
// EDDY_REDIS_ADDR and EDDY_MYSQL_DSN; where a Docker engine answers,
// testenv starts containers instead (EDDY_TESTCONTAINERS=off disables
// that).
//
// # What they prove
//
// The consumer-group tests show that a sarama consumer group committing per
// batch delivers every message exactly once and in order per key, also when
// a member leaves and another resumes its partitions from their committed
// offsets: the ground the runtime's flush protocol stands on.
//
// [testenv]: https://pkg.go.dev/github.com/eddy-streams/eddy/integration/testenv
package integration
