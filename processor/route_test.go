package processor

import (
	"fmt"
	"slices"
	"testing"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/route"
	"github.com/eddy-streams/eddy/statedb/memory"
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

// TestPartitionerChoosesByTopic: the producer's partitioner gives every
// topic the worker writes its configured router: the sink topics theirs,
// a late topic and the dead-letter topic their own, an internal topic and
// a multicast sink the manual one (the record carries its partition).
func TestPartitionerChoosesByTopic(t *testing.T) {
	p, err := pipeline.Parse("w.yaml", []byte(`
name: w
kafka: {brokers: [k:9092]}
source: {topics: [in]}
dead_letter: {topic: dl, router: consistent-hash}
steps:
  - aggregate:
      key: key
      window: {tumbling: 1m}
      values: {n: count()}
      late: {topic: late, router: round-robin}
  - repartition: {name: rp, key: event.n}
  - join:
      with: {topics: [other]}
      on: {left: key, right: key}
      within: 1m
      late: {topic: jlate, router: consistent-hash}
sink: {topics: [a, b], router: multicast}
`))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(p, WithStore(memory.New()))
	if err != nil {
		t.Fatal(err)
	}
	part := w.partitioner()
	// Places 40 records (keyed and keyless) as the topic's partitioner
	// does, and as policy would; "manual" keeps the partition set on the
	// record.
	places := func(pt sarama.Partitioner, policy route.Policy) []int32 {
		var out []int32
		for i := range 40 {
			m := &sarama.ProducerMessage{Partition: 99, Headers: []sarama.RecordHeader{{Key: idHeaderBytes, Value: []byte(fmt.Sprintf("id-%d", i))}}}
			var key []byte
			if i%4 != 0 {
				key = []byte(fmt.Sprintf("key-%d", i))
				k := sarama.ByteEncoder(key)
				m.Key = &k
			}
			if pt != nil {
				got, err := pt.Partition(m, 12)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, got)
			} else if policy == route.Multicast {
				out = append(out, 99)
			} else {
				pl, _ := route.NewPlacer(policy)
				out = append(out, pl.Place(key, fmt.Sprintf("id-%d", i), 12))
			}
		}
		return out
	}
	for topic, want := range map[string]route.Policy{
		"dl": route.ConsistentHash, "late": route.RoundRobin, "jlate": route.ConsistentHash, "a": route.Multicast, "b": route.Multicast,
		pipeline.InternalTopic("w", "rp"): route.Multicast, "elsewhere": route.Hash,
	} {
		if got, exp := places(part(topic), want), places(nil, want); !slices.Equal(got, exp) {
			t.Errorf("topic %s: placed at %v, %s places at %v", topic, got, want, exp)
		}
	}
}
