// Package pipeline loads eddy pipeline files: it decodes the YAML strictly,
// expands ${VAR} references, checks every field (reporting all problems at
// once, each with its file:line:col), compiles and type-checks the CEL
// expressions, and offers the evaluation helpers the runtime calls for
// every record.
//
// This comment is also the reference of the file format.
//
// # A pipeline file
//
// A pipeline reads events from Kafka topics, runs them through a list of
// steps (filters, computed fields, re-keying, custom processors, windowed
// aggregations) and writes the results to a topic and/or keeps aggregates
// in the state store:
//
//	name: clicks-per-user
//	kafka:
//	  brokers: [${KAFKA_BROKERS}]
//	source:
//	  topics: [clicks]
//	  event_id: event.id
//	  event_time: timestamp(event.ts)
//	state:
//	  backend: redis
//	  redis: {addrs: ["${REDIS_ADDR:-127.0.0.1:6379}"], password: "${REDIS_PASSWORD:-}"}
//	dedup: {enabled: true}
//	steps:
//	  - filter: event.price > 0
//	  - set: {total: event.price * double(event.qty)}
//	  - aggregate:
//	        key: event.user_id
//	        window: {tumbling: 1m, grace: 10s}
//	        values: {clicks: count(), spend: sum(event.total)}
//	sink:
//	  topic: clicks-per-user
//
// Unknown fields are errors (with a "did you mean" hint), as are values of
// the wrong type, so a typo never silently falls back to a default.
// Durations are Go durations: 100ms, 30s, 5m, 1h30m, 24h ("0" is zero; a
// bare number such as 30 is an error). A field left out, or left empty
// ("field:" or "field: ~"), takes its default. Where a list of strings is
// expected a single string is accepted as a one-element list. YAML anchors,
// aliases and merge keys ("<<: *anchor") work, but anchors must be defined
// inside a known field.
//
// # Environment variables
//
// ${NAME} in any value is replaced by the environment variable NAME before
// the value is decoded; ${NAME:-default} gives a default used when NAME is
// unset or empty. An unset variable without a default is an error naming
// the variable and the field. $${ writes a literal ${; a $ not followed by
// { is kept as is. References may appear unquoted inside flow collections
// ([${KAFKA_BROKERS}]). A plain (unquoted) value is typed after expansion,
// so "db: ${REDIS_DB}" can be an integer and "username: ${USER:-}" is empty;
// quoted values stay strings. Expansion applies to values, not to keys.
//
// Secrets are never printed: errors about password, dsn, secret, token and
// *_key fields do not show the value, and the values of such fields and of
// variables whose names look secret (containing PASSWORD, SECRET, TOKEN,
// DSN, CREDENTIAL, PRIVATE, AUTH, or ending in _KEY) are replaced by
// [redacted] in every error message, including run-time expression errors.
//
// # name
//
// Required. 1-100 characters: lowercase letters, digits, '-', '_' and '.'.
// It namespaces the pipeline's state and names the default consumer group,
// "eddy-<name>". Renaming a pipeline starts it with fresh state.
//
// # kafka
//
//	kafka:
//	  brokers: [${KAFKA_BROKERS}]  # required (unless the binary supplies them, as `worker dev` does)
//	  group: eddy-clicks           # default "eddy-<name>"
//	  balance: sticky              # sticky (default) | cooperative-sticky | range | roundrobin
//	  instance_id: ${POD_NAME}     # static membership; needs version >= 2.3.0
//	  version: 3.9.0               # Kafka protocol version; >= 2.1.0; default 2.8.0
//	  client_id: eddy              # default eddy
//	  session_timeout: 10s         # a silent (crashed) member's partitions move after this; default 10s
//	  transactions: true           # fence the outputs with transactional producers; default true
//	  create_topics: false         # create missing sink, dead-letter and late topics at start-up; default false
//	  sasl: {mechanism: SCRAM-SHA-512, username: eddy, password: ${KAFKA_PASSWORD}}
//	  tls: {ca_file: /etc/eddy/ca.pem}
//
// brokers are "host:port" addresses; an entry may hold several separated by
// commas, so one variable can carry the whole list. version is what the
// worker speaks to the brokers (sarama.ParseKafkaVersion syntax, e.g. 3.9.0);
// set it to your brokers' version or lower. With instance_id each worker
// keeps a stable identity, so a restart gets its partitions back without a
// rebalance (use a pod name, unique per worker).
//
// transactions (default true) makes each partition task produce its
// outputs, dead letters and late events in Kafka transactions, through a
// producer of its own with transactional.id "eddy-<group>-<topic>-<partition>":
// the next owner of a partition fences a frozen former owner's producer at
// the broker, so a zombie cannot publish after the partition moved.
// Consumers of the outputs must read with isolation.level=read_committed
// (eddy's own workers always do). It needs a transaction coordinator on the
// cluster (transaction.state.log.* settings; a single broker needs
// replication factor 1 and min ISR 1), and with ACLs the Write and Describe
// operations on the transactional ids "eddy-<group>-*". false keeps one
// idempotent producer per worker: outputs at least once, not fenced.
//
// sasl: mechanism is PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512;
// username and password are required. tls (see TLS below) encrypts the
// broker connections.
//
// # source
//
//	source:
//	  topics: [clicks]                 # required, at least one
//	  format: json                     # json (default) | raw | avro | protobuf | json_schema
//	  start: earliest                  # earliest (default) | latest
//	  event_id: event.id               # CEL, string or int; default "<topic>-<partition>-<offset>"
//	  event_time: timestamp(event.ts)  # CEL, timestamp or int (Unix ms); default: the Kafka record timestamp
//	  watermark: {allowed_lateness: 5s, idle_timeout: 1m}
//
// format json decodes each record value as a JSON object (see DecodeJSON);
// anything else is a poison event. format raw makes the event
// {"value": "<the record value as a string>"}. avro, protobuf and
// json_schema read the Confluent wire format with the schema its ID names
// in schema_registry (see # Schema registry). start applies only to a
// consumer group with no committed offset.
//
// event_id identifies an event for deduplication: give it an id the
// producer sets (a retried send then carries the same id). The default,
// topic-partition-offset, identifies the record, which only protects
// against re-reading the same record.
//
// watermark.allowed_lateness (default 0s) is how far behind the newest
// event time seen the watermark trails, i.e. how much out-of-order arrival
// is tolerated before windows close. watermark.idle_timeout (default 0s, off)
// lets the watermark of a partition that receives nothing advance.
// watermark.max_future (default 24h; 0s: off) refuses, as a poison event,
// an event time that far ahead of the wall clock, which would otherwise
// move the watermark past every event to come.
//
// # state
//
//	state:
//	  backend: memory                # memory (default) | redis | singlestore
//	  missing: rebuild               # a partition the store has no record of: rebuild (replay from 0; default) | pause | start_empty
//	  redis:                         # required when backend is redis, else ignored
//	    addrs: [127.0.0.1:6379]      # required; several without master_name = Redis Cluster
//	    username: eddy
//	    password: ${REDIS_PASSWORD}
//	    db: 0                        # must be 0 on a cluster
//	    key_prefix: "prod:"
//	    master_name: mymaster        # Redis Sentinel: addrs are then the sentinels
//	    tls: {enabled: true}
//	  singlestore:                   # required when backend is singlestore, else ignored
//	    dsn: ${SINGLESTORE_DSN}      # required, user:password@tcp(host:3306)/dbname
//	    dialect: singlestore         # singlestore (default) | mysql (MySQL/MariaDB, for tests)
//	    tls: {ca_file: /etc/eddy/db-ca.pem}
//	    wait_timeout: 30s            # default 30s: a frozen worker's open commit is undone after this
//
// memory keeps state in the worker: fine for development and disposable
// state, lost when the worker stops. redis and singlestore keep it outside,
// so any worker can take over any partition. The dsn is a
// go-sql-driver/mysql DSN and is checked at load (without being printed).
//
// # dedup
//
//	dedup: {enabled: true, ttl: 24h}   # defaults: enabled false, ttl 24h
//
// When enabled, an event whose event_id was already processed (within ttl)
// is dropped. Ids are remembered per partition, so a duplicate that arrives
// on another partition (its producer changed the key or the partition
// count) is not caught.
//
// # flush
//
//	flush: {max_messages: 1000, interval: 100ms, shutdown_timeout: 10s,   # the defaults
//	        backlog_messages: 10000, max_bytes: 16777216}
//
// A partition's outputs are produced, its state persisted and its offset
// committed every max_messages messages or every interval, whichever comes
// first, and on shutdown within shutdown_timeout. All three must be > 0.
//
// A partition that is behind (a backlog after a restart, a rebalance or a
// burst) grows its batches: after a full batch with more than the next
// batch's worth still to read, the next may hold twice as many messages,
// up to backlog_messages (at least max_messages; equal turns growth off).
// More events then share one flush: a key's state is written once per
// batch, and there is one commit and one transaction per batch. Once the
// partition has caught up its batches go back to max_messages, and at low
// rates a batch ends by interval, so latency is as without growth.
// max_bytes bounds every batch's record bytes (keys and values).
//
// # dead_letter
//
//	dead_letter: {topic: clicks-dlq}
//
// Events that cannot be processed (bad JSON, an expression failing at run
// time) are sent to topic with headers describing the error. Without
// dead_letter they are counted and skipped. Either way they never block the
// partition.
//
// # steps
//
// steps is a list; every item holds exactly one of the keys below, and runs
// in order. Expressions are CEL (see Expressions).
//
//	steps:
//	  - filter: event.price > 0                  # keep events for which this is true
//	  - set: {total: event.price * double(event.qty), country: event.country.upperAscii()}
//	  - map: {user: event.user_id, amount: event.total}
//	  - key: event.user                          # the record's new key
//	  - processor: {name: enrich-geo, config: {db: /data/geo.mmdb}}
//	  - repartition: {key: event.region}         # re-key through an internal topic
//	  - aggregate: {...}
//
// filter drops events for which the expression is false; it must be a
// bool.
//
// set adds or replaces fields of the event. Every expression sees the event
// as it was before the step; fields are then written in file order.
//
// map replaces the event with a new object holding exactly these fields.
//
// key sets the record key (a string, or an int written in base 10). Steps
// after it, and the sink, see the new key.
//
// processor runs a custom Go processor registered under name by the
// program embedding eddy; config (any mapping, after ${VAR} expansion) is
// handed to it. The binary checks the name against the registered ones.
//
// # repartition
//
//	steps:
//	  - repartition:
//	      key: event.region    # CEL, string or int: the new key; required
//	      name: by-region      # default step<N>; unique among the steps
//	      partitions: 12       # default: the source topics' partition count
//	      router: hash         # as sink.router; default hash
//
// repartition writes every event, keyed by key, to the internal topic
// eddy-<pipeline name>-<name>, which the worker creates (with the broker's
// default replication factor) if it does not exist; the steps after it
// run on that topic's partitions, in the same consumer group. The records
// carry their event ID and time (an ID the same on every replay), and the
// reading side always deduplicates them (dedup.ttl applies). Each
// downstream partition's watermark is the minimum of its upstream
// partitions' (each upstream task writes its watermark into every
// internal partition after each batch), so an aggregate after a
// repartition is exact however unevenly the source partitions are read;
// a source partition that never receives an event holds it back, unless
// source.watermark.idle_timeout is set. An aggregate keyed by the
// repartition key (with router hash) is co-partitioned by construction.
//
// # aggregate
//
//	steps:
//	  - aggregate:
//	      name: clicks                       # default "step<N>" (N = index in steps, from 0); unique
//	      key: event.user_id                 # required: the group key, string or int
//	      window: {tumbling: 1m, grace: 10s} # required; see below
//	      values:                            # required, at least one: name: function(expression)
//	        clicks: count()
//	        spend: sum(event.price)
//	        avg_price: avg(event.price)
//	        lo: min(event.price)
//	        hi: max(event.price)
//	        first_page: first(event.url)
//	        last_page: last(event.url)
//	        users: count_distinct(event.user_id)
//	      emit: on_close                     # on_close (default) | on_update
//	      late: {topic: late-clicks}         # default: count and drop late events
//	      retention: 1h                      # a TTL on window state: time until it closes + this (for state nobody closes); default 0s: none
//
// A window is one of:
//
//	window: {tumbling: 1m}                 # back-to-back windows of 1m
//	window: {hopping: 5m, advance: 1m}     # 5m windows starting every minute (0 < advance <= size)
//	window: {session: 30m}                 # a window per burst of activity, closed after a 30m gap
//
// plus grace (default 0s): how long after its end, in event time, a window
// still accepts events. A window closes when the watermark passes its end
// plus grace; events for a closed window are late.
//
// Functions: count() counts events; sum and avg take a number (avg is a
// double); min and max take a number, string, timestamp or duration; first
// and last keep the value of the earliest and latest event; count_distinct
// counts distinct values. Types are checked at load when they are known
// (fields of event are only known at run time).
//
// emit on_close writes one final result per window and key when the window
// closes; on_update writes the current result after every change (an
// upsert keyed by key and window).
//
// The group key should be co-partitioned with the source (the same key the
// records are partitioned by); otherwise re-key first.
//
// # join
//
//	steps:
//	  - join:
//	      name: paid                 # default step<N>; names the internal topic eddy-<pipeline>-<name>
//	      with:                      # the other input: a source section without start
//	        topics: [payments]
//	        event_id: event.pid
//	        event_time: event.ts
//	      on: {left: event.id, right: event.order}   # CEL join keys, string or int
//	      within: 10m                # required: times at most this far apart match
//	      grace: 5s                  # default 0s
//	      type: left                 # inner (default) | left | right | outer
//	      partitions: 12             # of the internal topic; default the source topics'
//	      select: {order: left.id, amount: right.amount}   # default {left, right}
//	      late: {topic: late-payments}
//
// A join is an interval join: a left and a right event match when their
// keys are equal and their event times at most within apart; each pair is
// emitted once, when the second arrives. Both inputs are routed by join
// key into the internal topic, tagged by side, and the steps from the join
// on run there; its watermark is the minimum over both inputs. An event
// that has matched nothing is emitted alone (left, right, outer), with the
// other side null, once the watermark passes its time + within + grace;
// an event more than grace behind the watermark is late. select sees left
// and right; in an unmatched row the missing side is an empty map and a
// field that fails on it is null. with.topics may not be source topics.
//
// # tables and lookup
//
//	tables:
//	  - name: profiles           # required, unique
//	    topic: user-profiles     # required: rows keyed by row key (murmur2-partitioned)
//	    format: json             # json (default) | raw
//	steps:
//	  - lookup: {table: profiles, key: event.user_id, type: left, as: profile}
//
// A table's topic is materialized into the state store by the pipeline's
// workers (a record upserts its key's row, a null value deletes it); a
// lookup step reads the row of key (CEL, string or int) from whichever
// table partition holds it and sets the event's field as (default: the
// table's name) to it. inner (default) drops an event without a row; left
// sets the field to null. Tables need source.start: earliest.
//
// A table can instead be one the user keeps: redis: {addrs, key_prefix,
// type: hash|json, ...} (the row of k at <key_prefix>k) or sql: {dsn,
// table, key_column}, read only, through a per-worker cache: {size:
// 10000, ttl: 1m}.
//
// # sink
//
//	sink:
//	  topic: clicks-out        # required, or topics
//	  topics: [a, b]           # instead of topic: a copy of every output on each
//	  key: event.user_id       # CEL, string or int; default: the record's current key
//	  router: hash             # hash (default) | consistent-hash | round-robin | multicast
//	  format: json             # json (default) | raw | avro | protobuf | json_schema
//	  schema:                  # for avro, protobuf and json_schema
//	    file: line.avsc        # relative to this file; default: the subject's latest version
//	    strategy: topic_name   # topic_name ("<topic>-value", default) | record_name | topic_record_name
//	    subject: lines-value   # instead of strategy: one subject for every topic
//	    register: true         # register file under the subject when it is not there (default true)
//	    message: shop.Line     # protobuf: the message to write (default the file's first)
//
// router places each output record on a partition of the sink topic, as
// a pure function of its key and output ID (package route), so that an
// output produced again after a crash or a replay lands on the partition
// of its first copy: hash is the Java producer's murmur2 of the key (Java
// producers and eddy agree), consistent-hash moves only the keys that must
// move when partitions are added, round-robin spreads evenly by output ID
// whatever the key, multicast writes a copy to every partition (each with
// an ID of its own, "<id>#<partition>"; partitions added later get copies
// from the next claim of each source partition on). A keyless record is
// placed by its ID. partitioner is router's old name: its old values
// random and roundrobin now mean round-robin (a random or rotating choice
// is not replay-stable).
//
// topics multicasts to topics: every output goes to each topic listed,
// placed on its partitions by router (multicast copies it again to every
// partition), each copy with an ID of its own, "<id>@<topic>" (then
// "#<partition>" under multicast), so a reader merging the topics and
// deduplicating by ID keeps every copy.
//
// dead_letter.router and aggregate.late.router place dead letters and late
// events: hash (default; of the event's source key, a keyless one by its
// ID), consistent-hash or round-robin (by ID, an even spread whatever the
// keys). Two fields naming the same topic must agree on its router.
//
// Without a sink the pipeline only keeps aggregates in the store (or feeds
// custom processors); a pipeline with neither a sink nor an aggregate or
// processor step is an error. format json writes the event as a JSON object
// (see EncodeJSON); raw writes its "value" field (a string or bytes) as is.
// The sink, dead-letter and late topics may not be source topics.
//
// # Expressions
//
// Expressions are CEL (https://cel.dev). They are compiled and type-checked
// when the file is loaded; a mistake is reported with its position in the
// file. They see these variables:
//
//	event      map(string, dyn)   the decoded record value (changed by set and map)
//	key        string             the record key (changed by key steps)
//	topic      string
//	partition  int
//	offset     int
//	timestamp  timestamp          the Kafka record timestamp
//	headers    map(string, string)
//
// Besides CEL's standard functions and macros (has, all, exists, map,
// filter, size, matches, int, double, string, timestamp, duration, ...),
// these extensions are enabled: strings (upperAscii, lowerAscii, trim,
// split, replace, substring, indexOf, join, format, ...), math (math.least,
// math.greatest, math.round, math.abs, ...), encoders (base64.encode,
// base64.decode), lists (lists.range, slice, flatten, sort, ...), sets
// (sets.contains, sets.intersects, ...) and optional values
// (event.?field.orValue(default)). Comparisons across int, uint and double
// work (event.price > 0); time functions default to UTC; `backquotes` escape
// field names that are not identifiers (event.`user-id`).
//
// JSON integers arrive as CEL int and other numbers as double (see
// DecodeJSON). CEL does not mix them in arithmetic: event.price * event.qty
// fails at run time when price is a double and qty an int; write
// event.price * double(event.qty). Likewise a missing field is a run-time
// error (guard with has(event.field) or event.?field.orValue(...)). A
// run-time error sends the event to the dead-letter topic with an error
// naming the expression, its field and its line.
//
// # Schema registry
//
//	schema_registry:
//	  url: http://registry:8081     # required; Apicurio: http://host:8080/apis/ccompat/v7
//	  username: ${REGISTRY_KEY}     # basic auth, with password; or token (bearer)
//	  password: ${REGISTRY_SECRET}
//	  tls: {ca_file: /etc/eddy/ca.pem}
//	  timeout: 10s                  # per request (default)
//
// The formats avro, protobuf and json_schema (of the source, a join's
// other input, a table and the sink) use a registry with the Confluent
// API, see package codec; a table's rows are kept in the store as JSON. A record's schema is fetched by
// its ID once and cached. A record that is not in the wire format, names
// an ID the registry does not know, or does not decode is a poison event
// whose error names the schema ID; a registry that does not answer pauses
// the partition, as a store outage does, until it answers. The sink
// registers its schema (or looks it up) at start-up: one the registry
// refuses as incompatible fails the start-up, naming the subject.
// Internal topics (repartition, join) stay JSON: eddy alone reads them.
//
// # TLS
//
//	tls:
//	  enabled: true              # default true when the block is present
//	  ca_file: /etc/eddy/ca.pem  # default: the system roots
//	  cert_file: /etc/eddy/client.pem
//	  key_file: /etc/eddy/client-key.pem   # cert_file and key_file go together
//	  server_name: kafka.internal
//	  insecure_skip_verify: false
//
// # Errors
//
// Load and Parse return Errors, one *Error per problem, each printed as
// "file:line:col: field.path: message", in file order:
//
//	pipeline.yaml:4:3: kafka.balanse: unknown field "balanse" (did you mean "balance"?)
//	pipeline.yaml:14:13: steps[0].filter: undeclared reference to 'evnt' (did you mean 'event'?) in "evnt.price > 0"
//
// `worker validate pipeline.yaml` prints them and exits 1 (`--json`: as
// JSON, per file). A YAML syntax error is reported the same way, at the
// line and column of the mistake:
//
//	pipeline.yaml:6:2: invalid YAML: did not find expected key (while parsing a block mapping at line 1, column 1)
//
// # Using the compiled pipeline
//
// The runtime keeps one Vars per partition goroutine, fills it for every
// record and calls Source.Decode, Source.IDFor, Source.TimeFor, Step.Apply
// (for filter, set, map and key steps) and Sink.KeyFor / Sink.Encode. Every
// Expr (and the whole Pipeline) is immutable and safe for concurrent use; a
// Vars is not. Evaluation errors are *EvalError values.
package pipeline
