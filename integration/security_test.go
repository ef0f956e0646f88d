package integration_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/eddy-streams/eddy/integration/kafka/secure"
	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/internal/kafkaconf"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/backends"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// The security tests run workers against the test broker's SASL_SSL and
// SSL listeners (see package integration/kafka/secure; `make services`
// starts them). Everything, topics included, goes over the secure
// listener under test.

// secPasswordVar is the environment variable the pipelines take their
// Kafka password from, as a deployment would.
const secPasswordVar = "EDDY_TEST_KAFKA_PASSWORD"

var secMechanisms = []pipeline.SASLMechanism{pipeline.SASLPlain, pipeline.SASLScramSHA256, pipeline.SASLScramSHA512}

// secLog is a zap logger at debug level that keeps everything it writes,
// to check that no secret ever reaches a log line.
type secLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *secLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *secLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *secLog) logger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(l), zapcore.DebugLevel))
}

// secPipeline parses a pipeline that reads in, doubles event.n into
// event.n2 and writes to out, with the given kafka section (YAML flow
// mapping entries after brokers).
func secPipeline(t *testing.T, brokers []string, in, out, kafka string) *pipeline.Pipeline {
	t.Helper()
	src := fmt.Sprintf(`
name: secure-test
kafka: {brokers: [%q], version: 3.6.0, %s}
source: {topics: [%s]}
steps:
  - set: {n2: event.n * 2}
sink: {topic: %s}
flush: {max_messages: 10, interval: 100ms}
`, strings.Join(brokers, ","), kafka, in, out)
	p, err := pipeline.Parse("secure.yaml", []byte(src))
	if err != nil {
		t.Fatalf("pipeline:\n%s\n%v", src, err)
	}
	return p
}

// secSASLAdmin is a client configuration for the SASL_SSL listener as its
// SCRAM-SHA-512 user, to make topics with.
func secSASLAdmin(t *testing.T, ca string) *sarama.Config {
	t.Helper()
	cfg, err := kafkaconf.New(&pipeline.KafkaConfig{Version: "3.6.0",
		SASL: &pipeline.SASLConfig{Mechanism: pipeline.SASLScramSHA512, Username: secure.Scram512User, Password: secure.Scram512Password},
		TLS:  &pipeline.TLSConfig{Enabled: true, CAFile: ca}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// secClientConfig is the configuration of the test's own clients: the
// pipeline's kafka section through kafkaconf, so they authenticate as
// the worker does.
func secClientConfig(t *testing.T, p *pipeline.Pipeline) *sarama.Config {
	t.Helper()
	cfg, err := kafkaconf.New(&p.Spec.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true // a retried send must not write a test's input twice
	cfg.Net.MaxOpenRequests = 1
	cfg.Net.DialTimeout = 5 * time.Second
	return cfg
}

// secRunRefused runs a worker of p (memory state, a fresh group, opts
// after those) for at most a minute and returns how long Run took to
// return and its error: the connection refusals these tests expect.
func secRunRefused(t *testing.T, p *pipeline.Pipeline, opts ...processor.Option) (time.Duration, error) {
	t.Helper()
	w, err := processor.New(p, append([]processor.Option{processor.WithStore(memory.New()), processor.WithGroup(testenv.Group(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	err = w.Run(ctx)
	return time.Since(start), err
}

// secProduce writes n events {"n": i} to topic through brokers with cfg.
func secProduce(t *testing.T, brokers []string, cfg *sarama.Config, topic string, n int) {
	t.Helper()
	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatalf("producer over %v: %v", brokers, err)
	}
	defer func() { _ = prod.Close() }()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i)),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"n": %d}`, i))}
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatalf("produce %d events to %s over %v: %v", n, topic, brokers, err)
	}
}

// secRead reads topic from the start through brokers with cfg until want
// records arrived or timeout passed, and returns the values.
func secRead(t *testing.T, brokers []string, cfg *sarama.Config, topic string, want int, timeout time.Duration) []string {
	t.Helper()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted // outputs are transactional
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatalf("consumer over %v: %v", brokers, err)
	}
	defer func() { _ = c.Close() }()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, want+16)
	for _, part := range parts {
		pc, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = pc.Close() }()
		go func() {
			for m := range pc.Messages() {
				out <- string(m.Value)
			}
		}()
	}
	var got []string
	deadline := time.After(timeout)
	for len(got) < want {
		select {
		case v := <-out:
			got = append(got, v)
		case <-deadline:
			return got
		}
	}
	return got
}

// secRunWorker runs a worker of p until n outputs arrived on the sink
// topic (read through p's brokers with cfg), stops it, and checks that
// it stopped cleanly, that the outputs are the doubled inputs, and that
// the password is nowhere in its log.
func secRunWorker(t *testing.T, p *pipeline.Pipeline, cfg *sarama.Config, n int, password string) {
	t.Helper()
	var log secLog
	w, err := processor.New(p, processor.WithStore(memory.New()), processor.WithLogger(log.logger()),
		processor.WithGroup(testenv.Group(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	got := secRead(t, p.Spec.Kafka.Brokers, cfg, p.Sink.Topics[0], n, 60*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("worker: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("worker did not stop within 30s")
	}
	if len(got) != n {
		t.Fatalf("%d outputs, want %d; worker log:\n%s", len(got), n, log.String())
	}
	seen := map[int]bool{}
	for _, v := range got {
		var e struct{ N, N2 int }
		if err := json.Unmarshal([]byte(v), &e); err != nil || e.N2 != 2*e.N {
			t.Fatalf("output %s: want n2 = 2n (%v)", v, err)
		}
		seen[e.N] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct outputs of %d", len(seen), n)
	}
	logs := log.String()
	if !strings.Contains(logs, "worker started") {
		t.Errorf("the worker's log lacks \"worker started\":\n%s", logs)
	}
	if strings.Contains(logs, password) {
		t.Errorf("the worker's log contains the password:\n%s", logs)
	}
}

// TestSecureWorkerOverSASL runs a worker that consumes and produces over
// the SASL_SSL listener with each mechanism, the password coming from the
// environment and the broker verified against the test CA. The test's own
// producer and consumer use the same listener and credentials.
func TestSecureWorkerOverSASL(t *testing.T) {
	sasl := secure.SASLBrokers(t)
	ca := secure.File(t, secure.CAFileName)
	admin := secSASLAdmin(t, ca)
	for _, m := range secMechanisms {
		t.Run(string(m), func(t *testing.T) {
			user, pass := secure.User(m)
			t.Setenv(secPasswordVar, pass)
			in, out := secure.Topic(t, sasl, admin, 2), secure.Topic(t, sasl, admin, 2)
			p := secPipeline(t, sasl, in, out, fmt.Sprintf(
				`sasl: {mechanism: %s, username: %s, password: "${%s}"}, tls: {ca_file: %q}`, m, user, secPasswordVar, ca))
			if p.Spec.Kafka.SASL.Password != pass {
				t.Fatalf("kafka.sasl.password was not taken from $%s", secPasswordVar)
			}
			cfg := secClientConfig(t, p)
			const n = 40
			secProduce(t, sasl, cfg, in, n)
			secRunWorker(t, p, cfg, n, pass)
		})
	}
}

// TestSecureWorkerRefusedLogin: a wrong password, or a user of another
// mechanism, makes Run fail at once with sarama's SASL authentication
// error, which says so and does not contain the password.
func TestSecureWorkerRefusedLogin(t *testing.T) {
	sasl := secure.SASLBrokers(t)
	ca := secure.File(t, secure.CAFileName)
	admin := secSASLAdmin(t, ca)
	in, out := secure.Topic(t, sasl, admin, 1), secure.Topic(t, sasl, admin, 1)
	type login struct {
		name       string
		mech       pipeline.SASLMechanism
		user, pass string
	}
	var cases []login
	for _, m := range secMechanisms {
		user, pass := secure.User(m)
		cases = append(cases, login{"wrong password " + string(m), m, user, "not-" + pass})
	}
	cases = append(cases,
		login{"SCRAM-SHA-512 user with SCRAM-SHA-256", pipeline.SASLScramSHA256, secure.Scram512User, secure.Scram512Password},
		login{"SCRAM user with PLAIN", pipeline.SASLPlain, secure.Scram256User, secure.Scram256Password},
		login{"unknown user", pipeline.SASLScramSHA512, "nobody", "nobody-Secret-123"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(secPasswordVar, c.pass)
			p := secPipeline(t, sasl, in, out, fmt.Sprintf(
				`sasl: {mechanism: %s, username: %s, password: "${%s}"}, tls: {ca_file: %q}`, c.mech, c.user, secPasswordVar, ca))
			var log secLog
			took, err := secRunRefused(t, p, processor.WithLogger(log.logger()))
			if err == nil {
				t.Fatal("Run = nil; want a SASL authentication error")
			}
			if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
				t.Errorf("Run = %v; want an error wrapping sarama.ErrSASLAuthenticationFailed", err)
			}
			if !strings.Contains(err.Error(), "SASL Authentication failed") {
				t.Errorf("Run = %v; want it to say \"SASL Authentication failed\"", err)
			}
			if strings.Contains(err.Error(), c.pass) || strings.Contains(log.String(), c.pass) {
				t.Errorf("the password is in the error or the log: %v\n%s", err, log.String())
			}
			if took > 30*time.Second {
				t.Errorf("Run took %v to fail", took)
			}
			t.Logf("%v (after %v)", err, took.Round(time.Millisecond))
		})
	}
}

// TestSecureWorkerWithClientCertificate runs a worker against the SSL
// listener, which requires a client certificate issued by the test CA:
// with kafka.tls.cert_file and key_file it consumes and produces; without
// them, or with a certificate of another CA, the TLS handshake fails.
func TestSecureWorkerWithClientCertificate(t *testing.T) {
	ssl := secure.SSLBrokers(t)
	ca := secure.File(t, secure.CAFileName)
	cert, key := secure.File(t, secure.ClientCertFileName), secure.File(t, secure.ClientKeyFileName)
	admin, err := kafkaconf.New(&pipeline.KafkaConfig{Version: "3.6.0",
		TLS: &pipeline.TLSConfig{Enabled: true, CAFile: ca, CertFile: cert, KeyFile: key}})
	if err != nil {
		t.Fatal(err)
	}
	in, out := secure.Topic(t, ssl, admin, 2), secure.Topic(t, ssl, admin, 2)

	t.Run("client certificate", func(t *testing.T) {
		p := secPipeline(t, ssl, in, out, fmt.Sprintf(`tls: {ca_file: %q, cert_file: %q, key_file: %q}`, ca, cert, key))
		cfg := secClientConfig(t, p)
		const n = 30
		secProduce(t, ssl, cfg, in, n)
		secRunWorker(t, p, cfg, n, "-no-password-")
	})

	other, err := secure.NewAuthority("another CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := other.Issue("stranger")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	strangerCert, strangerKey := filepath.Join(dir, "stranger.pem"), filepath.Join(dir, "stranger-key.pem")
	secWrite(t, strangerCert, otherCert)
	secWrite(t, strangerKey, otherKey)
	for _, c := range []struct{ name, tls string }{
		{"no client certificate", fmt.Sprintf(`tls: {ca_file: %q}`, ca)},
		{"certificate of another CA", fmt.Sprintf(`tls: {ca_file: %q, cert_file: %q, key_file: %q}`, ca, strangerCert, strangerKey)},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := secRunRefused(t, secPipeline(t, ssl, in, out, c.tls))
			if err == nil || !strings.Contains(err.Error(), "remote error: tls: ") ||
				!strings.Contains(err.Error(), "certificate") {
				t.Fatalf("Run = %v; want the broker's TLS alert about the client certificate", err)
			}
		})
	}

	t.Run("broker not trusted", func(t *testing.T) {
		// The system roots do not know the test CA: the worker refuses
		// the broker before it sends anything.
		_, err := secRunRefused(t, secPipeline(t, ssl, in, out, fmt.Sprintf(`tls: {cert_file: %q, key_file: %q}`, cert, key)))
		if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Fatalf("Run = %v; want a certificate verification error", err)
		}
	})
}

func secWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// secFreeAddr returns a loopback address whose port was free a moment ago.
func secFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// secServerCerts makes a CA and a certificate for 127.0.0.1 under it in
// dir: ca.pem, server.pem, server-key.pem.
func secServerCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	auth, err := secure.NewAuthority("eddy test CA")
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := auth.Issue("eddy test server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	secWrite(t, ca, auth.CertPEM())
	secWrite(t, cert, c)
	secWrite(t, key, k)
	return ca, cert, key
}

// secStart runs a server process until the test ends and waits until
// addr accepts TCP connections.
func secStart(t *testing.T, addr, logFile string, name string, args ...string) {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/" + name); serr != nil {
			t.Fatalf("%s is not installed (%v): run `make services`, which installs it", name, err)
		}
		bin = "/usr/sbin/" + name
	}
	logf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("%s exited before listening on %s:\n%s", name, addr, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("%s did not listen on %s within 60s:\n%s", name, addr, b)
		}
	}
}

// secStoreRoundTrip opens the state store of a pipeline with the given
// state section, claims a partition, commits a value and reads it back.
func secStoreRoundTrip(t *testing.T, state string) error {
	t.Helper()
	p, err := pipeline.Parse("state.yaml", []byte(`
name: secure-state
kafka: {brokers: [127.0.0.1:9092]}
source: {topics: [in]}
state: `+state+`
sink: {topic: out}
`))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := backends.Open(ctx, p, nil)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	part := statedb.Partition{Topic: "in"}
	cl, err := s.Acquire(ctx, part)
	if err != nil {
		return err
	}
	err = s.Commit(ctx, &statedb.Commit{Partition: part, Epoch: cl.Epoch, Offset: 1,
		Puts: []statedb.Entry{{Key: "k", Value: []byte("over tls")}}})
	if err != nil {
		return err
	}
	got, err := s.Load(ctx, part, []string{"k"})
	if err != nil {
		return err
	}
	if string(got["k"]) != "over tls" {
		return fmt.Errorf("read back %q, want \"over tls\"", got["k"])
	}
	return nil
}

// TestSecureRedisTLS runs a Redis that speaks TLS only and requires a
// password, and opens the pipeline's state store on it with
// state.redis.tls and the password from the environment: the round trip
// works; without TLS, with another CA or with a wrong password, opening
// fails, and no error contains the password.
func TestSecureRedisTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := secServerCerts(t, dir)
	otherCA, _, _ := secServerCerts(t, t.TempDir())
	addr := secFreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	const pass = "redis-Secret-90d1f7"
	secStart(t, addr, filepath.Join(dir, "redis.log"), "redis-server",
		"--bind", "127.0.0.1", "--port", "0", "--tls-port", port,
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no",
		"--requirepass", pass, "--save", "", "--appendonly", "no", "--dir", dir)

	for _, c := range []struct {
		name, password, tls string
		want                string // in the error; "" for success
	}{
		{"tls with the CA", pass, fmt.Sprintf(`{ca_file: %q}`, ca), ""},
		{"no tls", pass, `{enabled: false}`, "redis: connect"},
		{"another CA", pass, fmt.Sprintf(`{ca_file: %q}`, otherCA), "certificate signed by unknown authority"},
		{"wrong password", "not-" + pass, fmt.Sprintf(`{ca_file: %q}`, ca), "WRONGPASS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("EDDY_TEST_REDIS_PASSWORD", c.password)
			err := secStoreRoundTrip(t, fmt.Sprintf(
				`{backend: redis, redis: {addrs: [%q], password: "${EDDY_TEST_REDIS_PASSWORD}", tls: %s}}`,
				addr, c.tls))
			secCheck(t, err, c.want, c.password)
		})
	}
}

// secCheck checks err against want ("" for no error, else a part of the
// message) and that it does not contain secret.
func secCheck(t *testing.T, err error, want, secret string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("round trip: %v", err)
	case want != "" && err == nil:
		t.Fatalf("round trip worked; want an error with %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("err = %v; want %q in it", err, want)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("the error contains the secret: %v", err)
	}
	if err != nil {
		t.Logf("%v", err)
	}
}

// TestSecureMySQLTLS runs a MariaDB that refuses connections without TLS
// (require_secure_transport) and opens the pipeline's singlestore store
// (dialect mysql) on it with state.singlestore.tls and the DSN from the
// environment: the round trip works; without TLS or with another CA it
// fails, and no error contains the DSN's password.
func TestSecureMySQLTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := secServerCerts(t, dir)
	otherCA, _, _ := secServerCerts(t, t.TempDir())
	data := filepath.Join(dir, "data")
	sockDir, err := os.MkdirTemp("", "eddy-sec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "mysqld.sock")
	var user []string
	if os.Geteuid() == 0 {
		user = []string{"--user=root"}
	}
	installDB, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		t.Fatalf("mariadb-install-db is not installed (%v): run `make services`, which installs it", err)
	}
	install := exec.Command(installDB, append([]string{"--no-defaults", "--datadir=" + data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"}, user...)...)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	addr := secFreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	secStart(t, addr, filepath.Join(dir, "mariadb.log"), "mariadbd", append([]string{
		"--no-defaults", "--datadir=" + data, "--socket=" + sock, "--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
		"--bind-address=127.0.0.1", "--port=" + port, "--skip-name-resolve",
		"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M",
		"--ssl-ca=" + ca, "--ssl-cert=" + cert, "--ssl-key=" + key, "--require-secure-transport=ON",
	}, user...)...)

	const pass = "mysql-Secret-2b6e44"
	db, err := sql.Open("mysql", "root@unix("+sock+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	for _, q := range []string{
		"CREATE DATABASE eddy",
		"CREATE USER 'eddy'@'127.0.0.1' IDENTIFIED BY '" + pass + "'",
		"GRANT ALL ON eddy.* TO 'eddy'@'127.0.0.1'",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("as root over %s: %v", sock, err)
		}
	}

	dsn := "eddy:" + pass + "@tcp(" + addr + ")/eddy?parseTime=true&clientFoundRows=true"
	for _, c := range []struct {
		name, tls string
		want      string // in the error; "" for success
	}{
		{"tls with the CA", fmt.Sprintf(`{ca_file: %q}`, ca), ""},
		// MariaDB refuses a plain connection under
		// require_secure_transport as it refuses a wrong password (error
		// 1045): the same DSN works with TLS, so TLS is what differs.
		{"no tls", `{enabled: false}`, "Error 1045"},
		{"another CA", fmt.Sprintf(`{ca_file: %q}`, otherCA), "certificate signed by unknown authority"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("EDDY_TEST_SINGLESTORE_DSN", dsn)
			err := secStoreRoundTrip(t, fmt.Sprintf(
				`{backend: singlestore, singlestore: {dialect: mysql, dsn: "${EDDY_TEST_SINGLESTORE_DSN}", tls: %s}}`, c.tls))
			secCheck(t, err, c.want, pass)
		})
	}
}
