package eddytest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/eddy-streams/eddy/pipeline"
)

const protoView = `syntax = "proto3";
package web;
message View { string view_id = 1; string user_id = 2; int64 ms = 3; }
`

const avroProfile = `{"type":"record","name":"Profile","fields":[{"name":"plan","type":"string"},{"name":"since","type":{"type":"int","logicalType":"date"}}]}`

// TestRunRegistryFormats: Protobuf views looked up in a table of Avro
// profiles, written as JSON Schema: each encoded for the in-process
// registry from the JSON given, the table's rows kept in the store as
// JSON for the lookup, the output decoded back to JSON for Read.
func TestRunRegistryFormats(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.json")
	if err := os.WriteFile(out, []byte(`{"type":"object"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, "views.yaml", `
name: views
schema_registry: {url: "http://unused:8081"}
source: {topics: [views], format: protobuf, event_id: event.view_id}
tables:
  - {name: profiles, topic: profiles, format: avro}
steps:
  - lookup: {table: profiles, key: event.user_id, type: left, as: profile}
  - map:
      view: event.view_id
      ms: event.ms
      plan: 'event.profile == null ? "none" : event.profile.plan'
      since: 'event.profile == null ? null : event.profile.since'
sink: {topic: out, format: json_schema, schema: {file: `+strconv.Quote(out)+`}}
`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	evs := []Event{
		{Topic: "profiles", Key: "ann", Value: []byte(`{"plan":"pro","since":"2023-05-01"}`)},
		{Topic: "views", Key: "ann", Value: []byte(`{"view_id":"v1","user_id":"ann","ms":120}`)},
		{Topic: "views", Key: "bob", Value: []byte(`{"view_id":"v2","user_id":"bob","ms":80}`)},
		{Topic: "views", Key: "bob", Value: []byte(`not protobuf`)},
	}
	schemas := map[string]string{"views": protoView, "profiles": avroProfile}
	res, err := Run(ctx, []*pipeline.Pipeline{p}, evs, Config{Logger: zaptest.NewLogger(t), Schemas: schemas}, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Outputs {
		got = append(got, string(r.Value))
	}
	want := []string{
		`{"ms":120,"plan":"pro","since":"2023-05-01T00:00:00Z","view":"v1"}`,
		`{"ms":80,"plan":"none","since":null,"view":"v2"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("outputs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := res.Stats[0].Poison; n != 1 {
		t.Errorf("%d poison events, want 1 (the value not in the wire format)", n)
	}
	// Without a schema for a topic read in a registry format, the event
	// cannot be sent: the error says what to give.
	_, err = Run(ctx, []*pipeline.Pipeline{p}, evs[1:2], Config{Logger: zaptest.NewLogger(t)}, false)
	if err == nil || !strings.Contains(err.Error(), "topic views is read as protobuf: give the schema") {
		t.Errorf("Run without schemas: %v", err)
	}
}
