package processor

import (
	"testing"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/route"
)

// TestRoutedPlacesAsRoute: the producer's partitioner puts a record where
// package route says, reading the eddy-id header when the policy or a
// missing key needs it, and a keyed record routed by hash costs no
// allocation.
func TestRoutedPlacesAsRoute(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	msg := func(key string) *sarama.ProducerMessage {
		m := &sarama.ProducerMessage{Headers: []sarama.RecordHeader{{Key: []byte("other"), Value: []byte("x")}, {Key: idHeaderBytes, Value: []byte(id)}}}
		if key != "" {
			k := sarama.ByteEncoder(key)
			m.Key = &k
		}
		return m
	}
	for _, policy := range []route.Policy{route.Hash, route.ConsistentHash, route.RoundRobin} {
		pl, err := route.NewPlacer(policy)
		if err != nil {
			t.Fatal(err)
		}
		r := routed{pl, policy == route.RoundRobin}
		for _, key := range []string{"user-7", ""} {
			got, err := r.Partition(msg(key), 12)
			var k []byte
			if key != "" {
				k = []byte(key)
			}
			if want := pl.Route(nil, k, id, 12)[0]; err != nil || got != want {
				t.Errorf("%s, key %q: partition %d (%v), route says %d", policy, key, got, err, want)
			}
		}
	}
	if _, err := route.NewPlacer(route.Multicast); err == nil {
		t.Error("multicast has a Placer")
	}
	hash, _ := route.NewPlacer(route.Hash)
	r, m := routed{hash, false}, msg("user-7")
	if n := testing.AllocsPerRun(100, func() { _, _ = r.Partition(m, 12) }); n != 0 {
		t.Errorf("placing a keyed record by hash: %.0f allocations, want 0", n)
	}
}
