package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/backends"
	"github.com/eddy-streams/eddy/statedb/memory"
)

func nopFactory(map[string]any) (Processor, error) {
	return ProcessorFunc(func(_ context.Context, r *Record, out Emitter, _ State) error { out.Emit(r); return nil }), nil
}

// TestProcessorsAreRegisteredOnce: a pipeline loaded without naming its
// processors runs with the ones given to New (one registration), and a
// step naming another gets an error at its line listing the registered
// ones (or saying none are, and how custom processors are run).
func TestProcessorsAreRegisteredOnce(t *testing.T) {
	const yaml = `name: reg
kafka: {brokers: [k:9092]}
source: {topics: [in]}
steps:
  - processor: {name: enrich}
  - processor: {name: geo}
sink: {topic: out}
`
	p, err := pipeline.Parse("reg.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		regs []string
		want []string // lines of the error; none: no error
	}{
		{"all registered", []string{"enrich", "geo"}, nil},
		{"one unknown", []string{"enrich", "audit"}, []string{
			`reg.yaml:6: steps[1].processor.name: unknown processor "geo" (registered: audit, enrich)`,
		}},
		{"none registered", nil, []string{
			`reg.yaml:5: steps[0].processor.name: unknown processor "enrich" (none are registered: custom processors run in a Go program that registers them with processor.WithProcessor, see examples/custom-processor)`,
			`reg.yaml:6: steps[1].processor.name: unknown processor "geo" (none are registered: custom processors run in a Go program that registers them with processor.WithProcessor, see examples/custom-processor)`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := []Option{WithStore(memory.New())}
			for _, n := range c.regs {
				opts = append(opts, WithProcessor(n, nopFactory))
			}
			_, err := New(p, opts...)
			if c.want == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New: no error")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("New's error:\n%s\nwant:\n%s", err, strings.Join(c.want, "\n"))
			}
			var pe *pipeline.Error
			if !errors.As(err, &pe) || !strings.HasSuffix(pe.Field, ".processor.name") {
				t.Errorf("New's error is not a *pipeline.Error at a step's name: %#v", err)
			}
		})
	}
}

// TestWorkerOpensThePipelinesStore: without WithStore the Worker runs on
// the store the pipeline's state section names (here Redis), opened when
// Run starts and closed when it returns.
func TestWorkerOpensThePipelinesStore(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	p, err := pipeline.Parse("store.yaml", []byte(fmt.Sprintf(`
name: opens-store
kafka: {brokers: [%s]}
source: {topics: [in]}
state: {backend: redis, redis: {addrs: [%s], key_prefix: %q}}
sink: {topic: out}
`, brokers[0], testenv.RedisAddr(t), testenv.RedisPrefix(t))))
	if err != nil {
		t.Fatal(err)
	}
	outputs := make(chan *Record, 1)
	w, err := New(p, WithLogger(zaptest.NewLogger(t)), WithOutputHook(func(r *Record) { outputs <- r }))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sarama.NewSyncProducer(brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "in", Value: sarama.StringEncoder(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	_ = prod.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-outputs:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-ctx.Done():
		t.Fatal("no output")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	// The batch was committed to Redis, under the pipeline's namespace.
	s, err := backends.Open(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.(statedb.Inspector).Inspect(context.Background(), statedb.Partition{Topic: "in", Partition: 0})
	if err != nil {
		t.Fatal(err)
	}
	if c.Offset != 0 {
		t.Errorf("the pipeline's Redis holds offset watermark %d for in/0, want 0", c.Offset)
	}
	// Run closed the store it opened.
	if h := w.Health(context.Background()); !strings.Contains(strings.Join(h.Reasons, "; "), "state store unreachable") {
		t.Errorf("Health after Run: %q, want the store closed", h.Reasons)
	}
}

// TestWorkerStoreErrors: a store the pipeline names that cannot be opened
// fails Run at once, naming the state section.
func TestWorkerStoreErrors(t *testing.T) {
	p := mustParse(t, `
name: no-store
kafka: {brokers: ["127.0.0.1:1"]}
source: {topics: [in]}
state: {backend: redis, redis: {addrs: ["127.0.0.1:1"]}}
sink: {topic: out}
`)
	w, err := New(p, WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Run(ctx); err == nil || !strings.Contains(err.Error(), "state.redis") {
		t.Errorf("Run: %v, want an error naming state.redis", err)
	}
	if h := w.Health(ctx); h.Ready {
		t.Errorf("Health: ready with no store")
	}
}

// TestWithStoreOverridesThePipelinesStore: a store given with WithStore
// replaces the one the pipeline names, and the Worker says so.
func TestWithStoreOverridesThePipelinesStore(t *testing.T) {
	for _, c := range []struct {
		name, state, warn string
	}{
		{"redis", `{backend: redis, redis: {addrs: ["r:6379"]}}`, "state: the pipeline names redis; WithStore overrides it with *memory.Store"},
		{"singlestore", `{backend: singlestore, singlestore: {dsn: "u:p@tcp(db:3306)/eddy"}}`, "state: the pipeline names singlestore; WithStore overrides it with *memory.Store"},
		{"memory", `{backend: memory}`, ""},
		{"none", `{}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, `
name: override
kafka: {brokers: [k:9092]}
source: {topics: [in]}
state: `+c.state+`
sink: {topic: out}
`)
			core, logs := observer.New(zapcore.InfoLevel)
			if _, err := New(p, WithStore(memory.New()), WithLogger(zap.New(core))); err != nil {
				t.Fatal(err)
			}
			var warned []string
			for _, e := range logs.FilterLevelExact(zapcore.WarnLevel).All() {
				warned = append(warned, e.Message)
			}
			if want := []string{c.warn}; c.warn == "" && len(warned) > 0 || c.warn != "" && !slices.Equal(warned, want) {
				t.Errorf("warnings %q, want %q", warned, c.warn)
			}
		})
	}
}

// TestDefaultLoggerWritesJSONLines: a Worker given no logger writes the
// JSON lines worker run writes, at info and above, to stderr (here the
// writer standing for it); WithLogger(zap.NewNop()) silences it.
func TestDefaultLoggerWritesJSONLines(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	p := mustParse(t, `
name: default-log
kafka: {brokers: [k:9092]}
source: {topics: [in]}
state: {backend: redis, redis: {addrs: ["r:6379"]}}
sink: {topic: out}
`)
	t.Run("default", func(t *testing.T) {
		var out syncBuffer
		w, err := New(p, WithStore(memory.New()), WithBrokers(cluster.ListenAddrs()...), withLogOutput(&out))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		for !strings.Contains(out.String(), "worker started") && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		byMsg := map[string]map[string]any{}
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			msg, _ := m["msg"].(string)
			byMsg[msg] = m
		}
		for msg, level := range map[string]string{
			"state: the pipeline names redis; WithStore overrides it with *memory.Store": "warn",
			"worker started": "info",
		} {
			m, ok := byMsg[msg]
			if !ok {
				t.Errorf("no line %q in:\n%s", msg, out.String())
				continue
			}
			if m["level"] != level || m["pipeline"] != "default-log" {
				t.Errorf("line %q: level %v, pipeline %v; want %s, default-log", msg, m["level"], m["pipeline"], level)
			}
			if ts, _ := m["ts"].(string); !strings.Contains(ts, "T") {
				t.Errorf("line %q: ts %v, want an ISO 8601 time", msg, m["ts"])
			}
		}
	})
	t.Run("nop", func(t *testing.T) {
		var out syncBuffer
		if _, err := New(p, WithStore(memory.New()), WithLogger(zap.NewNop()), withLogOutput(&out)); err != nil {
			t.Fatal(err)
		}
		if out.String() != "" {
			t.Errorf("WithLogger(zap.NewNop()) logged:\n%s", out.String())
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a logger writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
