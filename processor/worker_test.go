package processor

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// TestSaramaConfig checks that the pipeline's kafka settings reach the
// client: group session timeout and heartbeat, strategy, start position,
// static membership, and the producer's idempotence.
func TestSaramaConfig(t *testing.T) {
	p, err := pipeline.Parse("w.yaml", []byte(`
name: w
kafka: {brokers: [k:9092], session_timeout: 45s, balance: cooperative-sticky, version: 3.6.0}
source: {topics: [in], start: latest}
sink: {topic: out}
`))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(p, WithStore(memory.New()), WithInstanceID("pod-1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := w.saramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"session timeout", cfg.Consumer.Group.Session.Timeout, 45 * time.Second},
		{"heartbeat", cfg.Consumer.Group.Heartbeat.Interval, 15 * time.Second},
		{"strategy", cfg.Consumer.Group.Rebalance.GroupStrategies[0].Name(), sarama.CooperativeStickyBalanceStrategyName},
		{"start", cfg.Consumer.Offsets.Initial, sarama.OffsetNewest},
		{"auto commit", cfg.Consumer.Offsets.AutoCommit.Enable, false},
		{"instance id", cfg.Consumer.Group.InstanceId, "pod-1"},
		{"idempotent producer", cfg.Producer.Idempotent, true},
		{"acks", cfg.Producer.RequiredAcks, sarama.WaitForAll},
		{"isolation", cfg.Consumer.IsolationLevel, sarama.ReadCommitted},
		{"version", cfg.Version, sarama.V3_6_0_0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
