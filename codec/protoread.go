package codec

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// readProto decodes b, a message of md in the Protobuf wire format,
// straight into an event map: what fromProto gives for the same bytes
// unmarshalled into a dynamicpb message (TestReadProtoMatchesDynamicpb),
// in one pass and without building the message. Fields it does not know
// are skipped; a singular message field seen twice is merged, as Protobuf
// merges it; the last member of a oneof seen wins.
func readProto(md protoreflect.MessageDescriptor, b []byte) (map[string]any, error) {
	fields := md.Fields()
	out := make(map[string]any, fields.Len())
	var msgs map[protoreflect.FieldNumber][]byte // singular message fields, merged
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		if fd == nil {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		name := string(fd.Name())
		switch {
		case fd.IsMap():
			entry, n := protowire.ConsumeBytes(b)
			if n < 0 || typ != protowire.BytesType {
				return nil, wireErr(fd, n)
			}
			b = b[n:]
			k, v, err := readMapEntry(fd, entry)
			if err != nil {
				return nil, err
			}
			m, _ := out[name].(map[string]any)
			if m == nil {
				m = map[string]any{}
				out[name] = m
			}
			m[k] = v
		case fd.IsList():
			l, _ := out[name].([]any)
			if typ == protowire.BytesType && packable(fd.Kind()) {
				packed, n := protowire.ConsumeBytes(b)
				if n < 0 {
					return nil, wireErr(fd, n)
				}
				b = b[n:]
				for len(packed) > 0 {
					v, n, err := readScalar(fd, scalarWireType(fd.Kind()), packed)
					if err != nil {
						return nil, err
					}
					packed = packed[n:]
					l = append(l, v)
				}
			} else if fd.Kind() == protoreflect.MessageKind {
				mb, n := protowire.ConsumeBytes(b)
				if n < 0 || typ != protowire.BytesType {
					return nil, wireErr(fd, n)
				}
				b = b[n:]
				v, err := readMessage(fd.Message(), mb)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", fd.Name(), err)
				}
				l = append(l, v)
			} else {
				v, n, err := readScalar(fd, typ, b)
				if err != nil {
					return nil, err
				}
				b = b[n:]
				l = append(l, v)
			}
			out[name] = l
		case fd.Kind() == protoreflect.MessageKind:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || typ != protowire.BytesType {
				return nil, wireErr(fd, n)
			}
			b = b[n:]
			if msgs == nil {
				msgs = map[protoreflect.FieldNumber][]byte{}
			}
			msgs[num] = append(msgs[num], v...)
			out[name] = nil // placed; decoded below
			clearOneof(out, fd)
		default:
			v, n, err := readScalar(fd, typ, b)
			if err != nil {
				return nil, err
			}
			b = b[n:]
			out[name] = v
			clearOneof(out, fd)
		}
	}
	for num, mb := range msgs {
		fd := fields.ByNumber(num)
		if _, ok := out[string(fd.Name())]; !ok {
			continue // a later oneof member replaced it
		}
		v, err := readMessage(fd.Message(), mb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fd.Name(), err)
		}
		out[string(fd.Name())] = v
	}
	// What the wire leaves out: an empty list or map, a scalar without
	// presence at its default.
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := string(fd.Name())
		if _, ok := out[name]; ok {
			continue
		}
		switch {
		case fd.IsMap():
			out[name] = map[string]any{}
		case fd.IsList():
			out[name] = []any{}
		case !fd.HasPresence():
			out[name] = scalarFromProto(fd, fd.Default())
		}
	}
	return out, nil
}

// clearOneof removes the other members of fd's oneof: the last one set
// wins.
func clearOneof(out map[string]any, fd protoreflect.FieldDescriptor) {
	o := fd.ContainingOneof()
	if o == nil || o.IsSynthetic() {
		return
	}
	for i := range o.Fields().Len() {
		if f := o.Fields().Get(i); f != fd {
			delete(out, string(f.Name()))
		}
	}
}

// readMessage decodes a nested message; the well-known types become the
// values they stand for, as messageFromProto does.
func readMessage(md protoreflect.MessageDescriptor, b []byte) (any, error) {
	m, err := readProto(md, b)
	if err != nil {
		return nil, err
	}
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return time.Unix(m["seconds"].(int64), m["nanos"].(int64)).UTC(), nil
	case "google.protobuf.Duration":
		return time.Duration(m["seconds"].(int64))*time.Second + time.Duration(m["nanos"].(int64)), nil
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		return m["value"], nil
	}
	return m, nil
}

func readMapEntry(fd protoreflect.FieldDescriptor, b []byte) (string, any, error) {
	kd, vd := fd.MapKey(), fd.MapValue()
	var k, v any
	var vmsg []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1:
			x, n, err := readScalar(kd, typ, b)
			if err != nil {
				return "", nil, err
			}
			k, b = x, b[n:]
		case num == 2 && vd.Kind() == protoreflect.MessageKind:
			x, n := protowire.ConsumeBytes(b)
			if n < 0 || typ != protowire.BytesType {
				return "", nil, wireErr(vd, n)
			}
			vmsg, b = append(vmsg, x...), b[n:]
			v = nil
		case num == 2:
			x, n, err := readScalar(vd, typ, b)
			if err != nil {
				return "", nil, err
			}
			v, b = x, b[n:]
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", nil, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	if k == nil {
		k = scalarFromProto(kd, kd.Default())
	}
	switch {
	case vd.Kind() == protoreflect.MessageKind:
		x, err := readMessage(vd.Message(), vmsg)
		if err != nil {
			return "", nil, err
		}
		v = x
	case v == nil:
		v = scalarFromProto(vd, vd.Default())
	}
	return fmt.Sprint(k), v, nil
}

// readScalar reads one value of a non-message field of wire type typ
// from b: the value and the bytes read.
func readScalar(fd protoreflect.FieldDescriptor, typ protowire.Type, b []byte) (any, int, error) {
	kind := fd.Kind()
	if typ != scalarWireType(kind) {
		return nil, 0, fmt.Errorf("field %s (%s): wire type %d, want %d", fd.Name(), kind, typ, scalarWireType(kind))
	}
	switch typ {
	case protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, 0, wireErr(fd, n)
		}
		switch kind {
		case protoreflect.BoolKind:
			return v != 0, n, nil
		case protoreflect.Int32Kind:
			return int64(int32(v)), n, nil
		case protoreflect.Int64Kind:
			return int64(v), n, nil
		case protoreflect.Uint32Kind:
			return uint64(uint32(v)), n, nil
		case protoreflect.Uint64Kind:
			return v, n, nil
		case protoreflect.Sint32Kind:
			return int64(int32(protowire.DecodeZigZag(v & math.MaxUint32))), n, nil
		case protoreflect.Sint64Kind:
			return protowire.DecodeZigZag(v), n, nil
		case protoreflect.EnumKind:
			num := protoreflect.EnumNumber(int32(v))
			if ev := fd.Enum().Values().ByNumber(num); ev != nil {
				return string(ev.Name()), n, nil
			}
			return int64(num), n, nil
		}
	case protowire.Fixed32Type:
		v, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return nil, 0, wireErr(fd, n)
		}
		switch kind {
		case protoreflect.Fixed32Kind:
			return uint64(v), n, nil
		case protoreflect.Sfixed32Kind:
			return int64(int32(v)), n, nil
		case protoreflect.FloatKind:
			return float32Value(math.Float32frombits(v)), n, nil
		}
	case protowire.Fixed64Type:
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return nil, 0, wireErr(fd, n)
		}
		switch kind {
		case protoreflect.Fixed64Kind:
			return v, n, nil
		case protoreflect.Sfixed64Kind:
			return int64(v), n, nil
		case protoreflect.DoubleKind:
			return math.Float64frombits(v), n, nil
		}
	case protowire.BytesType:
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, 0, wireErr(fd, n)
		}
		if kind == protoreflect.StringKind {
			if fd.ParentFile() != nil && fd.ParentFile().Syntax() == protoreflect.Proto3 && !utf8.Valid(v) {
				return nil, 0, fmt.Errorf("field %s: invalid UTF-8", fd.Name())
			}
			return string(v), n, nil
		}
		return append([]byte(nil), v...), n, nil
	}
	return nil, 0, fmt.Errorf("field %s: kind %s is not supported", fd.Name(), kind)
}

// scalarWireType is the wire type a non-message kind is written with
// (unpacked).
func scalarWireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	}
	return protowire.VarintType
}

func packable(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

func wireErr(fd protoreflect.FieldDescriptor, n int) error {
	if n < 0 {
		return fmt.Errorf("field %s: %w", fd.Name(), protowire.ParseError(n))
	}
	return fmt.Errorf("field %s: %w", fd.Name(), errors.New("wrong wire type"))
}
