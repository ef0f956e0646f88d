// Command probe waits until a Kafka cluster answers a real metadata request.
//
// `make services` (scripts/services.sh) runs it after starting the broker:
// an open TCP port is not enough, since a KRaft broker accepts connections
// before its controller has elected itself and registered the broker.
//
// # Usage
//
//	go run ./integration/kafka/probe -brokers 127.0.0.1:9092 -timeout 90s
//	go run ./integration/kafka/probe -brokers 127.0.0.1:9092 \
//	    -sasl-brokers 127.0.0.1:9094 -ssl-brokers 127.0.0.1:9095 \
//	    -tls-dir /tmp/eddy-services/kafka/tls
//
// It retries until the metadata response lists at least one broker and a
// controller, then prints one line and exits 0. It exits 1 when the timeout
// passes first, printing the last error.
//
// With -sasl-brokers it also logs in on the SASL_SSL listener as each
// mechanism's test user (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; see package
// integration/kafka/secure) trusting the CA in -tls-dir; with -ssl-brokers
// it connects to the SSL listener with the test client certificate. So a
// broker whose users or certificates do not match the tests' fails
// `make services`, not the tests.
package main
