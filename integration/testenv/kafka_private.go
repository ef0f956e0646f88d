package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Time limits of a private Kafka broker: a JVM start with KRaft's
// recovery after a crash takes 10-40 s on a busy two-core machine.
const (
	privateKafkaStartTimeout = 90 * time.Second
	kafkaFormatTimeout       = 60 * time.Second
)

// EnvServicesDir is the state directory of `make services`
// (scripts/services.sh), where it keeps the Kafka classpath it resolved
// from Maven Central: kafka-lib/<version>/, with the running version in
// kafka/version.
const EnvServicesDir = "EDDY_SERVICES_DIR"

// KafkaConfig configures a private broker (see [PrivateKafka]).
type KafkaConfig struct {
	// Advertise, when set, gives the broker a second PLAINTEXT listener
	// (named EXTERNAL) on a free loopback port of its own, advertised to
	// clients under this host:port instead: the address of a proxy in
	// front of it. A client bootstrapped at Advertise sees only Advertise
	// in the metadata, so all its traffic goes through the proxy; clients
	// of [Kafka.Brokers] talk to the broker directly.
	Advertise string
}

// Kafka is a private single-node Apache Kafka broker (KRaft, combined
// broker and controller) that a test starts, kills, stops and starts
// again; see [PrivateKafka]. Its [Server] methods Kill (SIGKILL: a crash),
// Stop (SIGTERM: a controlled shutdown) and Start (the same ports, the
// same log dir) take it down and bring it back, with their concurrency
// rules.
type Kafka struct {
	*Server
	external string // the EXTERNAL listener's own address, or ""
	version  string
}

// Brokers returns the bootstrap address of the broker's PLAINTEXT
// listener, the same across restarts.
func (k *Kafka) Brokers() []string { return []string{k.Addr()} }

// ExternalAddr returns the address the EXTERNAL listener listens on (a
// proxy's upstream), or "" without [KafkaConfig.Advertise].
func (k *Kafka) ExternalAddr() string { return k.external }

// Version returns the Kafka version of the broker's jars.
func (k *Kafka) Version() string { return k.version }

// PrivateKafka starts an Apache Kafka broker of the test's own: the jars
// `make services` resolved into $EDDY_SERVICES_DIR/kafka-lib/<version>/
// (default /tmp/eddy-services; the version of kafka/version there, or the
// only one resolved), run with `java -Xmx384m`, on free loopback ports
// (broker, controller, and the EXTERNAL listener of cfg.Advertise), over a
// log dir in a temporary directory of the test, formatted once. It waits
// until the broker answers a metadata request (up to 90 s) and is killed
// when the test ends. Its settings are those of integration/kafka's
// server.properties without the secure listeners: one replica, 3
// partitions for __consumer_offsets, no group join delay, topics created
// explicitly only. (A SIGKILL of the process loses nothing acknowledged:
// the page cache outlives it; what KRaft recovers is the unclean shutdown.)
//
// Without the jars, the test is skipped, unless it runs in CI (CI=true),
// where it fails; java must be on PATH.
func PrivateKafka(t testing.TB, cfg KafkaConfig) *Kafka {
	t.Helper()
	lib, version := kafkaLib(t)
	java := lookBinary(t, "java")
	major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
	kafka4 := major >= 4

	s := &Server{t: t, name: "kafka", bin: java, dir: t.TempDir(), startTimeout: privateKafkaStartTimeout}
	s.log = filepath.Join(s.dir, s.name+".out") // the broker logs to stdout
	// A JVM ended by SIGTERM runs Kafka's shutdown hook (a controlled
	// shutdown) and exits with status 143.
	s.cleanExit = func(err error) bool {
		var ee *exec.ExitError
		return errors.As(err, &ee) && ee.ExitCode() == 143
	}
	k := &Kafka{Server: s, version: version}

	logCfg := filepath.Join(s.dir, "log4j.properties")
	logOpt, logText := "-Dlog4j.configuration=file:"+logCfg, kafkaLog4j
	if kafka4 {
		logCfg = filepath.Join(s.dir, "log4j2.properties")
		logOpt, logText = "-Dlog4j2.configurationFile=file:"+logCfg, kafkaLog4j2
	}
	if err := os.WriteFile(logCfg, []byte(logText), 0o600); err != nil {
		t.Fatal(err)
	}
	props := filepath.Join(s.dir, "server.properties")
	jvm := []string{"-Xmx384m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.awt.headless=true", logOpt, "-cp", filepath.Join(lib, "*")}
	s.args = func() []string { return append(append([]string(nil), jvm...), "kafka.Kafka", props) }
	s.ready = func(ctx context.Context, _ int) error { return kafkaAnswers(ctx, s.addr) }

	t.Cleanup(s.Kill)
	var err error
	for range 3 { // a port chosen free may be taken meanwhile
		s.addr = FreeAddr(t)
		controller := FreeAddr(t)
		if cfg.Advertise != "" {
			k.external = FreeAddr(t)
		}
		data := filepath.Join(s.dir, "data")
		_ = os.RemoveAll(data)
		if err = os.WriteFile(props, []byte(kafkaProperties(s.addr, controller, k.external, cfg.Advertise, data)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err = formatKafka(java, jvm, props, kafka4, filepath.Join(s.dir, "format.log")); err != nil {
			t.Fatalf("private kafka %s: %v", version, err)
		}
		s.mu.Lock()
		err = s.startLocked()
		s.mu.Unlock()
		if err == nil {
			return k
		}
	}
	t.Fatalf("start a private kafka %s: %v", version, err)
	return nil
}

// KafkaLib returns the directory of the Kafka jars `make services`
// resolved (the classpath is <lib>/*) and their version, or skips the
// test (fails it in CI): for tests that check eddy against Apache Kafka's
// own Java code.
func KafkaLib(t testing.TB) (lib, version string) {
	t.Helper()
	return kafkaLib(t)
}

// kafkaLib finds the Kafka classpath of `make services`, or skips the
// test (fails it in CI).
func kafkaLib(t testing.TB) (lib, version string) {
	t.Helper()
	dir := os.Getenv(EnvServicesDir)
	if dir == "" {
		dir = "/tmp/eddy-services"
	}
	complete := func(v string) bool {
		_, err := os.Stat(filepath.Join(dir, "kafka-lib", v, ".complete"))
		return err == nil
	}
	if b, err := os.ReadFile(filepath.Join(dir, "kafka", "version")); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" && complete(v) {
			return filepath.Join(dir, "kafka-lib", v), v
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "kafka-lib"))
	for _, e := range ents {
		if e.IsDir() && complete(e.Name()) {
			return filepath.Join(dir, "kafka-lib", e.Name()), e.Name()
		}
	}
	msg := fmt.Sprintf("no Kafka jars in %s/kafka-lib/<version>/ (set %s, or run `make services`, which resolves them)", dir, EnvServicesDir)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return "", ""
}

// formatKafka formats the log dir of props with a fresh cluster id, with
// Kafka 3's StorageTool or Kafka 4's.
func formatKafka(java string, jvm []string, props string, kafka4 bool, logFile string) error {
	var id [16]byte
	_, _ = rand.Read(id[:])
	// One form, "--cluster-id=<id>": an id may start with "-", which
	// "-t <id>" would pass as an option.
	cid := base64.RawURLEncoding.EncodeToString(id[:])
	tool := "kafka.tools.StorageTool"
	if kafka4 {
		tool = "org.apache.kafka.tools.StorageTool"
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkaFormatTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, append(append([]string(nil), jvm...), tool, "format", "--cluster-id="+cid, "-c", props)...)
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(logFile, out, 0o600)
	if err != nil {
		return fmt.Errorf("format the log dir (%s format -c %s): %v\n%s", tool, props, err, tail(out, 3000))
	}
	return nil
}

// kafkaAnswers reports nil when the broker at addr answers a metadata
// request naming itself.
func kafkaAnswers(ctx context.Context, addr string) error {
	cfg := SaramaConfig()
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	cfg.Metadata.Retry.Max = 0
	if dl, ok := ctx.Deadline(); ok {
		cfg.Net.ReadTimeout = max(100*time.Millisecond, time.Until(dl))
	}
	b := sarama.NewBroker(addr)
	if err := b.Open(cfg); err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	md, err := b.GetMetadata(&sarama.MetadataRequest{Version: 1})
	if err != nil {
		return err
	}
	if len(md.Brokers) == 0 {
		return fmt.Errorf("%s: metadata names no broker yet", addr)
	}
	return nil
}

// kafkaProperties is the broker's server.properties.
func kafkaProperties(addr, controller, external, advertise, data string) string {
	listeners := "PLAINTEXT://" + addr + ",CONTROLLER://" + controller
	advertised := "PLAINTEXT://" + addr
	protocols := "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
	if external != "" {
		listeners += ",EXTERNAL://" + external
		advertised += ",EXTERNAL://" + advertise
		protocols += ",EXTERNAL:PLAINTEXT"
	}
	_, cport, _ := net.SplitHostPort(controller)
	return fmt.Sprintf(`# A private broker of one test (integration/testenv.PrivateKafka).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%s
listeners=%s
advertised.listeners=%s
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=%s
log.dirs=%s
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=16777216
log.retention.hours=2
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
`, cport, listeners, advertised, protocols, data)
}

// Logging of private brokers: to stdout (the server's .out file), quiet.
const kafkaLog4j = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.org.apache.kafka.clients=WARN
`

const kafkaLog4j2 = `status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.statechange.name = state.change.logger
logger.statechange.level = warn
logger.storage.name = org.apache.kafka.storage.internals.log
logger.storage.level = warn
`
