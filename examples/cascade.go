package examples

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

var countries = []string{"de", "fr", "es", "pl", "pt", "no", "it", "nl"}

// cascadeOrders generates the raw orders of the cascade example, keyed by
// order id (not by customer: stage 1 re-keys them), from 200 customers of
// a skewed activity: about one order in 100 is sent twice (a producer
// retry: stage 1 drops the repeat by order_id), one in 40 is empty (qty
// 0, filtered out) and one in 300 is not JSON (dead-lettered). Amounts are
// integer cents, so that totals are exact.
type cascadeOrders struct {
	r    *rand.Rand
	zipf *rand.Zipf
	n    int
	last *Event
}

func newCascadeOrders(seed uint64) *cascadeOrders {
	r := newRand(seed)
	return &cascadeOrders{r: r, zipf: rand.NewZipf(r, 1.1, 8, 199)}
}

func (g *cascadeOrders) Next(now time.Time) Event {
	if g.last != nil && g.r.IntN(100) == 0 {
		return *g.last
	}
	g.n++
	id := fmt.Sprintf("o-%d", g.n)
	if g.r.IntN(300) == 0 {
		return Event{Topic: "cascade-orders", Key: id, Value: []byte(`{"order_id": "` + id)}
	}
	qty := 1 + g.r.IntN(4)
	if g.r.IntN(40) == 0 {
		qty = 0
	}
	b, _ := json.Marshal(map[string]any{
		"order_id":   id,
		"customer":   fmt.Sprintf("c-%03d", g.zipf.Uint64()),
		"country":    countries[g.r.IntN(len(countries))],
		"qty":        qty,
		"unit_cents": 199 + g.r.IntN(9800),
		"ts":         now.UTC().Format(time.RFC3339Nano),
	})
	ev := Event{Topic: "cascade-orders", Key: id, Value: b}
	g.last = &ev
	return ev
}
