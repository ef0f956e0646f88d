package processor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb/memory"
)

type testConfig struct {
	Field  string         `yaml:"field"`
	Within time.Duration  `yaml:"within"`
	Max    int            `yaml:"max"`
	Small  int8           `yaml:"small"`
	Count  uint           `yaml:"count"`
	Ratio  float64        `yaml:"ratio"`
	On     bool           `yaml:"on"`
	Tags   []string       `yaml:"tags"`
	Limits map[string]int `yaml:"limits"`
	Inner  struct {
		A int `yaml:"a"`
	} `yaml:"inner"`
	Ptr        *int      `yaml:"ptr"`
	Start      time.Time `yaml:"start"`
	Any        any       `yaml:"any"`
	Plain      string    // no tag: "plain", as yaml.v3 names it
	Name       upper     `yaml:"name"`
	skip       int       // unexported: never decoded
	testInline `yaml:",inline"`
}

type testInline struct {
	Extra string `yaml:"extra"`
}

// upper is a TextUnmarshaler: a non-empty string, upper-cased.
type upper string

func (u *upper) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty")
	}
	*u = upper(strings.ToUpper(string(b)))
	return nil
}

// config is the config mapping of a processor step as the pipeline
// decodes it, from YAML.
func config(t *testing.T, yaml string) map[string]any {
	t.Helper()
	p := mustParse(t, `
name: cfg
kafka: {brokers: [k:9092]}
source: {topics: [in]}
steps:
  - processor:
      name: f
      config: `+yaml+`
sink: {topic: out}
`)
	return p.Steps[0].Processor.Config
}

func TestDecodeConfig(t *testing.T) {
	t.Run("every type", func(t *testing.T) {
		c := testConfig{Max: 7, Field: "default"}
		err := DecodeConfig(config(t, `{within: 1m30s, small: -3, count: 4, ratio: 2, on: true, tags: [a, b],
        limits: {x: 1, y: 2}, inner: {a: 5}, ptr: 9, start: "2026-03-01T12:00:00Z", any: {k: [1]}, plain: p,
        name: ann, extra: x}`), &c)
		if err != nil {
			t.Fatal(err)
		}
		if c.Field != "default" || c.Max != 7 {
			t.Errorf("absent fields changed: field %q, max %d", c.Field, c.Max)
		}
		if c.Within != 90*time.Second || c.Small != -3 || c.Count != 4 || c.Ratio != 2 || !c.On ||
			strings.Join(c.Tags, ",") != "a,b" || c.Limits["x"] != 1 || c.Limits["y"] != 2 || c.Inner.A != 5 ||
			c.Ptr == nil || *c.Ptr != 9 || !c.Start.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) || c.Plain != "p" ||
			c.Name != "ANN" || c.Extra != "x" || c.skip != 0 {
			t.Errorf("decoded %+v", c)
		}
		if m, ok := c.Any.(map[string]any); !ok || len(m["k"].([]any)) != 1 {
			t.Errorf("any: %#v", c.Any)
		}
	})
	t.Run("no config", func(t *testing.T) {
		c := testConfig{Max: 7}
		if err := DecodeConfig(nil, &c); err != nil || c.Max != 7 {
			t.Errorf("DecodeConfig(nil): %v, max %d", err, c.Max)
		}
	})
	for _, c := range []struct {
		name, yaml string
		want       []string // the error's lines
	}{
		{"unknown field", `{feild: amount}`, []string{`feild: unknown field (fields: any, count, extra, field, inner, limits, max, name, on, plain, ptr, ratio, small, start, tags, within)`}},
		{"nested unknown field", `{inner: {b: 1}}`, []string{`inner.b: unknown field (fields: a)`}},
		{"not a duration", `{within: soon}`, []string{`within: "soon" is not a duration such as 100ms, 30s, 5m or 24h`}},
		{"a duration without a unit", `{within: 10}`, []string{`within: 10 is not a duration such as 100ms, 30s, 5m or 24h (add a unit: ns, us, ms, s, m or h)`}},
		{"not an integer", `{max: ten}`, []string{`max: want an integer, got a string`}},
		{"a fraction", `{max: 1.5}`, []string{`max: want an integer, got a number`}},
		{"out of range", `{small: 300}`, []string{`small: 300 is out of range for int8`}},
		{"negative unsigned", `{count: -1}`, []string{`count: -1 is out of range for uint`}},
		{"not a string", `{field: 12}`, []string{`field: want a string, got an integer (quote it)`}},
		{"not a bool", `{on: yes please}`, []string{`on: want true or false, got a string`}},
		{"not a list", `{tags: a}`, []string{`tags: want a list, got a string`}},
		{"list item", `{tags: [a, 1]}`, []string{`tags[1]: want a string, got an integer (quote it)`}},
		{"map value", `{limits: {x: many}}`, []string{`limits.x: want an integer, got a string`}},
		{"not a mapping", `{inner: 3}`, []string{`inner: want a mapping, got an integer`}},
		{"unexported field", `{skip: 1}`, []string{`skip: unknown field (fields: any, count, extra, field, inner, limits, max, name, on, plain, ptr, ratio, small, start, tags, within)`}},
		{"a TextUnmarshaler's error", `{name: ""}`, []string{`name: "": empty`}},
		{"a TextUnmarshaler from a number", `{name: 1}`, []string{`name: want a string, got an integer`}},
		{"not a time", `{start: yesterday}`, []string{`start: "yesterday" is not a time such as 2026-03-01T12:00:00Z`}},
		{"every error", `{max: ten, feild: 1, within: soon}`, []string{
			`feild: unknown field (fields: any, count, extra, field, inner, limits, max, name, on, plain, ptr, ratio, small, start, tags, within)`,
			`max: want an integer, got a string`,
			`within: "soon" is not a duration such as 100ms, 30s, 5m or 24h`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cfg testConfig
			err := DecodeConfig(config(t, c.yaml), &cfg)
			if err == nil {
				t.Fatalf("no error for %s", c.yaml)
			}
			if got, want := err.Error(), strings.Join(c.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	t.Run("not a pointer to a struct", func(t *testing.T) {
		for _, into := range []any{testConfig{}, new(int), nil, (*testConfig)(nil)} {
			if err := DecodeConfig(map[string]any{}, into); err == nil || !strings.Contains(err.Error(), "pointer to a struct") {
				t.Errorf("DecodeConfig(%T): %v", into, err)
			}
		}
	})
}

// TestDecodeConfigErrorsNameTheStep: a Factory's DecodeConfig error fails
// New naming the file, the step and the field.
func TestDecodeConfigErrorsNameTheStep(t *testing.T) {
	p := mustParse(t, `
name: cfg
kafka: {brokers: [k:9092]}
source: {topics: [in]}
steps:
  - filter: "true"
  - processor: {name: wait, config: {within: soon}}
sink: {topic: out}
`)
	f := func(cfg map[string]any) (Processor, error) {
		var c struct {
			Within time.Duration `yaml:"within"`
		}
		if err := DecodeConfig(cfg, &c); err != nil {
			return nil, err
		}
		return nopFactory(cfg)
	}
	_, err := New(p, WithStore(memory.New()), WithProcessor("wait", f))
	want := `processor: p.yaml:7: steps[1].processor "wait": config: within: "soon" is not a duration such as 100ms, 30s, 5m or 24h`
	if err == nil || err.Error() != want {
		t.Errorf("New: %v\nwant: %s", err, want)
	}
}
