package examples

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

var pages = []string{"/", "/search", "/product/42", "/product/7", "/cart", "/checkout", "/account", "/help", "/blog/streams", "/pricing"}
var referrers = []string{"google", "newsletter", "direct", "partner", "social"}

// clicks generates page views keyed by page (co-partitioned with the
// aggregate), from 300 visitors; about one view in 100 is sent twice (the
// idempotency store drops it) and one in 200 arrives 3 seconds late.
type clicks struct {
	r    *rand.Rand
	n    int
	last *Event
}

func (g *clicks) Next(now time.Time) Event {
	if g.last != nil && g.r.IntN(100) == 0 {
		return *g.last
	}
	g.n++
	at := now
	if g.r.IntN(200) == 0 {
		at = now.Add(-3 * time.Second) // a late arrival: to clicks-late
	}
	page := pages[g.r.IntN(len(pages))]
	b, _ := json.Marshal(map[string]any{
		"click_id":    fmt.Sprintf("c-%d", g.n),
		"user_id":     fmt.Sprintf("v-%d", g.r.IntN(300)),
		"page":        page,
		"duration_ms": 200 + g.r.IntN(20_000),
		"referrer":    referrers[g.r.IntN(len(referrers))],
		"ts":          at.UTC().Format(time.RFC3339Nano),
	})
	ev := Event{Topic: "clicks", Key: page, Value: b}
	g.last = &ev
	return ev
}

// sensors generates temperature readings from 12 devices, each following
// its own slow sine wave with noise; one reading in 500 is a glitch
// (filtered out).
type sensors struct{ r *rand.Rand }

func (g *sensors) Next(now time.Time) Event {
	d := g.r.IntN(12)
	c := 20 + 8*math.Sin(float64(now.UnixMilli())/60_000+float64(d)) + g.r.NormFloat64()*0.5
	if g.r.IntN(500) == 0 {
		c = 999 // a glitch
	}
	device := fmt.Sprintf("dev-%02d", d)
	b, _ := json.Marshal(map[string]any{
		"device":  device,
		"celsius": math.Round(c*100) / 100,
		"ts_ms":   now.UnixMilli(),
	})
	return Event{Topic: "readings", Key: device, Value: b}
}

// sessionsGen generates app events from 40 users who are active in bursts:
// a user acts a few times a second for a while, then goes quiet.
type sessionsGen struct {
	r      *rand.Rand
	active map[int]time.Time // user -> end of the current burst
}

var screens = []string{"home", "feed", "profile", "settings", "search", "detail", "compose"}

func (g *sessionsGen) Next(now time.Time) Event {
	var u int
	for {
		u = g.r.IntN(40)
		end, ok := g.active[u]
		if ok && now.Before(end) {
			break
		}
		if !ok || now.After(end.Add(6*time.Second)) { // quiet long enough: a new burst
			g.active[u] = now.Add(time.Duration(1+g.r.IntN(8)) * time.Second)
			break
		}
	}
	user := fmt.Sprintf("user-%02d", u)
	b, _ := json.Marshal(map[string]any{
		"user":   user,
		"screen": screens[g.r.IntN(len(screens))],
		"at":     now.UTC().Format(time.RFC3339Nano),
	})
	return Event{Topic: "app-events", Key: user, Value: b}
}
