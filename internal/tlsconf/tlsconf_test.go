package tlsconf

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/integration/kafka/secure"
	"github.com/eddy-streams/eddy/pipeline"
)

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	if err := secure.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	file := func(name string) string { return filepath.Join(dir, name) }
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		c       *pipeline.TLSConfig
		nilConf bool
		certs   int
		err     string // in the error; "" for none
	}{
		{name: "no block", c: nil, nilConf: true},
		{name: "disabled", c: &pipeline.TLSConfig{Enabled: false, CAFile: "/nonexistent"}, nilConf: true},
		{name: "system roots", c: &pipeline.TLSConfig{Enabled: true}},
		{name: "ca and client certificate", c: &pipeline.TLSConfig{Enabled: true, CAFile: file(secure.CAFileName),
			CertFile: file(secure.ClientCertFileName), KeyFile: file(secure.ClientKeyFileName)}, certs: 1},
		{name: "missing ca file", c: &pipeline.TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"},
			err: "state.redis.tls.ca_file: open /nonexistent/ca.pem"},
		{name: "ca file without a certificate", c: &pipeline.TLSConfig{Enabled: true, CAFile: notPEM},
			err: "state.redis.tls.ca_file: " + notPEM + " holds no PEM certificate"},
		{name: "key of another certificate", c: &pipeline.TLSConfig{Enabled: true,
			CertFile: file(secure.ClientCertFileName), KeyFile: file(secure.ServerKeyFileName)},
			err: "state.redis.tls.cert_file/key_file: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Build("state.redis.tls", c.c)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v; want %q in it", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != c.nilConf {
				t.Fatalf("config = %v; want nil: %v", got, c.nilConf)
			}
			if got == nil {
				return
			}
			if got.MinVersion != tls.VersionTLS12 || len(got.Certificates) != c.certs || (c.c.CAFile != "") != (got.RootCAs != nil) {
				t.Errorf("min version %x, %d certificates, RootCAs set %v; want TLS 1.2, %d, %v",
					got.MinVersion, len(got.Certificates), got.RootCAs != nil, c.certs, c.c.CAFile != "")
			}
		})
	}
}
