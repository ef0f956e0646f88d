package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/kafka/secure"
	"github.com/eddy-streams/eddy/internal/kafkaconf"
	"github.com/eddy-streams/eddy/pipeline"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
	timeout := flag.Duration("timeout", 90*time.Second, "how long to wait for an answer")
	saslBrokers := flag.String("sasl-brokers", "", "also log in on this SASL_SSL listener with each mechanism's test user (needs -tls-dir)")
	sslBrokers := flag.String("ssl-brokers", "", "also connect to this SSL listener with the test client certificate (needs -tls-dir)")
	tlsDir := flag.String("tls-dir", "", "directory of the test certificates (integration/kafka/tlsgen)")
	flag.Parse()
	if (*saslBrokers != "" || *sslBrokers != "") && *tlsDir == "" {
		fmt.Fprintln(os.Stderr, "probe: -sasl-brokers and -ssl-brokers need -tls-dir")
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	checks := []check{{"kafka", *brokers, plainConfig}}
	if *saslBrokers != "" {
		for _, m := range []pipeline.SASLMechanism{pipeline.SASLPlain, pipeline.SASLScramSHA256, pipeline.SASLScramSHA512} {
			user, pass := secure.User(m)
			checks = append(checks, check{"SASL_SSL " + string(m) + " as " + user, *saslBrokers,
				secureConfig(&pipeline.KafkaConfig{
					SASL: &pipeline.SASLConfig{Mechanism: m, Username: user, Password: pass},
					TLS:  &pipeline.TLSConfig{Enabled: true, CAFile: filepath.Join(*tlsDir, secure.CAFileName)},
				})})
		}
	}
	if *sslBrokers != "" {
		checks = append(checks, check{"SSL with a client certificate", *sslBrokers,
			secureConfig(&pipeline.KafkaConfig{TLS: &pipeline.TLSConfig{Enabled: true,
				CAFile:   filepath.Join(*tlsDir, secure.CAFileName),
				CertFile: filepath.Join(*tlsDir, secure.ClientCertFileName),
				KeyFile:  filepath.Join(*tlsDir, secure.ClientKeyFileName),
			}})})
	}
	for _, c := range checks {
		msg, err := wait(ctx, c)
		if err != nil {
			fmt.Fprintf(os.Stderr, "probe: %s at %s did not answer within %s: %v\n", c.name, c.brokers, *timeout, err)
			os.Exit(1)
		}
		fmt.Println(msg)
	}
}

// check is one listener to probe, with the client configuration to use.
type check struct {
	name    string
	brokers string
	config  func() (*sarama.Config, error)
}

func plainConfig() (*sarama.Config, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	return cfg, nil
}

func secureConfig(k *pipeline.KafkaConfig) func() (*sarama.Config, error) {
	k.Version = "3.6.0"
	return func() (*sarama.Config, error) { return kafkaconf.New(k) }
}

// wait retries probe until it succeeds or ctx ends.
func wait(ctx context.Context, c check) (string, error) {
	var last error
	for {
		msg, err := probe(c)
		if err == nil {
			return msg, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return "", last
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// probe sends one metadata request and checks that it names a broker and a
// controller.
func probe(c check) (string, error) {
	cfg, err := c.config()
	if err != nil {
		return "", err
	}
	cfg.ClientID = "eddy-probe"
	cfg.Net.DialTimeout = 2 * time.Second
	cfg.Net.ReadTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 0
	cfg.Metadata.Full = false
	brokers := strings.Split(c.brokers, ",")
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = client.Close() }()
	if err := client.RefreshMetadata(); err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	if len(client.Brokers()) == 0 {
		return "", errors.New("metadata lists no broker")
	}
	ctrl, err := client.Controller()
	if err != nil {
		return "", fmt.Errorf("controller: %w", err)
	}
	return fmt.Sprintf("%s answers at %s: %d broker(s), controller %d at %s",
		c.name, c.brokers, len(client.Brokers()), ctrl.ID(), ctrl.Addr()), nil
}
