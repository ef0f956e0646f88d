package pipeline

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder turns a YAML node tree into Go values strictly: unknown fields,
// duplicate keys and wrong types are errors, and every error names its file
// position and field path. It records the node of every decoded path so that
// later checks can point at the right line. One decoder serves one Parse.
type decoder struct {
	errs   *errList
	nodes  map[string]*yaml.Node
	fields map[reflect.Type][]structField
}

type structField struct {
	name  string
	index int
}

var (
	// durationRe matches what time.ParseDuration reads, whatever the size.
	durationRe = regexp.MustCompile(`^[-+]?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)
	// daysRe matches a duration in days or weeks, which Go does not write.
	daysRe = regexp.MustCompile(`^(\d+(?:\.\d+)?)([dw])$`)
	// integerRe matches a decimal integer literal, whatever the size.
	integerRe   = regexp.MustCompile(`^[-+]?[0-9][0-9_]*$`)
	maxDuration = time.Duration(math.MaxInt64).Truncate(time.Second)

	durationType   = reflect.TypeFor[time.Duration]()
	fieldExprsType = reflect.TypeFor[FieldExprs]()
	enumType       = reflect.TypeFor[enum]()
)

func newDecoder(errs *errList) *decoder {
	return &decoder{errs: errs, nodes: make(map[string]*yaml.Node), fields: make(map[reflect.Type][]structField)}
}

// node returns the node decoded at path, or the nearest ancestor's, or nil.
func (d *decoder) node(path string) *yaml.Node {
	for {
		if n, ok := d.nodes[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.nodes[""]
		}
		path = path[:i]
	}
}

// has reports whether path was present in the file (null values included).
func (d *decoder) has(path string) bool {
	_, ok := d.nodes[path]
	return ok
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs.add(n.Line, n.Column, path, format, args...)
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		}
		return "a string"
	}
	return "an unknown node"
}

// value decodes n into v. A null node leaves v at its zero value.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	n = resolveAlias(n)
	d.nodes[path] = n
	if isNull(n) {
		return
	}
	t := v.Type()
	switch t {
	case durationType:
		d.duration(n, path, v)
		return
	case fieldExprsType:
		d.fieldExprs(n, path, v)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		d.value(n, path, p.Elem())
		v.Set(p)
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", kindName(n))
			return
		}
		if t.Implements(enumType) {
			allowed := reflect.Zero(t).Interface().(enum).allowed()
			if !contains(allowed, n.Value) {
				d.fail(n, path, "%s is not one of %s", quoteValue(path, n.Value), strings.Join(allowed, ", "))
				return
			}
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(n, path, "want true or false, got %s", kindName(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.fail(n, path, "want true or false")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		var i int64
		if n.Kind == yaml.ScalarNode && integerRe.MatchString(n.Value) {
			if _, err := strconv.ParseInt(n.Value, 0, 64); errors.Is(err, strconv.ErrRange) {
				if strings.HasPrefix(n.Value, "-") {
					d.fail(n, path, "integer %s is too small: the smallest is %d", n.Value, math.MinInt64)
				} else {
					d.fail(n, path, "integer %s is too large: the largest is %d", n.Value, math.MaxInt64)
				}
				return
			}
		}
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.fail(n, path, "want an integer, got %s", kindName(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "integer %d out of range", i)
			return
		}
		v.SetInt(i)
	case reflect.Slice:
		d.slice(n, path, v)
	case reflect.Map, reflect.Interface:
		// Free-form values (processor config) are decoded by yaml.v3.
		if t.Kind() == reflect.Map && n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping, got %s", kindName(n))
			return
		}
		p := reflect.New(t)
		if err := n.Decode(p.Interface()); err != nil {
			d.fail(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return
		}
		v.Set(p.Elem())
	default:
		d.fail(n, path, "internal error: cannot decode into %s", t)
	}
}

func (d *decoder) duration(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a duration such as 100ms, 30s, 5m or 24h, got %s", kindName(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		if durationRe.MatchString(n.Value) {
			// Well formed: time.ParseDuration fails only on overflow.
			d.fail(n, path, "%s is a duration too long: the longest is %s (about 292 years)", quoteValue(path, n.Value), maxDuration)
			return
		}
		hint := ""
		if n.ShortTag() == "!!int" || n.ShortTag() == "!!float" {
			hint = " (add a unit: ns, us, ms, s, m or h)"
		} else if m := daysRe.FindStringSubmatch(n.Value); m != nil {
			x, _ := strconv.ParseFloat(m[1], 64)
			hours := map[string]float64{"d": 24, "w": 7 * 24}[m[2]]
			hint = fmt.Sprintf(" (no unit for days: write %sh)", strconv.FormatFloat(x*hours, 'f', -1, 64))
		}
		d.fail(n, path, "%s is not a duration such as 100ms, 30s, 5m or 24h%s", quoteValue(path, n.Value), hint)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) slice(n *yaml.Node, path string, v reflect.Value) {
	t := v.Type()
	items := n.Content
	if n.Kind != yaml.SequenceNode {
		// A single string stands for a one-element list of strings.
		if n.Kind == yaml.ScalarNode && t.Elem().Kind() == reflect.String {
			items = []*yaml.Node{n}
		} else {
			d.fail(n, path, "want a list, got %s", kindName(n))
			return
		}
	}
	out := reflect.MakeSlice(t, len(items), len(items))
	for i, item := range items {
		p := indexPath(path, i)
		if n.Kind != yaml.SequenceNode {
			p = path
		}
		d.value(item, p, out.Index(i))
	}
	v.Set(out)
}

// pairs returns a mapping's key/value pairs with YAML merge keys ("<<")
// applied: explicit keys win over merged ones. Duplicate explicit keys are
// reported.
func (d *decoder) pairs(n *yaml.Node, path string) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	seen := make(map[string]*yaml.Node)
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			val = resolveAlias(val)
			if val.Kind == yaml.SequenceNode {
				for _, m := range val.Content {
					merged = append(merged, resolveAlias(m))
				}
			} else {
				merged = append(merged, val)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "want a field name, got %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, joinPath(path, k.Value), "duplicate field %q (first set on line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, [2]*yaml.Node{k, val})
	}
	for _, m := range merged {
		if m.Kind != yaml.MappingNode {
			d.fail(m, path, "merge (<<) wants a mapping, got %s", kindName(m))
			continue
		}
		for _, p := range d.pairs(m, path) {
			if _, ok := seen[p[0].Value]; !ok {
				seen[p[0].Value] = p[0]
				out = append(out, p)
			}
		}
	}
	return out
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	fields := d.structFields(v.Type())
	for _, p := range d.pairs(n, path) {
		k, val := p[0], p[1]
		idx := -1
		for _, f := range fields {
			if f.name == k.Value {
				idx = f.index
				break
			}
		}
		fp := joinPath(path, k.Value)
		if idx < 0 {
			d.fail(k, fp, "unknown field %q%s", k.Value, suggest(k.Value, fields))
			continue
		}
		d.value(val, fp, v.Field(idx))
	}
}

func (d *decoder) structFields(t reflect.Type) []structField {
	if fs, ok := d.fields[t]; ok {
		return fs
	}
	var fs []structField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fs = append(fs, structField{name: name, index: i})
	}
	d.fields[t] = fs
	return fs
}

// fieldExprs decodes a mapping of names to expressions, keeping file order.
func (d *decoder) fieldExprs(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of field names to expressions, got %s", kindName(n))
		return
	}
	out := make(FieldExprs, 0, len(n.Content)/2)
	for _, p := range d.pairs(n, path) {
		k, val := p[0], resolveAlias(p[1])
		fp := joinPath(path, k.Value)
		d.nodes[fp] = val
		if k.Value == "" {
			d.fail(k, fp, "empty field name")
			continue
		}
		if val.Kind != yaml.ScalarNode || isNull(val) {
			d.fail(val, fp, "want an expression, got %s", kindName(val))
			continue
		}
		out = append(out, FieldExpr{Name: k.Value, Expr: val.Value})
	}
	v.Set(reflect.ValueOf(out))
}

// suggest returns a hint for an unknown field name: the closest known one,
// or the list of known fields.
func suggest(name string, fields []structField) string {
	best, bestDist := "", 3
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
		if dist := editDistance(name, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sort.Strings(names)
	return " (known fields: " + strings.Join(names, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// quoteValue quotes a value for an error message, unless the field holds a
// secret, and shortens long values.
func quoteValue(path, s string) string {
	if isSecretField(path) {
		return "the value (not shown)"
	}
	const max = 80
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}
