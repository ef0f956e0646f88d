package secure

import (
	"testing"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// Topic creates a topic with a unique name and the given number of
// partitions through a secure listener (brokers, with cfg: e.g. from
// kafkaconf.New), waits until every partition has a leader, and deletes
// it when the test ends. Making topics through the listener under test
// keeps a test on one broker even where the PLAINTEXT one is elsewhere
// (testenv's containers).
func Topic(t testing.TB, brokers []string, cfg *sarama.Config, partitions int32) string {
	t.Helper()
	return testenv.TopicWith(t, brokers, cfg, partitions)
}
