package pipeline

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/go-sql-driver/mysql"
)

// The defaults applied after decoding.
const (
	DefaultKafkaVersion    = "2.8.0"
	DefaultClientID        = "eddy"
	DefaultDedupTTL        = 24 * time.Hour
	DefaultFlushMessages   = 1000
	DefaultBacklogMessages = 10000
	DefaultFlushBytes      = 16 << 20
	DefaultFlushInterval   = 100 * time.Millisecond
	DefaultShutdownTimeout = 10 * time.Second
	DefaultSessionTimeout  = 10 * time.Second
	DefaultWaitTimeout     = 30 * time.Second
	DefaultMaxFuture       = 24 * time.Hour
)

// MinKafkaVersion is the oldest kafka.version eddy accepts.
const MinKafkaVersion = "2.1.0"

var minKafkaVersion = sarama.V2_1_0_0

// versionRe matches what looks like a Kafka version: two to four numbers.
var versionRe = regexp.MustCompile(`^(\d+)\.(\d+)(\.\d+){0,2}$`)

// ParseKafkaVersion parses a kafka.version for sarama and checks that eddy
// can speak it. Its errors say which of the two is the problem: a version
// too old names the minimum; a version sarama cannot read, the form it
// wants.
func ParseKafkaVersion(s string) (sarama.KafkaVersion, error) {
	v, err := sarama.ParseKafkaVersion(s)
	if err == nil {
		if !v.IsAtLeast(minKafkaVersion) {
			return v, fmt.Errorf("%s is too old: eddy needs Kafka %s or later", s, MinKafkaVersion)
		}
		return v, nil
	}
	m := versionRe.FindStringSubmatch(s)
	if m == nil {
		return v, fmt.Errorf("%q is not a Kafka version such as 3.9.0", s)
	}
	// sarama reads 0.x versions in four parts and the others in three.
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < 2 || major == 2 && minor < 1 {
		return v, fmt.Errorf("%s is too old: eddy needs Kafka %s or later", s, MinKafkaVersion)
	}
	return v, fmt.Errorf("%q: write the version with three parts, such as %d.%d.0", s, major, minor)
}

var (
	nameRe      = regexp.MustCompile(`^[a-z0-9._-]{1,100}$`)
	aggNameRe   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	topicNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
)

// fail records an error for path at the position of path's node (or its
// nearest ancestor's), unless path or an ancestor already has one.
func (c *checker) fail(path, format string, args ...any) {
	for p := path; ; {
		if c.errs.has(p) {
			return
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			if c.errs.has("") {
				return // the file is not a mapping: nothing else makes sense
			}
			break
		}
		p = p[:i]
	}
	line, col := 1, 1
	if n := c.d.node(path); n != nil {
		line, col = n.Line, n.Column
	}
	c.errs.add(line, col, path, format, args...)
}

func (c *checker) missing(path string) { c.fail(path, "required field missing") }

// errorUnder reports whether an error was recorded for path or a field
// below it.
func (c *checker) errorUnder(path string) bool {
	for f := range c.errs.fields {
		if f == path || strings.HasPrefix(f, path+".") || strings.HasPrefix(f, path+"[") {
			return true
		}
	}
	return false
}

// positive applies def to a duration left out of the file and checks that a
// given one is > 0.
func (c *checker) positive(path string, d *time.Duration, def time.Duration) {
	if !c.d.has(path) || (*d == 0 && isNullAt(c, path)) {
		*d = def
		return
	}
	if *d <= 0 {
		c.fail(path, "must be greater than 0, got %s", *d)
	}
}

func isNullAt(c *checker, path string) bool {
	n, ok := c.d.nodes[path]
	return ok && isNull(n)
}

func (c *checker) nonNegative(path string, d time.Duration) {
	if d < 0 {
		c.fail(path, "must not be negative, got %s", d)
	}
}

func (c *checker) topic(path, t string) {
	switch {
	case t == "":
		c.missing(path)
	case t == "." || t == ".." || !topicNameRe.MatchString(t):
		c.fail(path, "%q is not a valid topic name (1-249 of letters, digits, '.', '_' and '-')", t)
	}
}

// notSource rejects writing to a topic the pipeline reads: every output
// would be read back as input.
func (c *checker) notSource(path, t string) {
	if t == "" {
		return
	}
	if slices.Contains(c.spec.Source.Topics, t) {
		c.fail(path, "topic %q is also a source topic: the pipeline would read its own output", t)
		return
	}
	for i, tb := range c.spec.Tables {
		if tb.Topic == t {
			c.fail(path, "topic %q is tables[%d]'s topic: the pipeline would read its own output", t, i)
			return
		}
	}
	for i, st := range c.spec.Steps {
		if j := st.Join; j != nil && slices.Contains(j.With.Topics, t) {
			c.fail(path, "topic %q is an input of steps[%d].join: the pipeline would read its own output", t, i)
			return
		}
	}
}

func checkHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "want host:port"
	}
	if host == "" {
		return "missing host"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "port must be a number from 1 to 65535"
	}
	return ""
}

func (c *checker) validate() {
	s := c.spec
	switch {
	case s.Name == "":
		c.missing("name")
	case !nameRe.MatchString(s.Name):
		c.fail("name", "%q: use 1-100 lowercase letters, digits, '-', '_' and '.'", s.Name)
	}
	c.kafka()
	c.source()
	c.tablesSection()
	c.state()
	c.positive("dedup.ttl", &s.Dedup.TTL, DefaultDedupTTL)
	if !c.d.has("flush.max_messages") || isNullAt(c, "flush.max_messages") {
		s.Flush.MaxMessages = DefaultFlushMessages
	} else if s.Flush.MaxMessages <= 0 {
		c.fail("flush.max_messages", "must be greater than 0, got %d", s.Flush.MaxMessages)
	}
	switch {
	case !c.d.has("flush.backlog_messages") || isNullAt(c, "flush.backlog_messages"):
		s.Flush.BacklogMessages = max(DefaultBacklogMessages, s.Flush.MaxMessages)
	case s.Flush.BacklogMessages < s.Flush.MaxMessages:
		c.fail("flush.backlog_messages", "must be at least flush.max_messages (%d), got %d", s.Flush.MaxMessages, s.Flush.BacklogMessages)
	}
	if !c.d.has("flush.max_bytes") || isNullAt(c, "flush.max_bytes") {
		s.Flush.MaxBytes = DefaultFlushBytes
	} else if s.Flush.MaxBytes <= 0 {
		c.fail("flush.max_bytes", "must be greater than 0, got %d", s.Flush.MaxBytes)
	}
	c.positive("flush.interval", &s.Flush.Interval, DefaultFlushInterval)
	c.positive("flush.shutdown_timeout", &s.Flush.ShutdownTimeout, DefaultShutdownTimeout)
	if dl := s.DeadLetter; dl != nil {
		c.sideRouter("dead_letter.router", &dl.Router)
		c.output("dead_letter.topic", dl.Topic, dl.Router)
	}
	c.steps()
	c.schemaRegistry()
	if k := s.Sink; k != nil {
		c.router(k)
		switch {
		case k.Topic != "" && len(k.Topics) > 0:
			c.fail("sink.topics", "set sink.topic or sink.topics, not both")
		case len(k.Topics) > 0:
			for i, t := range k.Topics {
				c.output(indexPath("sink.topics", i), t, k.Router)
			}
		case c.d.has("sink.topics"):
			c.fail("sink.topics", "want at least one topic")
		default:
			c.output("sink.topic", k.Topic, k.Router)
		}
		if k.Format == "" {
			k.Format = FormatJSON
		}
	}
	if s.Sink == nil && !c.errorUnder("steps") {
		effect := false
		for i := range s.Steps {
			if d := s.Steps[i].Kind().def(); d != nil && d.effect {
				effect = true
			}
		}
		if !effect {
			c.fail("", "the pipeline has no effect: add a sink, or an aggregate or processor step")
		}
	}
}

// output is a topic the pipeline writes (at path), placed by router: a
// valid name, not a source topic, and, when two fields name the same
// topic, the same router, since one topic has one placement.
func (c *checker) output(path, topic string, router Partitioner) {
	c.topic(path, topic)
	c.notSource(path, topic)
	if topic == "" {
		return
	}
	if c.outs == nil {
		c.outs = map[string]output{}
	}
	prev, seen := c.outs[topic]
	switch {
	case !seen:
		c.outs[topic] = output{path, router}
	case strings.HasPrefix(path, "sink.topics") && strings.HasPrefix(prev.path, "sink.topics"):
		c.fail(path, "topic %q is listed twice (also %s)", topic, prev.path)
	case prev.router != router:
		c.fail(path, "topic %q is also %s, routed by %s: one topic has one router, here %s", topic, prev.path, prev.router, router)
	}
}

// output is a topic the pipeline writes: where it is named, and its router.
type output struct {
	path   string
	router Partitioner
}

// sideRouter settles the router of a dead-letter or late topic: each
// event goes to one partition, placed by the same functions as the sink's
// (hash of the source key by default), so multicast has no meaning there.
func (c *checker) sideRouter(path string, r *Partitioner) {
	switch *r {
	case "":
		*r = PartitionerHash
	case PartitionerMulticast:
		c.fail(path, "multicast copies a result to every partition; a dead letter or late event goes to one: use hash, consistent-hash or round-robin")
	case PartitionerRandom, PartitionerOldRoundRobin:
		c.fail(path, "%q is not replay-stable: use round-robin", string(*r))
	}
}

// router settles sink.router from it and its old name, sink.partitioner.
func (c *checker) router(k *SinkConfig) {
	switch {
	case k.Router != "" && k.Partitioner != "":
		c.fail("sink.partitioner", "set sink.router only: partitioner is its old name")
	case k.Router == PartitionerRandom || k.Router == PartitionerOldRoundRobin:
		c.fail("sink.router", "%q is an old sink.partitioner value: use round-robin", string(k.Router))
	case k.Router == "":
		k.Router = k.Partitioner
	}
	switch k.Router {
	case "":
		k.Router = PartitionerHash
	case PartitionerRandom, PartitionerOldRoundRobin:
		k.Router = PartitionerRoundRobin
	}
	k.Partitioner = ""
}

func (c *checker) kafka() {
	k := &c.spec.Kafka
	if c.opts.brokers != nil {
		k.Brokers = c.opts.brokers
	} else if !c.errs.has("kafka.brokers") {
		var out []string
		for i, b := range k.Brokers {
			path := indexPath("kafka.brokers", i)
			for _, part := range strings.Split(b, ",") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				if msg := checkHostPort(part); msg != "" {
					c.fail(path, "broker %q: %s", part, msg)
				}
				out = append(out, part)
			}
		}
		switch {
		case len(k.Brokers) == 0:
			c.missing("kafka.brokers")
		case len(out) == 0:
			c.fail("kafka.brokers", "no broker address (is the environment variable empty?)")
		}
		k.Brokers = out
	}
	if k.Group == "" && c.spec.Name != "" {
		k.Group = "eddy-" + c.spec.Name
	}
	if k.Balance == "" {
		k.Balance = BalanceSticky
	}
	if k.ClientID == "" {
		k.ClientID = DefaultClientID
	}
	if k.Transactions == nil {
		on := true
		k.Transactions = &on
	}
	c.positive("kafka.session_timeout", &k.SessionTimeout, DefaultSessionTimeout)
	if k.SessionTimeout > 0 && (k.SessionTimeout < time.Second || k.SessionTimeout > 30*time.Minute) {
		c.fail("kafka.session_timeout", "must be between 1s and 30m, got %s", k.SessionTimeout)
	}
	if k.Version == "" {
		k.Version = DefaultKafkaVersion
	}
	v, err := ParseKafkaVersion(k.Version)
	switch {
	case err != nil:
		c.fail("kafka.version", "%v", err)
	default:
		c.kafkaVersion = v
		if k.InstanceID != "" && !v.IsAtLeast(sarama.V2_3_0_0) {
			c.fail("kafka.instance_id", "static membership needs kafka.version 2.3.0 or later, got %s", k.Version)
		}
	}
	if sc := k.SASL; sc != nil {
		if sc.Mechanism == "" {
			sc.Mechanism = SASLPlain
		}
		if sc.Username == "" {
			c.missing("kafka.sasl.username")
		}
		if sc.Password == "" {
			c.missing("kafka.sasl.password")
		}
	}
	c.tls("kafka.tls", k.TLS)
}

func (c *checker) tls(path string, t *TLSConfig) {
	if t == nil {
		return
	}
	if !c.d.has(path+".enabled") || isNullAt(c, path+".enabled") {
		t.Enabled = true
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		field := path + ".key_file"
		if t.CertFile == "" {
			field = path + ".cert_file"
		}
		c.fail(field, "cert_file and key_file go together: set both or neither")
	}
}

func (c *checker) source() { c.checkInput("source", &c.spec.Source) }

// schemaRegistry checks the schema_registry section and that every
// format needing it has it, and sink.schema.
func (c *checker) schemaRegistry() {
	s := c.spec
	if r := s.SchemaRegistry; r != nil {
		switch {
		case r.URL == "":
			c.missing("schema_registry.url")
		case !strings.HasPrefix(r.URL, "http://") && !strings.HasPrefix(r.URL, "https://"):
			c.fail("schema_registry.url", "%s: want an http:// or https:// URL", quoteValue("schema_registry.url", r.URL))
		}
		if r.Token != "" && (r.Username != "" || r.Password != "") {
			c.fail("schema_registry.token", "set token or username and password, not both")
		}
		if (r.Username == "") != (r.Password == "") {
			c.fail("schema_registry.password", "username and password go together: set both or neither")
		}
		c.tls("schema_registry.tls", r.TLS)
		c.positive("schema_registry.timeout", &r.Timeout, 10*time.Second)
	}
	needs := func(path string, f Format) {
		if f.Registered() && s.SchemaRegistry == nil {
			c.fail(path, "%s needs a schema_registry section (its url)", f)
		}
	}
	needs("source.format", s.Source.Format)
	for i := range s.Tables {
		needs(indexPath("tables", i)+".format", s.Tables[i].Format)
	}
	for i := range s.Steps {
		if j := s.Steps[i].Join; j != nil {
			needs(indexPath("steps", i)+".join.with.format", j.With.Format)
		}
	}
	k := s.Sink
	if k == nil {
		return
	}
	needs("sink.format", k.Format)
	if k.Format.Registered() && len(k.Topics) > 1 && (k.Schema == nil || k.Schema.Subject == "" && k.Schema.Strategy != "record_name") {
		c.fail("sink.topics", "a %s sink writing several topics writes one schema ID in every copy: give them one subject (sink.schema.subject, or sink.schema.strategy record_name)", k.Format)
	}
	if k.Schema == nil {
		return
	}
	if !k.Format.Registered() {
		f := k.Format
		if f == "" {
			f = FormatJSON
		}
		c.fail("sink.schema", "is for a sink whose format is avro, protobuf or json_schema (this one's is %s)", f)
		return
	}
	switch k.Schema.Strategy {
	case "":
		k.Schema.Strategy = "topic_name"
	case "topic_name", "record_name", "topic_record_name":
	default:
		c.fail("sink.schema.strategy", "%s: want topic_name, record_name or topic_record_name", quoteValue("sink.schema.strategy", k.Schema.Strategy))
	}
	if k.Schema.Strategy != "topic_name" && k.Schema.File == "" && k.Schema.Subject == "" {
		c.fail("sink.schema.strategy", "%s names the subject by the schema: give sink.schema.file", k.Schema.Strategy)
	}
	if k.Schema.Register == nil {
		on := true
		k.Schema.Register = &on
	}
	if k.Schema.Message != "" && k.Format != FormatProtobuf {
		c.fail("sink.schema.message", "is for a protobuf sink")
	}
}

// checkInput checks a source section at path: the pipeline's source, or
// a join's other input.
func (c *checker) checkInput(path string, src *SourceConfig) {
	if len(src.Topics) == 0 {
		c.missing(path + ".topics")
	}
	seen := make(map[string]bool)
	for i, t := range src.Topics {
		p := indexPath(path+".topics", i)
		c.topic(p, t)
		if seen[t] && t != "" {
			c.fail(p, "topic %q is listed twice", t)
		}
		seen[t] = true
	}
	if src.Format == "" {
		src.Format = FormatJSON
	}
	if src.Start == "" {
		src.Start = StartEarliest
	}
	c.nonNegative(path+".watermark.allowed_lateness", src.Watermark.AllowedLateness)
	c.nonNegative(path+".watermark.idle_timeout", src.Watermark.IdleTimeout)
	if !c.d.has(path + ".watermark.max_future") {
		src.Watermark.MaxFuture = DefaultMaxFuture
	}
	c.nonNegative(path+".watermark.max_future", src.Watermark.MaxFuture)
}

func (c *checker) state() {
	st := &c.spec.State
	if st.Backend == "" {
		st.Backend = BackendMemory
	}
	if st.Missing == "" {
		st.Missing = MissingRebuild
	}
	switch st.Backend {
	case BackendRedis:
		r := st.Redis
		if r == nil {
			c.fail("state.redis", "required when state.backend is redis")
			return
		}
		if len(r.Addrs) == 0 {
			c.missing("state.redis.addrs")
		}
		for i, a := range r.Addrs {
			if msg := checkHostPort(a); msg != "" {
				c.fail(indexPath("state.redis.addrs", i), "address %q: %s", a, msg)
			}
		}
		if r.DB < 0 {
			c.fail("state.redis.db", "must not be negative, got %d", r.DB)
		} else if r.DB != 0 && len(r.Addrs) > 1 && r.MasterName == "" {
			c.fail("state.redis.db", "must be 0 on a Redis Cluster (several addrs without master_name)")
		}
		c.tls("state.redis.tls", r.TLS)
	case BackendSingleStore:
		ss := st.SingleStore
		if ss == nil {
			c.fail("state.singlestore", "required when state.backend is singlestore")
			return
		}
		if ss.Dialect == "" {
			ss.Dialect = DialectSingleStore
		}
		if ss.DSN == "" {
			c.missing("state.singlestore.dsn")
		} else {
			if at := strings.LastIndexByte(ss.DSN, '@'); at > 0 {
				c.red.add(ss.DSN[:at]) // user:password
			}
			if _, err := mysql.ParseDSN(ss.DSN); err != nil {
				c.fail("state.singlestore.dsn", "the value (not shown) is not a valid DSN such as user:password@tcp(host:3306)/dbname: %s", c.red.apply(err.Error()))
			}
		}
		c.tls("state.singlestore.tls", ss.TLS)
		switch w := ss.WaitTimeout; {
		case w == 0:
			ss.WaitTimeout = DefaultWaitTimeout
		case w < time.Second || w > 24*time.Hour:
			c.fail("state.singlestore.wait_timeout", "must be between 1s and 24h, got %s", w)
		case w%time.Second != 0:
			c.fail("state.singlestore.wait_timeout", "must be a whole number of seconds, got %s", w)
		}
	}
}

func (c *checker) steps() {
	names := make(map[string]int) // aggregate name -> line
	for i := range c.spec.Steps {
		st := &c.spec.Steps[i]
		path := indexPath("steps", i)
		var set []string
		for _, k := range kindNames() {
			if c.d.has(path + "." + k) {
				set = append(set, k)
			}
		}
		switch {
		case len(set) == 0:
			if !c.errorUnder(path) {
				c.fail(path, "a step needs one of %s", strings.Join(kindNames(), ", "))
			}
			continue
		case len(set) > 1:
			c.fail(path, "one step holds %s: put each in its own list item", strings.Join(set, " and "))
			continue
		}
		for j := range kinds {
			if d := &kinds[j]; d.name == set[0] {
				d.check(c, path+"."+d.name, i, st, names)
			}
		}
	}
}

func (c *checker) processor(path string, p *ProcessorConfig) {
	if p == nil {
		c.fail(path, "want a mapping with name and config")
		return
	}
	switch {
	case p.Name == "":
		c.missing(path + ".name")
	case c.opts.processors != nil && !c.opts.processors[p.Name]:
		known := make([]string, 0, len(c.opts.processors))
		for n := range c.opts.processors {
			known = append(known, n)
		}
		sort.Strings(known)
		list := "none are registered"
		if len(known) > 0 {
			list = "registered: " + strings.Join(known, ", ")
		}
		c.fail(path+".name", "unknown processor %q (%s)", p.Name, list)
	}
}

// stepName defaults a named step's name to "step<i>" and checks it: its
// form, and that no earlier step has it (names: name -> line). It reports
// whether the name is well formed.
func (c *checker) stepName(path string, i int, name *string, names map[string]int) bool {
	if *name == "" {
		*name = "step" + strconv.Itoa(i)
	}
	if !aggNameRe.MatchString(*name) {
		c.fail(path+".name", "%q: use 1-100 letters, digits, '-', '_' and '.'", *name)
		return false
	}
	if first, dup := names[*name]; dup {
		c.fail(path+".name", "duplicate step name %q (first used on line %d)", *name, first)
	}
	names[*name] = c.d.node(path + ".name").Line
	return true
}

// internalName checks the name of a step that has an internal topic
// (repartition, join): a step name whose topic is neither a source nor a
// sink topic.
func (c *checker) internalName(path string, i int, name *string, names map[string]int) {
	if !c.stepName(path, i, name, names) {
		return
	}
	topic := InternalTopic(c.spec.Name, *name)
	c.notSource(path+".name", topic)
	if k := c.spec.Sink; k != nil && (k.Topic == topic || slices.Contains(k.Topics, topic)) {
		c.fail(path+".name", "its internal topic %q is a sink topic", topic)
	}
}

func (c *checker) repartition(path string, i int, r *RepartitionConfig, names map[string]int) {
	if r == nil {
		c.fail(path, "want a mapping with key (and optionally name, partitions, router)")
		return
	}
	c.internalName(path, i, &r.Name, names)
	if r.Key == "" {
		c.missing(path + ".key")
	}
	if r.Partitions < 0 {
		c.fail(path+".partitions", "must not be negative, got %d", r.Partitions)
	}
	switch r.Router {
	case "":
		r.Router = PartitionerHash
	case PartitionerRandom, PartitionerOldRoundRobin:
		c.fail(path+".router", "%q is not replay-stable: use round-robin", string(r.Router))
	}
}

func (c *checker) join(path string, i int, j *JoinConfig, names map[string]int) {
	if j == nil {
		c.fail(path, "want a mapping with with, on and within")
		return
	}
	c.internalName(path, i, &j.Name, names)
	wp := path + ".with"
	if !c.d.has(wp) {
		c.missing(wp)
	} else {
		if c.d.has(wp + ".start") {
			c.fail(wp+".start", "a join's input starts where source.start says (one consumer group reads both)")
		}
		c.checkInput(wp, &j.With)
		for k, t := range j.With.Topics {
			if slices.Contains(c.spec.Source.Topics, t) {
				c.fail(indexPath(wp+".topics", k), "topic %q is also a source topic: a self-join is not supported (copy the stream to a second topic first)", t)
			} else if c.inputs[t] != "" {
				c.fail(indexPath(wp+".topics", k), "topic %q is also read by %s: each topic feeds one input", t, c.inputs[t])
			} else {
				c.inputs[t] = indexPath(wp+".topics", k)
			}
		}
	}
	switch {
	case !c.d.has(path + ".on"):
		c.missing(path + ".on")
	default:
		if j.On.Left == "" {
			c.missing(path + ".on.left")
		}
		if j.On.Right == "" {
			c.missing(path + ".on.right")
		}
	}
	switch {
	case !c.d.has(path + ".within"):
		c.missing(path + ".within")
	case j.Within <= 0:
		c.fail(path+".within", "must be greater than 0, got %s", j.Within)
	}
	c.nonNegative(path+".grace", j.Grace)
	if j.Type == "" {
		j.Type = JoinInner
	}
	if j.Partitions < 0 {
		c.fail(path+".partitions", "must not be negative, got %d", j.Partitions)
	}
	if j.Late != nil {
		c.sideRouter(path+".late.router", &j.Late.Router)
		c.output(path+".late.topic", j.Late.Topic, j.Late.Router)
	}
}

// tablesSection checks tables: names unique, each topic read once, and a
// start from the earliest offset (a table needs its whole history).
func (c *checker) tablesSection() {
	names := map[string]string{}
	for i := range c.spec.Tables {
		t := &c.spec.Tables[i]
		path := indexPath("tables", i)
		switch {
		case t.Name == "":
			c.missing(path + ".name")
		case !aggNameRe.MatchString(t.Name):
			c.fail(path+".name", "%q: use 1-100 letters, digits, '-', '_' and '.'", t.Name)
		case names[t.Name] != "":
			c.fail(path+".name", "table %q is also %s", t.Name, names[t.Name])
		default:
			names[t.Name] = path
		}
		var kinds []string
		for k, set := range map[string]bool{"topic": t.Topic != "", "redis": t.Redis != nil, "sql": t.SQL != nil} {
			if set {
				kinds = append(kinds, k)
			}
		}
		sort.Strings(kinds)
		switch {
		case len(kinds) == 0:
			c.fail(path, "want one of topic (a table eddy materializes), redis or sql (one you keep)")
		case len(kinds) > 1:
			c.fail(path, "%s exclude each other: choose one", strings.Join(kinds, " and "))
		}
		if t.Topic == "" {
			c.externalTable(path, t)
			continue
		}
		if c.d.has(path + ".cache") {
			c.fail(path+".cache", "only a redis or sql table is cached: a topic's rows are in the state store")
		}
		c.topic(path+".topic", t.Topic)
		switch {
		case slices.Contains(c.spec.Source.Topics, t.Topic):
			c.fail(path+".topic", "topic %q is also a source topic", t.Topic)
		case t.Topic != "" && c.inputs[t.Topic] != "":
			c.fail(path+".topic", "topic %q is also read by %s: each topic feeds one input", t.Topic, c.inputs[t.Topic])
		case t.Topic != "":
			c.inputs[t.Topic] = path + ".topic"
		}
		if t.Format == "" {
			t.Format = FormatJSON
		}
	}
	materialized := slices.ContainsFunc(c.spec.Tables, func(t TableConfig) bool { return t.Topic != "" })
	if materialized && c.spec.Source.Start == StartLatest {
		c.fail("source.start", "tables are read from their earliest offset: start: latest would skip a table's history (remove it, or the tables)")
	}
}

// externalTable checks a redis or sql table at path.
func (c *checker) externalTable(path string, t *TableConfig) {
	if r := t.Redis; r != nil {
		p := path + ".redis"
		if len(r.Addrs) == 0 {
			c.missing(p + ".addrs")
		}
		for i, a := range r.Addrs {
			if msg := checkHostPort(a); msg != "" {
				c.fail(indexPath(p+".addrs", i), "address %q: %s", a, msg)
			}
		}
		switch r.Type {
		case "":
			r.Type = "hash"
		case "hash", "json":
		default:
			c.fail(p+".type", "%q is not one of hash, json", r.Type)
		}
	}
	if q := t.SQL; q != nil {
		p := path + ".sql"
		if q.DSN == "" {
			c.missing(p + ".dsn")
		} else if _, err := mysql.ParseDSN(q.DSN); err != nil {
			c.fail(p+".dsn", "the value (not shown) is not a valid DSN")
		}
		if q.Table == "" {
			c.missing(p + ".table")
		}
		if q.KeyColumn == "" {
			c.missing(p + ".key_column")
		}
	}
	if t.Format != FormatJSON && c.d.has(path+".format") {
		c.fail(path+".format", "a redis or sql table's rows are read as they are stored: format is for a topic")
	}
	if !c.d.has(path+".cache.size") || t.Cache.Size == 0 {
		t.Cache.Size = 10000
	} else if t.Cache.Size < 0 {
		c.fail(path+".cache.size", "must be greater than 0, got %d", t.Cache.Size)
	}
	c.positive(path+".cache.ttl", &t.Cache.TTL, time.Minute)
}

// lookup checks a lookup step at path.
func (c *checker) lookup(path string, l *LookupConfig) {
	if l == nil {
		c.fail(path, "want a mapping with table and key")
		return
	}
	var names []string
	found := false
	for _, t := range c.spec.Tables {
		names = append(names, t.Name)
		found = found || t.Name == l.Table
	}
	switch {
	case l.Table == "":
		c.missing(path + ".table")
	case !found && len(names) == 0:
		c.fail(path+".table", "no table %q: the pipeline has no tables section", l.Table)
	case !found:
		c.fail(path+".table", "no table %q (tables: %s)", l.Table, strings.Join(names, ", "))
	}
	if l.Key == "" {
		c.missing(path + ".key")
	}
	switch l.Type {
	case "":
		l.Type = JoinInner
	case JoinInner, JoinLeft:
	default:
		c.fail(path+".type", "a lookup is inner or left, got %q", string(l.Type))
	}
	if l.As == "" {
		l.As = l.Table
	}
}

func (c *checker) aggregate(path string, i int, a *AggregateConfig, names map[string]int) {
	if a == nil {
		c.fail(path, "want a mapping with key, window and values")
		return
	}
	c.stepName(path, i, &a.Name, names)
	if a.Key == "" {
		c.missing(path + ".key")
	}
	wp := path + ".window"
	if !c.d.has(wp) {
		c.missing(wp)
	} else {
		var set []string
		for _, k := range []string{"tumbling", "hopping", "session"} {
			if c.d.has(wp + "." + k) {
				set = append(set, k)
			}
		}
		w := &a.Window
		switch {
		case len(set) == 0:
			c.fail(wp, "want one of tumbling, hopping or session")
		case len(set) > 1:
			c.fail(wp, "%s exclude each other: choose one", strings.Join(set, " and "))
		default:
			size := map[string]time.Duration{"tumbling": w.Tumbling, "hopping": w.Hopping, "session": w.Session}[set[0]]
			if size <= 0 {
				c.fail(wp+"."+set[0], "must be greater than 0, got %s", size)
			}
			if set[0] == "hopping" {
				switch {
				case !c.d.has(wp + ".advance"):
					c.fail(wp+".advance", "required for a hopping window")
				case w.Advance <= 0:
					c.fail(wp+".advance", "must be greater than 0, got %s", w.Advance)
				case size > 0 && w.Advance > size:
					c.fail(wp+".advance", "%s is larger than the window (%s)", w.Advance, size)
				}
			} else if c.d.has(wp + ".advance") {
				c.fail(wp+".advance", "only hopping windows have an advance")
			}
		}
		c.nonNegative(wp+".grace", w.Grace)
	}
	if len(a.Values) == 0 {
		c.fail(path+".values", "want at least one value, e.g. {clicks: count()}")
	}
	if a.Emit == "" {
		a.Emit = EmitOnClose
	}
	if a.Late != nil {
		c.sideRouter(path+".late.router", &a.Late.Router)
		c.output(path+".late.topic", a.Late.Topic, a.Late.Router)
	}
	c.nonNegative(path+".retention", a.Retention)
}
