package examples

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// paymentsGen generates the payments example's two streams: orders on
// shop-orders, keyed by order id, and payments on shop-payments, keyed by
// payment id. Its clock starts at the first Next's time and advances
// paymentsStep per event: at dev's default 100 events per second, 120
// times faster than the wall clock, so that 10-minute join intervals close
// within seconds. About 80% of the orders are paid: most
// within a few minutes, some after the 10 minutes (too late to match), a
// few twice (split payments); one payment in 30 is sent twice (a retry,
// same payment_id). An order's payment is never earlier than the order.
type paymentsGen struct {
	r       *rand.Rand
	start   time.Time // the first Next's time
	clock   time.Time
	n       int
	pending []payment // by time
}

// paymentsStep is the event time between two generated events.
const paymentsStep = 1200 * time.Millisecond

type payment struct {
	at  time.Time
	ev  Event
	dup bool // send again right after
}

func newPayments(seed uint64) *paymentsGen { return &paymentsGen{r: newRand(seed)} }

var paymentMethods = []string{"card", "paypal", "transfer", "voucher"}

func (g *paymentsGen) Next(now time.Time) Event {
	if g.start.IsZero() {
		g.start, g.clock = now, now
	}
	g.clock = g.clock.Add(paymentsStep)
	if len(g.pending) > 0 && !g.pending[0].at.After(g.clock) {
		p := g.pending[0]
		if p.dup {
			g.pending[0].dup = false
		} else {
			g.pending = g.pending[1:]
		}
		return p.ev
	}
	g.n++
	id := fmt.Sprintf("o-%d", g.n)
	total := 500 + g.r.IntN(20_000)
	b, _ := json.Marshal(map[string]any{
		"order_id":    id,
		"customer":    fmt.Sprintf("c-%03d", g.r.IntN(150)),
		"total_cents": total,
		"ts":          g.clock.UTC().Format(time.RFC3339Nano),
	})
	if k := g.r.IntN(10); k < 8 {
		parts := 1
		if k == 0 {
			parts = 2 // a split payment
		}
		for i := range parts {
			delay := time.Duration(g.r.Int64N(int64(8 * time.Minute)))
			if g.r.IntN(8) == 0 {
				delay = 10*time.Minute + time.Duration(g.r.Int64N(int64(5*time.Minute))) // too late to match
			}
			at := g.clock.Add(delay)
			pid := fmt.Sprintf("p-%d-%d", g.n, i)
			pb, _ := json.Marshal(map[string]any{
				"payment_id":   pid,
				"order_id":     id,
				"amount_cents": total / parts,
				"method":       paymentMethods[g.r.IntN(len(paymentMethods))],
				"ts":           at.UTC().Format(time.RFC3339Nano),
			})
			g.pending = append(g.pending, payment{at: at, ev: Event{Topic: "shop-payments", Key: pid, Value: pb}, dup: g.r.IntN(30) == 0})
		}
		sort.SliceStable(g.pending, func(i, j int) bool { return g.pending[i].at.Before(g.pending[j].at) })
	}
	return Event{Topic: "shop-orders", Key: id, Value: b}
}
