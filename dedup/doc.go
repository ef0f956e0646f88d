// Package dedup is eddy's idempotency filter: it drops events whose ID was
// seen before, so that replays (a crash, a rebalance, an offsets reset) and
// producer retries never count an event twice.
//
// # Event IDs
//
// An event's ID comes from the pipeline's source.event_id CEL expression,
// for example
//
//	source:
//	  event_id: event.order_id          # a field of the event
//	  event_id: headers["message-id"]   # a header
//
// or, without one, DefaultID: the eddy-id header that every eddy output
// carries (so chained pipelines deduplicate each other's repeats), else
// "<topic>-<partition>-<offset>". The offset form is unique per message: it
// protects against replays of the same message but treats a re-sent copy
// as a new event. To drop producer-side duplicates, give events an ID.
//
// # Where IDs live
//
// IDs are recorded per source partition in the state store, in the same
// atomic commit as the state the event produced and the partition's offset
// watermark (see package statedb): never before it, so a crash cannot mark
// an event seen whose effects were lost, and never after it, so a crash
// cannot apply an event twice. Each ID expires after dedup.ttl (default
// 24h): a duplicate arriving later than that is processed again, so set the
// TTL above the longest replay you may run.
//
// The scope is the source partition: a duplicate that arrives on another
// partition (its producer changed the key or the topic's partition count)
// is not caught. Keep the partitioning of a topic stable, or key events by
// something the duplicate shares.
//
// # Cost
//
// One Store.Seen call per batch (one round trip) and the IDs in each
// commit. Memory per ID held in the store, measured:
//
//   - Redis: about 136 bytes per 36-byte ID (a sorted set per partition,
//     trimmed of expired IDs at each commit); 10,000 events/s with a 24h TTL
//     keep ~864M IDs, ~118 GB — size the TTL to the replay window you need.
//   - SingleStore/MySQL: one row per ID (the ID, its partition and expiry);
//     expired rows are swept in the background.
//   - memory: the ID plus ~100 bytes of map overhead, lost at exit.
//
// # Observability
//
// Dropped duplicates are counted in eddy_events_duplicate_total and logged
// at debug level with their event ID and offset.
package dedup
