// Package kafkaconf builds the base sarama configuration of a pipeline's
// kafka section: protocol version, client id, SASL and TLS — everything
// that is about reaching and authenticating to the brokers, nothing about
// consuming or producing. The runtime (processor), the offsets tooling and
// test clients start from it and add their own tuning:
//
//	cfg, err := kafkaconf.New(&p.Spec.Kafka)
//	if err != nil {
//		return err // names the field: "kafka.sasl.mechanism: ..."
//	}
//	cfg.Consumer.Offsets.AutoCommit.Enable = false
//
// # SASL
//
// kafka.sasl.mechanism selects PLAIN (the default), SCRAM-SHA-256 or
// SCRAM-SHA-512. SCRAM runs on github.com/xdg-go/scram (one conversation
// per broker connection, SASLprep-normalised credentials), the way
// sarama's own examples do. The handshake is SaslHandshake v1 with
// SaslAuthenticate, so a refused login fails with sarama's
// ErrSASLAuthenticationFailed ("SASL Authentication failed: ...") rather
// than a dropped connection. PLAIN sends the password as it is: use it
// with TLS only (SASL_SSL), never on a SASL_PLAINTEXT listener outside a
// test.
//
// # TLS
//
// kafka.tls goes through internal/tlsconf: TLS 1.2 or later, the CA bundle
// of ca_file (default: the system roots), an optional client certificate
// (cert_file and key_file, for brokers with ssl.client.auth=required),
// server_name, and insecure_skip_verify for tests. Without server_name,
// sarama verifies each broker's certificate against the host of the
// address it dials (the bootstrap address, then the advertised ones).
//
// # Secrets
//
// The returned *sarama.Config carries the password in Net.SASL.Password:
// it must never be logged or printed. Errors from New name fields, never
// values of secrets. eddy never sets sarama's package-level Logger (it
// discards by default); when a program does, sarama 1.61's SASL log lines
// name brokers and errors, not credentials.
//
// # Concurrency
//
// New may be called from any goroutine; each call returns a new
// configuration owned by the caller.
package kafkaconf
