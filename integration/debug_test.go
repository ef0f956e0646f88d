package integration_test

import (
	"log"
	"os"

	"github.com/IBM/sarama"
)

// SARAMA_DEBUG=1 go test ./integration/ prints sarama's own log (requests,
// retries, rebalances) next to eddy's.
func init() {
	if os.Getenv("SARAMA_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
}
