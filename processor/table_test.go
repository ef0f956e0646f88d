package processor

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/IBM/sarama"

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
