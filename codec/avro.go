package codec

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// readAvro reads one value of schema s from r straight into the
// pipeline's value model (see the package documentation): unions
// unwrapped, int and float widened, decimals as doubles, fixed as bytes,
// logical times as timestamps and durations. It walks the schema with
// hamba/avro's binary reader rather than decoding into hamba's generic
// values and converting those: one pass, a third of the time. A
// malformed payload sets r.Error.
func readAvro(r *avro.Reader, s avro.Schema) any {
	switch s := s.(type) {
	case *avro.RecordSchema:
		fields := s.Fields()
		m := make(map[string]any, len(fields))
		for _, f := range fields {
			m[f.Name()] = readAvro(r, f.Type())
		}
		return m
	case *avro.UnionSchema:
		types := s.Types()
		i := r.ReadLong()
		if i < 0 || i >= int64(len(types)) {
			r.ReportError("union", fmt.Sprintf("branch %d of a union of %d", i, len(types)))
			return nil
		}
		return readAvro(r, types[i])
	case *avro.ArraySchema:
		out := []any{}
		for r.Error == nil {
			n, _ := r.ReadBlockHeader()
			if n <= 0 {
				break
			}
			for range n {
				out = append(out, readAvro(r, s.Items()))
			}
		}
		return out
	case *avro.MapSchema:
		out := map[string]any{}
		for r.Error == nil {
			n, _ := r.ReadBlockHeader()
			if n <= 0 {
				break
			}
			for range n {
				k := r.ReadString()
				out[k] = readAvro(r, s.Values())
			}
		}
		return out
	case *avro.EnumSchema:
		syms := s.Symbols()
		i := r.ReadInt()
		if i < 0 || int(i) >= len(syms) {
			r.ReportError("enum", fmt.Sprintf("symbol %d of %d", i, len(syms)))
			return nil
		}
		return syms[i]
	case *avro.FixedSchema:
		b := make([]byte, s.Size())
		r.Read(b)
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return decimalValue(b, d.Scale())
		}
		return b
	case *avro.RefSchema:
		return readAvro(r, s.Schema())
	case *avro.NullSchema:
		return nil
	case *avro.PrimitiveSchema:
		var logical avro.LogicalType
		if l := s.Logical(); l != nil {
			logical = l.Type()
		}
		switch s.Type() {
		case avro.Null:
			return nil
		case avro.Boolean:
			return r.ReadBool()
		case avro.Int:
			n := int64(r.ReadInt())
			switch logical {
			case avro.Date:
				return time.Unix(n*86400, 0).UTC()
			case avro.TimeMillis:
				return time.Duration(n) * time.Millisecond
			}
			return n
		case avro.Long:
			n := r.ReadLong()
			switch logical {
			case avro.TimestampMillis, avro.LocalTimestampMillis:
				return time.UnixMilli(n).UTC()
			case avro.TimestampMicros, avro.LocalTimestampMicros:
				return time.UnixMicro(n).UTC()
			case avro.TimeMicros:
				return time.Duration(n) * time.Microsecond
			}
			return n
		case avro.Float:
			return float32Value(r.ReadFloat())
		case avro.Double:
			return r.ReadDouble()
		case avro.Bytes:
			b := r.ReadBytes()
			if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
				return decimalValue(b, d.Scale())
			}
			return b
		case avro.String:
			return r.ReadString()
		}
	}
	r.ReportError("schema", fmt.Sprintf("type %s is not supported", s.Type()))
	return nil
}

// decimalValue is the double nearest the decimal whose unscaled value is
// b (big-endian two's complement) at scale.
func decimalValue(b []byte, scale int) float64 {
	if len(b) <= 7 && scale <= 22 {
		// Exact in an int64 and in a double: one correctly rounded
		// division.
		var n int64
		for _, c := range b {
			n = n<<8 | int64(c)
		}
		if len(b) > 0 && b[0]&0x80 != 0 {
			n -= 1 << (8 * len(b))
		}
		return float64(n) / math.Pow10(scale)
	}
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	f, _ := new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).Float64()
	return f
}

// unionName is the name hamba/avro gives a union branch when it wraps it:
// a named type's full name, else the type, with ".<logicalType>" for a
// logical one.
func unionName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema().FullName()
	}
	name := string(s.Type())
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		name += "." + string(l.Logical().Type())
	}
	return name
}

// toAvro turns an event value into what hamba/avro encodes for schema s.
// path names the field for errors ("order.items[2].qty").
func toAvro(s avro.Schema, v any, path string) (any, error) {
	switch s := s.(type) {
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, typeErr(path, v, "a record ("+s.FullName()+")")
		}
		out := make(map[string]any, len(s.Fields()))
		for _, f := range s.Fields() {
			fv, ok := m[f.Name()]
			if !ok || fv == nil && !nullable(f.Type()) {
				if f.HasDefault() {
					continue // hamba writes the default
				}
				if !ok {
					return nil, fmt.Errorf("field %q: missing, and the schema gives no default", join(path, f.Name()))
				}
			}
			x, err := toAvro(f.Type(), fv, join(path, f.Name()))
			if err != nil {
				return nil, err
			}
			out[f.Name()] = x
		}
		return out, nil
	case *avro.UnionSchema:
		if v == nil {
			if !nullable(s) {
				return nil, fmt.Errorf("field %q: null, and the union %s has no null", path, unionTypes(s))
			}
			return nil, nil
		}
		var first error
		for _, t := range s.Types() {
			if t.Type() == avro.Null {
				continue
			}
			x, err := toAvro(t, v, path)
			if err != nil {
				if first == nil {
					first = err
				}
				continue
			}
			return map[string]any{unionName(t): x}, nil
		}
		return nil, fmt.Errorf("field %q: %s fits no branch of the union %s (first: %v)", path, goType(v), unionTypes(s), first)
	case *avro.ArraySchema:
		items, ok := v.([]any)
		if !ok {
			return nil, typeErr(path, v, "a list")
		}
		out := make([]any, len(items))
		for i, item := range items {
			x, err := toAvro(s.Items(), item, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, typeErr(path, v, "a map")
		}
		out := make(map[string]any, len(m))
		for k, item := range m {
			x, err := toAvro(s.Values(), item, join(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case *avro.RefSchema:
		return toAvro(s.Schema(), v, path)
	case *avro.NullSchema:
		if v != nil {
			return nil, typeErr(path, v, "null")
		}
		return nil, nil
	case *avro.EnumSchema:
		str, ok := v.(string)
		if !ok {
			return nil, typeErr(path, v, "a string (enum "+s.FullName()+")")
		}
		for _, sym := range s.Symbols() {
			if sym == str {
				return str, nil
			}
		}
		return nil, fmt.Errorf("field %q: %q is not a symbol of enum %s (%s)", path, str, s.FullName(), strings.Join(s.Symbols(), ", "))
	case *avro.FixedSchema:
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return decimal(v, d.Scale(), path)
		}
		b, ok := bytesOf(v)
		if !ok || len(b) != s.Size() {
			return nil, typeErr(path, v, fmt.Sprintf("%d bytes (fixed %s)", s.Size(), s.FullName()))
		}
		arr := reflect.New(reflect.ArrayOf(s.Size(), reflect.TypeFor[byte]())).Elem()
		reflect.Copy(arr, reflect.ValueOf(b))
		return arr.Interface(), nil
	case *avro.PrimitiveSchema:
		return primitiveToAvro(s, v, path)
	}
	return nil, fmt.Errorf("field %q: schema type %s is not supported", path, s.Type())
}

func primitiveToAvro(s *avro.PrimitiveSchema, v any, path string) (any, error) {
	var logical avro.LogicalType
	if s.Logical() != nil {
		logical = s.Logical().Type()
	}
	switch s.Type() {
	case avro.Null:
		if v != nil {
			return nil, typeErr(path, v, "null")
		}
		return nil, nil
	case avro.Boolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, typeErr(path, v, "a bool")
	case avro.Int:
		switch logical {
		case avro.Date:
			t, err := timeOf(v, path, "2006-01-02")
			if err != nil {
				return nil, err
			}
			return t, nil
		case avro.TimeMillis:
			if d, ok := v.(time.Duration); ok {
				return d, nil
			}
			return nil, typeErr(path, v, "a duration")
		}
		n, ok := intOf(v)
		if !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return nil, typeErr(path, v, "an int (32 bits)")
		}
		return int(n), nil
	case avro.Long:
		switch logical {
		case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			t, err := timeOf(v, path, time.RFC3339Nano)
			if err != nil {
				return nil, err
			}
			return t, nil
		case avro.TimeMicros:
			if d, ok := v.(time.Duration); ok {
				return d, nil
			}
			return nil, typeErr(path, v, "a duration")
		}
		n, ok := intOf(v)
		if !ok {
			return nil, typeErr(path, v, "an int")
		}
		return n, nil
	case avro.Float, avro.Double:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case float32:
			f = float64(x)
		default:
			n, ok := intOf(v)
			if !ok {
				return nil, typeErr(path, v, "a double")
			}
			f = float64(n)
		}
		if s.Type() == avro.Float {
			return float32(f), nil
		}
		return f, nil
	case avro.String:
		if str, ok := v.(string); ok {
			return str, nil
		}
		return nil, typeErr(path, v, "a string")
	case avro.Bytes:
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return decimal(v, d.Scale(), path)
		}
		if b, ok := bytesOf(v); ok {
			return b, nil
		}
		return nil, typeErr(path, v, "bytes")
	}
	return nil, fmt.Errorf("field %q: schema type %s is not supported", path, s.Type())
}

// decimal converts a double, an int or a decimal string to the exact
// rational hamba/avro encodes, rounded half away from zero to scale.
func decimal(v any, scale int, path string) (*big.Rat, error) {
	var str string
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("field %q: %v is not a decimal", path, x)
		}
		str = strconv.FormatFloat(x, 'f', scale, 64)
	case string:
		str = x
	default:
		n, ok := intOf(v)
		if !ok {
			return nil, typeErr(path, v, "a decimal (a double, an int or a string)")
		}
		str = strconv.FormatInt(n, 10)
	}
	r, ok := new(big.Rat).SetString(str)
	if !ok {
		return nil, fmt.Errorf("field %q: %q is not a decimal", path, str)
	}
	// Round to scale: r*10^scale to the nearest integer.
	pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow))
	num, den := scaled.Num(), scaled.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2)).Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return new(big.Rat).SetFrac(q, pow), nil
}

func nullable(s avro.Schema) bool {
	if s.Type() == avro.Null {
		return true
	}
	u, ok := s.(*avro.UnionSchema)
	return ok && u.Nullable()
}

func unionTypes(u *avro.UnionSchema) string {
	names := make([]string, len(u.Types()))
	for i, t := range u.Types() {
		names[i] = unionName(t)
	}
	return "[" + strings.Join(names, ", ") + "]"
}
