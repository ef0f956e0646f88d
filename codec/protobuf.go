package codec

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// messageAt finds the message the Confluent message indexes name: [] or
// [0] the file's first message, [1, 0] the first nested message of the
// second, and so on.
func messageAt(fd protoreflect.FileDescriptor, index []int) (protoreflect.MessageDescriptor, error) {
	if len(index) == 0 {
		index = []int{0}
	}
	msgs := fd.Messages()
	var md protoreflect.MessageDescriptor
	for depth, i := range index {
		if i < 0 || i >= msgs.Len() {
			return nil, fmt.Errorf("message index %v: no message %d at depth %d (%d there)", index, i, depth, msgs.Len())
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	return md, nil
}

// messageIndex is the inverse of messageAt.
func messageIndex(md protoreflect.MessageDescriptor) []int {
	var index []int
	for d := protoreflect.Descriptor(md); ; d = d.Parent() {
		if _, ok := d.(protoreflect.MessageDescriptor); !ok {
			break
		}
		index = append([]int{d.Index()}, index...)
	}
	return index
}

// fromProto turns a message into an event map: fields by their .proto
// names; a field with presence (a message, optional, a oneof member)
// only when set, every other field always (its default when unset).
func fromProto(m protoreflect.Message) map[string]any {
	fields := m.Descriptor().Fields()
	out := make(map[string]any, fields.Len())
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.HasPresence() && !m.Has(fd) {
			continue
		}
		out[string(fd.Name())] = fieldFromProto(fd, m.Get(fd))
	}
	return out
}

func fieldFromProto(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch {
	case fd.IsList():
		l := v.List()
		out := make([]any, l.Len())
		for i := range l.Len() {
			out[i] = scalarFromProto(fd, l.Get(i))
		}
		return out
	case fd.IsMap():
		mp := v.Map()
		out := make(map[string]any, mp.Len())
		mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			out[k.String()] = scalarFromProto(fd.MapValue(), mv)
			return true
		})
		return out
	}
	return scalarFromProto(fd, v)
}

func scalarFromProto(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return v.Uint()
	case protoreflect.FloatKind:
		return float32Value(float32(v.Float()))
	case protoreflect.DoubleKind:
		return v.Float()
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return append([]byte(nil), v.Bytes()...)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int64(v.Enum())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageFromProto(v.Message())
	}
	return nil
}

// messageFromProto converts a nested message; the well-known types
// become the values they stand for.
func messageFromProto(m protoreflect.Message) any {
	md := m.Descriptor()
	f := md.Fields()
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return time.Unix(m.Get(f.ByName("seconds")).Int(), m.Get(f.ByName("nanos")).Int()).UTC()
	case "google.protobuf.Duration":
		return time.Duration(m.Get(f.ByName("seconds")).Int())*time.Second + time.Duration(m.Get(f.ByName("nanos")).Int())
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		vf := f.ByName("value")
		return scalarFromProto(vf, m.Get(vf))
	}
	return fromProto(m)
}

// float32Value widens a float to the double its shortest decimal form
// reads as (1.1, not 1.100000023841858), as protojson prints it.
func float32Value(f float32) float64 {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return float64(f)
	}
	d, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return d
}

// toProto fills a new message of md from an event map; path names the
// field for errors. A key the message has no field for is an error.
func toProto(md protoreflect.MessageDescriptor, ev map[string]any, path string) (*dynamicpb.Message, error) {
	m := dynamicpb.NewMessage(md)
	fields := md.Fields()
	for name, v := range ev {
		fd := fields.ByName(protoreflect.Name(name))
		if fd == nil {
			fd = fields.ByJSONName(name)
		}
		if fd == nil {
			return nil, fmt.Errorf("field %q: message %s has no such field", join(path, name), md.FullName())
		}
		if v == nil {
			continue // unset
		}
		p := join(path, name)
		switch {
		case fd.IsList():
			items, ok := v.([]any)
			if !ok {
				return nil, typeErr(p, v, "a list")
			}
			l := m.Mutable(fd).List()
			for i, item := range items {
				x, err := scalarToProto(fd, item, p+"["+strconv.Itoa(i)+"]")
				if err != nil {
					return nil, err
				}
				l.Append(x)
			}
		case fd.IsMap():
			mv, ok := v.(map[string]any)
			if !ok {
				return nil, typeErr(p, v, "a map")
			}
			mp := m.Mutable(fd).Map()
			for k, item := range mv {
				key, err := mapKeyToProto(fd.MapKey(), k, join(p, k))
				if err != nil {
					return nil, err
				}
				x, err := scalarToProto(fd.MapValue(), item, join(p, k))
				if err != nil {
					return nil, err
				}
				mp.Set(key, x)
			}
		default:
			x, err := scalarToProto(fd, v, p)
			if err != nil {
				return nil, err
			}
			m.Set(fd, x)
		}
	}
	return m, nil
}

func mapKeyToProto(fd protoreflect.FieldDescriptor, k, path string) (protoreflect.MapKey, error) {
	if fd.Kind() == protoreflect.StringKind {
		return protoreflect.ValueOfString(k).MapKey(), nil
	}
	var v any = k
	switch fd.Kind() {
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(k)
		if err != nil {
			return protoreflect.MapKey{}, fmt.Errorf("field %q: map key %q is not a bool", path, k)
		}
		v = b
	default:
		n, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(k, 10, 64)
			if uerr != nil {
				return protoreflect.MapKey{}, fmt.Errorf("field %q: map key %q is not an integer", path, k)
			}
			v = u
		} else {
			v = n
		}
	}
	x, err := scalarToProto(fd, v, path)
	if err != nil {
		return protoreflect.MapKey{}, err
	}
	return x.MapKey(), nil
}

func scalarToProto(fd protoreflect.FieldDescriptor, v any, path string) (protoreflect.Value, error) {
	bad := func(want string) (protoreflect.Value, error) { return protoreflect.Value{}, typeErr(path, v, want) }
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), nil
		}
		return bad("a bool")
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, ok := intOf(v)
		if !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return bad("an int (32 bits)")
		}
		return protoreflect.ValueOfInt32(int32(n)), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, ok := intOf(v)
		if !ok {
			return bad("an int")
		}
		return protoreflect.ValueOfInt64(n), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		var u uint64
		switch x := v.(type) {
		case uint64:
			u = x
		default:
			n, ok := intOf(v)
			if !ok || n < 0 {
				return bad("a uint")
			}
			u = uint64(n)
		}
		if (fd.Kind() == protoreflect.Uint32Kind || fd.Kind() == protoreflect.Fixed32Kind) && u > math.MaxUint32 {
			return bad("a uint (32 bits)")
		}
		if fd.Kind() == protoreflect.Uint32Kind || fd.Kind() == protoreflect.Fixed32Kind {
			return protoreflect.ValueOfUint32(uint32(u)), nil
		}
		return protoreflect.ValueOfUint64(u), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f, ok := v.(float64)
		if !ok {
			n, isInt := intOf(v)
			if !isInt {
				return bad("a double")
			}
			f = float64(n)
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), nil
		}
		return protoreflect.ValueOfFloat64(f), nil
	case protoreflect.StringKind:
		if s, ok := v.(string); ok {
			return protoreflect.ValueOfString(s), nil
		}
		return bad("a string")
	case protoreflect.BytesKind:
		if b, ok := bytesOf(v); ok {
			return protoreflect.ValueOfBytes(b), nil
		}
		return bad("bytes")
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		switch x := v.(type) {
		case string:
			if ev := vals.ByName(protoreflect.Name(x)); ev != nil {
				return protoreflect.ValueOfEnum(ev.Number()), nil
			}
			return protoreflect.Value{}, fmt.Errorf("field %q: %q is not a value of enum %s", path, x, fd.Enum().FullName())
		default:
			n, ok := intOf(v)
			if !ok || n < math.MinInt32 || n > math.MaxInt32 {
				return bad("an enum value's name or number")
			}
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageToProto(fd.Message(), v, path)
	}
	return protoreflect.Value{}, fmt.Errorf("field %q: kind %s is not supported", path, fd.Kind())
}

func messageToProto(md protoreflect.MessageDescriptor, v any, path string) (protoreflect.Value, error) {
	f := md.Fields()
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		t, err := timeOf(v, path, time.RFC3339Nano)
		if err != nil {
			return protoreflect.Value{}, err
		}
		m := dynamicpb.NewMessage(md)
		m.Set(f.ByName("seconds"), protoreflect.ValueOfInt64(t.Unix()))
		m.Set(f.ByName("nanos"), protoreflect.ValueOfInt32(int32(t.Nanosecond())))
		return protoreflect.ValueOfMessage(m), nil
	case "google.protobuf.Duration":
		d, ok := v.(time.Duration)
		if !ok {
			return protoreflect.Value{}, typeErr(path, v, "a duration")
		}
		m := dynamicpb.NewMessage(md)
		m.Set(f.ByName("seconds"), protoreflect.ValueOfInt64(int64(d/time.Second)))
		m.Set(f.ByName("nanos"), protoreflect.ValueOfInt32(int32(d%time.Second)))
		return protoreflect.ValueOfMessage(m), nil
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		vf := f.ByName("value")
		x, err := scalarToProto(vf, v, path)
		if err != nil {
			return protoreflect.Value{}, err
		}
		m := dynamicpb.NewMessage(md)
		m.Set(vf, x)
		return protoreflect.ValueOfMessage(m), nil
	}
	ev, ok := v.(map[string]any)
	if !ok {
		return protoreflect.Value{}, typeErr(path, v, "a map (message "+string(md.FullName())+")")
	}
	m, err := toProto(md, ev, path)
	if err != nil {
		return protoreflect.Value{}, err
	}
	return protoreflect.ValueOfMessage(m), nil
}
