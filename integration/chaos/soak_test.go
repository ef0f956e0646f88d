//go:build chaos

package chaos_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
)

// soakYAML is the bad-input soak's pipeline: name, brokers, group, source
// topic, state section, dead-letter topic, sink topic. Every step can fail
// at run time on a bad event: the event ID and time expressions, the
// filter (a missing or mistyped qty), the division.
const soakYAML = `name: %s
kafka:
  brokers: [%s]
  group: %s
source:
  topics: [%s]
  event_id: event.id
  event_time: timestamp(event.ts)
%sdedup: {enabled: true, ttl: 1h}
flush: {max_messages: 200, interval: 50ms, shutdown_timeout: 10s}
dead_letter: {topic: %s}
steps:
  - filter: event.qty > 0
  - set: {ratio: 100 / event.div}
sink:
  topic: %s
`

// soakClass is a kind of input event and what must become of it.
type soakClass struct {
	name string
	// fate: "out" (an output), "dlq" (a dead letter), "dropped" (filtered
	// or a duplicate: neither), "either" (an output or a dead letter,
	// exactly once: non-UTF-8 bytes, which a JSON decoder may replace).
	fate string
	// value makes the event's record value from its id and a good time.
	value func(id string, ts time.Time) []byte
}

var soakClasses = []soakClass{
	{"good", "out", func(id string, ts time.Time) []byte { return soakEvent(id, 2, 4, ts.Format(time.RFC3339Nano)) }},
	{"filtered", "dropped", func(id string, ts time.Time) []byte { return soakEvent(id, 0, 1, ts.Format(time.RFC3339)) }},
	{"malformed JSON", "dlq", func(id string, _ time.Time) []byte { return []byte(`{"id":"` + id + `","qty":`) }},
	{"null value", "dlq", func(string, time.Time) []byte { return nil }},
	{"empty value", "dlq", func(string, time.Time) []byte { return []byte{} }},
	{"not an object", "dlq", func(id string, _ time.Time) []byte { return []byte(`["` + id + `"]`) }},
	{"non-UTF-8", "either", func(id string, ts time.Time) []byte {
		return []byte(`{"id":"` + id + `","qty":1,"div":1,"ts":"` + ts.Format(time.RFC3339) + "\",\"s\":\"\xff\xfe\"}")
	}},
	{"wrong type", "dlq", func(id string, ts time.Time) []byte {
		return []byte(`{"id":"` + id + `","qty":"three","div":1,"ts":"` + ts.Format(time.RFC3339) + `"}`)
	}},
	{"missing field", "dlq", func(id string, ts time.Time) []byte {
		return []byte(`{"id":"` + id + `","div":1,"ts":"` + ts.Format(time.RFC3339) + `"}`)
	}},
	{"missing id", "dlq", func(_ string, ts time.Time) []byte {
		return []byte(`{"qty":1,"div":1,"ts":"` + ts.Format(time.RFC3339) + `"}`)
	}},
	{"division by zero", "dlq", func(id string, ts time.Time) []byte { return soakEvent(id, 1, 0, ts.Format(time.RFC3339)) }},
	{"bad time", "dlq", func(id string, _ time.Time) []byte { return soakEvent(id, 1, 1, "yesterday") }},
	{"year 9999", "dlq", func(id string, _ time.Time) []byte { return soakEvent(id, 1, 1, "9999-06-01T00:00:00Z") }},
	{"two days ahead", "dlq", func(id string, _ time.Time) []byte {
		return soakEvent(id, 1, 1, time.Now().Add(48*time.Hour).Format(time.RFC3339))
	}},
	{"before 1970", "out", func(id string, _ time.Time) []byte { return soakEvent(id, 1, 1, "1969-07-20T20:17:40Z") }},
}

func soakEvent(id string, qty, div int, ts string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"qty":%d,"div":%d,"ts":%q}`, id, qty, div, ts)
}

// soakInput is one record the soak produces, and where it landed.
type soakInput struct {
	class     string
	fate      string
	id        string
	key       string
	value     []byte
	partition int32
	offset    int64
}

// TestBadInputSoak feeds two workers a stream that mixes every class of
// bad input with good events — among them a 2 MB malformed event, too
// large for the dead-letter topic — and SIGKILLs each worker once
// mid-stream (restarting it): at the end every input is accounted for
// exactly once, by its offset or ID (outputs + dead letters + filtered +
// duplicates = inputs), every partition's committed offset is at its end
// (none stuck), no worker died by itself, and every log line is JSON.
func TestBadInputSoak(t *testing.T) {
	bin := buildWorker(t, t.TempDir())
	brokers := testenv.KafkaBrokers(t)
	be := redisBackend(testenv.RedisAddr(t), testenv.RedisPrefix(t))
	const parts = 4
	n := envInt(t, "EDDY_SOAK_EVENTS", 4000)

	k, err := newKafka(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	// The source allows 3 MB records; the dead-letter topic has the
	// broker's default (1 MB).
	in := testenv.Unique("soak-in")
	limit := strconv.Itoa(3 << 20)
	if err := k.admin.CreateTopic(in, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &limit}}, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.admin.DeleteTopic(in) })
	out, dlq, group := testenv.Topic(t, brokers, parts), testenv.Topic(t, brokers, parts), testenv.Group(t)
	logs := t.TempDir()
	if d := os.Getenv("EDDY_CHAOS_LOGS"); d != "" {
		logs = filepath.Join(d, "soak")
		if err := os.MkdirAll(logs, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(logs, "pipeline.yaml")
	yaml := fmt.Sprintf(soakYAML, testenv.Unique("soak"), strings.Join(brokers, ", "), group, in, be.yaml, dlq, out)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	// The plan: 60% good events, a few repeats of good ones (same ID and
	// key: dropped), the rest spread over the bad classes, and three 2 MB
	// malformed events.
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x50a4))
	ts := time.Now().Add(-time.Hour).Truncate(time.Second)
	var plan []*soakInput
	var goods []*soakInput
	for i := range n {
		id := fmt.Sprintf("e%d", i)
		key := fmt.Sprintf("k%d", rnd.IntN(97))
		c := soakClasses[0]
		switch r := rnd.Float64(); {
		case r < 0.03 && len(goods) > 0:
			g := goods[rnd.IntN(len(goods))]
			plan = append(plan, &soakInput{class: "repeat", fate: "dropped", id: g.id, key: g.key, value: g.value})
			continue
		case r >= 0.6:
			c = soakClasses[1+rnd.IntN(len(soakClasses)-1)]
		}
		in := &soakInput{class: c.name, fate: c.fate, id: id, key: key, value: c.value(id, ts.Add(time.Duration(i)*time.Millisecond))}
		if c.name == "good" {
			goods = append(goods, in)
		}
		plan = append(plan, in)
	}
	for i := range 3 {
		at := rnd.IntN(len(plan))
		big := &soakInput{class: "2 MB malformed", fate: "dlq", id: fmt.Sprintf("big%d", i), key: fmt.Sprintf("k%d", i),
			value: append([]byte(`{"id":"big`), make([]byte, 2<<20)...)}
		plan = append(plan[:at], append([]*soakInput{big}, plan[at:]...)...)
	}

	c := newCluster(t, bin, cfg, logs)
	c.start("w1", "w1")
	c.start("w2", "w2")
	waitFor(t, 90*time.Second, "the workers to claim all partitions", func() bool { return len(claimedBy(c.all)) == parts })

	pcfg := testenv.SaramaConfig()
	pcfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	pcfg.Producer.MaxMessageBytes = 4 << 20
	prod, err := sarama.NewSyncProducer(brokers, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	kills := map[int]string{len(plan) / 3: "w1", 2 * len(plan) / 3: "w2"}
	for i, p := range plan {
		if slot, ok := kills[i]; ok {
			c.kill(slot)
			time.Sleep(time.Second)
			c.start(slot, slot)
		}
		m := &sarama.ProducerMessage{Topic: in, Key: sarama.StringEncoder(p.key)}
		if p.value != nil {
			m.Value = sarama.ByteEncoder(p.value)
		}
		if p.partition, p.offset, err = prod.SendMessage(m); err != nil {
			t.Fatalf("producing input %d (%s): %v", i, p.class, err)
		}
		if i%200 == 0 {
			time.Sleep(20 * time.Millisecond) // about 10 s in all: the kills land mid-stream
		}
		if bad := c.unexpected(); len(bad) > 0 {
			t.Fatalf("worker died by itself:\n%s", strings.Join(bad, "\n"))
		}
	}

	// No partition stuck: the group's offsets reach the end of the input.
	ends := map[int32]int64{}
	for p := range int32(parts) {
		if ends[p], err = k.client.GetOffset(in, p, sarama.OffsetNewest); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Minute, "the group's offsets at the end of every partition", func() bool {
		got, err := k.committed(group, in, parts)
		if err != nil {
			return false
		}
		for p, e := range ends {
			if got[p] < e {
				return false
			}
		}
		return true
	}, func() string {
		got, err := k.committed(group, in, parts)
		return fmt.Sprintf("committed %v (%v), ends %v", got, err, ends)
	})
	if bad := c.unexpected(); len(bad) > 0 {
		t.Fatalf("worker died by itself:\n%s", strings.Join(bad, "\n"))
	}

	// Account for every input, by source offset (dead letters) or ID
	// (outputs); a repeated output must be identical.
	byOffset := map[string]*soakInput{}
	byID := map[string]*soakInput{}
	for _, p := range plan {
		byOffset[fmt.Sprintf("%d/%d", p.partition, p.offset)] = p
		if p.class != "repeat" {
			byID[p.id] = p
		}
	}
	seen := map[*soakInput]string{} // input -> where it came out
	outIDs := map[string]string{}
	read := func(topic string) []*sarama.ConsumerMessage {
		e, err := k.ends(topic, parts)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := k.readTopic(topic, e, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	header := func(m *sarama.ConsumerMessage, name string) string {
		for _, h := range m.Headers {
			if string(h.Key) == name {
				return string(h.Value)
			}
		}
		return ""
	}
	var problems []string
	for _, m := range read(out) {
		id := header(m, processor.IDHeader)
		if prev, dup := outIDs[id]; dup {
			if prev != string(m.Value) {
				problems = append(problems, fmt.Sprintf("output %s repeated with another value: %s, then %s", id, prev, m.Value))
			}
			continue
		}
		outIDs[id] = string(m.Value)
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			problems = append(problems, fmt.Sprintf("output %s is not JSON: %q", id, m.Value))
			continue
		}
		p := byID[ev.ID]
		switch {
		case p == nil:
			problems = append(problems, fmt.Sprintf("output %s of no input: %s", id, m.Value))
		case seen[p] != "":
			problems = append(problems, fmt.Sprintf("input %s (%s) came out twice: %s and as output %s", p.id, p.class, seen[p], id))
		default:
			seen[p] = "output " + id
		}
	}
	dlqIDs := map[string]bool{}
	var truncated int
	for _, m := range read(dlq) {
		id := header(m, processor.IDHeader)
		if dlqIDs[id] {
			continue // a replay's copy
		}
		dlqIDs[id] = true
		at := header(m, processor.HeaderPartition) + "/" + header(m, processor.HeaderOffset)
		p := byOffset[at]
		switch {
		case p == nil:
			problems = append(problems, fmt.Sprintf("dead letter %s of no input (source %s)", id, at))
			continue
		case seen[p] != "":
			problems = append(problems, fmt.Sprintf("input at %s (%s) came out twice: %s and as dead letter %s", at, p.class, seen[p], id))
			continue
		}
		seen[p] = "dead letter " + id
		if header(m, processor.HeaderError) == "" {
			problems = append(problems, fmt.Sprintf("dead letter %s (%s) has no error header", id, p.class))
		}
		if p.class == "2 MB malformed" {
			truncated++
			if got := header(m, processor.HeaderTruncatedSize); got != strconv.Itoa(len(p.value)) {
				problems = append(problems, fmt.Sprintf("the 2 MB dead letter %s says its original size is %q, want %d", id, got, len(p.value)))
			}
		}
	}
	counts := map[string]map[string]int{}
	for _, p := range plan {
		got := seen[p]
		fate := "dropped"
		switch {
		case strings.HasPrefix(got, "output"):
			fate = "out"
		case strings.HasPrefix(got, "dead letter"):
			fate = "dlq"
		}
		if counts[p.class] == nil {
			counts[p.class] = map[string]int{}
		}
		counts[p.class][fate]++
		if fate != p.fate && (p.fate != "either" || fate == "dropped") {
			problems = append(problems, fmt.Sprintf("input %s at %d/%d (%s) was %s, want %s", p.id, p.partition, p.offset, p.class, fate, p.fate))
		}
	}
	for i, p := range problems {
		if i == 20 {
			t.Errorf("... and %d more", len(problems)-20)
			break
		}
		t.Error(p)
	}
	if truncated != 3 {
		t.Errorf("%d of the 3 oversized events dead-lettered (cut)", truncated)
	}
	t.Logf("%d inputs, %d outputs, %d dead letters; by class: %v", len(plan), len(outIDs), len(dlqIDs), counts)

	// The kills landed mid-stream: a restarted worker took a partition
	// over from what the store held.
	resumed := 0
	for _, pr := range c.all[2:] {
		for _, l := range claims(pr.log) {
			if l.Epoch >= 2 && l.Stored >= 0 {
				resumed++
			}
		}
	}
	if resumed == 0 {
		t.Errorf("no partition was taken over mid-stream after the kills: the soak proves less than it says")
	}
	if errs := c.stopAll(30 * time.Second); len(errs) > 0 {
		t.Errorf("stopping the workers: %v", errs)
	}
	for _, pr := range c.all {
		for i, l := range readLog(pr.log) {
			if !json.Valid([]byte(l.raw)) {
				t.Errorf("%s line %d is not JSON: %s", pr.log, i+1, l.raw)
				break
			}
		}
	}
}
