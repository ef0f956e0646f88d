package examples

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

var stores = []string{"berlin", "paris", "madrid", "warsaw", "lisbon", "oslo"}

// orders generates web-shop orders: 500 users with a skewed activity, a
// few zero-quantity orders (filtered), about one order in 150 sent twice
// (the idempotency store drops the repeat) and one in 400 that is not JSON
// or lacks its price (dead-lettered).
type orders struct {
	r    *rand.Rand
	zipf *rand.Zipf
	n    int
	last []byte
	key  string
}

func newOrders(seed uint64) *orders {
	r := newRand(seed)
	return &orders{r: r, zipf: rand.NewZipf(r, 1.2, 4, 499)}
}

func (g *orders) Next(now time.Time) Event {
	if g.last != nil && g.r.IntN(150) == 0 { // a producer retry: same order again
		return Event{Topic: "orders", Key: g.key, Value: g.last}
	}
	g.n++
	user := fmt.Sprintf("u-%03d", g.zipf.Uint64()+1)
	switch g.r.IntN(400) {
	case 0:
		return Event{Topic: "orders", Key: user, Value: []byte(`{"order_id": "broken`)}
	case 1:
		v := fmt.Sprintf(`{"order_id":"o-%d","user_id":%q,"store":"oslo","qty":1,"ts":%q}`,
			g.n, user, now.UTC().Format(time.RFC3339Nano))
		return Event{Topic: "orders", Key: user, Value: []byte(v)}
	}
	qty := 1 + g.r.IntN(4)
	if g.r.IntN(40) == 0 {
		qty = 0
	}
	ev := map[string]any{
		"order_id": fmt.Sprintf("o-%d", g.n),
		"user_id":  user,
		"store":    stores[g.r.IntN(len(stores))],
		"qty":      qty,
		"price":    float64(100+g.r.IntN(9900)) / 100,
		"currency": "EUR",
		"ts":       now.UTC().Format(time.RFC3339Nano),
	}
	b, _ := json.Marshal(ev)
	g.last, g.key = b, user
	return Event{Topic: "orders", Key: user, Value: b}
}
