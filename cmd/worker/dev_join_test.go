package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/examples"
)

// TestDevPayments runs the payments example (orders ⨝ payments within 10
// minutes, a left join) in worker dev and checks what it prints against
// the events it generated: every row printed is right (a paid row's
// payment is its order's, at most 10 minutes away; an unpaid row's order
// has no such payment among all the events generated, so no payment came
// after the row to contradict it), no row twice, and every order whose
// interval closed well before the end has its rows.
func TestDevPayments(t *testing.T) {
	const events, seed = 2500, 5
	var stderr syncBuffer
	o, err := parseDev([]string{"-example", "payments", "-seed", fmt.Sprint(seed), "-events", fmt.Sprint(events),
		"-rate", "1000", "-print", "1000000", "-http", ""}, &stderr)
	if err != nil {
		t.Fatalf("flags: %v (%s)", err, stderr.String())
	}
	type order struct {
		ts    time.Time
		total int64
	}
	type pay struct {
		order  string
		ts     time.Time
		amount int64
	}
	var mu sync.Mutex
	orders, pays := map[string]order{}, map[string]pay{}
	var last time.Time
	o.onProduce = func(ev examples.Event) {
		var v struct {
			OrderID string    `json:"order_id"`
			PID     string    `json:"payment_id"`
			TS      time.Time `json:"ts"`
			Total   int64     `json:"total_cents"`
			Amount  int64     `json:"amount_cents"`
		}
		if err := json.Unmarshal(ev.Value, &v); err != nil {
			t.Errorf("generated %s: %v", ev.Value, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if ev.Topic == "shop-orders" {
			orders[v.OrderID] = order{v.TS, v.Total}
		} else {
			pays[v.PID] = pay{v.OrderID, v.TS, v.Amount}
		}
		if v.TS.After(last) {
			last = v.TS
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- dev(ctx, o, &out, zap.NewNop()) }()

	type row struct {
		OrderID   string  `json:"order_id"`
		Paid      bool    `json:"paid"`
		PaymentID *string `json:"payment_id"`
		PaidCents *int64  `json:"paid_cents"`
		Total     int64   `json:"total_cents"`
	}
	parse := func() map[string]row {
		rows := map[string]row{}
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			_, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "→ key="), "  ")
			if !ok || !strings.HasPrefix(sc.Text(), "→ key=") {
				continue
			}
			var r row
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				t.Fatalf("printed %q: %v", sc.Text(), err)
			}
			k := r.OrderID + "/"
			if r.PaymentID != nil {
				k += *r.PaymentID
			}
			if _, dup := rows[k]; dup {
				t.Errorf("row %s printed twice", k)
			}
			rows[k] = r
		}
		return rows
	}
	// want: the rows of every order whose interval (10 minutes + 5 s
	// grace) ended a minute before the last event generated.
	want := func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		w := map[string]bool{}
		for id, o := range orders {
			if !o.ts.Add(11*time.Minute + 5*time.Second).Before(last) {
				continue
			}
			paid := false
			for pid, p := range pays {
				if p.order == id && p.ts.Sub(o.ts).Abs() <= 10*time.Minute {
					w[id+"/"+pid], paid = true, true
				}
			}
			if !paid {
				w[id+"/"] = true
			}
		}
		return w
	}
	var produced int
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		produced = len(orders) + len(pays)
		mu.Unlock()
		if produced >= events-100 { // repeats are counted once
			rows, w := parse(), want()
			missing := 0
			for k := range w {
				if _, ok := rows[k]; !ok {
					missing++
				}
			}
			if missing == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d events generated; stdout:\n%s", produced, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dev: %v", err)
	}
	rows, w := parse(), want()
	mu.Lock()
	defer mu.Unlock()
	unpaid := 0
	for k, r := range rows {
		o, ok := orders[r.OrderID]
		switch {
		case !ok:
			t.Errorf("row %s: no such order generated", k)
		case r.Total != o.total:
			t.Errorf("row %s: total %d, the order's is %d", k, r.Total, o.total)
		case r.Paid:
			p, ok := pays[*r.PaymentID]
			if !ok || p.order != r.OrderID || p.ts.Sub(o.ts).Abs() > 10*time.Minute || r.PaidCents == nil || *r.PaidCents != p.amount {
				t.Errorf("paid row %s does not match its payment %+v", k, p)
			}
		default:
			unpaid++
			if r.PaymentID != nil || r.PaidCents != nil {
				t.Errorf("unpaid row %s has payment fields", k)
			}
			for pid, p := range pays {
				if p.order == r.OrderID && p.ts.Sub(o.ts).Abs() <= 10*time.Minute {
					t.Errorf("order %s printed unpaid, but payment %s is %s after it", r.OrderID, pid, p.ts.Sub(o.ts))
				}
			}
		}
	}
	if unpaid == 0 || len(w) < 300 {
		t.Errorf("%d unpaid rows, %d rows expected: the seed checks too little", unpaid, len(w))
	}
	t.Logf("%d rows printed (%d unpaid), all right; all %d of the orders closed a minute before the end", len(rows), unpaid, len(w))
}

// TestDevProfiles runs the profiles example (views enriched from a table
// of profiles that changes mid-stream) in worker dev: every printed view
// carries a plan its user had at some time (the table as materialized
// when the view's batch ran) or "unknown" (no row then), a guest's is
// always unknown, and most views found their user's row.
func TestDevProfiles(t *testing.T) {
	const events, seed = 3000, 3
	var stderr syncBuffer
	o, err := parseDev([]string{"-example", "profiles", "-seed", fmt.Sprint(seed), "-events", fmt.Sprint(events),
		"-rate", "1000", "-print", "1000000", "-http", ""}, &stderr)
	if err != nil {
		t.Fatalf("flags: %v (%s)", err, stderr.String())
	}
	var mu sync.Mutex
	plans := map[string]map[string]bool{} // user -> every plan it had
	views, generated := 0, 0
	o.onProduce = func(ev examples.Event) {
		mu.Lock()
		defer mu.Unlock()
		generated++
		if ev.Topic != "user-profiles" {
			views++
			return
		}
		if ev.Value == nil {
			return
		}
		var p struct{ Plan string }
		if err := json.Unmarshal(ev.Value, &p); err != nil {
			t.Errorf("profile %s: %v", ev.Value, err)
		}
		if plans[ev.Key] == nil {
			plans[ev.Key] = map[string]bool{}
		}
		plans[ev.Key][p.Plan] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- dev(ctx, o, &out, zap.NewNop()) }()
	printed := func() int { return strings.Count(out.String(), "→ key=") }
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		v, n := views, generated
		mu.Unlock()
		if n == events && printed() >= v {
			break // every view printed (a left lookup drops none)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d events generated, %d views, %d printed", n, v, printed())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dev: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	known, unknown := 0, 0
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		_, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "→ key="), "  ")
		if !ok || !strings.HasPrefix(sc.Text(), "→ key=") {
			continue
		}
		var v struct {
			User string `json:"user_id"`
			Plan string `json:"plan"`
		}
		if err := json.Unmarshal([]byte(rest), &v); err != nil {
			t.Fatalf("printed %q: %v", sc.Text(), err)
		}
		switch {
		case v.Plan == "unknown":
			unknown++
		case strings.HasPrefix(v.User, "guest-") || !plans[v.User][v.Plan]:
			t.Errorf("view of %s with plan %q, which it never had (%v)", v.User, v.Plan, plans[v.User])
		default:
			known++
		}
	}
	if known < 4*unknown {
		t.Errorf("%d views with their user's plan, %d unknown: most should find their row", known, unknown)
	}
	t.Logf("%d views: %d enriched, %d without a row", known+unknown, known, unknown)
}
