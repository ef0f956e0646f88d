package main

import (
	"testing"

	"github.com/eddy-streams/eddy/processor"
)

// TestFactoriesCheckTheirConfig: each factory decodes its step's config
// with processor.DecodeConfig: a typo or a wrong type names the field.
func TestFactoriesCheckTheirConfig(t *testing.T) {
	for _, c := range []struct {
		name    string
		factory processor.Factory
		config  map[string]any
		want    string // "" for no error
	}{
		{"followed-by", newFollowedBy, map[string]any{"first": "cart", "then": "checkout", "within": "5m"}, ""},
		{"followed-by typo", newFollowedBy, map[string]any{"first": "cart", "then": "checkout", "within": "5m", "witin": "1m"},
			"witin: unknown field (fields: first, then, within)"},
		{"followed-by bad duration", newFollowedBy, map[string]any{"first": "cart", "then": "checkout", "within": 5},
			"within: 5 is not a duration such as 100ms, 30s, 5m or 24h (add a unit: ns, us, ms, s, m or h)"},
		{"followed-by missing", newFollowedBy, map[string]any{"first": "cart", "within": "5m"},
			"first, then: required (the two event types)"},
		{"running-total", newRunningTotal, map[string]any{"field": "amount"}, ""},
		{"running-total wrong type", newRunningTotal, map[string]any{"field": 3},
			"field: want a string, got an integer (quote it)"},
		{"running-total typo", newRunningTotal, map[string]any{"fields": "amount"},
			"fields: unknown field (fields: field)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.factory(c.config)
			if got := errString(err); got != c.want {
				t.Errorf("error %q, want %q", got, c.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
