package examples

import (
	"embed"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

//go:embed */pipeline.yaml cascade/*.yaml
var files embed.FS

// Event is one generated source message.
type Event struct {
	Topic string
	Key   string
	Value []byte // nil: a tombstone (a table's delete)
}

// Generator makes a stream of realistic events for one example. It is not
// safe for concurrent use.
type Generator interface {
	// Next returns the next event, stamped with the given time.
	Next(now time.Time) Event
}

// Example is a runnable pipeline, or a cascade of pipelines, with its data
// generator.
type Example struct {
	Name        string
	Description string
	// Pipelines are the example's pipeline files, upstream first: the
	// generator feeds the first one's source, and in a cascade each later
	// stage reads what an earlier one wrote. Most examples have one,
	// examples/<name>/pipeline.yaml.
	Pipelines []File
	// New makes a generator seeded with seed.
	New func(seed uint64) Generator

	// stages are the file names in the example's folder, upstream first;
	// none means pipeline.yaml.
	stages []string
}

// File is one pipeline file of an example.
type File struct {
	// Path is the file's path from the repository's root, such as
	// examples/clicks/pipeline.yaml.
	Path string
	// Data is the file's content.
	Data []byte
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
		"payments": {
			Name:        "payments",
			Description: "orders joined with their payments within 10 minutes (left join: orders never paid); the generator's clock runs 120x the wall clock",
			New:         func(seed uint64) Generator { return newPayments(seed) },
		},
		"profiles": {
			Name:        "profiles",
			Description: "page views enriched from a table of user profiles (updated and deleted mid-stream) with a lookup",
			New:         func(seed uint64) Generator { return newProfiles(seed) },
		},
		"cascade": {
			Name:        "cascade",
			Description: "two pipelines joined by a topic: orders re-keyed by customer and enriched (stage 1), then per-customer totals in 5s windows (stage 2)",
			New:         func(seed uint64) Generator { return newCascadeOrders(seed) },
			stages:      []string{"enrich.yaml", "aggregate.yaml"},
		},
	}
}

// Default is the example `worker dev` runs without -c or -example.
const Default = "clicks"

// Get returns the named example.
func Get(name string) (Example, error) {
	ex, ok := catalog()[name]
	if !ok {
		return Example{}, fmt.Errorf("no example %q (have %v)", name, Names())
	}
	stages := ex.stages
	if len(stages) == 0 {
		stages = []string{"pipeline.yaml"}
	}
	for _, f := range stages {
		b, err := files.ReadFile(name + "/" + f)
		if err != nil {
			return Example{}, fmt.Errorf("example %q: %w", name, err)
		}
		ex.Pipelines = append(ex.Pipelines, File{Path: "examples/" + name + "/" + f, Data: b})
	}
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
