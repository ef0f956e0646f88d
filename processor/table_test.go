package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb/memory"
)

const tableYAML = `
name: tb
kafka: {brokers: [fake:9092]}
source: {topics: [in]}
flush: {max_messages: 1000, interval: 5ms, shutdown_timeout: 2s}
tables:
  - {name: profiles, topic: profiles}
steps:
  - lookup: {table: profiles, key: event.user, type: %s, as: profile}
sink: {topic: out}
`

// TestLookupReadsRowsAnotherWorkerMaterialized: worker A's task on the
// table's partition applies upserts and a tombstone; worker B, which never
// owned that partition, looks the rows up from the shared store while it
// processes the stream: a left lookup gives the row or null, an inner one
// drops the events without a row.
func TestLookupReadsRowsAnotherWorkerMaterialized(t *testing.T) {
	for _, typ := range []string{"left", "inner"} {
		t.Run(typ, func(t *testing.T) {
			store := memory.New()
			yaml := fmt.Sprintf(tableYAML, typ)
			a := newHarnessOn(t, "profiles", yaml, store)
			rows := []struct{ key, value string }{
				{"u1", `{"name":"Ann","tier":"gold"}`},
				{"u2", `{"name":"Bob"}`},
				{"u1", `{"name":"Ann","tier":"platinum"}`}, // an update
				{"u2", ""}, // a tombstone
			}
			for o, r := range rows {
				m := &sarama.ConsumerMessage{Topic: "profiles", Offset: int64(o), Key: []byte(r.key)}
				if r.value != "" {
					m.Value = []byte(r.value)
				}
				a.claim.msgs <- m
			}
			a.waitMarked(int64(len(rows)))
			if got := a.w.Stats().TableRows; got != 4 {
				t.Errorf("table rows applied %d, want 4", got)
			}

			b := newHarnessYAML(t, yaml, store)
			for o, u := range []string{"u1", "u2", "u3"} {
				b.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: int64(o), Value: []byte(fmt.Sprintf(`{"user":%q}`, u))}
			}
			b.waitMarked(3)
			var got []string
			b.prod.mu.Lock()
			for _, m := range b.prod.sent {
				v, _ := m.Value.Encode()
				var ev struct {
					User    string         `json:"user"`
					Profile map[string]any `json:"profile"`
				}
				if err := json.Unmarshal(v, &ev); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s:%v", ev.User, ev.Profile["tier"]))
			}
			b.prod.mu.Unlock()
			slices.Sort(got)
			want := []string{"u1:platinum", "u2:<nil>", "u3:<nil>"}
			if typ == "inner" {
				want = want[:1]
			}
			if !slices.Equal(got, want) {
				t.Errorf("outputs %v, want %v", got, want)
			}
			if s := b.w.Stats(); s.Lookups != 3 || s.LookupMisses != 2 {
				t.Errorf("lookups %d, misses %d; want 3 and 2", s.Lookups, s.LookupMisses)
			}
		})
	}
}

// flakySource is a TableSource that fails its first calls.
type flakySource struct {
	rows  map[string]map[string]any
	fails atomic.Int32
	calls atomic.Int32
}

func (f *flakySource) Get(_ context.Context, keys []string) (map[string]map[string]any, error) {
	f.calls.Add(1)
	if f.fails.Add(-1) >= 0 {
		return nil, errors.New("connection refused")
	}
	out := map[string]map[string]any{}
	for _, k := range keys {
		if r, ok := f.rows[k]; ok {
			out[k] = r
		}
	}
	return out, nil
}

// TestLookupInATableYouKeepPausesWhileItIsDown: a lookup in a table the
// user keeps (redis or sql) reads the batch's keys in one call; while the
// source fails the partition pauses and retries, then goes on with
// nothing lost; a missing row is null (left) or drops the event (inner).
func TestLookupInATableYouKeepPausesWhileItIsDown(t *testing.T) {
	const yaml = `
name: dim
kafka: {brokers: [fake:9092]}
source: {topics: [in]}
flush: {max_messages: 1000, interval: 5ms, shutdown_timeout: 2s}
tables:
  - {name: geo, redis: {addrs: ["r:6379"], key_prefix: "geo:"}}
steps:
  - lookup: {table: geo, key: event.ip, type: %s}
sink: {topic: out}
`
	for _, typ := range []string{"left", "inner"} {
		t.Run(typ, func(t *testing.T) {
			src := &flakySource{rows: map[string]map[string]any{"1.1.1.1": {"country": "au"}}}
			src.fails.Store(2)
			h := newHarnessYAML(t, fmt.Sprintf(yaml, typ), memory.New(), WithTableSource("geo", src))
			for o, ip := range []string{"1.1.1.1", "9.9.9.9"} {
				h.claim.msgs <- &sarama.ConsumerMessage{Topic: "in", Offset: int64(o), Value: []byte(fmt.Sprintf(`{"ip":%q}`, ip))}
			}
			h.waitMarked(2)
			var got []string
			h.prod.mu.Lock()
			for _, m := range h.prod.sent {
				v, _ := m.Value.Encode()
				got = append(got, string(v))
			}
			h.prod.mu.Unlock()
			slices.Sort(got)
			want := []string{`{"geo":{"country":"au"},"ip":"1.1.1.1"}`}
			if typ == "left" {
				want = append([]string{`{"geo":null,"ip":"9.9.9.9"}`}, want...) // sorted
			}
			if !slices.Equal(got, want) {
				t.Errorf("outputs %v, want %v", got, want)
			}
			if s := h.w.Stats(); s.StoreErrors != 2 || src.calls.Load() != 3 {
				t.Errorf("%d errors retried in %d calls, want 2 in 3 (one call per batch)", s.StoreErrors, src.calls.Load())
			}
		})
	}
	if _, err := New(mustParse(t, fmt.Sprintf(yaml, "left")), WithStore(memory.New())); err == nil || !strings.Contains(err.Error(), "WithTableSource") {
		t.Errorf("a table you keep without its source: %v", err)
	}
}

func mustParse(t *testing.T, yaml string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Parse("p.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
