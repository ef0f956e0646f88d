package pipeline

import (
	"time"
)

// Spec is a pipeline file, decoded and with defaults applied. Its fields are
// the file's keys (see the yaml tags); the package documentation describes
// each one for users. After Load or Parse every default is filled in, so
// Spec shows the configuration the runtime will actually use.
type Spec struct {
	// Name names the pipeline. It namespaces the pipeline's state and the
	// default consumer group ("eddy-<name>"). Required; lowercase letters,
	// digits, '-', '_' and '.'.
	Name string `yaml:"name"`
	// Kafka is how the worker reaches the cluster and joins its group.
	Kafka KafkaConfig `yaml:"kafka"`
	// Source is what the pipeline reads.
	Source SourceConfig `yaml:"source"`
	// State selects where state lives.
	State StateConfig `yaml:"state"`
	// Dedup configures the idempotency store.
	Dedup DedupConfig `yaml:"dedup"`
	// Flush configures how often state is persisted and offsets committed.
	Flush FlushConfig `yaml:"flush"`
	// DeadLetter, when set, receives events that fail (bad JSON, CEL errors);
	// when nil such events are counted and skipped.
	DeadLetter *DeadLetterConfig `yaml:"dead_letter"`
	// Tables are topics materialized into the state store, row per key,
	// for lookup steps.
	Tables []TableConfig `yaml:"tables"`
	// Steps is the chain of operators every event runs through, in order.
	Steps []StepConfig `yaml:"steps"`
	// Sink, when set, is the topic the pipeline writes its output to.
	Sink *SinkConfig `yaml:"sink"`
	// SchemaRegistry is the registry of the avro, protobuf and
	// json_schema formats. Required when a source, table or sink uses
	// one of them.
	SchemaRegistry *SchemaRegistryConfig `yaml:"schema_registry"`
}

// SchemaRegistryConfig is the schema_registry section: a registry with
// the Confluent API (Confluent's, Apicurio's /apis/ccompat/v7, Redpanda's,
// Karapace).
type SchemaRegistryConfig struct {
	// URL is the registry's base URL, http:// or https://. Required.
	URL string `yaml:"url"`
	// Username and Password authenticate with HTTP basic auth (Confluent
	// Cloud: the API key and secret); Token with a bearer token. Give
	// them as ${VAR}s. At most one of the two.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	// TLS, when set and enabled, is used for an https URL.
	TLS *TLSConfig `yaml:"tls"`
	// Timeout bounds each request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// KafkaConfig is the kafka section.
type KafkaConfig struct {
	// Brokers are the bootstrap brokers, "host:port" each. An entry may hold
	// several comma-separated addresses (handy with one ${KAFKA_BROKERS}).
	// Required unless the binary supplies brokers itself (WithBrokers).
	Brokers []string `yaml:"brokers"`
	// Group is the consumer group id. Default "eddy-<name>".
	Group string `yaml:"group"`
	// Balance is the partition assignment strategy. Default sticky.
	Balance Balance `yaml:"balance"`
	// InstanceID turns on static group membership (needs version >= 2.3.0).
	InstanceID string `yaml:"instance_id"`
	// Version is the Kafka protocol version to speak, as accepted by
	// sarama.ParseKafkaVersion; at least 2.1.0. Default "2.8.0".
	Version string `yaml:"version"`
	// ClientID is the client id sent to the brokers. Default "eddy".
	ClientID string `yaml:"client_id"`
	// SessionTimeout is how long the group waits for a silent member
	// (a crashed worker) before moving its partitions: failover time is at
	// least this. Between 1s and 30m; the brokers bound it further
	// (group.min.session.timeout.ms, 6s by default). Heartbeats go every
	// third of it. Default 10s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// Transactions fences the outputs: each partition task produces through
	// its own transactional producer (transactional.id
	// "eddy-<group>-<topic>-<partition>"), so that a frozen former owner
	// cannot publish after the partition moved. Consumers of the outputs
	// must read with isolation.level=read_committed. Default true; false
	// keeps one idempotent producer per worker (outputs not fenced).
	Transactions *bool `yaml:"transactions"`
	// CreateTopics makes the worker create, at start-up, the output topics
	// (sink, dead-letter, late) that do not exist yet, with the source
	// topics' partition count and the broker's default replication; off
	// (the default), a missing one fails the start-up with a message
	// naming it. Internal topics are always created.
	CreateTopics bool `yaml:"create_topics"`
	// SASL, when set, authenticates to the brokers.
	SASL *SASLConfig `yaml:"sasl"`
	// TLS, when set and enabled, encrypts the broker connections.
	TLS *TLSConfig `yaml:"tls"`
}

// TransactionsOn reports whether kafka.transactions is on (the default).
func (k *KafkaConfig) TransactionsOn() bool { return k.Transactions == nil || *k.Transactions }

// SASLConfig is kafka.sasl.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. Default PLAIN.
	Mechanism SASLMechanism `yaml:"mechanism"`
	// Username is required.
	Username string `yaml:"username"`
	// Password is required. It is never printed in errors.
	Password string `yaml:"password"`
}

// TLSConfig is a tls block (kafka.tls, state.redis.tls,
// state.singlestore.tls). All files are PEM.
type TLSConfig struct {
	// Enabled turns TLS on. Default true when the block is present.
	Enabled bool `yaml:"enabled"`
	// CAFile is the CA bundle to verify the server with; default: the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and key (mutual TLS);
	// give both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables server certificate verification (tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SourceConfig is the source section.
type SourceConfig struct {
	// Topics are the topics to consume; at least one.
	Topics []string `yaml:"topics"`
	// Format is how record values are decoded. Default json.
	Format Format `yaml:"format"`
	// Start is where a group with no committed offset begins. Default earliest.
	Start Start `yaml:"start"`
	// EventID is a CEL expression giving the event's id (string or int), used
	// by dedup. Default: "<topic>-<partition>-<offset>".
	EventID string `yaml:"event_id"`
	// EventTime is a CEL expression giving the event's time (a timestamp, or
	// an int of Unix milliseconds). Default: the Kafka record timestamp.
	EventTime string `yaml:"event_time"`
	// Watermark tunes event-time progress.
	Watermark WatermarkConfig `yaml:"watermark"`
}

// WatermarkConfig is source.watermark.
type WatermarkConfig struct {
	// AllowedLateness is how far behind the newest event time seen the
	// watermark trails (out-of-orderness tolerated). Default 0s.
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// IdleTimeout, when > 0, advances the watermark of a partition that has
	// received nothing for this long. Default 0s (off).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxFuture is how far ahead of the wall clock an event time may be:
	// an event further ahead is a poison event (dead-letter path) instead
	// of moving the watermark past every event to come. Default 24h; 0s
	// turns the check off (for a replay of synthetic time, say).
	MaxFuture time.Duration `yaml:"max_future"`
}

// StateConfig is the state section.
type StateConfig struct {
	// Backend is memory, redis or singlestore. Default memory.
	Backend Backend `yaml:"backend"`
	// Redis configures the redis backend; required when Backend is redis and
	// ignored otherwise.
	Redis *RedisConfig `yaml:"redis"`
	// SingleStore configures the singlestore backend; required when Backend
	// is singlestore and ignored otherwise.
	SingleStore *SingleStoreConfig `yaml:"singlestore"`
	// Missing is what a worker does with a partition the store has no
	// record of while the group has committed offsets for it (a wiped
	// store, a failover to an empty replica): rebuild (default) replays
	// the partition from the start of its log when the log still holds
	// its whole history, and pauses it otherwise; pause always pauses it
	// (the worker unready, saying what to do); start_empty goes on from
	// the committed offset with empty state (results that span the loss
	// are partial).
	Missing MissingState `yaml:"missing"`
}

// MissingState is state.missing.
type MissingState string

// The state.missing choices.
const (
	MissingRebuild    MissingState = "rebuild"
	MissingPause      MissingState = "pause"
	MissingStartEmpty MissingState = "start_empty"
)

func (MissingState) allowed() []string { return []string{"rebuild", "pause", "start_empty"} }

// RedisConfig is state.redis.
type RedisConfig struct {
	// Addrs are "host:port" addresses; at least one. Several addresses
	// without MasterName mean a Redis Cluster.
	Addrs []string `yaml:"addrs"`
	// Username and Password authenticate (Redis ACL / AUTH). The password
	// is never printed in errors.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB is the database number; must be 0 on a cluster.
	DB int `yaml:"db"`
	// KeyPrefix is prepended to every key eddy writes.
	KeyPrefix string `yaml:"key_prefix"`
	// TLS, when set and enabled, encrypts the connections.
	TLS *TLSConfig `yaml:"tls"`
	// MasterName selects Redis Sentinel: Addrs are then the sentinels.
	MasterName string `yaml:"master_name"`
}

// SingleStoreConfig is state.singlestore.
type SingleStoreConfig struct {
	// DSN is a go-sql-driver/mysql data source name,
	// "user:password@tcp(host:3306)/db". Required; never printed in errors.
	DSN string `yaml:"dsn"`
	// Dialect is singlestore or mysql (MySQL/MariaDB, for tests); it only
	// changes the DDL. Default singlestore.
	Dialect Dialect `yaml:"dialect"`
	// TLS, when set and enabled, encrypts the connections.
	TLS *TLSConfig `yaml:"tls"`
	// WaitTimeout is the server-side wait_timeout of the worker's
	// connections: a worker frozen in the middle of a commit keeps its
	// partition's rows locked, and so blocks the partition's next owner,
	// at most this long. Whole seconds, 1s to 24h; default 30s.
	WaitTimeout time.Duration `yaml:"wait_timeout"`
}

// DedupConfig is the dedup section.
type DedupConfig struct {
	// Enabled drops events whose id was already seen. Default false.
	Enabled bool `yaml:"enabled"`
	// TTL is how long an event id is remembered. Default 24h.
	TTL time.Duration `yaml:"ttl"`
}

// FlushConfig is the flush section.
type FlushConfig struct {
	// MaxMessages flushes after this many messages of a partition. Default 1000.
	MaxMessages int `yaml:"max_messages"`
	// BacklogMessages is how far a partition that is behind grows its
	// batches: after a full batch with more than the next batch's worth
	// still to read, the next batch may hold twice as many messages, up
	// to this; once the partition has caught up, batches go back to
	// MaxMessages. More events then share one flush (one state write per
	// key, one commit, one transaction). Default 10000 (MaxMessages when
	// that is larger); equal to MaxMessages turns growth off.
	BacklogMessages int `yaml:"backlog_messages"`
	// MaxBytes bounds a batch's record bytes (keys and values): a batch
	// flushes once it holds this many, whatever its message count.
	// Default 16777216 (16 MiB).
	MaxBytes int `yaml:"max_bytes"`
	// Interval flushes at least this often. Default 100ms.
	Interval time.Duration `yaml:"interval"`
	// ShutdownTimeout bounds the final flush on shutdown. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DeadLetterConfig is the dead_letter section.
type DeadLetterConfig struct {
	// Topic receives failed events with error headers. Required.
	Topic string `yaml:"topic"`
	// Router places each dead letter on a partition: hash (of the event's
	// source key; a keyless one by its ID), consistent-hash or
	// round-robin. Default hash.
	Router Partitioner `yaml:"router"`
}

// StepConfig is one item of steps: exactly one of its fields is set.
type StepConfig struct {
	// Filter is a CEL expression (bool); events for which it is false are dropped.
	Filter string `yaml:"filter"`
	// Set adds or replaces fields of the event (field name -> CEL expression).
	Set FieldExprs `yaml:"set"`
	// Map replaces the event with a new object of these fields.
	Map FieldExprs `yaml:"map"`
	// Key is a CEL expression (string or int) giving the record's new key.
	Key string `yaml:"key"`
	// Processor runs a custom Go processor registered by name.
	Processor *ProcessorConfig `yaml:"processor"`
	// Aggregate is a windowed aggregation.
	Aggregate *AggregateConfig `yaml:"aggregate"`
	// Repartition re-keys the stream through an internal topic.
	Repartition *RepartitionConfig `yaml:"repartition"`
	// Join joins the stream with another within an interval of event time.
	Join *JoinConfig `yaml:"join"`
	// Lookup joins each event with a table's row (a stream-table join).
	Lookup *LookupConfig `yaml:"lookup"`
}

// TableConfig is one item of tables: a topic materialized into the state
// store by the pipeline's workers, one row per message key.
type TableConfig struct {
	// Name names the table in lookup steps and in the store. Required;
	// unique.
	Name string `yaml:"name"`
	// Topic holds the table's rows, keyed by row key and partitioned by
	// Kafka's default partitioner (murmur2 of the key): a record upserts
	// its key's row, a tombstone (null value) deletes it. Compacted or not.
	// Required.
	Topic string `yaml:"topic"`
	// Format is how row values are decoded: json (default), raw, avro,
	// protobuf or json_schema.
	Format Format `yaml:"format"`
	// Redis, instead of Topic, is a table the user keeps in Redis: read
	// only, a row per key.
	Redis *TableRedisConfig `yaml:"redis"`
	// SQL, instead of Topic, is a table the user keeps in MySQL, MariaDB
	// or SingleStore: read only, a row per key column value.
	SQL *TableSQLConfig `yaml:"sql"`
	// Cache bounds the per-worker cache of a Redis or SQL table's rows.
	Cache TableCacheConfig `yaml:"cache"`
}

// TableRedisConfig is tables[].redis.
type TableRedisConfig struct {
	// Addrs, Username, Password, DB, TLS and MasterName connect as in
	// state.redis.
	Addrs      []string   `yaml:"addrs"`
	Username   string     `yaml:"username"`
	Password   string     `yaml:"password"`
	DB         int        `yaml:"db"`
	TLS        *TLSConfig `yaml:"tls"`
	MasterName string     `yaml:"master_name"`
	// KeyPrefix: the row of key k is at <key_prefix>k.
	KeyPrefix string `yaml:"key_prefix"`
	// Type is hash (a hash per row, HGETALL; default) or json (a string
	// holding a JSON object, GET).
	Type string `yaml:"type"`
}

// TableSQLConfig is tables[].sql.
type TableSQLConfig struct {
	// DSN is a go-sql-driver/mysql data source name. Required; never
	// printed in errors.
	DSN string `yaml:"dsn"`
	// TLS, when set and enabled, encrypts the connections.
	TLS *TLSConfig `yaml:"tls"`
	// Table is the table (or view), optionally db.table. Required.
	Table string `yaml:"table"`
	// KeyColumn is the column a lookup key matches. Required.
	KeyColumn string `yaml:"key_column"`
}

// TableCacheConfig is tables[].cache.
type TableCacheConfig struct {
	// Size is how many keys each worker keeps. Default 10000.
	Size int `yaml:"size"`
	// TTL is how long a row read (or found missing) is used before it is
	// read again: a change in the source is seen within it. Default 1m.
	TTL time.Duration `yaml:"ttl"`
}

// LookupConfig is a lookup step: a stream-table join.
type LookupConfig struct {
	// Table names the table (tables[].name). Required.
	Table string `yaml:"table"`
	// Key is a CEL expression (string or int) giving the row key. Required.
	Key string `yaml:"key"`
	// Type is inner (an event without a row is dropped) or left (it goes
	// on, its field null). Default inner.
	Type JoinType `yaml:"type"`
	// As is the event field that receives the row. Default the table's name.
	As string `yaml:"as"`
}

// JoinConfig is a join step: a stream-stream interval join.
type JoinConfig struct {
	// Name names the step, its state and its internal topic,
	// eddy-<pipeline>-<name>; unique in the pipeline. Default "step<N>".
	Name string `yaml:"name"`
	// With is the other input (the right side): a source section without
	// start (the group's start position is source.start).
	With SourceConfig `yaml:"with"`
	// On gives the join key of each side (CEL, string or int).
	On JoinOnConfig `yaml:"on"`
	// Within: a left and a right event match when their keys are equal and
	// their event times at most this far apart. Required, > 0.
	Within time.Duration `yaml:"within"`
	// Grace is how far behind the join's watermark an event may be and
	// still be joined. Default 0s.
	Grace time.Duration `yaml:"grace"`
	// Type is inner (matched pairs only), left (also each left event
	// without a match), right, or outer (both). Default inner.
	Type JoinType `yaml:"type"`
	// Partitions of the internal topic both inputs are routed into by
	// join key. Default: the source topics' partition count.
	Partitions int `yaml:"partitions"`
	// Select builds each output from left and right (CEL, field name ->
	// expression). Default {left: <left event>, right: <right event>}.
	Select FieldExprs `yaml:"select"`
	// Late, when set, receives events that arrive after their interval
	// closed; otherwise they are counted and dropped.
	Late *LateConfig `yaml:"late"`
}

// JoinOnConfig is join.on: the join key of each side.
type JoinOnConfig struct {
	Left  string `yaml:"left"`
	Right string `yaml:"right"`
}

// RepartitionConfig is a repartition step.
type RepartitionConfig struct {
	// Name names the step and its internal topic, eddy-<pipeline>-<name>;
	// unique in the pipeline. Default "step<N>".
	Name string `yaml:"name"`
	// Key is a CEL expression (string or int) giving the new key. Required.
	Key string `yaml:"key"`
	// Partitions of the internal topic. Default: the source topics'
	// partition count (all together).
	Partitions int `yaml:"partitions"`
	// Router places records on the internal topic (as sink.router).
	// Default hash.
	Router Partitioner `yaml:"router"`
}

// FieldExprs is a YAML mapping of names to CEL expressions, kept in file order.
type FieldExprs []FieldExpr

// FieldExpr is one entry of a FieldExprs mapping.
type FieldExpr struct {
	Name string // the mapping key
	Expr string // the CEL expression (or, in aggregate values, "func(expr)")
}

// ProcessorConfig is a processor step.
type ProcessorConfig struct {
	// Name is the name the custom processor was registered under. Required.
	Name string `yaml:"name"`
	// Config is handed to the processor as is (any YAML mapping).
	Config map[string]any `yaml:"config"`
}

// AggregateConfig is an aggregate step.
type AggregateConfig struct {
	// Name names the aggregate's state and outputs; unique in the pipeline.
	// Default "step<N>", N being the step's index in steps (from 0).
	Name string `yaml:"name"`
	// Key is a CEL expression giving the group key (string or int).
	Key string `yaml:"key"`
	// Window is the window to aggregate over.
	Window WindowConfig `yaml:"window"`
	// Values are the aggregates to compute, name -> "func(expr)": count(),
	// sum(x), avg(x), min(x), max(x), first(x), last(x), count_distinct(x).
	Values FieldExprs `yaml:"values"`
	// Emit is on_close (one final result per window) or on_update (a result
	// per change). Default on_close.
	Emit Emit `yaml:"emit"`
	// Late, when set, receives events that arrive after their window closed;
	// otherwise they are counted and dropped.
	Late *LateConfig `yaml:"late"`
	// Retention gives window state a wall-clock TTL of the time until its
	// window closes plus this: a safety net for state of a partition that
	// never gets another event (a window's state is deleted when it
	// closes, whatever this says). Default 0s: no TTL.
	Retention time.Duration `yaml:"retention"`
}

// WindowConfig is aggregate.window: exactly one of Tumbling, Hopping and
// Session is set.
type WindowConfig struct {
	// Tumbling is the size of back-to-back, non-overlapping windows.
	Tumbling time.Duration `yaml:"tumbling"`
	// Hopping is the size of overlapping windows that start every Advance.
	Hopping time.Duration `yaml:"hopping"`
	// Advance is the hop of a hopping window: 0 < advance <= hopping.
	Advance time.Duration `yaml:"advance"`
	// Session is the inactivity gap that closes a session window.
	Session time.Duration `yaml:"session"`
	// Grace is how long after its end a window still accepts events. Default 0s.
	Grace time.Duration `yaml:"grace"`
}

// LateConfig is aggregate.late.
type LateConfig struct {
	// Topic receives late events. Required.
	Topic string `yaml:"topic"`
	// Router places each late event on a partition, as dead_letter.router.
	// Default hash.
	Router Partitioner `yaml:"router"`
}

// SinkConfig is the sink section.
type SinkConfig struct {
	// Topic is the output topic. Set it or Topics.
	Topic string `yaml:"topic"`
	// Topics multicasts to topics: every output goes to each of them,
	// placed on its partitions by Router, each copy with an ID of its own
	// (route.TopicCopyID). Set it or Topic.
	Topics []string `yaml:"topics"`
	// Key is a CEL expression (string or int) giving the output record's key.
	// Default: the record's current key.
	Key string `yaml:"key"`
	// Router places each output record on a partition: hash (the Java
	// producer's murmur2 of the key), consistent-hash, round-robin (an
	// even spread by output ID) or multicast (a copy on every partition).
	// Every policy is replay-stable (package route). Default hash.
	Router Partitioner `yaml:"router"`
	// Partitioner is the old name of Router; random and roundrobin, its
	// old values, now mean round-robin. Set one of the two.
	Partitioner Partitioner `yaml:"partitioner"`
	// Format is json (the event as a JSON object), raw (the event's
	// "value" field, a string or bytes, as is), or avro, protobuf or
	// json_schema (the Confluent wire format, with Schema). Default json.
	Format Format `yaml:"format"`
	// Schema is the schema an avro, protobuf or json_schema sink writes.
	Schema *SinkSchemaConfig `yaml:"schema"`
}

// SinkSchemaConfig is sink.schema.
type SinkSchemaConfig struct {
	// File is the schema: an Avro schema (.avsc), a .proto file or a JSON
	// Schema, relative to the pipeline file. Empty: the subject's latest
	// registered version.
	File string `yaml:"file"`
	// Subject is the subject for every output topic. Default by
	// Strategy.
	Subject string `yaml:"subject"`
	// Strategy names a topic's subject: topic_name ("<topic>-value", the
	// default), record_name (the record's or message's full name) or
	// topic_record_name ("<topic>-<full name>").
	Strategy string `yaml:"strategy"`
	// Register registers File under the subject when it is not there yet
	// (the registry refuses it, failing the start-up, when it is
	// incompatible with the subject's versions); false only looks it up.
	// Default true.
	Register *bool `yaml:"register"`
	// Message is the Protobuf message to write, by name or full name.
	// Default the file's first.
	Message string `yaml:"message"`
}

// Balance is a consumer group assignment strategy.
type Balance string

// The balance strategies.
const (
	BalanceSticky            Balance = "sticky"
	BalanceCooperativeSticky Balance = "cooperative-sticky"
	BalanceRange             Balance = "range"
	BalanceRoundRobin        Balance = "roundrobin"
)

func (Balance) allowed() []string {
	return []string{"sticky", "cooperative-sticky", "range", "roundrobin"}
}

// Format is a record value encoding.
type Format string

// The formats.
const (
	FormatJSON Format = "json" // a JSON object
	FormatRaw  Format = "raw"  // bytes; the event is {"value": "<bytes as string>"}
	// The Confluent wire format with a schema from schema_registry
	// (package codec).
	FormatAvro       Format = "avro"
	FormatProtobuf   Format = "protobuf"
	FormatJSONSchema Format = "json_schema"
)

func (Format) allowed() []string { return []string{"json", "raw", "avro", "protobuf", "json_schema"} }

// Registered reports whether f needs a schema registry.
func (f Format) Registered() bool {
	return f == FormatAvro || f == FormatProtobuf || f == FormatJSONSchema
}

// Start is where a group with no committed offset starts reading.
type Start string

// The start positions.
const (
	StartEarliest Start = "earliest"
	StartLatest   Start = "latest"
)

func (Start) allowed() []string { return []string{"earliest", "latest"} }

// Backend is a state backend.
type Backend string

// The backends.
const (
	BackendMemory      Backend = "memory"
	BackendRedis       Backend = "redis"
	BackendSingleStore Backend = "singlestore"
)

func (Backend) allowed() []string { return []string{"memory", "redis", "singlestore"} }

// Dialect is the SQL dialect of the singlestore backend.
type Dialect string

// The dialects.
const (
	DialectSingleStore Dialect = "singlestore"
	DialectMySQL       Dialect = "mysql"
)

func (Dialect) allowed() []string { return []string{"singlestore", "mysql"} }

// SASLMechanism is a Kafka SASL mechanism.
type SASLMechanism string

// The SASL mechanisms.
const (
	SASLPlain       SASLMechanism = "PLAIN"
	SASLScramSHA256 SASLMechanism = "SCRAM-SHA-256"
	SASLScramSHA512 SASLMechanism = "SCRAM-SHA-512"
)

func (SASLMechanism) allowed() []string { return []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} }

// Emit is when an aggregate emits results.
type Emit string

// The emit modes.
const (
	EmitOnClose  Emit = "on_close"
	EmitOnUpdate Emit = "on_update"
)

func (Emit) allowed() []string { return []string{"on_close", "on_update"} }

// JoinType is a join's type.
type JoinType string

// The join types.
const (
	JoinInner JoinType = "inner"
	JoinLeft  JoinType = "left"
	JoinRight JoinType = "right"
	JoinOuter JoinType = "outer"
)

func (JoinType) allowed() []string { return []string{"inner", "left", "right", "outer"} }

// Partitioner names a routing policy (package route) in the file.
type Partitioner string

// The policies, and the old partitioner values.
const (
	PartitionerHash           Partitioner = "hash"
	PartitionerConsistentHash Partitioner = "consistent-hash"
	PartitionerRoundRobin     Partitioner = "round-robin"
	PartitionerMulticast      Partitioner = "multicast"
	// PartitionerRandom and PartitionerOldRoundRobin are accepted in
	// sink.partitioner and mean round-robin: a random or rotating choice
	// would put a replayed output on another partition than its first
	// copy, where a reader deduplicating per partition cannot catch it.
	PartitionerRandom        Partitioner = "random"
	PartitionerOldRoundRobin Partitioner = "roundrobin"
)

func (Partitioner) allowed() []string {
	return []string{"hash", "consistent-hash", "round-robin", "multicast", "random", "roundrobin"}
}

// enum is implemented by the string types above; the decoder checks values
// against allowed().
type enum interface{ allowed() []string }
