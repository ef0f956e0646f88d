package processor

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/codec"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// The schema registry's formats in the runtime, on an embedded broker and
// srfake (an in-memory registry): a pipeline reads Avro and writes Avro,
// a record no schema reads is a dead letter, and a registry that does
// not answer pauses the partition (no dead letter, no output) until it
// does. integration/schema_test.go runs the same on real Kafka with a
// real registry.

const codecOrder = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"qty","type":"long"}]}`

func TestRegistryFormatsInTheRuntime(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	fake := srfake.New()
	defer fake.Close()
	reg, err := codec.New(codec.Config{URL: fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	schemaFile := filepath.Join(t.TempDir(), "out.json")
	if err := os.WriteFile(schemaFile, []byte(`{"type":"object"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Parse("codec.yaml", []byte(fmt.Sprintf(`
name: codec
kafka: {brokers: [%s]}
schema_registry: {url: %q}
source: {topics: [in], format: avro, event_id: event.id}
flush: {max_messages: 10, interval: 20ms}
dead_letter: {topic: dlq}
steps:
  - map: {id: event.id, double: event.qty * 2}
sink: {topic: out, format: json_schema, schema: {file: %q}}
`, brokers[0], fake.URL(), schemaFile)))
	if err != nil {
		t.Fatal(err)
	}
	var outs atomic.Int64
	w, err := New(p, WithStore(memory.New()), WithLogger(zaptest.NewLogger(t)), WithFetchWait(10*time.Millisecond),
		WithOutputHook(func(*Record) { outs.Add(1) }), WithUnreadyAfter(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewEncoder(reg, codec.EncoderConfig{Format: codec.Avro, Schema: codecOrder, Register: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod, err := sarama.NewSyncProducer(brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	send := func(value []byte) {
		t.Helper()
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "in", Value: sarama.ByteEncoder(value)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		b, err := enc.Encode(ctx, "in", map[string]any{"id": fmt.Sprint(i), "qty": int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		send(b)
	}
	send([]byte(`{"id":"plain json"}`))

	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("Run ended waiting for %s: %v", what, err)
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	wait("three outputs and a dead letter", func() bool { return outs.Load() == 3 && w.Stats().Poison == 1 })

	// The registry stops answering (503) before a record of a schema the
	// worker has not fetched yet: the partition pauses, and says so.
	var refused atomic.Int64
	fake.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
		refused.Add(1)
		http.Error(rw, `{"error_code":50003,"message":"down for the test"}`, http.StatusServiceUnavailable)
		return true
	})
	enc2, err := codec.NewEncoder(reg, codec.EncoderConfig{Format: codec.Avro, Subject: "in-value"})
	if err != nil {
		t.Fatal(err)
	}
	v2 := `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"qty","type":"long"},{"name":"note","type":["null","string"],"default":null}]}`
	fake.ClearInterceptors()
	if _, _, err := fake.RegisterSchema("in-value", srSchema(v2)); err != nil {
		t.Fatal(err)
	}
	b, err := enc2.Encode(ctx, "in", map[string]any{"id": "3", "qty": int64(3), "note": "new version"})
	if err != nil {
		t.Fatal(err)
	}
	fake.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
		refused.Add(1)
		http.Error(rw, `{"error_code":50003,"message":"down for the test"}`, http.StatusServiceUnavailable)
		return true
	})
	send(b)
	wait("the partition paused on the registry", func() bool {
		if n := w.Stats().Poison; n > 1 {
			t.Fatalf("%d poison events while the registry does not answer, want 1 (the plain JSON)", n)
		}
		h := w.Health(ctx)
		return refused.Load() > 1 && !h.Ready && strings.Contains(strings.Join(h.Reasons, "; "), "schema registry failing")
	})
	if outs.Load() != 3 || w.Stats().Poison != 1 {
		t.Fatalf("while paused: %d outputs, %d poison; want 3 and 1", outs.Load(), w.Stats().Poison)
	}
	fake.ClearInterceptors()
	wait("the fourth output once the registry answers", func() bool { return outs.Load() == 4 })
	if w.Stats().Poison != 1 {
		t.Fatalf("%d poison events after the outage, want 1", w.Stats().Poison)
	}
	cancel()
	<-done

	// What the sink wrote: JSON Schema in the wire format, each event's
	// qty doubled, the new version's record too.
	cons, err := sarama.NewConsumer(brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition("out", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dec, err := codec.NewDecoder(reg, codec.JSONSchema)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		m := <-pc.Messages()
		ev, err := dec.Decode(context.Background(), m.Value)
		if err != nil {
			t.Fatalf("output %d: %v", i, err)
		}
		if ev["id"] != fmt.Sprint(i) || ev["double"] != int64(2*i) {
			t.Errorf("output %d: %v, want id %d and double %d", i, ev, i, 2*i)
		}
	}
}

func srSchema(avro string) sr.Schema { return sr.Schema{Schema: avro, Type: sr.TypeAvro} }
