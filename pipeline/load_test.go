package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/route"
)

func envMap(m map[string]string) Option {
	return WithEnv(func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	})
}

func TestLoadFull(t *testing.T) {
	p, err := Load("testdata/full.yaml", envMap(map[string]string{
		"KAFKA_BROKERS": "k1:9092, k2:9093", "KAFKA_PASSWORD": "s3cret-pass",
	}), WithProcessors("enrich-geo"))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	if p.File != "testdata/full.yaml" {
		t.Errorf("File = %q", p.File)
	}
	on := true
	wantKafka := KafkaConfig{
		Brokers: []string{"k1:9092", "k2:9093"}, Group: "eddy-clicks", Balance: BalanceCooperativeSticky,
		InstanceID: "worker-0", Version: "3.9.0", ClientID: "eddy-test", SessionTimeout: DefaultSessionTimeout,
		Transactions: &on,
		SASL:         &SASLConfig{Mechanism: SASLScramSHA512, Username: "eddy", Password: "s3cret-pass"},
		TLS:          &TLSConfig{Enabled: true, CAFile: "/etc/eddy/ca.pem", ServerName: "kafka.internal"},
	}
	if !reflect.DeepEqual(s.Kafka, wantKafka) {
		t.Errorf("Kafka = %+v\nwant    %+v", s.Kafka, wantKafka)
	}
	if p.KafkaVersion != sarama.V3_9_0_0 {
		t.Errorf("KafkaVersion = %v", p.KafkaVersion)
	}
	wantSource := SourceConfig{
		Topics: []string{"clicks", "clicks-mobile"}, Format: FormatJSON, Start: StartLatest,
		EventID: "event.id", EventTime: "timestamp(event.ts)",
		Watermark: WatermarkConfig{AllowedLateness: 5 * time.Second, IdleTimeout: time.Minute, MaxFuture: DefaultMaxFuture},
	}
	if !reflect.DeepEqual(s.Source, wantSource) {
		t.Errorf("Source = %+v", s.Source)
	}
	wantRedis := &RedisConfig{Addrs: []string{"127.0.0.1:6379"}, DB: 2, KeyPrefix: "eddy:"}
	if s.State.Backend != BackendRedis || !reflect.DeepEqual(s.State.Redis, wantRedis) {
		t.Errorf("State = %+v, redis %+v", s.State, s.State.Redis)
	}
	if s.Dedup != (DedupConfig{Enabled: true, TTL: 24 * time.Hour}) {
		t.Errorf("Dedup = %+v", s.Dedup)
	}
	if s.Flush != (FlushConfig{MaxMessages: 500, BacklogMessages: 10000, MaxBytes: 16 << 20, Interval: 100 * time.Millisecond, ShutdownTimeout: 10 * time.Second}) {
		t.Errorf("Flush = %+v", s.Flush)
	}
	if s.DeadLetter == nil || s.DeadLetter.Topic != "clicks-dlq" {
		t.Errorf("DeadLetter = %+v", s.DeadLetter)
	}
	if s.Sink == nil || !reflect.DeepEqual(*s.Sink, SinkConfig{Topic: "clicks-out", Key: "event.user", Router: PartitionerRoundRobin, Format: FormatJSON}) {
		t.Errorf("Sink = %+v", s.Sink)
	}

	// Compiled parts.
	if p.Source.EventID == nil || p.Source.EventID.Text != "event.id" || p.Source.EventID.Line != 16 || p.Source.EventID.Col != 13 {
		t.Errorf("Source.EventID = %+v", p.Source.EventID)
	}
	if p.Source.EventTime == nil || p.Source.EventTime.Type != "google.protobuf.Timestamp" {
		t.Errorf("Source.EventTime = %+v", p.Source.EventTime)
	}
	kinds := []StepKind{FilterStep, SetStep, MapStep, KeyStep, ProcessorStep, AggregateStep, AggregateStep, AggregateStep}
	lines := []int{31, 32, 33, 34, 35, 36, 44, 48}
	if len(p.Steps) != len(kinds) {
		t.Fatalf("%d steps, want %d", len(p.Steps), len(kinds))
	}
	for i, st := range p.Steps {
		if st.Kind != kinds[i] || st.Line != lines[i] || st.Index != i {
			t.Errorf("step %d: kind %v line %d index %d, want %v line %d", i, st.Kind, st.Line, st.Index, kinds[i], lines[i])
		}
	}
	if f := p.Steps[0].Filter; f.Text != "event.price > 0" || f.Type != "bool" || f.Field != "steps[0].filter" || f.Line != 31 || f.Col != 13 {
		t.Errorf("filter = %+v", f)
	}
	var names []string
	for _, f := range p.Steps[1].Fields {
		names = append(names, f.Name+"="+f.Expr.Text)
	}
	if want := []string{"total=event.price * double(event.qty)", "country=event.country.upperAscii()"}; !reflect.DeepEqual(names, want) {
		t.Errorf("set fields = %q (file order expected)", names)
	}
	if pr := p.Steps[4].Processor; pr.Name != "enrich-geo" || !reflect.DeepEqual(pr.Config, map[string]any{"db": "/geo.mmdb", "cache": 1000}) || pr.Node == nil {
		t.Errorf("processor = %+v", pr)
	}
	a := p.Steps[5].Aggregate
	if a.Name != "clicks" || a.Key.Text != "event.user" || a.Emit != EmitOnUpdate || a.LateTopic != "late-clicks" || a.Retention != time.Hour {
		t.Errorf("aggregate = %+v", a)
	}
	if a.Window != (WindowSpec{Kind: Tumbling, Size: time.Minute, Advance: time.Minute, Grace: 10 * time.Second}) {
		t.Errorf("tumbling window = %+v", a.Window)
	}
	var vals []string
	for _, v := range a.Values {
		arg := ""
		if v.Arg != nil {
			arg = v.Arg.Text
		}
		vals = append(vals, v.Name+"="+string(v.Func)+"("+arg+")")
	}
	wantVals := []string{"clicks=count()", "spend=sum(event.amount)", "users=count_distinct(event.user)", "avg_amount=avg(event.amount)",
		"lo=min(event.amount)", "hi=max(event.amount)", "first_country=first(event.country)", "last_country=last(event.country)"}
	if !reflect.DeepEqual(vals, wantVals) {
		t.Errorf("values = %q", vals)
	}
	if arg := a.Values[1].Arg; arg.Line != 40 || arg.Col != 44 || arg.Field != "steps[5].aggregate.values.spend" {
		t.Errorf("sum argument at %d:%d %s, want 40:44", arg.Line, arg.Col, arg.Field)
	}
	if a := p.Steps[6].Aggregate; a.Name != "step6" || a.Emit != EmitOnClose || a.Window != (WindowSpec{Kind: Hopping, Size: 5 * time.Minute, Advance: time.Minute}) {
		t.Errorf("hopping aggregate = %+v", a)
	}
	if a := p.Steps[7].Aggregate; a.Name != "step7" || a.Window != (WindowSpec{Kind: Session, Gap: 30 * time.Minute}) {
		t.Errorf("session aggregate = %+v", a)
	}
	if !slices.Equal(p.Sink.Topics, []string{"clicks-out"}) || p.Sink.Key.Text != "event.user" || p.Sink.Router != route.RoundRobin {
		t.Errorf("Sink = %+v", p.Sink)
	}
}

func TestDefaults(t *testing.T) {
	p, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	on := true
	want := Spec{
		Name: "mirror",
		Kafka: KafkaConfig{Brokers: []string{"localhost:9092"}, Group: "eddy-mirror", Balance: BalanceSticky,
			Version: DefaultKafkaVersion, ClientID: "eddy", SessionTimeout: DefaultSessionTimeout, Transactions: &on},
		Source: SourceConfig{Topics: []string{"in"}, Format: FormatJSON, Start: StartEarliest, Watermark: WatermarkConfig{MaxFuture: DefaultMaxFuture}},
		State:  StateConfig{Backend: BackendMemory, Missing: MissingRebuild},
		Dedup:  DedupConfig{Enabled: false, TTL: 24 * time.Hour},
		Flush:  FlushConfig{MaxMessages: 1000, BacklogMessages: 10000, MaxBytes: 16 << 20, Interval: 100 * time.Millisecond, ShutdownTimeout: 10 * time.Second},
		Sink:   &SinkConfig{Topic: "out", Router: PartitionerHash, Format: FormatJSON},
	}
	if !reflect.DeepEqual(p.Spec, want) {
		t.Fatalf("Spec = %+v\nwant   %+v", p.Spec, want)
	}
	if p.KafkaVersion != sarama.V2_8_0_0 || p.Source.EventID != nil || p.Source.EventTime != nil || p.Sink.Key != nil || len(p.Steps) != 0 {
		t.Fatalf("compiled = %+v", p)
	}
}

// TestSinkRouter: sink.router takes every policy of package route;
// sink.partitioner, its old name, maps random and roundrobin to
// round-robin (replay-stable).
func TestSinkRouter(t *testing.T) {
	for src, want := range map[string]route.Policy{
		"":                             route.Hash,
		"router: consistent-hash":      route.ConsistentHash,
		"router: round-robin":          route.RoundRobin,
		"router: multicast":            route.Multicast,
		"partitioner: hash":            route.Hash,
		"partitioner: random":          route.RoundRobin,
		"partitioner: roundrobin":      route.RoundRobin,
		"partitioner: consistent-hash": route.ConsistentHash,
	} {
		p, err := Parse("p.yaml", []byte("name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink:\n  topic: out\n  "+src+"\n"))
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if p.Sink.Router != want || p.Spec.Sink.Partitioner != "" {
			t.Errorf("%q: router %q (spec partitioner %q), want %q", src, p.Sink.Router, p.Spec.Sink.Partitioner, want)
		}
		if _, err := route.New(p.Sink.Router); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func TestSingleStoreDefaults(t *testing.T) {
	p, err := Parse("s.yaml", []byte("name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink: {topic: out}\n"+
		"state: {backend: singlestore, singlestore: {dsn: 'u:p@tcp(h:3306)/db'}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := SingleStoreConfig{DSN: "u:p@tcp(h:3306)/db", Dialect: DialectSingleStore, WaitTimeout: DefaultWaitTimeout}
	if got := p.Spec.State.SingleStore; got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("state.singlestore = %+v, want %+v", got, want)
	}
}

// Every sample pipeline under testdata (but the broken ones) loads.
func TestSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("samples: %v %v", files, err)
	}
	env := envMap(map[string]string{"KAFKA_BROKERS": "localhost:9092", "KAFKA_PASSWORD": "pw-pw-pw"})
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "bad") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := Load(f, env)
			if err != nil {
				t.Fatal(err)
			}
			if p.Spec.Name == "" || len(p.Source.Topics) == 0 {
				t.Fatalf("loaded %+v", p.Spec)
			}
		})
	}
}

// wantErr is one expected error: position, field and a part of the message.
type wantErr struct {
	line, col int
	field     string
	msg       string
}

func checkErrors(t *testing.T, err error, want []wantErr) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error = %v (%T), want Errors", err, err)
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		e := errs[i]
		if e.Line != w.line || e.Col != w.col || e.Field != w.field || !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d = %d:%d %s: %s\n want     %d:%d %s: ...%s...", i, e.Line, e.Col, e.Field, e.Msg, w.line, w.col, w.field, w.msg)
		}
	}
}

// head is a valid start of a file (lines 1-4) that error cases extend.
const head = "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink: {topic: out}\n"

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		opts []Option
		want []wantErr
	}{
		{"session timeout out of range", "name: t\nkafka:\n  brokers: [k:9092]\n  session_timeout: 500ms\nsource: {topics: [in]}\nsink: {topic: out}\n", nil,
			[]wantErr{{4, 20, "kafka.session_timeout", "must be between 1s and 30m, got 500ms"}}},
		{"unknown field", "name: t\nkafka:\n  brokers: [k:9092]\n  groupid: g\nsource: {topics: [in]}\nsink: {topic: out}\n", nil,
			[]wantErr{{4, 3, "kafka.groupid", `unknown field "groupid" (did you mean "group"?)`}}},
		{"unknown top-level field lists the known ones", head + "sinks: {}\n", nil,
			[]wantErr{{5, 1, "sinks", `unknown field "sinks" (did you mean "sink"?)`}}},
		{"unknown field far from any", head + "xyzzy: 1\n", nil,
			[]wantErr{{5, 1, "xyzzy", "known fields: dead_letter, dedup, flush, kafka, name, schema_registry, sink, source, state, steps"}}},
		{"registry format without a registry", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in], format: avro}\nsink: {topic: out, format: protobuf}\n", nil,
			[]wantErr{
				{3, 32, "source.format", "avro needs a schema_registry section (its url)"},
				{4, 28, "sink.format", "protobuf needs a schema_registry section (its url)"},
			}},
		{"schema registry errors", head + "schema_registry: {url: registry:8081, token: t, username: u}\n", nil,
			[]wantErr{
				{5, 18, "schema_registry.password", "username and password go together"},
				{5, 24, "schema_registry.url", `"registry:8081": want an http:// or https:// URL`},
				{5, 46, "schema_registry.token", "set token or username and password, not both"},
			}},
		{"sink schema on a json sink", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink: {topic: out, schema: {file: x.avsc}}\n", nil,
			[]wantErr{{4, 28, "sink.schema", "is for a sink whose format is avro, protobuf or json_schema (this one's is json)"}}},
		{"registry format on several sink topics", "name: t\nkafka: {brokers: [k:9092]}\nschema_registry: {url: \"http://r:8081\"}\nsource: {topics: [in]}\nsink: {topics: [a, b], format: avro}\n", nil,
			[]wantErr{{5, 16, "sink.topics", "writes one schema ID in every copy"}}},
		{"registry format on a table without a registry", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\ntables: [{name: p, topic: pt, format: avro}]\nsink: {topic: out}\n", nil,
			[]wantErr{{4, 39, "tables[0].format", "avro needs a schema_registry section"}}},
		{"sink schema file missing", "name: t\nkafka: {brokers: [k:9092]}\nschema_registry: {url: \"http://r:8081\"}\nsource: {topics: [in]}\nsink: {topic: out, format: avro, schema: {file: /nonexistent/x.avsc}}\n", nil,
			[]wantErr{{5, 49, "sink.schema.file", "no such file or directory"}}},
		{"duplicate field", head + "flush: {interval: 1s}\nflush: {interval: 2s}\n", nil,
			[]wantErr{{6, 1, "flush", `duplicate field "flush" (first set on line 5)`}}},
		{"wrong types", head + "dedup: {enabled: yes please, ttl: [1h]}\nflush: {max_messages: 1.5}\nsteps: {filter: x}\n", nil,
			[]wantErr{
				{5, 18, "dedup.enabled", "want true or false, got a string"},
				{5, 35, "dedup.ttl", "want a duration such as 100ms, 30s, 5m or 24h, got a list"},
				{6, 23, "flush.max_messages", "want an integer, got a number"},
				{7, 8, "steps", "want a list, got a mapping"},
			}},
		{"missing required fields", "kafka: {group: g}\nsource: {format: raw}\nsink: {key: key}\n", nil,
			[]wantErr{
				{1, 1, "name", "required field missing"},
				{1, 8, "kafka.brokers", "required field missing"},
				{2, 9, "source.topics", "required field missing"},
				{3, 7, "sink.topic", "required field missing"},
			}},
		{"bad enum values list the allowed ones", head + "state: {backend: postgres}\n", nil,
			[]wantErr{{5, 18, "state.backend", `"postgres" is not one of memory, redis, singlestore`}}},
		{"bad durations", head + "flush: {interval: 10, shutdown_timeout: 1 minute}\n", nil,
			[]wantErr{
				{5, 19, "flush.interval", `"10" is not a duration such as 100ms, 30s, 5m or 24h (add a unit`},
				{5, 41, "flush.shutdown_timeout", `"1 minute" is not a duration`},
			}},
		{"non-positive values", head + "flush: {interval: 0s, max_messages: 0}\ndedup: {ttl: -1h}\n", nil,
			[]wantErr{
				{5, 19, "flush.interval", "must be greater than 0, got 0s"},
				{5, 37, "flush.max_messages", "must be greater than 0, got 0"},
				{6, 14, "dedup.ttl", "must be greater than 0, got -1h0m0s"},
			}},
		{"batch bounds", head + "flush: {max_messages: 500, backlog_messages: 100, max_bytes: 0}\n", nil,
			[]wantErr{
				{5, 46, "flush.backlog_messages", "must be at least flush.max_messages (500), got 100"},
				{5, 62, "flush.max_bytes", "must be greater than 0, got 0"},
			}},
		{"step with zero or two kinds", head + "steps:\n  - filter: event.a > 1\n    key: event.b\n  - {}\n  - fitler: x\n", nil,
			[]wantErr{
				{6, 5, "steps[0]", "one step holds filter and key: put each in its own list item"},
				{8, 5, "steps[1]", "a step needs one of filter, set, map, key, processor, aggregate"},
				{9, 5, "steps[2].fitler", `unknown field "fitler" (did you mean "filter"?)`},
			}},
		{"empty step parts", head + "steps:\n  - filter:\n  - set: {}\n  - key: ''\n", nil,
			[]wantErr{
				{6, 12, "steps[0].filter", "empty expression"},
				{7, 10, "steps[1].set", "want at least one field"},
				{8, 10, "steps[2].key", "empty expression"},
			}},
		{"duplicate step names", head + "steps:\n  - aggregate: {name: a, key: key, window: {tumbling: 1m}, values: {n: count()}}\n  - aggregate: {name: a, key: key, window: {tumbling: 1m}, values: {n: count()}}\n  - aggregate: {key: key, window: {tumbling: 1m}, values: {n: count()}}\n  - aggregate: {name: step2, key: key, window: {tumbling: 1m}, values: {n: count()}}\n", nil,
			[]wantErr{
				{7, 23, "steps[1].aggregate.name", `duplicate step name "a" (first used on line 6)`},
				{9, 23, "steps[3].aggregate.name", `duplicate step name "step2" (first used on line 8)`},
			}},
		{"windows", head + "steps:\n  - aggregate:\n      key: key\n      window: {tumbling: 1m, session: 5m}\n      values: {n: count()}\n  - aggregate:\n      key: key\n      window: {hopping: 1m}\n      values: {n: count()}\n  - aggregate:\n      key: key\n      window: {grace: 1s}\n      values: {n: count()}\n  - aggregate:\n      key: key\n      window: {session: 1m, advance: 1s, grace: -1s}\n      values: {n: count()}\n  - aggregate: {key: key, values: {n: count()}}\n", nil,
			[]wantErr{
				{8, 15, "steps[0].aggregate.window", "tumbling and session exclude each other"},
				{12, 15, "steps[1].aggregate.window.advance", "required for a hopping window"},
				{16, 15, "steps[2].aggregate.window", "want one of tumbling, hopping or session"},
				{20, 38, "steps[3].aggregate.window.advance", "only hopping windows have an advance"},
				{20, 49, "steps[3].aggregate.window.grace", "must not be negative"},
				{22, 16, "steps[4].aggregate.window", "required field missing"},
			}},
		{"aggregate values", head + "steps:\n  - aggregate:\n      key: key\n      window: {tumbling: 1m}\n      values:\n        a: median(event.x)\n        b: count(event.x)\n        c: sum(event.x) + sum(event.y)\n        d: sum()\n        e: sum(event.name + 'x')\n        f: event.x\n        g: max(event.x +)\n", nil,
			[]wantErr{
				{10, 12, "steps[0].aggregate.values.a", `unknown aggregate function "median"`},
				{11, 12, "steps[0].aggregate.values.b", "count() takes no argument"},
				{12, 12, "steps[0].aggregate.values.c", "want a single call such as sum(event.price)"},
				{13, 12, "steps[0].aggregate.values.d", "sum takes one argument, got 0"},
				{14, 16, "steps[0].aggregate.values.e", `"event.name + 'x'" has type string, want int, uint or double`},
				{15, 12, "steps[0].aggregate.values.f", "want one of count(), sum(x)"},
				{16, 25, "steps[0].aggregate.values.g", "Syntax error: mismatched input ')'"},
			}},
		{"unknown processor", head + "steps:\n  - processor: {name: geo}\n  - processor: {config: {a: 1}}\n", []Option{WithProcessors("enrich", "audit")},
			[]wantErr{
				{6, 23, "steps[0].processor.name", `unknown processor "geo" (registered: audit, enrich)`},
				{7, 16, "steps[1].processor.name", "required field missing"},
			}},
		{"no processors registered", head + "steps:\n  - processor: {name: geo}\n", []Option{WithProcessors()},
			[]wantErr{{6, 23, "steps[0].processor.name", "none are registered"}}},
		{"topics", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in, 'bad topic', in]}\nsink: {topic: in}\ndead_letter: {topic: ''}\n", nil,
			[]wantErr{
				{3, 23, "source.topics[1]", `"bad topic" is not a valid topic name`},
				{3, 36, "source.topics[2]", `topic "in" is listed twice`},
				{4, 15, "sink.topic", "is also a source topic"},
				{5, 22, "dead_letter.topic", "required field missing"},
			}},
		{"kafka settings", "name: Bad_Name\nkafka:\n  brokers: ['k:9092,nohost', ':1', 'h:0']\n  version: 2.0.0\n  sasl: {mechanism: GSSAPI}\n  tls: {cert_file: c.pem}\nsource: {topics: [in]}\nsink: {topic: out}\n", nil,
			[]wantErr{
				{1, 7, "name", `"Bad_Name": use 1-100 lowercase letters`},
				{3, 13, "kafka.brokers[0]", `broker "nohost": want host:port`},
				{3, 30, "kafka.brokers[1]", `broker ":1": missing host`},
				{3, 36, "kafka.brokers[2]", `broker "h:0": port must be a number from 1 to 65535`},
				{4, 12, "kafka.version", "2.0.0 is too old: eddy needs Kafka 2.1.0 or later"},
				{5, 9, "kafka.sasl.username", "required field missing"},
				{5, 9, "kafka.sasl.password", "required field missing"},
				{5, 21, "kafka.sasl.mechanism", `"GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
				{6, 8, "kafka.tls.key_file", "cert_file and key_file go together"},
			}},
		{"static membership needs 2.3", "name: t\nkafka: {brokers: [k:9092], version: 2.2.0, instance_id: pod-1}\nsource: {topics: [in]}\nsink: {topic: out}\n", nil,
			[]wantErr{{2, 57, "kafka.instance_id", "static membership needs kafka.version 2.3.0 or later"}}},
		{"state backends", head + "state:\n  backend: redis\n  redis: {addrs: [a:1, b:2], db: 3}\n", nil,
			[]wantErr{{7, 34, "state.redis.db", "must be 0 on a Redis Cluster"}}},
		{"singlestore wait_timeout", head + "state:\n  backend: singlestore\n  singlestore: {dsn: \"u:p@tcp(h:3306)/db\", wait_timeout: 1500ms}\n", nil,
			[]wantErr{{7, 58, "state.singlestore.wait_timeout", "must be a whole number of seconds, got 1.5s"}}},
		{"singlestore wait_timeout range", head + "state:\n  backend: singlestore\n  singlestore: {dsn: \"u:p@tcp(h:3306)/db\", wait_timeout: 48h}\n", nil,
			[]wantErr{{7, 58, "state.singlestore.wait_timeout", "must be between 1s and 24h, got 48h0m0s"}}},
		{"backend block required", head + "state: {backend: singlestore, redis: {addrs: [bad]}}\n", nil,
			[]wantErr{{5, 8, "state.singlestore", "required when state.backend is singlestore"}}},
		{"no effect", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsteps:\n  - filter: 'true'\n", nil,
			[]wantErr{{1, 1, "", "the pipeline has no effect"}}},
		{"router and its old name", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink:\n  topic: out\n  router: hash\n  partitioner: hash\n", nil,
			[]wantErr{{7, 16, "sink.partitioner", "set sink.router only: partitioner is its old name"}}},
		{"router with an old partitioner value", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink:\n  topic: out\n  router: random\n", nil,
			[]wantErr{{6, 11, "sink.router", `"random" is an old sink.partitioner value: use round-robin`}}},
		{"sink topics", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink:\n  topics: [a, in, a, 'b c']\n", nil,
			[]wantErr{
				{5, 15, "sink.topics[1]", "is also a source topic"},
				{5, 19, "sink.topics[2]", `topic "a" is listed twice (also sink.topics[0])`},
				{5, 22, "sink.topics[3]", `"b c" is not a valid topic name`},
			}},
		{"sink topic and topics", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink: {topic: a, topics: [b]}\n", nil,
			[]wantErr{{4, 26, "sink.topics", "set sink.topic or sink.topics, not both"}}},
		{"sink without topic", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink: {topics: []}\n", nil,
			[]wantErr{{4, 16, "sink.topics", "want at least one topic"}}},
		{"side routers", "name: t\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\ndead_letter: {topic: dl, router: multicast}\n" +
			"steps:\n  - aggregate:\n      key: key\n      window: {tumbling: 1m}\n      values: {n: count()}\n      late: {topic: out, router: random}\n" +
			"  - aggregate:\n      key: key\n      window: {tumbling: 1m}\n      values: {n: count()}\n      late: {topic: out, router: round-robin}\n" +
			"sink: {topic: out}\n", nil,
			[]wantErr{
				{4, 34, "dead_letter.router", "multicast copies a result to every partition; a dead letter or late event goes to one"},
				{10, 34, "steps[0].aggregate.late.router", `"random" is not replay-stable: use round-robin`},
				{15, 21, "steps[1].aggregate.late.topic", `topic "out" is also steps[0].aggregate.late.topic, routed by random: one topic has one router, here round-robin`},
				{16, 15, "sink.topic", `topic "out" is also steps[0].aggregate.late.topic, routed by random: one topic has one router, here hash`},
			}},
		{"yaml syntax", "name: t\nkafka: {brokers: [k:9092\n", nil,
			[]wantErr{{2, 18, "", "invalid YAML"}}},
		{"empty file", "# nothing\n", nil,
			[]wantErr{{1, 0, "", "empty pipeline file"}}},
		{"two documents", head + "---\nname: u\n", nil,
			[]wantErr{{5, 1, "", "one YAML document"}}},
		{"not a mapping", "- a\n- b\n", nil,
			[]wantErr{{1, 1, "", "want a mapping, got a list"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("p.yaml", []byte(tt.src), tt.opts...)
			if p != nil {
				t.Fatalf("Parse returned a pipeline with errors")
			}
			checkErrors(t, err, tt.want)
		})
	}
}

// TestRangeErrors: a value of the right kind that is out of range says so,
// with the limit, instead of claiming it is not a duration, a version or an
// integer at all.
func TestRangeErrors(t *testing.T) {
	for _, tt := range []struct {
		name, src string
		want      wantErr
	}{
		{"duration too long", head + "dedup: {ttl: 100000000h}\n",
			wantErr{5, 14, "dedup.ttl", `"100000000h" is a duration too long: the longest is 2562047h47m16s (about 292 years)`}},
		{"negative duration too long", head + "flush: {interval: -9999999999m}\n",
			wantErr{5, 19, "flush.interval", `"-9999999999m" is a duration too long: the longest is 2562047h47m16s`}},
		{"duration in days", head + "dedup: {ttl: 7d}\n",
			wantErr{5, 14, "dedup.ttl", `"7d" is not a duration such as 100ms, 30s, 5m or 24h (no unit for days: write 168h)`}},
		{"duration without a unit", head + "dedup: {ttl: 30}\n",
			wantErr{5, 14, "dedup.ttl", `(add a unit: ns, us, ms, s, m or h)`}},
		{"old kafka version", "name: t\nkafka: {brokers: [k:1], version: 0.8.0}\nsource: {topics: [in]}\nsink: {topic: out}\n",
			wantErr{2, 34, "kafka.version", "0.8.0 is too old: eddy needs Kafka 2.1.0 or later"}},
		{"old kafka version, four parts", "name: t\nkafka: {brokers: [k:1], version: 0.11.0.2}\nsource: {topics: [in]}\nsink: {topic: out}\n",
			wantErr{2, 34, "kafka.version", "0.11.0.2 is too old: eddy needs Kafka 2.1.0 or later"}},
		{"old kafka version, two parts", "name: t\nkafka: {brokers: [k:1], version: \"1.1\"}\nsource: {topics: [in]}\nsink: {topic: out}\n",
			wantErr{2, 34, "kafka.version", "1.1 is too old: eddy needs Kafka 2.1.0 or later"}},
		{"kafka version in two parts", "name: t\nkafka: {brokers: [k:1], version: \"3.9\"}\nsource: {topics: [in]}\nsink: {topic: out}\n",
			wantErr{2, 34, "kafka.version", `"3.9": write the version with three parts, such as 3.9.0`}},
		{"not a kafka version", "name: t\nkafka: {brokers: [k:1], version: latest}\nsource: {topics: [in]}\nsink: {topic: out}\n",
			wantErr{2, 34, "kafka.version", `"latest" is not a Kafka version such as 3.9.0`}},
		{"integer too large", head + "flush: {max_messages: 99999999999999999999}\n",
			wantErr{5, 23, "flush.max_messages", "integer 99999999999999999999 is too large: the largest is 9223372036854775807"}},
		{"integer too large for int64", head + "flush: {max_messages: 18446744073709551615}\n",
			wantErr{5, 23, "flush.max_messages", "integer 18446744073709551615 is too large: the largest is 9223372036854775807"}},
		{"integer too small", head + "flush: {max_messages: -99999999999999999999}\n",
			wantErr{5, 23, "flush.max_messages", "integer -99999999999999999999 is too small: the smallest is -9223372036854775808"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.src))
			checkErrors(t, err, []wantErr{tt.want})
		})
	}
}

// TestYAMLSyntaxErrors: a YAML syntax error names the line and column of
// the mistake (not the start of the block around it), and says what is
// wrong; at the end of the file, where a bracket or quote opened.
func TestYAMLSyntaxErrors(t *testing.T) {
	for _, tt := range []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"tab indentation", "name: t\nkafka:\n\tbrokers: [k:1]\n", 3, 1,
			"invalid YAML: found character that cannot start any token (a tab: YAML indents with spaces)"},
		{"tab after a nested key", "name: t\nkafka:\n  brokers: [k:1]\n\tgroup: g\n", 4, 1, "a tab: YAML indents with spaces"},
		{"unclosed quote", "name: t\nkafka: {brokers: [k:1]}\nsource:\n  topics: [in]\nsink: {topic: \"out}\n\nsteps: []\n", 5, 15,
			"invalid YAML: found unexpected end of stream while scanning a quoted scalar that starts here"},
		{"unclosed single quote", "name: 'abc\n", 1, 7, "found unexpected end of stream while scanning a quoted scalar"},
		{"unclosed bracket", "name: t\nkafka: {brokers: [k:9092\n", 2, 18,
			"invalid YAML: did not find expected ',' or ']' while parsing a flow sequence that starts here (the file ends first)"},
		{"mapping in a plain value", "name: t\nkafka: {brokers: [k:1]}\nsource: topics: [in]\n", 3, 15,
			"invalid YAML: mapping values are not allowed in this context"},
		{"key indented less than its siblings", "name: t\nkafka:\n  brokers: [k:1]\n  group: g\n bad: 1\nsink: {topic: out}\n", 5, 2,
			"invalid YAML: did not find expected key (while parsing a block mapping at line 1, column 1)"},
		{"list item in a mapping", "name: t\nkafka:\n  brokers: [k:1]\n  - x\n", 4, 3,
			"did not find expected key (while parsing a block mapping at line 3, column 3)"},
		{"key in a list", "name: t\nsteps:\n  - filter: a\n  filter: b\n", 4, 3,
			"did not find expected '-' indicator (while parsing a block collection at line 3, column 3)"},
		{"bad escape", "name: \"a\\qb\"\n", 1, 9, "found unknown escape character"},
		{"unknown anchor", "name: t\nkafka: {brokers: *nope}\n", 2, 18, "unknown anchor 'nope' referenced"},
		{"after a variable", "name: ${NAME}: x\n", 1, 14, "mapping values are not allowed"},
		{"after a multi-byte character", "name: \u00e9t\u00e9: x\n", 1, 10, "mapping values are not allowed"},
		{"windows line ends", "name: t\r\nkafka:\r\n\tbrokers: [k:1]\r\n", 3, 1, "a tab"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.src), WithEnv(func(string) (string, bool) { return "x", true }))
			checkErrors(t, err, []wantErr{{tt.line, tt.col, "", tt.msg}})
			if want := fmt.Sprintf("p.yaml:%d:%d: invalid YAML: ", tt.line, tt.col); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q; want it to start with %q", err, want)
			}
		})
	}
}

// A file with many mistakes reports all of them, in file order, one per line.
func TestManyErrors(t *testing.T) {
	_, err := Load("testdata/bad.yaml", WithProcessors("geo"))
	checkErrors(t, err, []wantErr{
		{1, 7, "name", `"Clicks Per User": use 1-100 lowercase letters`},
		{3, 13, "kafka.brokers[0]", `broker "localhost": want host:port`},
		{4, 3, "kafka.balanse", `unknown field "balanse"`},
		{5, 12, "kafka.balance", `"stiky" is not one of sticky, cooperative-sticky, range, roundrobin`},
		{6, 12, "kafka.version", "0.10.2 is too old: eddy needs Kafka 2.1.0 or later"},
		{9, 11, "source.format", `"xml" is not one of json, raw`},
		{11, 33, "source.watermark.allowed_lateness", `"5" is not a duration`},
		{14, 22, "state.singlestore.dsn", "the value (not shown) is not a valid DSN"},
		{15, 19, "flush.interval", "must be greater than 0, got -1s"},
		{15, 38, "flush.max_messages", "want an integer, got a string"},
		{17, 13, "steps[0].filter", `undeclared reference to 'evnt' (did you mean 'event'?) in "evnt.price > 0"`},
		{18, 5, "steps[1]", "one step holds filter and set"},
		{20, 5, "steps[2]", "a step needs one of"},
		{21, 10, "steps[3].key", `"event.price * 2.0" has type double, want string or int`},
		{22, 23, "steps[4].processor.name", `unknown processor "enrich" (registered: geo)`},
		{26, 15, "steps[5].aggregate.window", "tumbling and session exclude each other"},
		{27, 27, "steps[5].aggregate.values.spend", "has type bool, want int, uint or double"},
		{27, 54, "steps[5].aggregate.values.n", "count() takes no argument"},
		{27, 67, "steps[5].aggregate.values.x", `unknown aggregate function "median"`},
		{27, 91, "steps[5].aggregate.values.y", "want one of count()"},
		{29, 13, "steps[6].aggregate.name", `duplicate step name "agg" (first used on line 24)`},
		{31, 38, "steps[6].aggregate.window.advance", "2m0s is larger than the window (1m0s)"},
		{35, 17, "steps[7].filter", "Syntax error: token recognition error at: '= '"},
		{35, 19, "steps[7].filter", "Syntax error: extraneous input '2'"},
		{37, 10, "sink.topic", `topic "clicks" is also a source topic`},
		{38, 16, "sink.partitioner", `"murmur" is not one of hash, consistent-hash, round-robin, multicast, random, roundrobin`},
	})
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 26 || lines[0] != `testdata/bad.yaml:1:7: name: "Clicks Per User": use 1-100 lowercase letters, digits, '-', '_' and '.'` {
		t.Fatalf("Error() = %d lines, first %q", len(lines), lines[0])
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the DSN's password leaked: %v", err)
	}
}

func TestCELErrors(t *testing.T) {
	tests := []struct {
		name string
		step string
		want []wantErr
	}{
		{"plain scalar", "  - filter: event.a > 1 && evnt.b\n",
			[]wantErr{{6, 28, "steps[0].filter", `undeclared reference to 'evnt' (did you mean 'event'?) in "event.a > 1 && evnt.b"`}}},
		{"double quoted", "  - filter: \"event.a > 1 && evnt.b\"\n",
			[]wantErr{{6, 29, "steps[0].filter", "undeclared reference to 'evnt'"}}},
		{"literal block", "  - filter: |\n      event.a > 1 &&\n        evnt.b\n",
			[]wantErr{{8, 9, "steps[0].filter", "undeclared reference to 'evnt'"}}},
		{"folded block points at the start", "  - filter: >\n      event.a > 1 &&\n      evnt.b\n",
			[]wantErr{{6, 13, "steps[0].filter", "undeclared reference to 'evnt' (did you mean 'event'?) (expression line 1, column 16)"}}},
		{"syntax error", "  - set: {a: 'event.a +'}\n",
			[]wantErr{{6, 24, "steps[0].set.a", "Syntax error: mismatched input '<EOF>'"}}},
		{"filter must be bool", "  - filter: event.a + 1\n",
			[]wantErr{{6, 13, "steps[0].filter", `"event.a + 1" has type int, want bool`}}},
		{"filter on a string", "  - filter: key\n",
			[]wantErr{{6, 13, "steps[0].filter", `"key" has type string, want bool`}}},
		{"key must be string or int", "  - key: 1.5\n",
			[]wantErr{{6, 10, "steps[0].key", `"1.5" has type double, want string or int`}}},
		{"no such function", "  - set: {a: event.name.reverse2()}\n",
			[]wantErr{{6, 33, "steps[0].set.a", "undeclared reference to 'reverse2' (did you mean 'reverse'?)"}}},
		{"wrong argument types", "  - set: {a: size(1)}\n",
			[]wantErr{{6, 18, "steps[0].set.a", "found no matching overload for 'size'"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(head+"steps:\n"+tt.step))
			checkErrors(t, err, tt.want)
		})
	}
	t.Run("source and sink expressions", func(t *testing.T) {
		src := "name: t\nkafka: {brokers: [k:9092]}\nsource:\n  topics: [in]\n  event_id: event.price * 1.0\n  event_time: event.name + 'x'\nsink: {topic: out, key: '[1]'}\n"
		_, err := Parse("p.yaml", []byte(src))
		checkErrors(t, err, []wantErr{
			{5, 13, "source.event_id", "has type double, want string or int"},
			{6, 15, "source.event_time", "has type string, want timestamp or int (Unix milliseconds)"},
			{7, 26, "sink.key", "has type list(int), want string or int"},
		})
	})
}

func TestEnvExpansion(t *testing.T) {
	env := envMap(map[string]string{
		"BROKERS": "b1:9092,b2:9092", "TOPIC": "clicks", "DB": "3", "EMPTY": "", "MIN": "5",
	})
	t.Run("expands values", func(t *testing.T) {
		src := `name: t-${TOPIC}
kafka: {brokers: [${BROKERS}], group: "${GROUP:-grp}", client_id: "${EMPTY:-fallback}", instance_id: $HOME$}
source: {topics: ["${TOPIC}"], event_id: "'$${literal}' + event.id"}
state: {backend: redis, redis: {addrs: ["${REDIS:-127.0.0.1:6379}"], db: ${DB}, username: ${EMPTY}}}
steps:
  - aggregate: {key: key, window: {tumbling: ${MIN}m}, values: {n: count()}}
`
		p, err := Parse("p.yaml", []byte(src), env)
		if err != nil {
			t.Fatal(err)
		}
		s := p.Spec
		if s.Name != "t-clicks" || !reflect.DeepEqual(s.Kafka.Brokers, []string{"b1:9092", "b2:9092"}) ||
			s.Kafka.Group != "grp" || s.Kafka.ClientID != "fallback" {
			t.Errorf("kafka = %+v, name %q", s.Kafka, s.Name)
		}
		if !reflect.DeepEqual(s.Source.Topics, []string{"clicks"}) || s.Kafka.InstanceID != "$HOME$" {
			t.Errorf("topics = %q", s.Source.Topics)
		}
		if s.Source.EventID != "'${literal}' + event.id" {
			t.Errorf("event_id = %q ($${ is a literal ${)", s.Source.EventID)
		}
		r := s.State.Redis
		if r.DB != 3 || r.Username != "" || !reflect.DeepEqual(r.Addrs, []string{"127.0.0.1:6379"}) {
			t.Errorf("redis = %+v", r)
		}
		if w := p.Steps[0].Aggregate.Window; w.Size != 5*time.Minute {
			t.Errorf("window = %+v", w)
		}
	})
	t.Run("errors", func(t *testing.T) {
		src := "name: t\nkafka: {brokers: [${NOPE}]}\nsource: {topics: [\"${TOPIC\"]}\nsink: {topic: '${1X}'}\n"
		_, err := Parse("p.yaml", []byte(src), env)
		checkErrors(t, err, []wantErr{
			{2, 19, "kafka.brokers[0]", "environment variable NOPE is not set (use ${NOPE:-default} to give a default)"},
			{3, 19, "source.topics[0]", "unterminated ${"},
			{4, 15, "sink.topic", "invalid environment variable reference ${1X}"},
		})
	})
	t.Run("empty broker variable", func(t *testing.T) {
		_, err := Parse("p.yaml", []byte("name: t\nkafka: {brokers: [${EMPTY}]}\nsource: {topics: [in]}\nsink: {topic: out}\n"), env)
		checkErrors(t, err, []wantErr{{2, 18, "kafka.brokers", "no broker address"}})
	})
	t.Run("os environment by default", func(t *testing.T) {
		t.Setenv("EDDY_PIPELINE_TEST_TOPIC", "from-os")
		p, err := Parse("p.yaml", []byte("name: t\nkafka: {brokers: [k:1]}\nsource: {topics: [\"${EDDY_PIPELINE_TEST_TOPIC}\"]}\nsink: {topic: out}\n"))
		if err != nil || p.Spec.Source.Topics[0] != "from-os" {
			t.Fatalf("topics = %v, %v", p, err)
		}
	})
}

func TestWithBrokers(t *testing.T) {
	src := "name: t\nsource: {topics: [in]}\nsink: {topic: out}\n"
	if _, err := Parse("p.yaml", []byte(src)); err == nil {
		t.Fatal("a file without brokers loaded without WithBrokers")
	}
	p, err := Parse("p.yaml", []byte(src), WithBrokers("127.0.0.1:39092"))
	if err != nil || !reflect.DeepEqual(p.Spec.Kafka.Brokers, []string{"127.0.0.1:39092"}) {
		t.Fatalf("brokers = %v, %v", p, err)
	}
}

// Secrets reach the Spec but never an error message.
func TestSecretsNotEchoed(t *testing.T) {
	const (
		pass  = "Tr0ub4dor&3-horse"
		dsn   = "eddy:Sup3rSecretPw@tcp(db:3306/eddy"
		token = "tok-8f2b7c1e9a"
	)
	env := envMap(map[string]string{"REDIS_PASSWORD": pass, "DSN": dsn, "API_TOKEN": token, "SASL_PASS": pass})
	src := `name: t
kafka:
  brokers: [k:9092]
  sasl: {mechanism: "${SASL_PASS}", username: u, password: "${SASL_PASS}"}
source: {topics: [in]}
state:
  backend: singlestore
  singlestore: {dsn: "${DSN}", dialect: "${DSN}"}
  redis: {addrs: [a:1], password: "${REDIS_PASSWORD}", db: "${REDIS_PASSWORD}"}
steps:
  - filter: headers["auth"] == "${API_TOKEN}" + 1
  - processor: {name: p, config: {api_key: "${API_TOKEN}", count: "${API_TOKEN}"}}
sink: {topic: out}
`
	_, err := Parse("p.yaml", []byte(src), env)
	checkErrors(t, err, []wantErr{
		{4, 21, "kafka.sasl.mechanism", `"[redacted]" is not one of PLAIN`},
		{8, 22, "state.singlestore.dsn", "the value (not shown) is not a valid DSN"},
		{8, 41, "state.singlestore.dialect", `"[redacted]" is not one of singlestore, mysql`},
		{9, 60, "state.redis.db", "want an integer, got a string"},
		{11, 47, "steps[0].filter", `found no matching overload for '_+_' applied to '(string, int)' in "headers[\"auth\"] == \"[redacted]\" + 1"`},
	})
	for _, secret := range []string{pass, dsn, token, "Sup3rSecretPw"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("secret %q in error:\n%v", secret, err)
		}
	}

	// A secret that is a field's own value is never echoed, even when it is
	// too short to be searched for.
	_, err = Parse("p.yaml", []byte(head+"state: {backend: redis, redis: {addrs: [a:1], password: [x]}}\n"))
	checkErrors(t, err, []wantErr{{5, 57, "state.redis.password", "want a string, got a list"}})

	// At run time, an expression holding a secret is shown redacted.
	p, err := Parse("p.yaml", []byte(head+"steps:\n  - filter: event.auth == \"${API_TOKEN}\"\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Steps[0].Filter.Bool(&Vars{Event: map[string]any{}})
	if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), `event.auth == \"[redacted]\"`) {
		t.Fatalf("eval error = %v", err)
	}
	if p.Steps[0].Filter.Text != `event.auth == "`+token+`"` {
		t.Fatalf("Text = %q, want the expanded expression", p.Steps[0].Filter.Text)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Fatalf("error = %v", err)
	}
}

func TestMergeKeysAndAnchors(t *testing.T) {
	src := `name: t
kafka: {brokers: [k:9092]}
source: {topics: [in]}
x-window: &win {tumbling: 1m, grace: 5s}
steps:
  - aggregate: {key: key, window: {<<: *win, grace: 1s}, values: {n: count()}}
sink: {topic: out}
`
	_, err := Parse("p.yaml", []byte(src))
	// x-window is not a pipeline field: anchors must live in a known place.
	checkErrors(t, err, []wantErr{{4, 1, "x-window", `unknown field "x-window"`}})

	src = `name: t
kafka: {brokers: [k:9092]}
source: {topics: [in]}
steps:
  - aggregate: {name: a, key: key, window: &win {tumbling: 1m, grace: 5s}, values: {n: count()}}
  - aggregate: {name: b, key: key, window: {<<: *win, grace: 1s}, values: {n: count()}}
  - aggregate: {name: c, key: key, window: *win, values: {n: count()}}
`
	p, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{5 * time.Second, time.Second, 5 * time.Second} {
		if w := p.Steps[i].Aggregate.Window; w.Kind != Tumbling || w.Size != time.Minute || w.Grace != want {
			t.Errorf("step %d window = %+v, want grace %s", i, w, want)
		}
	}
}

func BenchmarkLoadFull(b *testing.B) {
	opt := envMap(map[string]string{"KAFKA_BROKERS": "k1:9092", "KAFKA_PASSWORD": "pw-pw-pw"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load("testdata/full.yaml", opt); err != nil {
			b.Fatal(err)
		}
	}
}
