package examples

import (
	"embed"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

//go:embed */pipeline.yaml
var files embed.FS

// Event is one generated source message.
type Event struct {
	Topic string
	Key   string
	Value []byte
}

// Generator makes a stream of realistic events for one example. It is not
// safe for concurrent use.
type Generator interface {
	// Next returns the next event, stamped with the given time.
	Next(now time.Time) Event
}

// Example is a runnable pipeline with its data generator.
type Example struct {
	Name        string
	Description string
	// Pipeline is the example's pipeline.yaml.
	Pipeline []byte
	// New makes a generator seeded with seed.
	New func(seed uint64) Generator
}

// catalog lists the examples; a function, not a package variable, so no
// caller can change it.
func catalog() map[string]Example {
	return map[string]Example{
		"clicks": {
			Name:        "clicks",
			Description: "page views per page in 5s tumbling windows: views, distinct visitors, mean time on page",
			New:         func(seed uint64) Generator { return &clicks{r: newRand(seed)} },
		},
		"sensors": {
			Name:        "sensors",
			Description: "per-device temperature over 30s hopping windows every 10s, updated live (on_update)",
			New:         func(seed uint64) Generator { return &sensors{r: newRand(seed)} },
		},
		"sessions": {
			Name:        "sessions",
			Description: "user activity sessions closed after 4s of inactivity",
			New:         func(seed uint64) Generator { return &sessionsGen{r: newRand(seed), active: map[int]time.Time{}} },
		},
		"orders": {
			Name:        "orders",
			Description: "filter, enrich and re-key web-shop orders; duplicates dropped, bad events dead-lettered",
			New:         func(seed uint64) Generator { return newOrders(seed) },
		},
	}
}

// Default is the example `worker dev` runs without -c.
const Default = "clicks"

// Get returns the named example.
func Get(name string) (Example, error) {
	ex, ok := catalog()[name]
	if !ok {
		return Example{}, fmt.Errorf("no example %q (have %v)", name, Names())
	}
	b, err := files.ReadFile(name + "/pipeline.yaml")
	if err != nil {
		return Example{}, fmt.Errorf("example %q: %w", name, err)
	}
	ex.Pipeline = b
	return ex, nil
}

// Names lists the examples, sorted.
func Names() []string {
	var ns []string
	for n := range catalog() {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
