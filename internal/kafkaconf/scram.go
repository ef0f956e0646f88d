package kafkaconf

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// scramGenerator returns sarama's SCRAMClientGeneratorFunc for hash h:
// a new client, with its own conversation, per broker connection.
func scramGenerator(h scram.HashGeneratorFcn) func() sarama.SCRAMClient {
	return func() sarama.SCRAMClient { return &scramClient{hash: h} }
}

// scramClient is sarama's SCRAMClient on github.com/xdg-go/scram. sarama
// calls Begin, then Step until Done, on one goroutine per connection.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

// Begin prepares the conversation. The user name and password are
// normalised with SASLprep (RFC 5802), as Kafka's own clients do.
func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		// xdg-go/scram's errors name the user but never the password.
		return fmt.Errorf("scram: %w", err)
	}
	c.conv = client.NewConversation()
	return nil
}

// Step answers the server's challenge.
func (c *scramClient) Step(challenge string) (string, error) {
	if c.conv == nil {
		return "", errors.New("scram: Step before Begin")
	}
	resp, err := c.conv.Step(challenge)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	return resp, nil
}

// Done reports whether the conversation is over.
func (c *scramClient) Done() bool { return c.conv != nil && c.conv.Done() }
