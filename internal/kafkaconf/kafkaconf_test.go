package kafkaconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eddy-streams/eddy/integration/kafka/secure"
	"github.com/eddy-streams/eddy/pipeline"
)

const secret = "s3cret-Value-for-kafkaconf-tests"

// pki is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written to a test directory.
type pki struct {
	ca                    *secure.Authority
	caFile                string
	server                tls.Certificate
	clientCert, clientKey string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := secure.NewAuthority("kafkaconf test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &pki{ca: ca, caFile: write(t, dir, "ca.pem", ca.CertPEM())}
	certPEM, keyPEM, err := ca.Issue("broker", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if p.server, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err = ca.Issue("client")
	if err != nil {
		t.Fatal(err)
	}
	p.clientCert, p.clientKey = write(t, dir, "client.pem", certPEM), write(t, dir, "client-key.pem", keyPEM)
	return p
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewDefaults(t *testing.T) {
	cfg, err := New(&pipeline.KafkaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := sarama.ParseKafkaVersion(pipeline.DefaultKafkaVersion); cfg.Version != want {
		t.Errorf("Version = %s, want %s", cfg.Version, want)
	}
	if cfg.ClientID != "eddy" {
		t.Errorf("ClientID = %q, want eddy", cfg.ClientID)
	}
	if cfg.Net.SASL.Enable || cfg.Net.TLS.Enable {
		t.Errorf("SASL.Enable = %v, TLS.Enable = %v; want both off without kafka.sasl and kafka.tls",
			cfg.Net.SASL.Enable, cfg.Net.TLS.Enable)
	}

	// A disabled tls block is no TLS.
	cfg, err = New(&pipeline.KafkaConfig{TLS: &pipeline.TLSConfig{Enabled: false, CAFile: "/nonexistent"}})
	if err != nil || cfg.Net.TLS.Enable {
		t.Errorf("tls.enabled=false: TLS.Enable = %v, err = %v; want off, nil", cfg != nil && cfg.Net.TLS.Enable, err)
	}
}

func TestNewSettings(t *testing.T) {
	p := newPKI(t)
	cfg, err := New(&pipeline.KafkaConfig{
		Version:  "3.9.0",
		ClientID: "orders-worker",
		SASL:     &pipeline.SASLConfig{Mechanism: pipeline.SASLScramSHA512, Username: "alice", Password: secret},
		TLS: &pipeline.TLSConfig{Enabled: true, CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey,
			ServerName: "kafka.internal"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Version != sarama.V3_9_0_0 || cfg.ClientID != "orders-worker" {
		t.Errorf("Version, ClientID = %s, %q; want 3.9.0, orders-worker", cfg.Version, cfg.ClientID)
	}
	s := cfg.Net.SASL
	if !s.Enable || s.Mechanism != sarama.SASLTypeSCRAMSHA512 || s.User != "alice" || s.Password != secret ||
		s.Version != sarama.SASLHandshakeV1 || !s.Handshake || s.SCRAMClientGeneratorFunc == nil {
		t.Errorf("SASL = enable %v, mechanism %s, user %q, handshake %v v%d, scram generator %v",
			s.Enable, s.Mechanism, s.User, s.Handshake, s.Version, s.SCRAMClientGeneratorFunc != nil)
	}
	tc := cfg.Net.TLS
	if !tc.Enable || tc.Config == nil {
		t.Fatalf("TLS not enabled: %+v", tc.Enable)
	}
	if tc.Config.ServerName != "kafka.internal" || tc.Config.MinVersion != tls.VersionTLS12 || len(tc.Config.Certificates) != 1 {
		t.Errorf("TLS: server name %q, min version %x, %d client certificates; want kafka.internal, TLS 1.2, 1",
			tc.Config.ServerName, tc.Config.MinVersion, len(tc.Config.Certificates))
	}
	ca, _ := x509.ParseCertificate(mustDER(t, p.ca.CertPEM()))
	if _, err := ca.Verify(x509.VerifyOptions{Roots: tc.Config.RootCAs}); err != nil {
		t.Errorf("RootCAs do not hold ca_file's CA: %v", err)
	}

	// Each mechanism gets its sarama name; only SCRAM needs a client.
	for _, c := range []struct {
		mech  pipeline.SASLMechanism
		want  sarama.SASLMechanism
		scram bool
	}{
		{"", sarama.SASLTypePlaintext, false},
		{pipeline.SASLPlain, sarama.SASLTypePlaintext, false},
		{pipeline.SASLScramSHA256, sarama.SASLTypeSCRAMSHA256, true},
		{pipeline.SASLScramSHA512, sarama.SASLTypeSCRAMSHA512, true},
	} {
		name := string(c.mech)
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			cfg, err := New(&pipeline.KafkaConfig{SASL: &pipeline.SASLConfig{Mechanism: c.mech, Username: "u", Password: secret}})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Net.SASL.Mechanism != c.want || (cfg.Net.SASL.SCRAMClientGeneratorFunc != nil) != c.scram {
				t.Errorf("mechanism %s, scram generator %v; want %s, %v", cfg.Net.SASL.Mechanism,
					cfg.Net.SASL.SCRAMClientGeneratorFunc != nil, c.want, c.scram)
			}
			if c.scram {
				a, b := cfg.Net.SASL.SCRAMClientGeneratorFunc(), cfg.Net.SASL.SCRAMClientGeneratorFunc()
				if a == b {
					t.Error("the SCRAM generator returned the same client twice: connections would share a conversation")
				}
			}
		})
	}
}

func mustDER(t *testing.T, pemBytes []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

func TestNewErrors(t *testing.T) {
	p := newPKI(t)
	notPEM := write(t, t.TempDir(), "notpem.txt", []byte("hello"))
	sasl := func(m pipeline.SASLMechanism, user, pass string) *pipeline.KafkaConfig {
		return &pipeline.KafkaConfig{SASL: &pipeline.SASLConfig{Mechanism: m, Username: user, Password: pass}}
	}
	tlsc := func(c pipeline.TLSConfig) *pipeline.KafkaConfig {
		c.Enabled = true
		return &pipeline.KafkaConfig{SASL: &pipeline.SASLConfig{Username: "u", Password: secret}, TLS: &c}
	}
	for _, c := range []struct {
		name string
		k    *pipeline.KafkaConfig
		want []string
	}{
		{"nil", nil, []string{"no configuration"}},
		{"bad version", &pipeline.KafkaConfig{Version: "three"}, []string{"kafka.version", `"three"`}},
		{"old version", &pipeline.KafkaConfig{Version: "2.0.0"}, []string{"kafka.version", "2.1.0"}},
		{"unknown mechanism", sasl("GSSAPI", "u", secret), []string{"kafka.sasl.mechanism", `"GSSAPI"`, "SCRAM-SHA-512"}},
		{"no username", sasl(pipeline.SASLScramSHA256, "", secret), []string{"kafka.sasl.username: required"}},
		{"no password", sasl(pipeline.SASLPlain, "u", ""), []string{"kafka.sasl.password: required"}},
		{"all sasl errors at once", sasl("OAUTH", "", ""), []string{"kafka.sasl.username", "kafka.sasl.password", "kafka.sasl.mechanism"}},
		{"missing ca file", tlsc(pipeline.TLSConfig{CAFile: "/nonexistent/ca.pem"}), []string{"kafka.tls.ca_file", "/nonexistent/ca.pem"}},
		{"ca file without PEM", tlsc(pipeline.TLSConfig{CAFile: notPEM}), []string{"kafka.tls.ca_file", "no PEM certificate"}},
		{"cert without key", tlsc(pipeline.TLSConfig{CertFile: p.clientCert}), []string{"kafka.tls.cert_file/key_file"}},
		{"key does not match", tlsc(pipeline.TLSConfig{CertFile: p.clientCert, KeyFile: p.caFile}), []string{"kafka.tls.cert_file/key_file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := New(c.k)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", cfg != nil)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// broker starts an in-process Kafka-protocol broker (kfake) with TLS and,
// if users is not empty, SASL with those users (mechanism, user, password
// triples).
func broker(t *testing.T, p *pki, clientAuth tls.ClientAuthType, users ...[3]string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca.CertPEM())
	opts := []kfake.Opt{
		kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: clientAuth, ClientCAs: pool,
			MinVersion: tls.VersionTLS12}),
	}
	if len(users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range users {
			opts = append(opts, kfake.Superuser(u[0], u[1], u[2]))
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// roundTrip produces one record to topic t and reads it back.
func roundTrip(addr string, cfg *sarama.Config) error {
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 0
	cfg.Producer.Return.Successes = true
	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = client.Close() }()
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return err
	}
	defer func() { _ = prod.Close() }()
	part, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "t", Value: sarama.StringEncoder("hello")})
	if err != nil {
		return err
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer func() { _ = cons.Close() }()
	pc, err := cons.ConsumePartition("t", part, off)
	if err != nil {
		return err
	}
	defer func() { _ = pc.Close() }()
	select {
	case m := <-pc.Messages():
		if string(m.Value) != "hello" {
			return errors.New("read back " + string(m.Value))
		}
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("record not read back within 10s")
	}
}

// TestSASLOverTLS connects with each mechanism over TLS to a broker that
// knows one user per mechanism: the right password produces and
// consumes; a wrong one, or the right password with another mechanism,
// fails, and the error does not contain the password. (kfake drops the
// connection of a refused login, so the error is sarama's "run out of
// available brokers"; against Apache Kafka it is
// ErrSASLAuthenticationFailed, see integration/security_test.go.)
func TestSASLOverTLS(t *testing.T) {
	p := newPKI(t)
	addr := broker(t, p, tls.NoClientCert,
		[3]string{"PLAIN", "plain-user", secret + "-plain"},
		[3]string{"SCRAM-SHA-256", "scram256-user", secret + "-256"},
		[3]string{"SCRAM-SHA-512", "scram512-user", secret + "-512"},
	)
	for _, c := range []struct {
		mech       pipeline.SASLMechanism
		user, pass string
	}{
		{pipeline.SASLPlain, "plain-user", secret + "-plain"},
		{pipeline.SASLScramSHA256, "scram256-user", secret + "-256"},
		{pipeline.SASLScramSHA512, "scram512-user", secret + "-512"},
	} {
		k := func(m pipeline.SASLMechanism, pass string) *pipeline.KafkaConfig {
			return &pipeline.KafkaConfig{Version: "3.6.0",
				SASL: &pipeline.SASLConfig{Mechanism: m, Username: c.user, Password: pass},
				TLS:  &pipeline.TLSConfig{Enabled: true, CAFile: p.caFile}}
		}
		t.Run(string(c.mech), func(t *testing.T) {
			cfg, err := New(k(c.mech, c.pass))
			if err != nil {
				t.Fatal(err)
			}
			if err := roundTrip(addr, cfg); err != nil {
				t.Fatalf("round trip with the right password: %v", err)
			}
			wrong := "wrong-" + c.pass
			cfg, err = New(k(c.mech, wrong))
			if err != nil {
				t.Fatal(err)
			}
			err = roundTrip(addr, cfg)
			if err == nil {
				t.Error("wrong password: round trip succeeded")
			} else if strings.Contains(err.Error(), wrong) {
				t.Errorf("error contains the password: %v", err)
			}
			other := pipeline.SASLScramSHA512
			if c.mech == other {
				other = pipeline.SASLScramSHA256
			}
			cfg, err = New(k(other, c.pass))
			if err != nil {
				t.Fatal(err)
			}
			if err := roundTrip(addr, cfg); err == nil {
				t.Errorf("mechanism %s for a %s user: round trip succeeded", other, c.mech)
			}
		})
	}
}

// TestTLSVerification: the CA of ca_file verifies the broker, a client
// certificate satisfies a broker that requires one, and both checks fail
// when the file is the wrong one.
func TestTLSVerification(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // an unrelated CA
	plainAddr := broker(t, p, tls.NoClientCert)
	mtlsAddr := broker(t, p, tls.RequireAndVerifyClientCert)
	for _, c := range []struct {
		name string
		addr string
		tls  pipeline.TLSConfig
		want string // in the error; "" for success
	}{
		{"ca_file verifies the broker", plainAddr, pipeline.TLSConfig{CAFile: p.caFile}, ""},
		{"another CA is refused", plainAddr, pipeline.TLSConfig{CAFile: other.caFile}, "certificate signed by unknown authority"},
		{"system roots do not know the test CA", plainAddr, pipeline.TLSConfig{}, "certificate signed by unknown authority"},
		{"insecure_skip_verify accepts any", plainAddr, pipeline.TLSConfig{InsecureSkipVerify: true}, ""},
		{"server_name must match the certificate", plainAddr, pipeline.TLSConfig{CAFile: p.caFile, ServerName: "kafka.example"}, "wanted to match kafka.example"},
		{"client certificate accepted", mtlsAddr, pipeline.TLSConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}, ""},
		{"no client certificate refused", mtlsAddr, pipeline.TLSConfig{CAFile: p.caFile}, "certificate required"},
		{"client certificate of another CA refused", mtlsAddr, pipeline.TLSConfig{CAFile: p.caFile, CertFile: other.clientCert, KeyFile: other.clientKey}, "unknown certificate authority"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.tls.Enabled = true
			cfg, err := New(&pipeline.KafkaConfig{Version: "3.6.0", TLS: &c.tls})
			if err != nil {
				t.Fatal(err)
			}
			err = roundTrip(c.addr, cfg)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("round trip failed: %v", err)
			case c.want != "" && err == nil:
				t.Errorf("round trip succeeded; want an error with %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Errorf("err = %v; want %q in it", err, c.want)
			}
		})
	}
}
