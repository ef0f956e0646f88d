// Command probe waits until a Kafka cluster answers a real metadata request.
//
// `make services` (scripts/services.sh) runs it after starting the broker:
// an open TCP port is not enough, since a KRaft broker accepts connections
// before its controller has elected itself and registered the broker.
//
// # Usage
//
//	go run ./integration/kafka/probe -brokers 127.0.0.1:9092 -timeout 90s
//
// It retries until the metadata response lists at least one broker and a
// controller, then prints one line and exits 0. It exits 1 when the timeout
// passes first, printing the last error.
package main
