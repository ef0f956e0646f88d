// Package secure describes the secure listeners of the test broker that
// `make services` starts, and makes the throw-away certificates they use.
//
// # The listeners
//
// Beside PLAINTEXT on 127.0.0.1:9092, scripts/services.sh starts the broker
// with two more listeners:
//
//   - SASL_SSL on 127.0.0.1:9094 (EDDY_KAFKA_SASL_PORT): TLS, then SASL
//     PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, one user per mechanism
//     ([PlainUser], [Scram256User], [Scram512User]);
//   - SSL on 127.0.0.1:9095 (EDDY_KAFKA_SSL_PORT): TLS with a required
//     client certificate issued by the test CA ([ClientCertFileName]).
//
// The broker's keystore and truststore are PEM files (Kafka 2.7+:
// ssl.keystore.type=PEM), written by [WriteFiles] through
// integration/kafka/tlsgen when the broker starts, to
// $EDDY_SERVICES_DIR/kafka/tls ([TLSDir]). Tests trust [CAFileName] there.
//
// # Finding them from tests
//
// [SASLBrokers], [SSLBrokers] and [File] fail the test (never skip it)
// with the command to run when a listener or a file is missing. Set
// EDDY_KAFKA_SASL_BROKERS, EDDY_KAFKA_SSL_BROKERS and EDDY_KAFKA_TLS_DIR
// to use other listeners.
//
// # Concurrency
//
// Everything here may be called from parallel tests; an [Authority] is
// read-only once made.
package secure
