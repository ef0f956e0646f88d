package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/integration/kafka/secure"
	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/internal/kafkaconf"
	"github.com/eddy-streams/eddy/pipeline"
)

// The secrets of these tests: distinctive strings that must never appear
// in anything the worker prints. Each comes from the environment, as in a
// deployment (a Kubernetes Secret mapped to variables).
const (
	secretKafkaVar = "EDDY_SECRETS_KAFKA_PASSWORD"
	secretRedisVar = "EDDY_SECRETS_REDIS_PASSWORD"
	secretDSNVar   = "EDDY_SECRETS_SINGLESTORE_DSN"
	secretMySQLPw  = "mysqlPw-7e21b0c4"
	secretRedisPw  = "redisPw-93ad5f12"
	// secretRedisRealPw is the password the test's Redis wants.
	secretRedisRealPw = "redisRealPw-0c4e7a"
	// workerArgsVar makes the test binary act as the worker binary (see
	// TestMain): the arguments, one per line.
	workerArgsVar = "EDDY_SECRETS_WORKER_ARGS"
)

// TestMain lets a test run the worker as a separate process, the test
// binary itself standing in for it, to see everything the process writes
// to its stdout and stderr: also what libraries print through their own
// loggers rather than the worker's zap logger.
func TestMain(m *testing.M) {
	if args := os.Getenv(workerArgsVar); args != "" {
		os.Exit(run(strings.Split(args, "\n"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// secretsFile writes a pipeline file to a test directory and returns its
// path. kafka and state are YAML flow mappings.
func secretsFile(t *testing.T, brokers, in, out, kafka, state, extra string) string {
	t.Helper()
	src := fmt.Sprintf(`
name: secrets-test
kafka: {brokers: [%q], version: 3.6.0, %s}
source: {topics: [%s]}
state: %s
steps:
  - set: {n2: event.n * 2}
%s
sink: {topic: %s}
`, brokers, kafka, in, state, extra, out)
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noSecrets fails the test if any secret is in out.
func noSecrets(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s contains the secret %q:\n%s", what, s, out)
		}
	}
}

// runWorker runs the worker in-process with args and returns its exit
// code, stdout and stderr.
func runWorker(args ...string) (int, string, string) {
	var out, errs syncBuffer
	code := run(args, &out, &errs)
	return code, out.b.String(), errs.b.String()
}

// TestSecretsNeverPrinted runs `worker validate` and `worker run` with
// passwords and a DSN taken from the environment, on good files, on files
// with errors and against services that refuse the credentials or do not
// answer, and checks that no secret appears in their output: not in logs
// (at debug level), not in error messages.
func TestSecretsNeverPrinted(t *testing.T) {
	kafkaUser, kafkaPw := secure.User(pipeline.SASLScramSHA512)
	saslBrokers := secure.SASLBrokers(t)[0]
	ca := secure.File(t, secure.CAFileName)
	// A Redis of the test's own that wants a password other than the
	// pipeline's.
	redisAddr := testenv.PrivateRedis(t).Addr()
	rc := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	if err := rc.ConfigSet(context.Background(), "requirepass", secretRedisRealPw).Err(); err != nil {
		t.Fatal(err)
	}
	_ = rc.Close()
	mc, err := mysql.ParseDSN(testenv.MySQLServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	mysqlAddr := mc.Addr
	wrongKafkaPw := "wrong-" + kafkaPw
	secrets := []string{kafkaPw, wrongKafkaPw, secretRedisPw, secretRedisRealPw, secretMySQLPw}

	t.Setenv(secretKafkaVar, kafkaPw)
	t.Setenv(secretRedisVar, secretRedisPw)
	t.Setenv(secretDSNVar, "eddy:"+secretMySQLPw+"@tcp("+mysqlAddr+")/eddy")
	t.Setenv("EDDY_SECRETS_BAD_DSN", "eddy:"+secretMySQLPw+"@tcp("+mysqlAddr+"/eddy")

	sasl := fmt.Sprintf(`sasl: {mechanism: SCRAM-SHA-512, username: %s, password: "${%s}"}, tls: {ca_file: %q}`,
		kafkaUser, secretKafkaVar, ca)
	redisState := fmt.Sprintf(`{backend: redis, redis: {addrs: [%q], password: "${%s}"}}`, redisAddr, secretRedisVar)
	mysqlState := fmt.Sprintf(`{backend: singlestore, singlestore: {dialect: mysql, dsn: "${%s}"}}`, secretDSNVar)

	t.Run("validate", func(t *testing.T) {
		for _, c := range []struct {
			name string
			file string
			code int
			want string // in stdout+stderr
		}{
			{"good file, redis", secretsFile(t, saslBrokers, "in", "out", sasl, redisState, ""), 0, ": ok"},
			{"good file, singlestore", secretsFile(t, saslBrokers, "in", "out", sasl, mysqlState, ""), 0, ": ok"},
			{"errors next to the secrets", secretsFile(t, saslBrokers, "in", "out",
				fmt.Sprintf(`sasl: {mechanism: SCRAM-SHA-1, username: "", password: "${%s}"}, tls: {ca_file: %q, cert_file: /x.pem}`,
					secretKafkaVar, ca),
				fmt.Sprintf(`{backend: redis, redis: {addrs: [%q], password: "${%s}", db: -1}}`, redisAddr, secretRedisVar), ""),
				1, "kafka.sasl.mechanism"},
			{"malformed dsn", secretsFile(t, saslBrokers, "in", "out", sasl,
				`{backend: singlestore, singlestore: {dialect: mysql, dsn: "${EDDY_SECRETS_BAD_DSN}"}}`, ""),
				1, "state.singlestore.dsn"},
			{"a secret in an expression", secretsFile(t, saslBrokers, "in", "out", sasl, redisState,
				fmt.Sprintf(`  - filter: event.token == "${%s}" && evnt.n > 0`, secretRedisVar)),
				1, "evnt"},
		} {
			t.Run(c.name, func(t *testing.T) {
				code, stdout, stderr := runWorker("validate", "-c", c.file)
				if code != c.code {
					t.Errorf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", code, c.code, stdout, stderr)
				}
				if !strings.Contains(stdout+stderr, c.want) {
					t.Errorf("output lacks %q; stdout:\n%s\nstderr:\n%s", c.want, stdout, stderr)
				}
				noSecrets(t, "stdout", stdout, secrets...)
				noSecrets(t, "stderr", stderr, secrets...)
			})
		}
	})

	// Start-up failures: a store or a broker that refuses the
	// credentials, and a broker that does not answer.
	failing := []struct {
		name string
		file string
		want string // in stderr
	}{
		{"redis refuses the password", secretsFile(t, saslBrokers, "in", "out", sasl, redisState, ""), "WRONGPASS"},
		{"mysql refuses the password", secretsFile(t, saslBrokers, "in", "out", sasl, mysqlState, ""), "Access denied"},
		{"kafka refuses the password", secretsFile(t, saslBrokers, "in", "out",
			strings.Replace(sasl, secretKafkaVar, secretKafkaVar+"_WRONG", 1), `{backend: memory}`, ""), "SASL Authentication failed"},
		{"kafka does not answer", secretsFile(t, "127.0.0.1:1", "in", "out", sasl, `{backend: memory}`, ""), "connect to kafka"},
	}
	t.Setenv(secretKafkaVar+"_WRONG", wrongKafkaPw)
	t.Run("run fails", func(t *testing.T) {
		for _, c := range failing {
			t.Run(c.name, func(t *testing.T) {
				code, stdout, stderr := runWorker("run", "-c", c.file, "-log-level", "debug", "-http", "")
				if code != 1 || !strings.Contains(stderr, c.want) {
					t.Errorf("exit code %d, want 1 with %q in stderr; stdout:\n%s\nstderr:\n%s", code, c.want, stdout, stderr)
				}
				noSecrets(t, "stdout", stdout, secrets...)
				noSecrets(t, "stderr", stderr, secrets...)
			})
		}
	})

	// The same failures in a process of their own: what the process
	// writes, whoever writes it (go-redis, for one, prints dial errors
	// through its own logger to the process's stderr).
	t.Run("run fails, whole process", func(t *testing.T) {
		for _, c := range failing {
			t.Run(c.name, func(t *testing.T) {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), workerArgsVar+"="+strings.Join(
					[]string{"run", "-c", c.file, "-log-level", "debug", "-http", ""}, "\n"))
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), c.want) {
					t.Errorf("exit code %d (%v), want 1 with %q in stderr; stdout:\n%s\nstderr:\n%s",
						code, err, c.want, stdout.String(), stderr.String())
				}
				noSecrets(t, "stdout", stdout.String(), secrets...)
				noSecrets(t, "stderr", stderr.String(), secrets...)
			})
		}
	})

	// A worker that runs: SCRAM-SHA-512 over TLS, until SIGTERM.
	t.Run("run", func(t *testing.T) {
		// Topics and input go over the SASL_SSL listener too.
		cfg, err := kafkaconf.New(&pipeline.KafkaConfig{Version: "3.6.0",
			SASL: &pipeline.SASLConfig{Mechanism: pipeline.SASLScramSHA512, Username: kafkaUser, Password: kafkaPw},
			TLS:  &pipeline.TLSConfig{Enabled: true, CAFile: ca}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Producer.Return.Successes = true
		brokers := []string{saslBrokers}
		in, out := secure.Topic(t, brokers, cfg, 2), secure.Topic(t, brokers, cfg, 2)
		const n = 20
		produceEvents(t, brokers, cfg, in, n)
		file := secretsFile(t, saslBrokers, in, out, sasl, `{backend: memory}`, "")
		addr := testenv.FreeAddr(t)
		var stdout, errs syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run([]string{"run", "-c", file, "-log-level", "debug", "-http", addr}, &stdout, &errs)
		}()
		base := "http://" + addr
		deadline := time.Now().Add(60 * time.Second)
		for {
			if code, _ := get(t, base+PathReady); code == http.StatusOK {
				break
			}
			select {
			case code := <-done:
				t.Fatalf("worker run exited %d before it was ready:\n%s", code, errs.b.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("worker run was not ready within 60s:\n%s", errs.b.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Wait until every event went through, so that the claim,
		// flush and produce paths have logged what they log.
		for {
			_, body := get(t, base+PathMetrics)
			if metric(body, "eddy_events_out_total") >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("eddy_events_out_total did not reach %d within 60s:\n%s", n, errs.b.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		var pages strings.Builder
		for _, path := range []string{PathHealth, PathReady, PathMetrics} {
			_, body := get(t, base+path)
			pages.WriteString(body)
		}
		// run's signal.NotifyContext is registered: SIGTERM stops the
		// worker, not the test binary.
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("worker run exited %d after SIGTERM:\n%s", code, errs.b.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatal("worker run did not stop within 60s of SIGTERM")
		}
		logs := errs.b.String()
		if !strings.Contains(logs, "worker started") || !strings.Contains(logs, "worker stopped") {
			t.Errorf("the log lacks the worker's start and stop:\n%s", logs)
		}
		noSecrets(t, "stdout", stdout.b.String(), secrets...)
		noSecrets(t, "stderr", logs, secrets...)
		noSecrets(t, "the HTTP endpoints", pages.String(), secrets...)
	})
}

// produceEvents writes n events {"n": i} to topic through brokers with
// cfg.
func produceEvents(t *testing.T, brokers []string, cfg *sarama.Config, topic string, n int) {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	for i := range n {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i)),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"n": %d}`, i))})
		if err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}
