package deploy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/go-sql-driver/mysql"

	"github.com/eddy-streams/eddy/pipeline"
)

// loadCompose loads docker-compose.yml as `docker compose` would: schema
// validation, ${VAR} interpolation from env (and nothing else from this
// process's environment), normalization, consistency checks and profiles.
func loadCompose(t *testing.T, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	file := filepath.Join(root, "docker-compose.yml")
	data := readFile(t, "docker-compose.yml")
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: file, Content: data}},
		Environment: types.Mapping(env),
	}, func(o *loader.Options) {
		o.SetProjectName("eddy", true)
		o.Profiles = profiles
		o.ResolvePaths = true
	})
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no enabled service %q (have %v)", name, p.ServiceNames())
	}
	return s
}

// environment resolves a service's environment (unset entries left out).
func environment(s types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

func TestComposeServices(t *testing.T) {
	for _, tc := range []struct {
		name     string
		profiles []string
		enabled  []string
		disabled []string
	}{
		// `docker compose up` without a license key: no SingleStore.
		{"default", nil, []string{"kafka", "kafka-init", "producer", "redis", "results", "worker"}, []string{"singlestore"}},
		{"singlestore profile", []string{"singlestore"}, []string{"kafka", "kafka-init", "producer", "redis", "results", "singlestore", "worker"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := loadCompose(t, nil, tc.profiles...)
			got := p.ServiceNames()
			sort.Strings(got)
			if !equalStrings(got, tc.enabled) {
				t.Errorf("enabled services %v; want %v", got, tc.enabled)
			}
			var dis []string
			for n := range p.DisabledServices {
				dis = append(dis, n)
			}
			sort.Strings(dis)
			if !equalStrings(dis, tc.disabled) {
				t.Errorf("disabled services %v; want %v", dis, tc.disabled)
			}
		})
	}
}

func TestComposeHealthchecks(t *testing.T) {
	p := loadCompose(t, nil, "singlestore")
	for _, name := range []string{"kafka", "redis", "singlestore"} {
		t.Run(name, func(t *testing.T) {
			hc := service(t, p, name).HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) < 2 || (hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL") {
				t.Fatalf("%s: healthcheck %+v; want a CMD or CMD-SHELL test", name, hc)
			}
			if hc.Interval == nil || hc.Retries == nil || hc.Timeout == nil {
				t.Errorf("%s: healthcheck without interval, timeout or retries: %+v", name, hc)
			}
		})
	}
	// Every service_healthy dependency must have a healthcheck, or
	// `docker compose up` waits forever; every dependency must exist.
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			ds, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on %s, which does not exist", name, dep)
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if ds.HealthCheck == nil || ds.HealthCheck.Disable {
					t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if ds.Restart != "" && ds.Restart != "no" {
					t.Errorf("%s waits for %s to complete, which restarts (%s)", name, dep, ds.Restart)
				}
			}
		}
	}
}

func TestComposeKafkaAndRedis(t *testing.T) {
	p := loadCompose(t, nil)
	t.Run("kafka is a single KRaft node", func(t *testing.T) {
		k := service(t, p, "kafka")
		if k.Image != "apache/kafka:3.9.1" {
			t.Errorf("kafka image %s; want apache/kafka:3.9.1", k.Image)
		}
		env := environment(k)
		roles := strings.Split(env["KAFKA_PROCESS_ROLES"], ",")
		sort.Strings(roles)
		if !equalStrings(roles, []string{"broker", "controller"}) {
			t.Errorf("KAFKA_PROCESS_ROLES %q; want broker,controller (KRaft, one node)", env["KAFKA_PROCESS_ROLES"])
		}
		if env["CLUSTER_ID"] == "" || env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "" {
			t.Error("KRaft needs CLUSTER_ID and KAFKA_CONTROLLER_QUORUM_VOTERS")
		}
		for _, k := range []string{"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"} {
			if env[k] != "1" {
				t.Errorf("%s=%q; want 1 on a single broker", k, env[k])
			}
		}
		if !strings.Contains(env["KAFKA_ADVERTISED_LISTENERS"], "PLAINTEXT://kafka:9092") {
			t.Errorf("KAFKA_ADVERTISED_LISTENERS %q does not advertise kafka:9092 to the compose network", env["KAFKA_ADVERTISED_LISTENERS"])
		}
	})
	t.Run("redis persists and never evicts", func(t *testing.T) {
		r := service(t, p, "redis")
		if !strings.HasPrefix(r.Image, "redis:7") {
			t.Errorf("redis image %s; want redis:7", r.Image)
		}
		cmd := " " + strings.Join(r.Command, " ") + " "
		for _, want := range []string{" --appendonly yes ", " --maxmemory-policy noeviction "} {
			if !strings.Contains(cmd, want) {
				t.Errorf("redis command %q lacks %q", cmd, strings.TrimSpace(want))
			}
		}
	})
	t.Run("kafka-init creates topics and exits", func(t *testing.T) {
		ki := service(t, p, "kafka-init")
		cmd := strings.Join(ki.Command, " ")
		for _, want := range []string{"kafka-topics.sh", "--create", "--if-not-exists", "$TOPICS", "$PARTITIONS"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("kafka-init command lacks %q: %s", want, cmd)
			}
		}
		if n, err := strconv.Atoi(environment(ki)["PARTITIONS"]); err != nil || n != 6 {
			t.Errorf("kafka-init PARTITIONS=%q; want 6", environment(ki)["PARTITIONS"])
		}
		if d := ki.DependsOn["kafka"]; d.Condition != types.ServiceConditionHealthy {
			t.Errorf("kafka-init depends on kafka with %q; want service_healthy", d.Condition)
		}
	})
}

func TestComposeWorker(t *testing.T) {
	p := loadCompose(t, nil)
	w := service(t, p, "worker")
	t.Run("built from the Dockerfile", func(t *testing.T) {
		if w.Build == nil {
			t.Fatal("worker has no build section")
		}
		if w.Build.Context != repoRoot(t) {
			t.Errorf("build context %s; want the repository root", w.Build.Context)
		}
		if df := w.Build.Dockerfile; df != "" && df != "Dockerfile" {
			t.Errorf("build dockerfile %s; want Dockerfile", df)
		}
		if v := w.Build.Args["VERSION"]; v == nil || *v == "" {
			t.Error("build does not set the VERSION argument")
		}
	})
	t.Run("scalable", func(t *testing.T) {
		if w.ContainerName != "" {
			t.Errorf("container_name %q: --scale worker=3 would fail", w.ContainerName)
		}
		if len(w.Ports) > 0 {
			t.Errorf("ports %+v: fixed host ports conflict between replicas", w.Ports)
		}
		if !containsString(w.Expose, strconv.Itoa(HTTPPort)) {
			t.Errorf("expose %v lacks %d", w.Expose, HTTPPort)
		}
		if got := environment(w)[HTTPAddrEnv]; got != HTTPAddr {
			t.Errorf("%s=%q; want %q", HTTPAddrEnv, got, HTTPAddr)
		}
		if w.Restart == "" || w.Restart == "no" {
			t.Errorf("restart %q: a crashed worker should come back", w.Restart)
		}
	})
	t.Run("depends_on", func(t *testing.T) {
		want := map[string]types.ServiceDependency{
			"kafka":       {Condition: types.ServiceConditionHealthy, Required: true},
			"redis":       {Condition: types.ServiceConditionHealthy, Required: true},
			"kafka-init":  {Condition: types.ServiceConditionCompletedSuccessfully, Required: true},
			"singlestore": {Condition: types.ServiceConditionHealthy, Required: false},
		}
		p := loadCompose(t, nil, "singlestore")
		w := service(t, p, "worker")
		for name, d := range want {
			got, ok := w.DependsOn[name]
			if !ok || got.Condition != d.Condition || got.Required != d.Required {
				t.Errorf("worker depends_on %s: %+v (present %v); want %+v", name, got, ok, d)
			}
		}
		for _, name := range []string{"producer", "results"} {
			if d := service(t, p, name).DependsOn["kafka-init"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s depends on kafka-init with %q; want service_completed_successfully", name, d.Condition)
			}
		}
	})
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestComposePipelines checks each pipeline the compose file can run
// against the services it runs: the worker's command names a mounted file,
// the file loads with the worker's environment alone, its brokers and
// store are compose services, its topics are created, and the stop grace
// period covers its shutdown.
func TestComposePipelines(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		profiles []string
		file     string
		backend  pipeline.Backend
	}{
		{"redis (default)", nil, nil, "pipeline.yaml", pipeline.BackendRedis},
		{"singlestore", map[string]string{
			"EDDY_PIPELINE": "pipeline-singlestore.yaml", "EDDY_OUTPUT_TOPIC": "orders-s2-enriched",
			"SINGLESTORE_LICENSE": "test-license", "SINGLESTORE_PASSWORD": "s3cret",
		}, []string{"singlestore"}, "pipeline-singlestore.yaml", pipeline.BackendSingleStore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proj := loadCompose(t, tc.env, tc.profiles...)
			w := service(t, proj, "worker")
			want := []string{"run", "-c", path.Join(path.Dir(PipelinePath), tc.file)}
			if !equalStrings(w.Command, want) {
				t.Fatalf("worker command %v; want %v", w.Command, want)
			}
			var src string
			for _, v := range w.Volumes {
				if v.Target == path.Dir(PipelinePath) {
					src = v.Source
					if !v.ReadOnly {
						t.Errorf("%s is mounted read-write", v.Target)
					}
				}
			}
			if src == "" {
				t.Fatalf("worker mounts nothing at %s", path.Dir(PipelinePath))
			}
			data, err := os.ReadFile(filepath.Join(src, tc.file))
			if err != nil {
				t.Fatalf("the pipeline the worker runs is not in the mounted directory: %v", err)
			}

			env := environment(w)
			req, _ := pipelineVars(data)
			for _, v := range req {
				if _, ok := env[v]; !ok {
					t.Errorf("%s needs ${%s}, which the worker's environment lacks", tc.file, v)
				}
			}
			p := parsePipeline(t, tc.file, data, env)
			if p.Spec.State.Backend != tc.backend {
				t.Errorf("%s: state.backend %s; want %s", tc.file, p.Spec.State.Backend, tc.backend)
			}

			// Brokers: the compose kafka service on its advertised port.
			for _, entry := range p.Spec.Kafka.Brokers {
				for _, b := range strings.Split(entry, ",") {
					host, port, err := net.SplitHostPort(b)
					if err != nil || host != "kafka" || port != "9092" {
						t.Errorf("broker %q; want kafka:9092, the address kafka advertises in the compose network", b)
					}
				}
			}
			// The store: a compose service enabled in this configuration.
			switch tc.backend {
			case pipeline.BackendRedis:
				for _, a := range p.Spec.State.Redis.Addrs {
					if host, _, _ := net.SplitHostPort(a); host != "redis" {
						t.Errorf("state.redis.addrs %q; want the redis service", a)
					}
				}
			case pipeline.BackendSingleStore:
				cfg, err := mysql.ParseDSN(p.Spec.State.SingleStore.DSN)
				if err != nil {
					t.Fatalf("state.singlestore.dsn: %v", err)
				}
				ss := service(t, proj, "singlestore")
				if host, port, _ := net.SplitHostPort(cfg.Addr); host != "singlestore" || port != "3306" {
					t.Errorf("dsn address %s; want singlestore:3306", cfg.Addr)
				}
				if cfg.User != "root" || cfg.Passwd != environment(ss)["ROOT_PASSWORD"] || cfg.Passwd != "s3cret" {
					t.Errorf("dsn user %s does not carry SingleStore's ROOT_PASSWORD", cfg.User)
				}
				if environment(ss)["SINGLESTORE_LICENSE"] != "test-license" {
					t.Error("SINGLESTORE_LICENSE does not reach the singlestore service")
				}
				sql := readFile(t, "examples/compose/singlestore-init.sql")
				if !strings.Contains(string(sql), "CREATE DATABASE IF NOT EXISTS "+cfg.DBName) {
					t.Errorf("singlestore-init.sql does not create the dsn's database %s", cfg.DBName)
				}
			}

			// Topics: kafka-init creates all of them; the producer feeds the
			// source and results prints the sink.
			created := strings.Fields(environment(service(t, proj, "kafka-init"))["TOPICS"])
			for _, topic := range pipelineTopics(p) {
				if !containsString(created, topic) {
					t.Errorf("kafka-init does not create %s (creates %v)", topic, created)
				}
			}
			if topic := environment(service(t, proj, "producer"))["TOPIC"]; !containsString(p.Spec.Source.Topics, topic) {
				t.Errorf("the producer writes to %q, not a source of %s", topic, tc.file)
			}
			if res := service(t, proj, "results"); !containsString(res.Command, p.Spec.Sink.Topic) {
				t.Errorf("results consumes %v, not the sink %s", res.Command, p.Spec.Sink.Topic)
			}

			grace := time.Duration(0)
			if w.StopGracePeriod != nil {
				grace = time.Duration(*w.StopGracePeriod)
			}
			if need := p.Spec.Flush.ShutdownTimeout + LeaveMargin; grace <= need {
				t.Errorf("stop_grace_period %v; want more than shutdown_timeout + leave margin = %v", grace, need)
			}
		})
	}
}

// TestComposeProducerFeedsPipeline runs the producer script's generator
// and every event through the compose pipeline, as a worker would: all
// but the deliberately broken events decode and pass the steps without an
// error, repeats are exact copies (so the idempotency store drops them), and
// the event times are now.
func TestComposeProducerFeedsPipeline(t *testing.T) {
	const n = 300
	cmd := exec.Command("sh", filepath.Join(repoRoot(t), "examples/compose/produce.sh"), "-n", strconv.Itoa(n))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("produce.sh -n %d: %v", n, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("produce.sh -n %d printed %d lines", n, len(lines))
	}
	p := parsePipeline(t, "pipeline.yaml", readFile(t, "examples/compose/pipeline.yaml"), nil)

	seen := map[string]string{} // event id -> value
	var ok, broken, filtered, repeats int
	for i, line := range lines {
		key, value, found := strings.Cut(line, "|")
		if !found || key == "" {
			t.Fatalf("line %d: %q is not key|value", i+1, line)
		}
		ev, err := p.Source.Decode([]byte(value))
		if err != nil {
			if !strings.Contains(value, "broken") {
				t.Errorf("line %d: %v: %s", i+1, err, value)
			}
			broken++
			continue
		}
		v := &pipeline.Vars{Event: ev, Key: key, Topic: "orders", Timestamp: time.Now()}
		id, err := p.Source.IDFor(v)
		if err != nil {
			t.Fatalf("line %d: event id: %v", i+1, err)
		}
		if prev, dup := seen[id]; dup {
			if prev != value {
				t.Errorf("line %d: id %s reused for a different event", i+1, id)
			}
			repeats++
			continue
		}
		seen[id] = value
		ts, err := p.Source.TimeFor(v)
		if err != nil {
			t.Fatalf("line %d: event time: %v", i+1, err)
		}
		if d := time.Since(ts); d < -time.Minute || d > time.Minute {
			t.Errorf("line %d: event time %v is not now", i+1, ts)
		}
		keep := true
		for _, s := range p.Steps {
			if keep, err = s.Apply(v); err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			if !keep {
				break
			}
		}
		if !keep {
			filtered++
			continue
		}
		if v.Key != key {
			t.Errorf("line %d: record key %q, but the pipeline keys it by user %q", i+1, key, v.Key)
		}
		if _, err := p.Sink.Encode(v.Event); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		ok++
	}
	t.Logf("%d events: %d processed, %d filtered, %d repeats, %d broken", n, ok, filtered, repeats, broken)
	if ok < n*8/10 {
		t.Errorf("only %d of %d events reach the sink", ok, n)
	}
}
