package pipeline

import (
	"fmt"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// toNative converts a CEL result to the Go values documented on Expr.Value.
func toNative(v ref.Val) (any, error) {
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		return uint64(x), nil
	case types.Double:
		return float64(x), nil
	case types.String:
		return string(x), nil
	case types.Bytes:
		return []byte(x), nil
	case types.Timestamp:
		return x.Time.UTC(), nil
	case types.Duration:
		return x.Duration, nil
	case *types.Optional:
		if !x.HasValue() {
			return nil, nil
		}
		return toNative(x.GetValue())
	case traits.Lister:
		// A list that wraps Go values (a part of the event) is copied
		// natively, which is much cheaper than going through ref.Val.
		if native, ok := x.Value().([]any); ok {
			return copyNative(native), nil
		}
		n := int(x.Size().(types.Int))
		out := make([]any, n)
		for i := range n {
			item, err := toNative(x.Get(types.Int(i)))
			if err != nil {
				return nil, err
			}
			out[i] = item
		}
		return out, nil
	case traits.Mapper:
		if native, ok := x.Value().(map[string]any); ok {
			return copyNative(native), nil
		}
		out := make(map[string]any, int(x.Size().(types.Int)))
		it := x.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, err := mapKey(k)
			if err != nil {
				return nil, err
			}
			item, err := toNative(x.Get(k))
			if err != nil {
				return nil, err
			}
			out[ks] = item
		}
		return out, nil
	case *types.Err:
		return nil, x
	}
	if v.Type() == types.UnknownType {
		return nil, fmt.Errorf("result is unknown")
	}
	return nil, fmt.Errorf("result of type %s cannot be converted to JSON", typeName(v))
}

func mapKey(k ref.Val) (string, error) {
	switch x := k.(type) {
	case types.String:
		return string(x), nil
	case types.Int:
		return strconv.FormatInt(int64(x), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case types.Bool:
		return strconv.FormatBool(bool(x)), nil
	}
	return "", fmt.Errorf("map key of type %s cannot be a JSON object key", typeName(k))
}

// copyNative deep-copies the maps and lists of a decoded event so a result
// never aliases (or contains) the event it was computed from.
func copyNative(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			out[k] = copyNative(item)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = copyNative(item)
		}
		return out
	case time.Time:
		return x.UTC()
	}
	return v
}
