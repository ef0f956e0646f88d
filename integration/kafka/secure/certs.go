package secure

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certLifetime is how long the certificates made here are valid: long
// enough for a services directory that stays up for weeks, short enough
// to be obviously throw-away.
const certLifetime = 90 * 24 * time.Hour

// Authority is a throw-away certificate authority that issues server and
// client certificates for tests. It is safe for concurrent use.
type Authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// NewAuthority makes a self-signed CA (ECDSA P-256) named cn.
func NewAuthority(cn string) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	tmpl, err := template(cn)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca certificate %q: %w", cn, err)
	}
	return &Authority{cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der)}, nil
}

// LoadAuthority reads a CA written by [WriteFiles] (ca.pem and ca-key.pem
// in dir), to issue more certificates under it.
func LoadAuthority(dir string) (*Authority, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CAFileName), filepath.Join(dir, CAKeyFileName))
	if err != nil {
		return nil, fmt.Errorf("load ca from %s: %w", dir, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("load ca from %s: key of type %T cannot sign", dir, pair.PrivateKey)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("load ca from %s: %w", dir, err)
	}
	return &Authority{cert: cert, key: signer, certPEM: pemBlock("CERTIFICATE", pair.Certificate[0])}, nil
}

// CertPEM returns the CA's certificate, PEM-encoded.
func (a *Authority) CertPEM() []byte { return a.certPEM }

// KeyPEM returns the CA's private key, PEM-encoded (PKCS #8).
func (a *Authority) KeyPEM() ([]byte, error) { return keyPEM(a.key) }

// Issue makes a certificate signed by a, for a server when hosts is not
// empty (hosts are IP addresses or DNS names, put in the subject
// alternative names) and for a client otherwise. It returns the
// certificate and its private key (PKCS #8, unencrypted), PEM-encoded.
func (a *Authority) Issue(cn string, hosts ...string) (certPEM, keyPEMBytes []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("key of %q: %w", cn, err)
	}
	tmpl, err := template(cn)
	if err != nil {
		return nil, nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if len(hosts) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate of %q: %w", cn, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("key of %q: %w", cn, err)
	}
	return pemBlock("CERTIFICATE", der), kp, nil
}

// Names of the files [WriteFiles] writes.
const (
	CAFileName         = "ca.pem"              // the CA certificate: clients trust it
	CAKeyFileName      = "ca-key.pem"          // the CA key, to issue more certificates
	KeystoreFileName   = "server-keystore.pem" // the broker's key and chain, Kafka's PEM keystore
	ServerCertFileName = "server.pem"          // the broker's certificate and the CA's
	ServerKeyFileName  = "server-key.pem"      // the broker's key
	ClientCertFileName = "client.pem"          // a client certificate for the SSL listener
	ClientKeyFileName  = "client-key.pem"      // its key
)

// WriteFiles makes a fresh CA, a server certificate for 127.0.0.1, ::1
// and localhost, and a client certificate (CN eddy-client), and writes
// them to dir (created if needed) under the *FileName names: PEM files,
// keys unencrypted and readable by the owner only. Each file is written
// to a temporary name and renamed, so a reader never sees half a file.
func WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ca, err := NewAuthority("eddy test CA")
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	srvCert, srvKey, err := ca.Issue("eddy test broker", "127.0.0.1", "::1", "localhost")
	if err != nil {
		return err
	}
	cliCert, cliKey, err := ca.Issue("eddy-client")
	if err != nil {
		return err
	}
	chain := append(append([]byte{}, srvCert...), ca.CertPEM()...)
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CAKeyFileName, caKey, 0o600},
		{ServerKeyFileName, srvKey, 0o600},
		// Kafka's PEM keystore: the private key, then the certificate chain.
		{KeystoreFileName, append(append([]byte{}, srvKey...), chain...), 0o600},
		{ServerCertFileName, chain, 0o644},
		{ClientKeyFileName, cliKey, 0o600},
		{ClientCertFileName, cliCert, 0o644},
		{CAFileName, ca.CertPEM(), 0o644}, // last: its presence means the set is complete
	}
	for _, f := range files {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func template(cn string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"eddy tests"}},
		NotBefore:    now.Add(-time.Hour), // tolerate clock skew
		NotAfter:     now.Add(certLifetime),
	}, nil
}

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
