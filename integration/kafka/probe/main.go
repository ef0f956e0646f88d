package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
	timeout := flag.Duration("timeout", 90*time.Second, "how long to wait for an answer")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	msg, err := wait(ctx, strings.Split(*brokers, ","))
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: kafka at %s did not answer within %s: %v\n", *brokers, *timeout, err)
		os.Exit(1)
	}
	fmt.Println(msg)
}

// wait retries probe until it succeeds or ctx ends.
func wait(ctx context.Context, brokers []string) (string, error) {
	var last error
	for {
		msg, err := probe(brokers)
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
func probe(brokers []string) (string, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "eddy-probe"
	cfg.Net.DialTimeout = 2 * time.Second
	cfg.Net.ReadTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 0
	cfg.Metadata.Full = false
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
	return fmt.Sprintf("kafka answers at %s: %d broker(s), controller %d at %s",
		strings.Join(brokers, ","), len(client.Brokers()), ctrl.ID(), ctrl.Addr()), nil
}
