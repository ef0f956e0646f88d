// Package tlsconf builds a *tls.Config from a pipeline file's tls block
// (kafka.tls, state.redis.tls, state.singlestore.tls), so that every
// connection eddy makes is configured the same way.
//
// # What a block sets
//
//   - TLS 1.2 or later;
//   - ca_file: the PEM bundle the server is verified against (default: the
//     system roots);
//   - cert_file and key_file: a client certificate, for servers that
//     require one (Kafka's ssl.client.auth=required, Redis's
//     tls-auth-clients, MySQL's REQUIRE X509);
//   - server_name: the name the server's certificate must carry (default:
//     the host the client dials, as each client library fills it in);
//   - insecure_skip_verify: no verification at all, for tests only.
//
// A block that is absent or has enabled: false means no TLS.
//
// # Errors
//
// Errors name the field ("kafka.tls.ca_file: open /etc/eddy/ca.pem: no
// such file or directory") and wrap the cause with %w.
package tlsconf
