// Package redis is the statedb.Store on Redis: standalone, Sentinel or
// Redis Cluster, through go-redis v9's UniversalClient. Every Commit is one
// Lua script call, every Load one MGET: one network round trip each,
// whatever the number of keys.
//
// # Use
//
//	st, err := redis.New(ctx, redis.Config{
//		Addrs:     []string{"redis:6379"},
//		Password:  os.Getenv("REDIS_PASSWORD"),
//		KeyPrefix: "eddy:orders-by-customer:",
//	})
//
// Config.Validate names the bad field. Several Addrs (or Cluster) make a
// Cluster client; MasterName makes Addrs Sentinels. NewFromClient wraps a
// go-redis client the caller owns (and closes). Redis 6.2 or later is
// required (ZMSCORE, ZRANGE BYSCORE); the tests run on Redis 7.0.
//
// # Key layout
//
// All keys of partition P = (topic, n) of a store share P's hash tag:
//
//	<prefix>{<topic>:<n>}:meta      hash: epoch, offset, meta
//	<prefix>{<topic>:<n>}:ids       sorted set: event ID → expiry, Unix ms (+inf: no TTL)
//	<prefix>{<topic>:<n>}:timers    sorted set: timer key → due
//	<prefix>{<topic>:<n>}:s:<key>   string: the state value, with PX TTL if any
//
// The prefix is Config.KeyPrefix (the namespace); it may not contain a
// brace, so the first '{' of every key opens the tag. The topic is written
// with every byte outside Kafka's topic alphabet [A-Za-z0-9._-]
// percent-encoded, so real topic names appear as they are, and no topic can
// close the tag early, add a separator or collide with another. State keys
// follow the tag as they are: braces or any bytes in them do not matter.
// Everything of a store can be found with SCAN MATCH '<prefix>*' and
// guarded with an ACL key pattern '~<prefix>*'.
//
// # Atomicity and fencing
//
// Acquire is one script: HINCRBY on the epoch, then HMGET of offset and
// meta. Commit is one script (EVALSHA; go-redis falls back to EVAL when
// the server lost its script cache) that reads the epoch first and, if it
// is not the commit's, returns a fenced marker having written nothing;
// Commit returns an error wrapping statedb.ErrFenced. Otherwise it applies
// deletes, puts (in order), IDs, the trim of expired IDs, timer clears and
// sets, and the offset and meta. Redis runs a script alone, so no reader or
// other writer sees half of it, and a zombie's commit cannot interleave
// with its successor's Acquire. A script is not rolled back if a command in
// it fails, so the client validates everything the commands could reject
// before calling. As for memory, Redis refuses a script's first write if
// it is a command that may grow memory (HSET is) while used_memory is over
// maxmemory, and never stops a script after its first write. The commit
// script writes HSET first, so a full Redis refuses a whole commit (an
// error, not ErrFenced; TestCommitWhenRedisIsFull) and a started one runs
// to its end. (Had the script begun with a DEL, which Redis allows when
// full, every commit would have run past maxmemory: the test saw 20 MB go
// into a 4 MB Redis that way.)
//
// Expiries use the server's clock (TIME inside the script): workers with
// skewed clocks agree on what has expired. State entries expire by Redis
// itself (SET ... PX), so Load (MGET) never returns an expired value; a
// put without TTL makes a key permanent. Seen is one script comparing
// ZMSCORE to the server's time.
//
// go-redis retries a call that failed on the network. Replaying a commit
// writes the same values, so a retry is harmless; it may report ErrFenced
// for a commit whose first attempt was applied just before another owner
// acquired the partition, and that owner then sees the commit.
//
// # Redis Cluster
//
// All keys of one partition are in one slot (the hash tag), and every
// script and MGET names only keys of one partition, all of them in KEYS:
// Cluster routes each call to the node owning the slot, and no call can
// fail with CROSSSLOT. Different partitions spread over the slots, hence
// over the nodes. Event IDs are deduplicated per partition for that
// reason. DB must be 0 on a cluster. The tests run the conformance suite
// on a private 3-master cluster.
//
// # Memory per event ID
//
// An ID is a member of its partition's sorted set, scored by its expiry;
// each commit trims expired ones (ZREMRANGEBYSCORE up to the server's
// now), so the set holds about rate × IDTTL IDs. Measured on Redis 7.0
// (TestIDMemory, 100,000 IDs of 36 bytes): MEMORY USAGE 136 bytes per ID,
// used_memory +145 bytes per ID, i.e. about 100 bytes over the ID itself.
// One string key per ID with a PX TTL, the alternative, took 182 bytes per
// ID and would need one key per ID in every Seen. Budget: 10,000 events/s
// kept for 1 hour is 36 M IDs, about 5 GiB; shorten IDTTL to what replays
// need.
//
// # Durability and the Redis settings to choose
//
// "A store restart loses nothing" needs the append-only file:
//
//   - appendonly yes. Without it (or RDB snapshots only) a restart loses
//     everything since the last snapshot: state, IDs, offsets and epochs.
//     TestKillRestartLosesNothing shows that loss with appendonly no.
//   - appendfsync always: Redis fsyncs the AOF before replying, so an
//     acknowledged commit survives a crash of the machine. One fsync per
//     commit: on the (shared, virtual-disk ext4) test machine a commit of 1
//     entry took 0.09 to 1.1 ms instead of 0.03 to 0.05 ms without AOF;
//     commits of 100 or more entries amortise it (0.57 against 0.52 ms for
//     100 entries). Batch per flush, never per event.
//   - appendfsync everysec: the AOF is written before the reply and fsynced
//     once a second. A killed Redis process loses nothing (the data is in
//     the kernel's page cache; TestKillRestartLosesNothing SIGKILLs it);
//     a power loss or kernel crash can lose up to about a second of
//     acknowledged commits. State and offset watermark roll back together
//     (one script, one AOF entry), so the runtime replays those events from
//     Kafka; outputs produced meanwhile are re-produced with the same IDs.
//   - maxmemory-policy noeviction. Any evicting policy (allkeys-lru,
//     volatile-ttl, ...) silently drops state, IDs, timers or a partition's
//     epoch and offset: wrong results with no error. With noeviction a full
//     Redis refuses commits (an error, the partition pauses) instead.
//
// Replication (Sentinel, Cluster replicas) is asynchronous: a failover can
// lose the last acknowledged commits like an everysec power loss, with the
// same roll-back-and-replay outcome. Use min-replicas-to-write to bound it.
//
// # Limits
//
// A commit is one request and one script: it must fit Redis's
// client-query-buffer-limit (1 GiB) and proto-max-bulk-len (512 MiB per
// value), and Redis serves nobody else while it runs (measured ~1.7 ms of
// server time for 1,000 entries and 1,000 IDs). Timer dues are sorted-set
// scores (float64): exact for |due| <= 2^53.
//
// # Concurrency
//
// A Store is safe for concurrent use; it has no state besides go-redis's
// connection pool and script hashes. Close closes the pool of a store from
// New; a store from NewFromClient leaves the caller's client open.
//
// # Files
//
// config.go: Config, New, NewFromClient. store.go: the statedb.Store
// methods. scripts.go: the Lua scripts. keys.go: key layout and topic
// escaping.
package redis
