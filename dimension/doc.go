// Package dimension reads rows from tables a user already keeps — a Redis
// hash per key, a JSON string per key, or a MySQL/MariaDB/SingleStore
// table — for a pipeline's lookup steps (a fact–dimension join). eddy
// only reads them.
//
// A Source returns the rows of a batch of keys in one round trip (Redis:
// one pipeline, grouped by slot on a Cluster; SQL: one SELECT ... WHERE
// key IN (...)); Cached wraps one with a bounded, per-worker cache whose
// entries, found or not, live for a TTL, so a row changed in the source is
// seen within that TTL. An error (the source is down) is returned as is:
// the runtime retries and the partition pauses, as for the state store.
package dimension
