package kafkaconf

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/eddy-streams/eddy/internal/tlsconf"
	"github.com/eddy-streams/eddy/pipeline"
)

// New returns a new sarama configuration for a pipeline's kafka section:
// the protocol version (kafka.version, default pipeline.DefaultKafkaVersion;
// at least 2.1.0), the client id (kafka.client_id, default "eddy"), SASL
// (kafka.sasl) and TLS (kafka.tls). Everything else keeps sarama's
// defaults: the caller adds its consumer, producer or admin settings.
//
// The result holds the SASL password: never log or print it (%v and %+v
// would show it). Errors name the field at fault ("kafka.sasl.mechanism:
// ...", "kafka.tls.ca_file: ...") and never contain the password.
//
// Each call returns a new *sarama.Config the caller owns; k is only read.
func New(k *pipeline.KafkaConfig) (*sarama.Config, error) {
	if k == nil {
		return nil, errors.New("kafka: no configuration")
	}
	cfg := sarama.NewConfig()

	version := k.Version
	if version == "" {
		version = pipeline.DefaultKafkaVersion
	}
	v, err := pipeline.ParseKafkaVersion(version)
	if err != nil {
		return nil, fmt.Errorf("kafka.version: %w", err)
	}
	cfg.Version = v

	cfg.ClientID = k.ClientID
	if cfg.ClientID == "" {
		cfg.ClientID = pipeline.DefaultClientID
	}

	tc, err := tlsconf.Build("kafka.tls", k.TLS)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = tc
	}

	if err := setSASL(cfg, k.SASL); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return cfg, nil
}

// setSASL configures SASL authentication, if s is not nil.
func setSASL(cfg *sarama.Config, s *pipeline.SASLConfig) error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.Username == "" {
		errs = append(errs, errors.New("kafka.sasl.username: required"))
	}
	if s.Password == "" {
		errs = append(errs, errors.New("kafka.sasl.password: required"))
	}
	sc := &cfg.Net.SASL
	switch s.Mechanism {
	case pipeline.SASLPlain, "":
		sc.Mechanism = sarama.SASLTypePlaintext
	case pipeline.SASLScramSHA256:
		sc.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.SCRAMClientGeneratorFunc = scramGenerator(scram.SHA256)
	case pipeline.SASLScramSHA512:
		sc.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.SCRAMClientGeneratorFunc = scramGenerator(scram.SHA512)
	default:
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: unknown mechanism %q (want %s, %s or %s)",
			s.Mechanism, pipeline.SASLPlain, pipeline.SASLScramSHA256, pipeline.SASLScramSHA512))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	sc.Enable = true
	// Handshake v1 (Kafka 1.0+) authenticates with SaslAuthenticate
	// requests, so a refused login comes back as an error that says so
	// ("SASL Authentication failed: ...") instead of a closed connection.
	sc.Version = sarama.SASLHandshakeV1
	sc.Handshake = true
	sc.User = s.Username
	sc.Password = s.Password
	return nil
}
