package secure

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/pipeline"
)

// Where the secure listeners of `make services` are. They are on the same
// broker as the PLAINTEXT listener (127.0.0.1:9092), so a topic made there
// is seen here.
const (
	// DefaultSASLBroker is the SASL_SSL listener: TLS with the test CA,
	// then SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	DefaultSASLBroker = "127.0.0.1:9094"
	// DefaultSSLBroker is the SSL listener: TLS with a client certificate
	// issued by the test CA (ssl.client.auth=required), no SASL.
	DefaultSSLBroker = "127.0.0.1:9095"
	// DefaultServicesDir is scripts/services.sh's state directory.
	DefaultServicesDir = "/tmp/eddy-services"
)

// Environment variables that point the tests at other secure listeners.
const (
	EnvSASLBrokers = "EDDY_KAFKA_SASL_BROKERS" // host:port list of the SASL_SSL listener
	EnvSSLBrokers  = "EDDY_KAFKA_SSL_BROKERS"  // host:port list of the SSL listener
	EnvTLSDir      = "EDDY_KAFKA_TLS_DIR"      // the directory WriteFiles wrote
	EnvServicesDir = "EDDY_SERVICES_DIR"       // scripts/services.sh's state directory
)

// The SASL users of the SASL_SSL listener: one per mechanism, each known
// to that mechanism only. scripts/services.sh creates the SCRAM users with
// `StorageTool format --add-scram` and integration/kafka/server.properties
// declares the PLAIN user in the listener's JAAS config; keep the three in
// step (the services probe logs in with these and fails `make services`
// when they do not match). Test credentials, on loopback only.
const (
	PlainUser        = "eddy_plain"
	PlainPassword    = "plain-Secret-4f1c9a"
	Scram256User     = "eddy_scram256"
	Scram256Password = "scram256-Secret-8b27d3"
	Scram512User     = "eddy_scram512"
	Scram512Password = "scram512-Secret-e05c6f"
)

// User returns the user name and password of the listener's user for
// mechanism m (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), or empty strings
// for another mechanism.
func User(m pipeline.SASLMechanism) (name, password string) {
	switch m {
	case pipeline.SASLPlain:
		return PlainUser, PlainPassword
	case pipeline.SASLScramSHA256:
		return Scram256User, Scram256Password
	case pipeline.SASLScramSHA512:
		return Scram512User, Scram512Password
	}
	return "", ""
}

// TLSDir returns the directory of the broker's certificates: $EDDY_KAFKA_TLS_DIR,
// else $EDDY_SERVICES_DIR/kafka/tls, else /tmp/eddy-services/kafka/tls.
func TLSDir() string {
	if d := os.Getenv(EnvTLSDir); d != "" {
		return d
	}
	d := os.Getenv(EnvServicesDir)
	if d == "" {
		d = DefaultServicesDir
	}
	return filepath.Join(d, "kafka", "tls")
}

const hint = "run `make services` (a broker started by an older services.sh has no secure listeners: " +
	"`make services-down && make services`)"

// SASLBrokers returns the SASL_SSL listener's addresses
// ($EDDY_KAFKA_SASL_BROKERS, else DefaultSASLBroker) and fails t when the
// first does not accept TCP connections.
func SASLBrokers(t testing.TB) []string {
	t.Helper()
	return brokers(t, EnvSASLBrokers, DefaultSASLBroker, "SASL_SSL")
}

// SSLBrokers returns the SSL listener's addresses ($EDDY_KAFKA_SSL_BROKERS,
// else DefaultSSLBroker) and fails t when the first does not accept TCP
// connections.
func SSLBrokers(t testing.TB) []string {
	t.Helper()
	return brokers(t, EnvSSLBrokers, DefaultSSLBroker, "SSL")
}

func brokers(t testing.TB, env, def, listener string) []string {
	t.Helper()
	list := []string{def}
	if v := os.Getenv(env); v != "" {
		list = strings.Split(v, ",")
	}
	c, err := net.DialTimeout("tcp", list[0], 2*time.Second)
	if err != nil {
		t.Fatalf("the test broker's %s listener is not reachable at %s (%v): %s, or set %s",
			listener, list[0], err, hint, env)
	}
	_ = c.Close()
	return list
}

// File returns the path of one of the files WriteFiles wrote (e.g.
// CAFileName) in TLSDir, and fails t when it does not exist.
func File(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(TLSDir(), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the test broker's certificates are missing (%v): %s, or set %s", err, hint, EnvTLSDir)
	}
	return p
}
