package eddytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"sort"
	"strings"

	"github.com/eddy-streams/eddy/processor"
)

// compare lists how what the pipelines wrote differs from what the case
// expects: per kind (outputs, dead letters, late events), the expected
// records nothing matched and the written records no expectation matched,
// each pair of those with the same topic and key followed by the fields
// that differ. Records are compared as multisets: the order of outputs
// across keys and partitions is not part of a pipeline's meaning.
func compare(c *Case, res *Result) []string {
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(c.Counts)) {
		if got, want := res.count(name), c.Counts[name]; got != want {
			lines = append(lines, fmt.Sprintf("counts.%s: want %d, got %d", name, want, got))
		}
	}
	for _, k := range []struct {
		name string
		want []Expect
		got  []Record
	}{{"output", c.Output, res.Outputs}, {"dead_letters", c.DeadLetters, res.DeadLetters}, {"late", c.Late, res.Late}} {
		missing, unexpected := match(k.want, k.got)
		if len(missing) == 0 && len(unexpected) == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: %d expected, %d written: %d missing, %d unexpected",
			k.name, len(k.want), len(k.got), len(missing), len(unexpected)))
		paired := map[int]bool{}
		for _, e := range missing {
			lines = append(lines, fmt.Sprintf("  - line %d: %s", e.Line, e.describe()))
			for j, r := range unexpected {
				if paired[j] || r.Key != e.Key || (e.Topic != "" && e.Topic != r.Topic) {
					continue
				}
				paired[j] = true
				lines = append(lines, "  + got:     "+describe(r))
				for _, d := range fieldDiff(e, r) {
					lines = append(lines, "      "+d)
				}
				break
			}
		}
		for j, r := range unexpected {
			if !paired[j] {
				lines = append(lines, "  + unexpected: "+describe(r))
			}
		}
	}
	return lines
}

// match pairs each expectation with the first written record it matches
// and returns the expectations and records left over.
func match(want []Expect, got []Record) (missing []Expect, unexpected []Record) {
	used := make([]bool, len(got))
	for _, e := range want {
		found := false
		for i, r := range got {
			if !used[i] && e.matches(r) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, e)
		}
	}
	for i, r := range got {
		if !used[i] {
			unexpected = append(unexpected, r)
		}
	}
	return missing, unexpected
}

func (e Expect) matches(r Record) bool {
	if (e.Topic != "" && e.Topic != r.Topic) || (e.Partition != nil && *e.Partition != r.Partition) || e.Key != r.Key {
		return false
	}
	for k, v := range e.Headers {
		if r.Headers[k] != v {
			return false
		}
	}
	if e.Error != "" && !strings.Contains(r.Error(), e.Error) {
		return false
	}
	switch {
	case e.Value == nil || r.Value == nil:
		return e.Value == nil && r.Value == nil
	case e.Raw:
		return bytes.Equal(e.Value, r.Value)
	}
	return jsonEqual(e.Value, r.Value)
}

// decodeJSON decodes b keeping numbers exact; ok is false when b is not
// JSON.
func decodeJSON(b []byte) (v any, ok bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&v) != nil || d.More() {
		return nil, false
	}
	return v, true
}

func jsonEqual(a, b []byte) bool {
	va, oka := decodeJSON(a)
	vb, okb := decodeJSON(b)
	return oka && okb && sameJSON(va, vb)
}

// sameJSON compares decoded JSON values; numbers by value (2 and 2.0 are
// the same number).
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, okx := new(big.Rat).SetString(string(x))
		ry, oky := new(big.Rat).SetString(string(y))
		return okx && oky && rx.Cmp(ry) == 0
	default:
		return a == b
	}
}

// show renders a value: canonical JSON (keys sorted) when it is JSON, else
// quoted.
func show(b []byte) string {
	if b == nil {
		return "null (a tombstone)"
	}
	if v, ok := decodeJSON(b); ok {
		out, err := json.Marshal(v)
		if err == nil {
			return string(out)
		}
	}
	return fmt.Sprintf("%q", b)
}

func (e Expect) describe() string {
	var b strings.Builder
	if e.Topic != "" {
		b.WriteString(e.Topic + " ")
	}
	fmt.Fprintf(&b, "key=%q ", e.Key)
	if e.Raw {
		fmt.Fprintf(&b, "%q", e.Value)
	} else {
		b.WriteString(show(e.Value))
	}
	if e.Error != "" {
		fmt.Fprintf(&b, " error~%q", e.Error)
	}
	return b.String()
}

func describe(r Record) string {
	s := fmt.Sprintf("%s key=%q %s", r.Topic, r.Key, show(r.Value))
	if why := r.Error(); why != "" {
		s += fmt.Sprintf(" error=%q", why)
	}
	return s
}

// fieldDiff lists the top-level fields of two JSON objects that differ.
func fieldDiff(e Expect, r Record) []string {
	var out []string
	if e.Error != "" && !strings.Contains(r.Error(), e.Error) {
		out = append(out, fmt.Sprintf("error: want a reason containing %q, got %q", e.Error, r.Error()))
	}
	if e.Raw {
		return out
	}
	want, ok1 := decodeJSON(e.Value)
	got, ok2 := decodeJSON(r.Value)
	wm, ok3 := want.(map[string]any)
	gm, ok4 := got.(map[string]any)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return out
	}
	keys := map[string]bool{}
	for k := range wm {
		keys[k] = true
	}
	for k := range gm {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		w, inW := wm[k]
		g, inG := gm[k]
		switch {
		case !inG:
			out = append(out, fmt.Sprintf("%s: want %s, missing", k, jsonText(w)))
		case !inW:
			out = append(out, fmt.Sprintf("%s: not expected, got %s", k, jsonText(g)))
		case !sameJSON(w, g):
			out = append(out, fmt.Sprintf("%s: want %s, got %s", k, jsonText(w), jsonText(g)))
		}
	}
	return out
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// countOf reads each counter a case may expect from a worker's Stats.
var countOf = map[string]func(processor.Stats) uint64{
	"in":            func(s processor.Stats) uint64 { return s.In },
	"out":           func(s processor.Stats) uint64 { return s.Out },
	"filtered":      func(s processor.Stats) uint64 { return s.Filtered },
	"duplicates":    func(s processor.Stats) uint64 { return s.Duplicates },
	"late":          func(s processor.Stats) uint64 { return s.Late },
	"poison":        func(s processor.Stats) uint64 { return s.Poison },
	"dead_lettered": func(s processor.Stats) uint64 { return s.DeadLettered },
}

// count sums counter name over the run's pipelines.
func (r *Result) count(name string) uint64 {
	var n uint64
	for _, s := range r.Stats {
		n += countOf[name](s)
	}
	return n
}
