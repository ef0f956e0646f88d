package integration_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eddy-streams/eddy/codec"
	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// Avro and Protobuf with a real schema registry (Apicurio's Confluent
// API, started by make services) on real Kafka.

const orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"string"},
 {"name":"user","type":"string"},
 {"name":"qty","type":"int"},
 {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
 {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"note","type":["null","string"],"default":null}
]}`

// orderV2 adds a field with a default: backward compatible.
const orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"string"},
 {"name":"user","type":"string"},
 {"name":"qty","type":"int"},
 {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
 {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"coupon","type":["null","string"],"default":null}
]}`

const lineAvro = `{"type":"record","name":"Line","namespace":"shop.out","fields":[
 {"name":"id","type":"string"},
 {"name":"user","type":"string"},
 {"name":"total","type":"double"},
 {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"coupon","type":["null","string"],"default":null}
]}`

const avroPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
schema_registry: {url: %q}
source:
  topics: [%s]
  format: avro
  event_id: event.id
  event_time: event.at
flush: {max_messages: 100, interval: 50ms}
dead_letter: {topic: %s}
steps:
  - map:
      id: event.id
      user: event.user
      total: event.price * double(event.qty)
      at: event.at
      note: event.note
      coupon: 'has(event.coupon) ? event.coupon : null'
sink:
  topic: %s
  format: avro
  schema: {file: %q}
`

func encoderFor(t *testing.T, reg *codec.Registry, schema string) *codec.Encoder {
	t.Helper()
	enc, err := codec.NewEncoder(reg, codec.EncoderConfig{Format: codec.Avro, Schema: schema, Register: true})
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestAvroInAvroOutWithEvolutionAndPoison reads Avro orders written under
// two versions of their schema (the second, compatible, registered
// mid-stream), writes Avro lines under a schema the worker registers, and
// sends the records no schema reads to the dead-letter topic naming why.
func TestAvroInAvroOutWithEvolutionAndPoison(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	url := testenv.RegistryURL(t)
	reg, err := codec.New(codec.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in, out, dlq := testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 1)
	base := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	const n1, n2 = 150, 100
	var msgs []*sarama.ProducerMessage
	want := map[string]map[string]any{}
	add := func(enc *codec.Encoder, i int, coupon bool) {
		id := fmt.Sprintf("o-%d", i)
		ev := map[string]any{"id": id, "user": fmt.Sprintf("u%d", i%7), "qty": int64(1 + i%4),
			"price": float64(100+i) / 100, "at": base.Add(time.Duration(i) * time.Second)}
		line := map[string]any{"id": id, "user": ev["user"], "total": ev["price"].(float64) * float64(ev["qty"].(int64)),
			"at": ev["at"], "note": nil, "coupon": nil}
		if i%5 == 0 {
			ev["note"], line["note"] = "gift", "gift"
		}
		if coupon {
			ev["coupon"], line["coupon"] = "SAVE", "SAVE"
		}
		b, err := enc.Encode(ctx, in, ev)
		if err != nil {
			t.Fatalf("encode %s: %v", id, err)
		}
		msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(ev["user"].(string)), Value: sarama.ByteEncoder(b)})
		want[id] = line
	}
	v1 := encoderFor(t, reg, orderV1)
	for i := range n1 {
		add(v1, i, false)
	}
	// The poison: not the wire format, and an ID no registry knows.
	msgs = append(msgs,
		&sarama.ProducerMessage{Key: sarama.StringEncoder("u0"), Value: sarama.StringEncoder(`{"id":"json"}`)},
		&sarama.ProducerMessage{Key: sarama.StringEncoder("u0"), Value: sarama.ByteEncoder([]byte{0, 0x7f, 0xff, 0xff, 0xf0, 2})})
	produce(t, brokers, in, msgs[:n1+2])
	msgs = msgs[n1+2:]

	dir := t.TempDir()
	schemaFile := filepath.Join(dir, "line.avsc")
	if err := os.WriteFile(schemaFile, []byte(lineAvro), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadPipeline(t, avroPipeline, testenv.Unique("avro"), url, in, dlq, out, schemaFile)
	w, stop := startWorker(t, "w", p, brokers, testenv.Group(t), memory.New())
	waitFor(t, 60*time.Second, "the first version's orders", func() bool { return w.Stats().Out >= n1 })

	// Mid-stream, a new compatible version of the input's schema.
	v2 := encoderFor(t, reg, orderV2)
	for i := n1; i < n1+n2; i++ {
		add(v2, i, i%2 == 0)
	}
	produce(t, brokers, in, msgs)
	waitFor(t, 60*time.Second, "every order", func() bool { return w.Stats().Out >= n1+n2 })
	stop()

	dec, err := codec.NewDecoder(reg, codec.Avro)
	if err != nil {
		t.Fatal(err)
	}
	got := testenv.ReadCommitted(t, brokers, out, 30*time.Second)
	if len(got) != n1+n2 {
		t.Fatalf("%d outputs, want %d", len(got), n1+n2)
	}
	for _, m := range got {
		ev, err := dec.Decode(ctx, m.Value)
		if err != nil {
			t.Fatalf("output at %d/%d: %v", m.Partition, m.Offset, err)
		}
		id, _ := ev["id"].(string)
		w, ok := want[id]
		if !ok {
			t.Fatalf("output %v: no such order", ev)
		}
		delete(want, id)
		for k, wv := range w {
			gv := ev[k]
			if tm, ok := wv.(time.Time); ok {
				if gt, ok := gv.(time.Time); !ok || !gt.Equal(tm) {
					t.Errorf("%s.%s = %v, want %v", id, k, gv, wv)
				}
				continue
			}
			if f, ok := wv.(float64); ok {
				if g, ok := gv.(float64); !ok || g-f > 1e-9 || f-g > 1e-9 {
					t.Errorf("%s.%s = %v, want %v", id, k, gv, wv)
				}
				continue
			}
			if gv != wv {
				t.Errorf("%s.%s = %#v, want %#v", id, k, gv, wv)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("%d orders without an output", len(want))
	}
	// The output subject was registered by the worker.
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := cl.SchemaByVersion(ctx, out+"-value", -1)
	if err != nil || !strings.Contains(ss.Schema.Schema, "Line") {
		t.Fatalf("subject %s-value: %v, %v", out, ss.Schema.Schema, err)
	}
	dead := testenv.ReadCommitted(t, brokers, dlq, 30*time.Second)
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dead))
	}
	for i, wantErr := range []string{"not in the Confluent wire format", "unknown to the registry"} {
		if e := header(dead[i], processor.HeaderError); !strings.Contains(e, wantErr) {
			t.Errorf("dead letter %d: error %q, want %q", i, e, wantErr)
		}
	}
	if e := header(dead[1], processor.HeaderError); !strings.Contains(e, "schema id 2147483632") {
		t.Errorf("dead letter 1: error %q does not name the schema id", e)
	}
}

// TestIncompatibleSinkSchemaFailsTheStartUp: a sink schema the registry
// refuses as incompatible with the subject's versions stops the worker at
// start-up, naming the subject, instead of poisoning every output.
func TestIncompatibleSinkSchemaFailsTheStartUp(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	url := testenv.RegistryURL(t)
	ctx := context.Background()
	in, out, dlq := testenv.Topic(t, brokers, 1), testenv.Topic(t, brokers, 1), testenv.Topic(t, brokers, 1)
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	subject := out + "-value"
	if _, err := cl.CreateSchema(ctx, subject, sr.Schema{Schema: `{"type":"record","name":"Line","namespace":"shop.out","fields":[{"name":"id","type":"long"}]}`}); err != nil {
		t.Fatal(err)
	}
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, subject); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	schemaFile := filepath.Join(t.TempDir(), "line.avsc")
	if err := os.WriteFile(schemaFile, []byte(lineAvro), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadPipeline(t, avroPipeline, testenv.Unique("avro"), url, in, dlq, out, schemaFile)
	w, err := processor.New(p, processor.WithStore(memory.New()), processor.WithBrokers(brokers...), processor.WithGroup(testenv.Group(t)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = w.Run(runCtx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "incompatible") || !strings.Contains(err.Error(), subject) {
		t.Fatalf("Run: %v, want a start-up error naming %s as incompatible", err, subject)
	}
}
