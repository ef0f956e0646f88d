package codec

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Unit tests of the conversions and error paths, against srfake (an
// in-memory registry). The wire format against a real registry and
// Confluent's own serializers is proved in integration/schema_test.go.

const orderAvro = `{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"qty","type":"int"},
 {"name":"ratio","type":"float"},
 {"name":"price","type":"double"},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"either","type":["null","string","long"],"default":null},
 {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"tod","type":{"type":"int","logicalType":"time-millis"}},
 {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
 {"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","BLUE"]}},
 {"name":"tag","type":{"type":"fixed","name":"Tag","size":2}},
 {"name":"blob","type":"bytes"},
 {"name":"items","type":{"type":"array","items":"string"}},
 {"name":"counts","type":{"type":"map","values":"long"}},
 {"name":"ship","type":["null",{"type":"record","name":"Ship","fields":[{"name":"city","type":"string"}]}],"default":null},
 {"name":"paid","type":"boolean","default":false}
]}`

func newRegistry(t testing.TB) (*srfake.Registry, *Registry) {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	reg, err := New(Config{URL: fake.URL(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return fake, reg
}

func roundTrip(t *testing.T, reg *Registry, cfg EncoderConfig, topic string, ev map[string]any) map[string]any {
	t.Helper()
	ctx := context.Background()
	enc, err := NewEncoder(reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := enc.Encode(ctx, topic, ev)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if b[0] != 0 {
		t.Fatalf("magic byte %d, want 0", b[0])
	}
	dec, err := NewDecoder(reg, cfg.Format)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dec.Decode(ctx, b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return got
}

func TestAvroRoundTripGivesTheValueModel(t *testing.T) {
	_, reg := newRegistry(t)
	at := time.UnixMilli(1700000000123).UTC()
	in := map[string]any{
		"id": int64(7), "qty": int64(3), "ratio": 1.1, "price": 9.99,
		"note": "gift", "either": int64(42),
		"at": at, "day": "2024-02-29", "tod": 90 * time.Minute,
		"amount": 12.345, "color": "BLUE", "tag": []byte{1, 2}, "blob": []byte("raw"),
		"items": []any{"a", "b"}, "counts": map[string]any{"x": int64(1)},
		"ship": map[string]any{"city": "Oslo"},
	}
	got := roundTrip(t, reg, EncoderConfig{Format: Avro, Schema: orderAvro, Register: true}, "orders", in)
	want := map[string]any{
		"id": int64(7), "qty": int64(3), "ratio": 1.1, "price": 9.99,
		"note": "gift", "either": int64(42),
		"at": at, "day": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "tod": 90 * time.Minute,
		"amount": 12.35, // rounded half away from zero to the scale
		"color":  "BLUE", "tag": []byte{1, 2}, "blob": []byte("raw"),
		"items": []any{"a", "b"}, "counts": map[string]any{"x": int64(1)},
		"ship": map[string]any{"city": "Oslo"}, // the union unwrapped
		"paid": false,                          // the default
	}
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s: got %#v (%T), want %#v (%T)", k, got[k], got[k], want[k], want[k])
			}
		}
		t.Fatalf("got %v", got)
	}
	// Nulls in the unions, a string in the three-way one.
	in["note"], in["ship"], in["either"] = nil, nil, "s"
	got = roundTrip(t, reg, EncoderConfig{Format: Avro, Schema: orderAvro, Register: true}, "orders", in)
	if got["note"] != nil || got["ship"] != nil || got["either"] != "s" {
		t.Fatalf("note %v ship %v either %v, want nil nil s", got["note"], got["ship"], got["either"])
	}
}

func TestAvroEncodeErrorsNameTheField(t *testing.T) {
	_, reg := newRegistry(t)
	enc, err := NewEncoder(reg, EncoderConfig{Format: Avro, Schema: orderAvro, Register: true})
	if err != nil {
		t.Fatal(err)
	}
	base := func() map[string]any {
		return map[string]any{
			"id": int64(1), "qty": int64(1), "ratio": 1.0, "price": 1.0, "at": time.Now(), "day": time.Now(),
			"tod": time.Second, "amount": 1.0, "color": "RED", "tag": []byte{0, 0}, "blob": []byte{},
			"items": []any{}, "counts": map[string]any{},
		}
	}
	for _, c := range []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"missing", func(m map[string]any) { delete(m, "id") }, `field "id": missing`},
		{"type", func(m map[string]any) { m["qty"] = "three" }, `field "qty": a string, want an int`},
		{"range", func(m map[string]any) { m["qty"] = int64(math.MaxInt32) + 1 }, `field "qty"`},
		{"enum", func(m map[string]any) { m["color"] = "GREEN" }, `"GREEN" is not a symbol of enum shop.Color`},
		{"nested", func(m map[string]any) { m["ship"] = map[string]any{"city": int64(1)} }, `field "ship"`},
		{"item", func(m map[string]any) { m["items"] = []any{"a", int64(2)} }, `field "items[1]"`},
		{"fixed", func(m map[string]any) { m["tag"] = []byte{1} }, `want 2 bytes`},
	} {
		ev := base()
		c.edit(ev)
		_, err := enc.Encode(context.Background(), "orders", ev)
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) || ce.Subject != "orders-value" || ce.SchemaID == 0 {
			t.Errorf("%s: %v, want an *Error with the subject, the ID and %q", c.name, err, c.want)
		}
	}
}

const orderProto = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message Envelope { string kind = 1; }

message Order {
  enum Status { NEW = 0; PAID = 1; }
  message Line { string sku = 1; int32 qty = 2; }
  int64 id = 1;
  string user = 2;
  double price = 3;
  float ratio = 4;
  uint64 big = 5;
  Status status = 6;
  repeated Line lines = 7;
  map<string, int64> counts = 8;
  google.protobuf.Timestamp at = 9;
  google.protobuf.StringValue coupon = 10;
  optional string note = 11;
  bytes blob = 12;
  Line first = 13;
}
`

func TestProtobufRoundTripGivesTheValueModel(t *testing.T) {
	_, reg := newRegistry(t)
	at := time.Unix(1700000000, 123000000).UTC()
	in := map[string]any{
		"id": int64(7), "user": "ann", "price": 9.5, "ratio": 1.1, "big": uint64(math.MaxUint64),
		"status": "PAID", "lines": []any{map[string]any{"sku": "a", "qty": int64(2)}},
		"counts": map[string]any{"x": int64(3)}, "at": at, "coupon": "SAVE",
		"blob": []byte{1},
	}
	got := roundTrip(t, reg, EncoderConfig{Format: Protobuf, Schema: orderProto, Register: true, Message: "shop.Order"}, "orders", in)
	want := map[string]any{
		"id": int64(7), "user": "ann", "price": 9.5, "ratio": 1.1, "big": uint64(math.MaxUint64),
		"status": "PAID", "lines": []any{map[string]any{"sku": "a", "qty": int64(2)}},
		"counts": map[string]any{"x": int64(3)}, "at": at, "coupon": "SAVE",
		"blob": []byte{1},
		// note (optional) and first (a message) are unset: absent.
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
	// Unset implicit-presence fields read as their defaults.
	got = roundTrip(t, reg, EncoderConfig{Format: Protobuf, Schema: orderProto, Register: true, Message: "Order"}, "orders2", map[string]any{"id": int64(1)})
	if got["user"] != "" || got["price"] != 0.0 || got["status"] != "NEW" {
		t.Fatalf("defaults: %v", got)
	}
	// A nested message's index: Order.Line is [1, 1].
	got = roundTrip(t, reg, EncoderConfig{Format: Protobuf, Schema: orderProto, Register: true, Message: "shop.Order.Line"}, "lines", map[string]any{"sku": "z", "qty": int64(5)})
	if !reflect.DeepEqual(got, map[string]any{"sku": "z", "qty": int64(5)}) {
		t.Fatalf("nested message: %v", got)
	}
}

func TestMessageIndexes(t *testing.T) {
	fd, err := compileProto(context.Background(), orderProto, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		index []int
		name  string
	}{{nil, "shop.Envelope"}, {[]int{0}, "shop.Envelope"}, {[]int{1}, "shop.Order"}, {[]int{1, 0}, "shop.Order.Line"}} {
		md, err := messageAt(fd, c.index)
		if err != nil || string(md.FullName()) != c.name {
			t.Errorf("messageAt(%v) = %v, %v; want %s", c.index, md, err, c.name)
			continue
		}
		if c.index != nil && !reflect.DeepEqual(messageIndex(md), c.index) {
			t.Errorf("messageIndex(%s) = %v, want %v", c.name, messageIndex(md), c.index)
		}
	}
	if _, err := messageAt(fd, []int{5}); err == nil {
		t.Error("messageAt([5]) found a message")
	}
}

func TestJSONSchemaRoundTrip(t *testing.T) {
	_, reg := newRegistry(t)
	in := map[string]any{"id": int64(1), "price": 2.5, "tags": []any{"a"}}
	got := roundTrip(t, reg, EncoderConfig{Format: JSONSchema, Schema: `{"type":"object"}`, Register: true}, "t", in)
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("got %v, want %v", got, in)
	}
}

func TestDecodeErrors(t *testing.T) {
	fake, reg := newRegistry(t)
	ctx := context.Background()
	fake.SeedSchema("p-value", 1, 5, sr.Schema{Schema: orderProto, Type: sr.TypeProtobuf})
	fake.SeedSchema("a-value", 1, 6, sr.Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}`})
	dec, _ := NewDecoder(reg, Avro)
	for _, c := range []struct {
		name  string
		value []byte
		id    int
		want  string
	}{
		{"plain json", []byte(`{"a":1}`), 0, "not in the Confluent wire format"},
		{"short", []byte{0, 0, 0}, 0, "not in the Confluent wire format"},
		{"unknown id", []byte{0, 0, 0, 0, 99, 2}, 99, "unknown to the registry"},
		{"other type", []byte{0, 0, 0, 0, 5, 0}, 5, "is a PROTOBUF schema; the pipeline reads avro"},
		{"truncated", []byte{0, 0, 0, 0, 6}, 6, "decode avro"},
	} {
		_, err := dec.Decode(ctx, c.value)
		var ce *Error
		if !errors.As(err, &ce) || ce.SchemaID != c.id || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v, want an *Error with schema id %d and %q", c.name, err, c.id, c.want)
		}
	}
	// The registry gone: unavailable (the caller pauses), not the
	// record's fault; a schema cached before is still served.
	if _, err := dec.Decode(ctx, []byte{0, 0, 0, 0, 6, 4}); err != nil {
		t.Fatal(err)
	}
	fake.Close()
	_, err := dec.Decode(ctx, []byte{0, 0, 0, 0, 7, 4})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("registry closed: %v, want ErrUnavailable", err)
	}
	if got, err := dec.Decode(ctx, []byte{0, 0, 0, 0, 6, 4}); err != nil || got["n"] != int64(2) {
		t.Fatalf("cached schema: %v, %v", got, err)
	}
}

func TestEncoderRegistration(t *testing.T) {
	fake, reg := newRegistry(t)
	ctx := context.Background()
	v1 := `{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}`
	fake.SeedSchema("r-value", 1, 1, sr.Schema{Schema: v1})
	// (The registry's refusal of an incompatible schema is tested on a
	// real registry: srfake does not check Avro compatibility.)
	bad := `{"type":"record","name":"R","fields":[{"name":"n","type":"long"},{"name":"m","type":"long"}]}`
	// Not registered, register off.
	enc, _ := NewEncoder(reg, EncoderConfig{Format: Avro, Schema: bad})
	if err := enc.Prepare(ctx, "r"); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("lookup of an unregistered schema: %v", err)
	}
	// No schema: the subject's latest.
	enc, _ = NewEncoder(reg, EncoderConfig{Format: Avro})
	b, err := enc.Encode(ctx, "r", map[string]any{"n": int64(3)})
	if err != nil || len(b) < 5 || b[4] != 1 {
		t.Fatalf("latest: % x, %v", b, err)
	}
	// Record name strategy.
	enc, _ = NewEncoder(reg, EncoderConfig{Format: Avro, Schema: orderAvro, Strategy: TopicRecordName, Register: true})
	if s, _ := enc.Subject("orders"); s != "orders-shop.Order" {
		t.Fatalf("topic_record_name subject %q", s)
	}
}
