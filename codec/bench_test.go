package codec

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/pipeline"
)

// BenchmarkDecode compares the cost per event of decoding the same order
// from JSON (pipeline.DecodeJSON, eddy's default) and from Avro and
// Protobuf in the Confluent wire format (schema cached: the registry is
// asked once per ID). Run: go test -bench Decode -benchmem ./codec/
func BenchmarkDecode(b *testing.B) {
	_, reg := newRegistry(b)
	ctx := context.Background()
	ev := map[string]any{"order_id": "o-123456", "user": "user-42", "store": "berlin", "qty": int64(3),
		"price": 19.99, "at": time.UnixMilli(1700000000123).UTC(), "coupon": "SPRING"}
	jsonValue, err := pipeline.EncodeJSON(ev)
	if err != nil {
		b.Fatal(err)
	}
	const avroSchema = `{"type":"record","name":"Order","fields":[{"name":"order_id","type":"string"},{"name":"user","type":"string"},
{"name":"store","type":"string"},{"name":"qty","type":"long"},{"name":"price","type":"double"},
{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"coupon","type":["null","string"],"default":null}]}`
	const protoSchema = `syntax = "proto3";
import "google/protobuf/timestamp.proto";
message Order { string order_id = 1; string user = 2; string store = 3; int64 qty = 4; double price = 5; google.protobuf.Timestamp at = 6; optional string coupon = 7; }`
	encoded := func(f Format, schema string) []byte {
		enc, err := NewEncoder(reg, EncoderConfig{Format: f, Schema: schema, Register: true})
		if err != nil {
			b.Fatal(err)
		}
		v, err := enc.Encode(ctx, "bench-"+string(f), ev)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	b.Run("json", func(b *testing.B) {
		b.SetBytes(int64(len(jsonValue)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pipeline.DecodeJSON(jsonValue); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		f      Format
		schema string
	}{{Avro, avroSchema}, {Protobuf, protoSchema}} {
		v := encoded(c.f, c.schema)
		dec, err := NewDecoder(reg, c.f)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dec.Decode(ctx, v); err != nil {
			b.Fatal(err)
		}
		b.Run(string(c.f), func(b *testing.B) {
			b.SetBytes(int64(len(v)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dec.Decode(ctx, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
