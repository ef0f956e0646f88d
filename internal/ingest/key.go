package ingest

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/eddy-streams/eddy/pipeline"
)

// Key computes the Kafka key of a record from its event with a CEL
// expression. A Key is immutable and safe for concurrent use (give each
// goroutine its own pipeline.Vars).
type Key struct {
	text string
	expr *pipeline.Expr
}

// CompileKey compiles a key expression over event, such as event.user or
// event.region + "/" + event.user; it must give a string or an int. It is
// compiled and type-checked exactly as a pipeline's sink.key: the same
// CEL environment and extensions, so an expression that works here works
// in a pipeline file and the other way round. Nothing is expanded: a
// ${VAR} is the shell's to expand.
func CompileKey(text string) (*Key, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("empty expression")
	}
	// The pipeline package compiles expressions as part of a file only:
	// give it a file whose sink key is this one.
	doc, err := yaml.Marshal(map[string]any{
		"name":   "ingest",
		"source": map[string]any{"topics": []string{"ingest-in"}},
		"sink":   map[string]any{"topic": "ingest-out", "key": text},
	})
	if err != nil {
		return nil, err
	}
	p, err := pipeline.Parse("-key", doc,
		pipeline.WithBrokers("ingest:9092"),
		pipeline.WithEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		var errs pipeline.Errors
		if errors.As(err, &errs) {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Msg
			}
			return nil, errors.New(strings.Join(msgs, "; "))
		}
		return nil, err
	}
	return &Key{text: strings.TrimSpace(text), expr: p.Sink.Key}, nil
}

// String returns the expression.
func (k *Key) String() string { return k.text }

// Eval returns the key of the record whose event is v.Event.
func (k *Key) Eval(v *pipeline.Vars) (string, error) {
	s, err := k.expr.String(v)
	if err != nil {
		var ee *pipeline.EvalError
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return "", fmt.Errorf("key %s: %w", k.text, err)
	}
	return s, nil
}
