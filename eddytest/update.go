package eddytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Update rewrites the expectations (output, dead_letters, late) of the
// cases that failed, from what their pipelines wrote, and saves the file;
// the rest of the file (inputs, tables, comments, the cases that passed)
// is kept. Cases that could not run are left as they are.
func (f *File) Update(results []*CaseResult) error {
	for _, r := range results {
		if r.Err != nil || r.Result == nil || len(r.Diff) == 0 {
			continue
		}
		n := r.Case.node
		setKey(n, "output", recordsNode(r.Result.Outputs, false))
		setKey(n, "dead_letters", recordsNode(r.Result.DeadLetters, true))
		setKey(n, "late", recordsNode(r.Result.Late, true))
		if len(r.Case.Counts) > 0 { // the counters the case names, as they came out
			counts := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			for _, name := range slices.Sorted(maps.Keys(r.Case.Counts)) {
				counts.Content = append(counts.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name},
					&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(r.Result.count(name), 10)})
			}
			setKey(n, "counts", counts)
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&f.doc); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	return os.WriteFile(f.Path, b.Bytes(), 0o644)
}

// setKey sets key of mapping m to v (nil: removes it), keeping its place.
func setKey(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			if v == nil {
				m.Content = append(m.Content[:i], m.Content[i+2:]...)
			} else {
				m.Content[i+1] = v
			}
			return
		}
	}
	if v != nil {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
	}
}

// recordsNode renders records as a block sequence of one-line mappings:
// the topic when they span several, the key, the value (JSON as YAML, any
// other bytes as a string) and, for dead letters and late events, the
// reason.
func recordsNode(recs []Record, reason bool) *yaml.Node {
	if len(recs) == 0 {
		return nil
	}
	topics := map[string]bool{}
	for _, r := range recs {
		topics[r.Topic] = true
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range recs {
		m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		add := func(k string, v *yaml.Node) {
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
		}
		if len(topics) > 1 {
			add("topic", str(r.Topic))
		}
		if r.Key != "" {
			add("key", str(r.Key))
		}
		add("value", valueNode(r.Value))
		if why := r.Error(); reason && why != "" {
			add("error", str(why))
		}
		seq.Content = append(seq.Content, m)
	}
	return seq
}

func str(s string) *yaml.Node {
	n := &yaml.Node{}
	_ = n.Encode(s) // quotes it when it would read as another type
	return n
}

func valueNode(b []byte) *yaml.Node {
	if b == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
	v, ok := decodeJSON(b)
	if _, isStr := v.(string); !ok || isStr {
		// Not JSON, or a JSON string: the exact bytes, as a string.
		n := str(string(b))
		n.Style = yaml.DoubleQuotedStyle
		return n
	}
	n := &yaml.Node{}
	if err := n.Encode(plain(v)); err != nil {
		return str(string(b))
	}
	flow(n)
	return n
}

// plain turns json.Numbers into int64 or float64, so that YAML writes
// numbers, not strings.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
	}
	return v
}

func flow(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = yaml.FlowStyle
	}
	for _, c := range n.Content {
		flow(c)
	}
}
