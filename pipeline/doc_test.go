package pipeline

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The functions the package documentation promises exist and behave.
func TestDocumentedFunctions(t *testing.T) {
	exprs := []string{
		`"Ab".upperAscii() == "AB" && "Ab".lowerAscii() == "ab" && " x ".trim() == "x"`,
		`"a,b".split(",") == ["a", "b"] && "aXb".replace("X", "-") == "a-b" && "hello".substring(1, 3) == "el"`,
		`"hello".indexOf("l") == 2 && ["a", "b"].join("-") == "a-b" && "%d-%s".format([1, "x"]) == "1-x"`,
		`math.least(3, 1, 2) == 1 && math.greatest(1, 5) == 5 && math.round(2.5) == 3.0 && math.abs(-2) == 2`,
		`base64.encode(b"hi") == "aGk=" && base64.decode("aGk=") == b"hi"`,
		`lists.range(3) == [0, 1, 2] && [1, 2, 3].slice(1, 2) == [2] && [[1], [2]].flatten() == [1, 2] && [3, 1].sort() == [1, 3]`,
		`sets.contains([1, 2, 3], [2]) && sets.intersects([1], [1, 2])`,
		`event.?missing.orValue(7) == 7 && has(event.price) && !has(event.nope)`,
		"event.`user-id` == \"u1\"",
		`event.price > 0 && event.qty == 3.0 && 1u < 2.5`,
		`timestamp("2024-05-01T23:30:00Z").getHours() == 23`,
		`event.tags.all(t, t.size() == 1) && event.tags.exists(t, t == "b") && event.tags.map(t, t + "!") == ["a!", "b!"]`,
		`"abc".matches("^a.c$") && size(event.tags) == 2 && int("7") == 7 && double(event.qty) == 3.0 && string(1) == "1"`,
		`duration("1m") == duration("60s") && timestamp > timestamp("2000-01-01T00:00:00Z") && headers["h"] == "v"`,
	}
	v := &Vars{
		Event:     map[string]any{"price": 2.5, "qty": int64(3), "user-id": "u1", "tags": []any{"a", "b"}},
		Timestamp: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Headers:   map[string]string{"h": "v"},
	}
	for _, e := range compileExprs(t, exprs...) {
		t.Run(e.Text, func(t *testing.T) {
			ok, err := e.Bool(v)
			if err != nil || !ok {
				t.Fatalf("= %v, %v", ok, err)
			}
		})
	}
}

func Example() {
	p, err := Parse("pipeline.yaml", []byte(`
name: big-orders
kafka: {brokers: ["localhost:9092"]}
source: {topics: [orders]}
steps:
  - filter: event.qty * 10 >= 50
  - set: {total: event.price * double(event.qty)}
  - key: event.customer
sink: {topic: big-orders}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	event, _ := p.Source.Decode([]byte(`{"customer": 42, "qty": 6, "price": 2.5}`))
	v := &Vars{Event: event, Topic: "orders"}
	for _, st := range p.Steps {
		keep, err := st.Apply(v)
		if err != nil || !keep {
			fmt.Println("dropped:", err)
			return
		}
	}
	key, _ := p.Sink.KeyFor(v)
	out, _ := p.Sink.Encode(v.Event)
	fmt.Printf("%s %s\n", key, out)
	// Output: 42 {"customer":42,"price":2.5,"qty":6,"total":15.0}
}

func ExampleErrors() {
	_, err := Parse("pipeline.yaml", []byte(`name: demo
kafka: {brokers: ["localhost:9092"], balance: fair}
source: {topics: [in]}
steps:
  - filter: evnt.ok
sink: {topic: out}
`))
	fmt.Println(err)
	// Output:
	// pipeline.yaml:2:47: kafka.balance: "fair" is not one of sticky, cooperative-sticky, range, roundrobin
	// pipeline.yaml:5:13: steps[0].filter: undeclared reference to 'evnt' (did you mean 'event'?) in "evnt.ok"
}

// The example at the top of the package documentation is a valid pipeline.
func TestDocExampleLoads(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(src), "// # A pipeline file\n")
	if !ok {
		t.Fatal("doc.go has no \"A pipeline file\" section")
	}
	var yaml strings.Builder
	started := false
	for _, line := range strings.Split(after, "\n") {
		code, isCode := strings.CutPrefix(line, "//\t")
		if isCode {
			started = true
			yaml.WriteString(code + "\n")
		} else if started {
			break
		}
	}
	p, err := Parse("doc.go example", []byte(yaml.String()), envMap(map[string]string{"KAFKA_BROKERS": "k:9092"}))
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml.String())
	}
	if p.Spec.Name != "clicks-per-user" || len(p.Steps) != 3 || p.Steps[2].Aggregate == nil {
		t.Fatalf("example decoded as %+v", p.Spec)
	}
}
