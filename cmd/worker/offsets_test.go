package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/offsets"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb/backends"
)

func TestParseResetArgs(t *testing.T) {
	base := []string{"-c", "p.yaml", "--topic", "orders"}
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	ok := []struct {
		name  string
		args  []string
		to    offsets.To
		parts []int32
	}{
		{"earliest", []string{"--to-earliest"}, offsets.ToEarliest(), nil},
		{"latest with single dashes", []string{"-to-latest"}, offsets.ToLatest(), nil},
		{"time", []string{"--to-time", "2024-05-01T12:00:00Z"}, offsets.ToTime(at), nil},
		{"time with a zone and fraction", []string{"--to-time=2024-05-01T14:00:00.5+02:00"}, offsets.ToTime(at.Add(500 * time.Millisecond)), nil},
		{"offset zero counts as given", []string{"--to-offset", "0"}, offsets.ToOffset(0), nil},
		{"offset and partitions", []string{"--to-offset", "42", "--partitions", "0, 2,5"}, offsets.ToOffset(42), []int32{0, 2, 5}},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			r, err := parseResetArgs(append(slices.Clone(base), c.args...), &bytes.Buffer{})
			if err != nil {
				t.Fatalf("parseResetArgs: %v", err)
			}
			if r.to.String() != c.to.String() {
				t.Errorf("target %s, want %s", r.to, c.to)
			}
			if !slices.Equal(r.partitions, c.parts) || (r.partitions == nil) != (c.parts == nil) {
				t.Errorf("partitions %v, want %v", r.partitions, c.parts)
			}
			if r.path != "p.yaml" || r.topic != "orders" {
				t.Errorf("path %q topic %q", r.path, r.topic)
			}
		})
	}

	bad := []struct {
		name string
		args []string
		want string
	}{
		{"no pipeline", []string{"--topic", "orders", "--to-earliest"}, "-c pipeline.yaml is required"},
		{"no topic", []string{"-c", "p.yaml", "--to-earliest"}, "--topic is required"},
		{"no target", base, "one of --to-earliest, --to-latest, --to-time or --to-offset is required"},
		{"two targets", append(slices.Clone(base), "--to-earliest", "--to-latest"),
			"--to-earliest and --to-latest are exclusive: give exactly one --to-* flag"},
		{"three targets", append(slices.Clone(base), "--to-offset", "0", "--to-time", "2024-05-01T12:00:00Z", "--to-earliest"),
			"--to-earliest, --to-time and --to-offset are exclusive: give exactly one --to-* flag"},
		{"earliest=false", append(slices.Clone(base), "--to-earliest=false"), "--to-earliest=false: leave the flag out instead"},
		{"time without zone", append(slices.Clone(base), "--to-time", "2024-05-01T12:00:00"),
			`--to-time "2024-05-01T12:00:00": not an RFC 3339 time such as 2024-05-01T12:00:00Z`},
		{"time as a date", append(slices.Clone(base), "--to-time", "yesterday"),
			`--to-time "yesterday": not an RFC 3339 time such as 2024-05-01T12:00:00Z`},
		{"negative offset", append(slices.Clone(base), "--to-offset", "-3"), "--to-offset -3: must be >= 0"},
		{"partition not a number", append(slices.Clone(base), "--to-earliest", "--partitions", "1,x"),
			`--partitions "1,x": "x" is not a partition number`},
		{"negative partition", append(slices.Clone(base), "--to-earliest", "--partitions", "1,-2"),
			`--partitions "1,-2": partition -2 is negative`},
		{"partition twice", append(slices.Clone(base), "--to-earliest", "--partitions", "3,1,3"),
			`--partitions "3,1,3": partition 3 is listed twice`},
		{"empty entry", append(slices.Clone(base), "--to-earliest", "--partitions", "1,,2"),
			`--partitions "1,,2": empty entry`},
		{"empty list", append(slices.Clone(base), "--to-earliest", "--partitions", ""),
			`--partitions "": empty list`},
		{"partition beyond int32", append(slices.Clone(base), "--to-earliest", "--partitions", "4294967296"),
			`--partitions "4294967296": "4294967296" is not a partition number`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseResetArgs(c.args, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("parseResetArgs(%q): no error, want %q", c.args, c.want)
			}
			if err.Error() != c.want {
				t.Errorf("parseResetArgs(%q):\n got  %q\n want %q", c.args, err, c.want)
			}
		})
	}
}

// writePipeline writes a pipeline file to a temporary directory.
func writePipeline(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOffsetsCommandLineMistakes: each mistake exits 2 with a message
// naming the flag, before anything connects (the brokers do not exist).
func TestOffsetsCommandLineMistakes(t *testing.T) {
	path := writePipeline(t, "name: orders\nkafka: {brokers: [127.0.0.1:1]}\nsource: {topics: [orders, refunds]}\nsink: {topic: out}\n")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"offsets"}, "worker offsets show -c pipeline.yaml"},
		{"unknown subcommand", []string{"offsets", "rewind"}, `worker offsets: unknown subcommand "rewind"`},
		{"show without pipeline", []string{"offsets", "show"}, "worker offsets show: -c pipeline.yaml is required"},
		{"unknown flag", []string{"offsets", "reset", "--to-yesterday"}, "flag provided but not defined: -to-yesterday"},
		{"two targets", []string{"offsets", "reset", "-c", path, "--topic", "orders", "--to-latest", "--to-offset", "5"},
			"worker offsets reset: --to-latest and --to-offset are exclusive: give exactly one --to-* flag"},
		{"bad time", []string{"offsets", "reset", "-c", path, "--topic", "orders", "--to-time", "2024-02-30T00:00:00Z"},
			`worker offsets reset: --to-time "2024-02-30T00:00:00Z": not an RFC 3339 time such as 2024-05-01T12:00:00Z`},
		{"topic not a source", []string{"offsets", "reset", "-c", path, "--topic", "payments", "--to-earliest"},
			`worker offsets reset: --topic "payments" is not a topic pipeline "orders" reads (source.topics and internal topics: orders, refunds)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(c.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), c.want)
			}
		})
	}
}

// counter counts events per key in the partition's state.
type counter struct{}

func (counter) Process(ctx context.Context, rec *processor.Record, _ processor.Emitter, st processor.State) error {
	v, _, err := st.Get(ctx, rec.Key)
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(string(v))
	st.Put(rec.Key, []byte(strconv.Itoa(n+1)), 0)
	return nil
}

// TestOffsetsCommandsEndToEnd runs a pipeline with Redis, then MariaDB
// (singlestore backend, mysql dialect) state over a real Kafka topic, then
// drives `worker offsets show` and `reset` as a user would: show reports
// the committed offsets and the store's watermarks, --dry-run changes
// nothing, and reset --to-earliest moves the chosen partitions back to 0
// and says that the replay skips everything.
func TestOffsetsCommandsEndToEnd(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		offsetsEndToEnd(t, "redis", fmt.Sprintf(`{backend: redis, redis: {addrs: [%s], key_prefix: "%s"}}`,
			testenv.RedisAddr(t), testenv.RedisPrefix(t)))
	})
	t.Run("singlestore", func(t *testing.T) {
		offsetsEndToEnd(t, "singlestore", fmt.Sprintf(`{backend: singlestore, singlestore: {dsn: "%s", dialect: mysql}}`,
			testenv.MySQL(t)))
	})
}

func offsetsEndToEnd(t *testing.T, backend, state string) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Topic(t, brokers, 3)
	group := testenv.Group(t)
	path := writePipeline(t, fmt.Sprintf(`
name: %s
kafka: {brokers: [%s], version: 3.6.0}
source: {topics: [%s]}
state: %s
flush: {max_messages: 50, interval: 50ms}
steps:
  - processor: {name: count}
`, testenv.Unique("p"), strings.Join(brokers, ","), topic, state))

	// 30 messages on each partition.
	cfg := testenv.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for p := range int32(3) {
		for i := range 30 {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p,
				Key: sarama.StringEncoder(fmt.Sprint("k", i%4)), Value: sarama.StringEncoder(`{}`)})
		}
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	_ = prod.Close()

	// Run the pipeline with the store the commands will open, until every
	// partition's watermark is at its last offset.
	p, err := pipeline.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := backends.Open(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w, err := processor.New(p, processor.WithStore(store), processor.WithGroup(group),
		processor.WithCommitInterval(100*time.Millisecond),
		processor.WithProcessor("count", func(map[string]any) (processor.Processor, error) { return counter{}, nil }))
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	showJSON := func() offsets.Status {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run([]string{"offsets", "show", "-c", path, "--group", group, "--json"}, &stdout, &stderr); code != 0 {
			t.Fatalf("offsets show: exit %d: %s", code, stderr.String())
		}
		var st offsets.Status
		if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
			t.Fatalf("offsets show --json: %v\n%s", err, stdout.String())
		}
		return st
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		if w.Stats().In >= 90 {
			st := showJSON()
			all := len(st.Partitions) == 3
			for _, ps := range st.Partitions {
				all = all && ps.Watermark != nil && ps.Watermark.Offset == 29
			}
			if all {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not process the 90 messages in time: %+v", w.Stats())
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}

	// show, as JSON: the group is empty, everything committed and in state.
	st := showJSON()
	if st.Group.ID != group || st.Group.Active() || len(st.Group.Members) != 0 {
		t.Errorf("group %+v, want %s, inactive, no members", st.Group, group)
	}
	for _, ps := range st.Partitions {
		if ps.Topic != topic || ps.LogStart != 0 || ps.LogEnd != 30 || ps.Committed != 30 ||
			ps.Watermark == nil || ps.Watermark.Offset != 29 || ps.Watermark.Epoch < 1 || ps.Lag != 0 || len(ps.Warnings) != 0 {
			t.Errorf("partition %+v (watermark %+v): want log 0-30, committed 30, W 29, lag 0, no warnings", ps, ps.Watermark)
		}
	}
	// show, as a table.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"offsets", "show", "-c", path, "--group", group}, &stdout, &stderr); code != 0 {
		t.Fatalf("offsets show: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		"group " + group + ": Empty, no live members",
		"watermarks: from the " + backend + " store",
		"TOPIC  ",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("show output does not contain %q:\n%s", want, stdout.String())
		}
	}
	t.Logf("worker offsets show:\n%s", stdout.String())
	var rows []string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "TOPIC" || f[0] == topic) {
			rows = append(rows, strings.Join(f, " "))
		}
	}
	wantRows := []string{"TOPIC PARTITION LOG-START LOG-END COMMITTED W EPOCH LAG"}
	for p := range 3 {
		wantRows = append(wantRows, fmt.Sprintf("%s %d 0 30 30 29 %d 0", topic, p, st.Partitions[p].Watermark.Epoch))
	}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("show table rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(wantRows, "\n"))
	}

	// reset --dry-run: a plan, and nothing changes.
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"offsets", "reset", "-c", path, "--group", group, "--topic", topic, "--to-earliest", "--dry-run"}, &stdout, &stderr); code != 0 {
		t.Fatalf("offsets reset --dry-run: exit %d: %s", code, stderr.String())
	}
	t.Logf("worker offsets reset --dry-run:\n%s", stdout.String())
	for _, want := range []string{"reset " + topic + " to earliest:", "30 -> 0", "skip 0-29 (30 already in state)",
		"nothing to process until new messages arrive", "dry run: nothing changed"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("dry run output does not contain %q:\n%s", want, stdout.String())
		}
	}
	for _, ps := range showJSON().Partitions {
		if ps.Committed != 30 {
			t.Errorf("after --dry-run: %s/%d committed %d, want 30 (unchanged)", ps.Topic, ps.Partition, ps.Committed)
		}
	}

	// reset --to-earliest on partitions 0 and 2.
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"offsets", "reset", "-c", path, "--group", group, "--topic", topic, "--to-earliest", "--partitions", "2,0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("offsets reset: exit %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	t.Logf("worker offsets reset --partitions 2,0:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "committed: 2 partition(s) of "+topic) {
		t.Errorf("reset output:\n%s", stdout.String())
	}
	for _, ps := range showJSON().Partitions {
		want := int64(0)
		if ps.Partition == 1 {
			want = 30
		}
		if ps.Committed != want {
			t.Errorf("after reset of partitions 0 and 2: %s/%d committed %d, want %d", ps.Topic, ps.Partition, ps.Committed, want)
		}
		if ps.Lag != 0 {
			t.Errorf("after reset: %s/%d lag %d, want 0: everything up to W is in state", ps.Topic, ps.Partition, ps.Lag)
		}
	}

	// A partition the topic does not have.
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"offsets", "reset", "-c", path, "--group", group, "--topic", topic, "--to-latest", "--partitions", "7"}, &stdout, &stderr)
	if want := fmt.Sprintf("worker: --partitions: offsets: topic %s has no partition 7 (it has 3: 0-2)", topic); code != 1 || !strings.Contains(stderr.String(), want) {
		t.Errorf("reset --partitions 7: exit %d, stderr %q, want 1 and %q", code, stderr.String(), want)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test ran out of time")
	}
}

// idleMember is a consumer group member that claims partitions and reads
// nothing.
type idleMember struct{ ids chan string }

func (m idleMember) Setup(s sarama.ConsumerGroupSession) error {
	select {
	case m.ids <- s.MemberID():
	default:
	}
	return nil
}
func (idleMember) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (idleMember) ConsumeClaim(_ sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for range c.Messages() {
	}
	return nil
}

// TestOffsetsResetCommandWithLiveMembers: with a member in the group,
// `reset` exits 1 naming the member and explaining --force, and changes
// nothing; with --force it resets. The memory backend's watermarks are
// reported as unknown.
func TestOffsetsResetCommandWithLiveMembers(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Topic(t, brokers, 1)
	group := testenv.Group(t)
	path := writePipeline(t, fmt.Sprintf("name: %s\nkafka: {brokers: [%s]}\nsource: {topics: [%s]}\nsink: {topic: out}\n",
		testenv.Unique("p"), strings.Join(brokers, ","), topic))

	cfg := testenv.SaramaConfig()
	cfg.ClientID = "idle-member"
	cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	m := idleMember{ids: make(chan string, 1)}
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			_ = cg.Consume(ctx, []string{topic}, m)
		}
	}()
	defer func() { cancel(); <-stopped; _ = cg.Close() }()
	var id string
	select {
	case id = <-m.ids:
	case <-time.After(20 * time.Second):
		t.Fatal("the member did not join")
	}

	args := []string{"offsets", "reset", "-c", path, "--group", group, "--topic", topic, "--to-latest"}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 1 {
		t.Fatalf("reset with a live member: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("refused:\n%s%s", stdout.String(), stderr.String())
	for _, want := range []string{id, "client idle-member", "stop the workers first", "Or use --force: it removes these members"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr.String())
		}
	}
	for _, want := range []string{"refused: nothing changed", "watermarks: unknown: state.backend is memory", "- -> 0"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout does not contain %q:\n%s", want, stdout.String())
		}
	}

	// --json --dry-run prints the plan as JSON and changes nothing.
	stdout.Reset()
	stderr.Reset()
	if code := run(append(slices.Clone(args), "--dry-run", "--json"), &stdout, &stderr); code != 0 {
		t.Fatalf("--dry-run --json: exit %d: %s", code, stderr.String())
	}
	var out struct {
		Plan struct {
			Group offsets.Group `json:"group"`
			To    string        `json:"to"`
			Moves []struct {
				Partition int32 `json:"partition"`
				Committed int64 `json:"committed"`
				New       int64 `json:"new"`
			} `json:"moves"`
		} `json:"plan"`
		DryRun  bool             `json:"dry_run"`
		Applied *offsets.Applied `json:"applied"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout.String())
	}
	if !out.DryRun || out.Applied != nil || out.Plan.To != "latest" || len(out.Plan.Moves) != 1 ||
		out.Plan.Moves[0].Committed != -1 || out.Plan.Group.State != "Stable" || len(out.Plan.Group.Members) != 1 {
		t.Errorf("--dry-run --json: %+v", out)
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(append(slices.Clone(args), "--force"), &stdout, &stderr); code != 0 {
		t.Fatalf("reset --force: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "removed 1 member(s) from group "+group+" (--force)") {
		t.Errorf("--force output:\n%s", stdout.String())
	}
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		t.Fatal(err)
	}
	if b := resp.GetBlock(topic, 0); b == nil || b.Offset != 0 {
		t.Errorf("after --force: committed %+v, want offset 0 (the log end of an empty partition)", b)
	}
}
