package processor

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DecodeConfig decodes a processor step's config, as a Factory receives
// it, into the struct into points to. Fields are named as yaml.v3 names
// them: by their yaml tag, else their name in lower case ("-" and
// unexported fields are skipped; ",inline" flattens an embedded struct).
// A field absent from config keeps its value, so set defaults before.
//
// Values are checked strictly: a time.Duration from a string such as
// "10s", a time.Time from an RFC 3339 string, a type implementing
// encoding.TextUnmarshaler from a string; strings from strings only (a
// number must be quoted); integers from integers, in range; floats from
// numbers; bools from true and false; slices from lists, maps with string
// keys and nested structs from mappings, pointers allocated; an any field
// takes the value as it is. A key no field has is an error.
//
// The error names every field in error (nested ones as "limits.max" and
// "tags[2]"), one per line; New wraps what a Factory returns with the
// file, line and step, so returning it as is names the step and the field:
//
//	processor: followed-by.yaml:15: steps[0].processor "followed-by": config: within: "soon" is not a duration such as 100ms, 30s, 5m or 24h
func DecodeConfig(config map[string]any, into any) error {
	v := reflect.ValueOf(into)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("processor: DecodeConfig wants a pointer to a struct, got %T", into)
	}
	var d configDecoder
	d.structure(config, "", v.Elem())
	return errors.Join(d.errs...)
}

type configDecoder struct{ errs []error }

func (d *configDecoder) fail(path, format string, args ...any) {
	d.errs = append(d.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

var (
	durationT = reflect.TypeFor[time.Duration]()
	timeT     = reflect.TypeFor[time.Time]()
	textT     = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value decodes x into v; a nil x (YAML null) leaves v as it is.
func (d *configDecoder) value(x any, path string, v reflect.Value) {
	if x == nil {
		return
	}
	t := v.Type()
	switch {
	case t == durationT:
		d.duration(x, path, v)
		return
	case t == timeT:
		d.time(x, path, v)
		return
	case reflect.PointerTo(t).Implements(textT) && t.Kind() != reflect.Pointer:
		s, ok := x.(string)
		if !ok {
			d.fail(path, "want a string, got %s", kindOf(x))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.fail(path, "%q: %v", s, err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if !v.IsNil() {
			p.Elem().Set(v.Elem())
		}
		d.value(x, path, p.Elem())
		v.Set(p)
	case reflect.Interface:
		xv := reflect.ValueOf(x)
		if !xv.Type().AssignableTo(t) {
			d.fail(path, "%s does not fit a %s", kindOf(x), t)
			return
		}
		v.Set(xv)
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			d.fail(path, "want a string, got %s (quote it)", kindOf(x))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			d.fail(path, "want true or false, got %s", kindOf(x))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok, fits := signed(x)
		if !ok {
			d.fail(path, "want an integer, got %s", kindOf(x))
			return
		}
		if !fits || v.OverflowInt(i) {
			d.fail(path, "%v is out of range for %s", x, t)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, ok, fits := unsigned(x)
		if !ok {
			d.fail(path, "want an integer, got %s", kindOf(x))
			return
		}
		if !fits || v.OverflowUint(u) {
			d.fail(path, "%v is out of range for %s", x, t)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if i, ok, fits := signed(x); ok && fits {
			f = float64(i)
		} else if u, ok, _ := unsigned(x); ok {
			f = float64(u)
		} else if n, ok := x.(float64); ok {
			f = n
		} else {
			d.fail(path, "want a number, got %s", kindOf(x))
			return
		}
		if v.OverflowFloat(f) {
			d.fail(path, "%v is out of range for %s", x, t)
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		items, ok := x.([]any)
		if !ok {
			d.fail(path, "want a list, got %s", kindOf(x))
			return
		}
		out := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			d.value(item, path+"["+strconv.Itoa(i)+"]", out.Index(i))
		}
		v.Set(out)
	case reflect.Map:
		m, ok := mapping(x)
		if !ok {
			d.fail(path, "want a mapping, got %s", kindOf(x))
			return
		}
		if t.Key().Kind() != reflect.String {
			d.fail(path, "cannot decode into %s: map keys must be strings", t)
			return
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			e := reflect.New(t.Elem()).Elem()
			d.value(m[k], joinField(path, k), e)
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
		}
		v.Set(out)
	case reflect.Struct:
		m, ok := mapping(x)
		if !ok {
			d.fail(path, "want a mapping, got %s", kindOf(x))
			return
		}
		d.structure(m, path, v)
	default:
		d.fail(path, "cannot decode into %s", t)
	}
}

// structure decodes the mapping m into the struct v, key by key in sorted
// order (so errors come in that order).
func (d *configDecoder) structure(m map[string]any, path string, v reflect.Value) {
	fields := configFields(v.Type())
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fp := joinField(path, k)
		f, ok := fields[k]
		if !ok {
			d.fail(fp, "unknown field (fields: %s)", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			continue
		}
		d.value(m[k], fp, v.FieldByIndex(f))
	}
}

// configFields are a struct's fields by config name: their index paths.
func configFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			for n, idx := range configFields(f.Type) {
				if _, ok := out[n]; !ok {
					out[n] = append([]int{i}, idx...)
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = []int{i}
	}
	return out
}

func (d *configDecoder) duration(x any, path string, v reflect.Value) {
	s, ok := x.(string)
	if !ok {
		if isInteger(x) || isFloat(x) {
			d.fail(path, "%v is not a duration such as 100ms, 30s, 5m or 24h (add a unit: ns, us, ms, s, m or h)", x)
		} else {
			d.fail(path, "want a duration such as 100ms, 30s, 5m or 24h, got %s", kindOf(x))
		}
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.fail(path, "%q is not a duration such as 100ms, 30s, 5m or 24h", s)
		return
	}
	v.SetInt(int64(dur))
}

func (d *configDecoder) time(x any, path string, v reflect.Value) {
	switch t := x.(type) {
	case time.Time:
		v.Set(reflect.ValueOf(t))
	case string:
		at, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			d.fail(path, "%q is not a time such as 2026-03-01T12:00:00Z", t)
			return
		}
		v.Set(reflect.ValueOf(at))
	default:
		d.fail(path, "want a time such as 2026-03-01T12:00:00Z, got %s", kindOf(x))
	}
}

// signed is x as an int64: isInt when x is a Go integer, fits when its
// value is an int64's.
func signed(x any) (i int64, isInt, fits bool) {
	switch rv := reflect.ValueOf(x); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := rv.Uint()
		return int64(u), true, u <= math.MaxInt64
	}
	return 0, false, false
}

// unsigned is x as a uint64: isInt when x is a Go integer, fits when its
// value is a uint64's.
func unsigned(x any) (u uint64, isInt, fits bool) {
	switch rv := reflect.ValueOf(x); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i := rv.Int()
		return uint64(i), true, i >= 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint(), true, true
	}
	return 0, false, false
}

func isInteger(x any) bool {
	_, ok, _ := signed(x)
	return ok
}

func isFloat(x any) bool {
	k := reflect.ValueOf(x).Kind()
	return k == reflect.Float32 || k == reflect.Float64
}

// mapping is x as a mapping with string keys: yaml.v3 decodes a mapping
// into map[string]any, or map[any]any when a key is not a string.
func mapping(x any) (map[string]any, bool) {
	switch m := x.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	return nil, false
}

func joinField(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// kindOf names a decoded YAML value's kind for an error.
func kindOf(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float32, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	case time.Time:
		return "a time"
	}
	if isInteger(x) {
		return "an integer"
	}
	return fmt.Sprintf("a %T", x)
}
