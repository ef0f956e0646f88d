package codec

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

const everyKind = `syntax = "proto3";
package t;
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
message All {
  enum E { ZERO = 0; ONE = 1; TWO = 2; }
  message Sub { string s = 1; int32 i = 2; repeated int64 l = 3; Sub next = 4; }
  bool b = 1; int32 i32 = 2; int64 i64 = 3; uint32 u32 = 4; uint64 u64 = 5;
  sint32 s32 = 6; sint64 s64 = 7; fixed32 f32 = 8; fixed64 f64 = 9;
  sfixed32 sf32 = 10; sfixed64 sf64 = 11; float fl = 12; double d = 13;
  string s = 14; bytes by = 15; E e = 16; Sub sub = 17;
  repeated int32 ri = 18; repeated string rs = 19; repeated Sub rsub = 20;
  repeated E re = 21; repeated double rd = 22;
  map<string, int64> ms = 23; map<int32, Sub> mi = 24; map<bool, string> mb = 25;
  google.protobuf.Timestamp ts = 26; google.protobuf.Duration du = 27;
  google.protobuf.Int64Value w64 = 28; google.protobuf.StringValue ws = 29;
  optional string os = 30;
  oneof choice { string c1 = 31; Sub c2 = 32; int64 c3 = 33; }
}`

// TestReadProtoMatchesDynamicpb is the differential test of readProto:
// random messages of every kind of field, marshalled by the protobuf
// library, read by readProto and by dynamicpb (then fromProto), must give
// the same events. Also for messages written field by field twice (a
// singular message merged, the last scalar winning) and with unknown
// fields.
func TestReadProtoMatchesDynamicpb(t *testing.T) {
	fd, err := compileProto(context.Background(), everyKind, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().ByName("All")
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		m := dynamicpb.NewMessage(md)
		fill(rnd, m, 0)
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			// Written twice: Protobuf merges.
			m2 := dynamicpb.NewMessage(md)
			fill(rnd, m2, 0)
			b2, _ := proto.Marshal(m2)
			b = append(b, b2...)
		}
		if i%5 == 0 {
			b = append(b, 0xf8, 0x07, 0x05) // field 127, varint 5: unknown
		}
		ref := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b, ref); err != nil {
			t.Fatal(err)
		}
		want := fromProto(ref)
		got, err := readProto(md, b)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			for k := range want {
				if !reflect.DeepEqual(got[k], want[k]) {
					t.Errorf("message %d field %s: got %#v, want %#v", i, k, got[k], want[k])
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("message %d: field %s = %#v not in dynamicpb's", i, k, got[k])
				}
			}
			t.FailNow()
		}
	}
	// Truncated input is an error, not a partial event.
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().ByName("s"), protoreflect.ValueOfString("hello"))
	b, _ := proto.Marshal(m)
	if _, err := readProto(md, b[:len(b)-2]); err == nil {
		t.Error("a truncated message decoded")
	}
}

// fill sets random fields of m (each with probability 1/2).
func fill(rnd *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if rnd.IntN(2) == 0 || fd.Kind() == protoreflect.MessageKind && depth > 2 {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range rnd.IntN(4) {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					fill(rnd, e.Message(), depth+1)
					l.Append(e)
				} else {
					l.Append(randScalar(rnd, fd))
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range rnd.IntN(3) {
				k := randScalar(rnd, fd.MapKey()).MapKey()
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					v := mp.NewValue()
					fill(rnd, v.Message(), depth+1)
					mp.Set(k, v)
				} else {
					mp.Set(k, randScalar(rnd, fd.MapValue()))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			v := m.NewField(fd)
			switch fd.Message().FullName() {
			case "google.protobuf.Timestamp", "google.protobuf.Duration":
				sf := fd.Message().Fields()
				v.Message().Set(sf.ByName("seconds"), protoreflect.ValueOfInt64(rnd.Int64N(1e10)))
				v.Message().Set(sf.ByName("nanos"), protoreflect.ValueOfInt32(rnd.Int32N(1e9)))
			default:
				fill(rnd, v.Message(), depth+1)
			}
			m.Set(fd, v)
		default:
			m.Set(fd, randScalar(rnd, fd))
		}
	}
}

func randScalar(rnd *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rnd.IntN(2) == 0)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(rnd.Uint32()))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(rnd.Uint64()))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(rnd.Uint32())
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(rnd.Uint64())
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(rnd.NormFloat64() * 1e3))
	case protoreflect.DoubleKind:
		if rnd.IntN(10) == 0 {
			return protoreflect.ValueOfFloat64(math.Inf(1))
		}
		return protoreflect.ValueOfFloat64(rnd.NormFloat64() * 1e6)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString([]string{"", "a", "héllo", "日本"}[rnd.IntN(4)])
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{byte(rnd.IntN(256)), 0, 1}[:rnd.IntN(4)])
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(rnd.IntN(4))) // 3: unknown to the enum
	}
	panic(fd.Kind())
}
