package codec

import (
	"fmt"
	"math"
	"time"
)

// Helpers shared by the encoders: what an event value is, as the schema
// needs it.

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func typeErr(path string, v any, want string) error {
	return fmt.Errorf("field %q: %s, want %s", path, goType(v), want)
}

// goType names a value's type as the pipeline documentation does (CEL's
// names).
func goType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a bool"
	case int64, int, int32:
		return "an int"
	case uint64, uint32, uint:
		return "a uint"
	case float64, float32:
		return "a double"
	case string:
		return "a string"
	case []byte:
		return "bytes"
	case time.Time:
		return "a timestamp"
	case time.Duration:
		return "a duration"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("a %T", v)
}

// intOf returns an integral value as an int64; a double only when it is
// a whole number within range (a computed 3.0 is written as 3).
func intOf(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case uint32:
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

func bytesOf(v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case string:
		return []byte(x), true
	}
	return nil, false
}

// timeOf accepts a timestamp, Unix milliseconds (an int, as
// source.event_time does) or a string in layout.
func timeOf(v any, path, layout string) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		t, err := time.Parse(layout, x)
		if err != nil {
			return time.Time{}, fmt.Errorf("field %q: %q is not a time (%s)", path, x, layout)
		}
		return t, nil
	}
	if n, ok := intOf(v); ok {
		return time.UnixMilli(n).UTC(), nil
	}
	return time.Time{}, typeErr(path, v, "a timestamp")
}
