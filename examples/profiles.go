package examples

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// profilesGen generates the profiles example's streams: page views on
// page-views (keyed by view id) by 300 users, and the users' profiles on
// user-profiles (keyed by user id). Each user's profile is created before
// the user's first view; then one event in 25 is a profile change (a new
// plan) and one in 200 closes an account (a tombstone: the row is
// deleted, and the user's later views have no profile until the account
// is opened again). One view in 50 is by a user who never had a profile.
type profilesGen struct {
	r      *rand.Rand
	n      int
	exists map[int]bool
}

func newProfiles(seed uint64) *profilesGen {
	return &profilesGen{r: newRand(seed), exists: map[int]bool{}}
}

var plans = []string{"free", "plus", "pro", "team"}

func (g *profilesGen) profile(u int) Event {
	b, _ := json.Marshal(map[string]any{
		"user_id": fmt.Sprintf("u-%03d", u),
		"plan":    plans[g.r.IntN(len(plans))],
		"country": countries[g.r.IntN(len(countries))],
	})
	g.exists[u] = true
	return Event{Topic: "user-profiles", Key: fmt.Sprintf("u-%03d", u), Value: b}
}

func (g *profilesGen) Next(now time.Time) Event {
	u := g.r.IntN(300)
	switch k := g.r.IntN(200); {
	case !g.exists[u] && k < 190:
		return g.profile(u) // created before the first view
	case k < 8:
		return g.profile(u) // a plan change
	case k == 8 && g.exists[u]:
		delete(g.exists, u)
		return Event{Topic: "user-profiles", Key: fmt.Sprintf("u-%03d", u)} // a tombstone
	}
	g.n++
	user := fmt.Sprintf("u-%03d", u)
	if g.r.IntN(50) == 0 {
		user = fmt.Sprintf("guest-%d", g.r.IntN(1000))
	}
	id := fmt.Sprintf("v-%d", g.n)
	b, _ := json.Marshal(map[string]any{
		"view_id": id,
		"user_id": user,
		"page":    fmt.Sprintf("/p/%d", g.r.IntN(40)),
		"ts":      now.UTC().Format(time.RFC3339Nano),
	})
	return Event{Topic: "page-views", Key: id, Value: b}
}
