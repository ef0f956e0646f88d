package deploy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
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
		// `docker compose up` without a license key: no SingleStore, and
		// the cascade only when asked for.
		{"default", nil, []string{"kafka", "kafka-init", "producer", "redis", "results", "worker"}, append([]string{"singlestore"}, cascadeServices...)},
		{"singlestore profile", []string{"singlestore"}, []string{"kafka", "kafka-init", "producer", "redis", "results", "singlestore", "worker"}, cascadeServices},
		{"cascade profile", []string{"cascade"}, []string{"aggregate", "cascade-producer", "cascade-results", "enrich", "kafka", "kafka-init", "producer", "redis", "results", "worker"}, []string{"singlestore"}},
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
			sort.Strings(tc.disabled)
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

// mountedPipeline checks that a worker service runs `run -c <file>` from
// the directory the image reads pipelines from, mounted read-only, and
// returns the file's name and content.
func mountedPipeline(t *testing.T, s types.ServiceConfig) (string, []byte) {
	t.Helper()
	dir := path.Dir(PipelinePath)
	if len(s.Command) != 3 || s.Command[0] != "run" || s.Command[1] != "-c" || path.Dir(s.Command[2]) != dir {
		t.Fatalf("%s: command %v; want [run -c %s/<pipeline>]", s.Name, s.Command, dir)
	}
	file := path.Base(s.Command[2])
	var src string
	for _, v := range s.Volumes {
		if v.Target == dir {
			src = v.Source
			if !v.ReadOnly {
				t.Errorf("%s: %s is mounted read-write", s.Name, v.Target)
			}
		}
	}
	if src == "" {
		t.Fatalf("%s mounts nothing at %s", s.Name, dir)
	}
	data, err := os.ReadFile(filepath.Join(src, file))
	if err != nil {
		t.Fatalf("%s: the pipeline it runs is not in the mounted directory: %v", s.Name, err)
	}
	return file, data
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
			file, data := mountedPipeline(t, w)
			if file != tc.file {
				t.Fatalf("worker runs %s; want %s", file, tc.file)
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

// The cascade (examples/cascade) in docker-compose.yml: its two stages,
// each a scalable worker service, and its producer and result printer, all
// in the profile "cascade".
var (
	cascadeServices = []string{"aggregate", "cascade-producer", "cascade-results", "enrich"}
	cascadeStages   = []struct{ service, file string }{{"enrich", "enrich.yaml"}, {"aggregate", "aggregate.yaml"}}
)

// maxReplicasLabel is the label of a worker service that says how many of
// its replicas get work: at most the partitions of its source topics.
const maxReplicasLabel = "eddy-streams.io/max-replicas"

// composePartitions is the partition count kafka-init gives every topic.
func composePartitions(t *testing.T, p *types.Project) int {
	t.Helper()
	n, err := strconv.Atoi(environment(service(t, p, "kafka-init"))["PARTITIONS"])
	if err != nil || n < 1 {
		t.Fatalf("kafka-init PARTITIONS: %v", err)
	}
	return n
}

// TestComposeCascade checks the cascade's stages against each other and
// the services they run on: each runs its own pipeline file with Redis
// state, in its own consumer group, scalable like the workers; stage 2
// reads the topic stage 1 writes, keyed by the group key of its aggregate
// (co-partitioned), and deduplicates stage 1's replays by eddy-id; every
// topic is created, with at least as many partitions as the replicas the
// label documents; and the producer and printer are wired to its ends.
func TestComposeCascade(t *testing.T) {
	proj := loadCompose(t, nil, "cascade")
	parts := composePartitions(t, proj)
	created := strings.Fields(environment(service(t, proj, "kafka-init"))["TOPICS"])
	stages := map[string]*pipeline.Pipeline{}
	groups := map[string]string{}
	_, data := mountedPipeline(t, service(t, proj, "worker"))
	groups[parsePipeline(t, "worker", data, environment(service(t, proj, "worker"))).Spec.Kafka.Group] = "worker"
	for _, st := range cascadeStages {
		t.Run(st.service, func(t *testing.T) {
			s := service(t, proj, st.service)
			if !containsString(s.Profiles, "cascade") {
				t.Errorf("profiles %v; want cascade", s.Profiles)
			}
			file, data := mountedPipeline(t, s)
			if file != st.file {
				t.Fatalf("runs %s; want %s", file, st.file)
			}
			env := environment(s)
			req, _ := pipelineVars(data)
			for _, v := range req {
				if _, ok := env[v]; !ok {
					t.Errorf("%s needs ${%s}, which the service's environment lacks", file, v)
				}
			}
			p := parsePipeline(t, file, data, env)
			stages[st.service] = p

			// Scalable, like the workers, with state every replica shares.
			if s.Build == nil || s.Build.Context != repoRoot(t) {
				t.Errorf("build %+v; want the repository's Dockerfile", s.Build)
			}
			if s.ContainerName != "" || len(s.Ports) > 0 {
				t.Errorf("container_name %q, ports %v: --scale %s=N would fail", s.ContainerName, s.Ports, st.service)
			}
			if s.Restart == "" || s.Restart == "no" {
				t.Errorf("restart %q: a crashed replica should come back", s.Restart)
			}
			if env[HTTPAddrEnv] != HTTPAddr || !containsString(s.Expose, strconv.Itoa(HTTPPort)) {
				t.Errorf("%s=%q, expose %v; want %s and %d", HTTPAddrEnv, env[HTTPAddrEnv], s.Expose, HTTPAddr, HTTPPort)
			}
			if p.Spec.State.Backend != pipeline.BackendRedis {
				t.Errorf("state.backend %s; want redis: memory state stays behind when a partition moves to another replica", p.Spec.State.Backend)
			} else {
				for _, a := range p.Spec.State.Redis.Addrs {
					if host, _, _ := net.SplitHostPort(a); host != "redis" {
						t.Errorf("state.redis.addrs %q; want the redis service", a)
					}
				}
			}
			for _, b := range p.Spec.Kafka.Brokers {
				if b != "kafka:9092" {
					t.Errorf("broker %q; want kafka:9092", b)
				}
			}
			for dep, cond := range map[string]types.ServiceDependency{
				"kafka":      {Condition: types.ServiceConditionHealthy, Required: true},
				"redis":      {Condition: types.ServiceConditionHealthy, Required: true},
				"kafka-init": {Condition: types.ServiceConditionCompletedSuccessfully, Required: true},
			} {
				if got, ok := s.DependsOn[dep]; !ok || got.Condition != cond.Condition || got.Required != cond.Required {
					t.Errorf("depends_on %s: %+v (present %v); want %+v", dep, got, ok, cond)
				}
			}
			grace := time.Duration(0)
			if s.StopGracePeriod != nil {
				grace = time.Duration(*s.StopGracePeriod)
			}
			if need := p.Spec.Flush.ShutdownTimeout + LeaveMargin; grace <= need {
				t.Errorf("stop_grace_period %v; want more than shutdown_timeout + leave margin = %v", grace, need)
			}

			// Its own group, and no more replicas than partitions.
			if other, ok := groups[p.Spec.Kafka.Group]; ok {
				t.Errorf("group %s is %s's too: each stage needs its own group", p.Spec.Kafka.Group, other)
			}
			groups[p.Spec.Kafka.Group] = st.service
			max, err := strconv.Atoi(s.Labels[maxReplicasLabel])
			if err != nil || max < 1 {
				t.Fatalf("label %s=%q; want the most replicas that get work", maxReplicasLabel, s.Labels[maxReplicasLabel])
			}
			if max > parts {
				t.Errorf("%s=%d but its source has %d partitions: %d replicas would sit idle", maxReplicasLabel, max, parts, max-parts)
			}
			for _, topic := range pipelineTopics(p) {
				if !containsString(created, topic) {
					t.Errorf("kafka-init does not create %s", topic)
				}
			}
		})
	}
	enrich, aggregate := stages["enrich"], stages["aggregate"]
	if enrich == nil || aggregate == nil {
		t.FailNow()
	}

	t.Run("stage 2 reads stage 1", func(t *testing.T) {
		if enrich.Sink == nil || !equalStrings(aggregate.Spec.Source.Topics, []string{enrich.Sink.Topics[0]}) {
			t.Fatalf("aggregate reads %v; want enrich's sink", aggregate.Spec.Source.Topics)
		}
		if enrich.Sink.Router != "hash" || enrich.Spec.Sink.Key != "" {
			t.Errorf("enrich's sink: router %s, key %q; want hash of the record key", enrich.Sink.Router, enrich.Spec.Sink.Key)
		}
		var last pipeline.StepConfig
		if steps := enrich.Spec.Steps; len(steps) > 0 {
			last = steps[len(steps)-1]
		}
		var group string
		for _, s := range aggregate.Spec.Steps {
			if s.Aggregate != nil {
				group = s.Aggregate.Key
			}
		}
		if last.Key == "" || last.Key != group {
			t.Errorf("enrich's last step %+v does not key records by the aggregate's group key %q: its windows would be split over partitions", last, group)
		}
		if enrich.Spec.Source.EventID == "" || !enrich.Spec.Dedup.Enabled {
			t.Error("enrich does not drop the shop's repeated orders (source.event_id and dedup)")
		}
		if aggregate.Spec.Source.EventID != "" || !aggregate.Spec.Dedup.Enabled {
			t.Errorf("aggregate: event_id %q, dedup %v; want stage 1's eddy-id as the event id (no event_id) and dedup on, so that stage 1's replays are dropped",
				aggregate.Spec.Source.EventID, aggregate.Spec.Dedup.Enabled)
		}
	})
	t.Run("producer and results", func(t *testing.T) {
		if topic := environment(service(t, proj, "cascade-producer"))["TOPIC"]; !containsString(enrich.Spec.Source.Topics, topic) {
			t.Errorf("cascade-producer writes %q, not enrich's source %v", topic, enrich.Spec.Source.Topics)
		}
		res := service(t, proj, "cascade-results")
		if !containsString(res.Command, aggregate.Sink.Topics[0]) || !containsString(res.Command, "read_committed") {
			t.Errorf("cascade-results runs %v; want a read_committed consumer of %s", res.Command, aggregate.Sink.Topics[0])
		}
		for _, name := range []string{"cascade-producer", "cascade-results"} {
			if d := service(t, proj, name).DependsOn["kafka-init"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s depends on kafka-init with %q; want service_completed_successfully", name, d.Condition)
			}
		}
	})
}

// TestComposeDocumentedScale reads every `--scale service=N` in
// docker-compose.yml and the README: each names a worker service and asks
// for no more replicas than get work (its max-replicas label, else the
// topics' partition count).
func TestComposeDocumentedScale(t *testing.T) {
	proj := loadCompose(t, nil, "cascade")
	parts := composePartitions(t, proj)
	scale := regexp.MustCompile(`--scale ([a-z0-9-]+)=(\d+)`)
	var n int
	for _, file := range []string{"docker-compose.yml", "README.md"} {
		for _, m := range scale.FindAllStringSubmatch(string(readFile(t, file)), -1) {
			n++
			s := service(t, proj, m[1])
			max := parts
			if l, ok := s.Labels[maxReplicasLabel]; ok {
				max, _ = strconv.Atoi(l)
			}
			if got, _ := strconv.Atoi(m[2]); got > max || got < 1 {
				t.Errorf("%s: %s asks for %s replicas of %s, which has work for at most %d", file, m[0], m[2], m[1], max)
			}
		}
	}
	if n == 0 {
		t.Fatal("no --scale found")
	}
}

// TestComposeCascadeProducerFeedsStages runs the cascade producer's events
// through both stages as their workers would: stage 1 decodes, deduplicates
// by order id, filters and re-keys all but the deliberately broken events
// without an error; what it writes decodes in stage 2, has an event time
// and a group key equal to the record key (co-partitioned).
func TestComposeCascadeProducerFeedsStages(t *testing.T) {
	const n = 300
	out, err := exec.Command("sh", filepath.Join(repoRoot(t), "examples/cascade/produce.sh"), "-n", strconv.Itoa(n)).Output()
	if err != nil {
		t.Fatalf("produce.sh -n %d: %v", n, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("produce.sh -n %d printed %d lines", n, len(lines))
	}
	enrich := parsePipeline(t, "enrich.yaml", readFile(t, "examples/cascade/enrich.yaml"), nil)
	aggregate := parsePipeline(t, "aggregate.yaml", readFile(t, "examples/cascade/aggregate.yaml"), nil)
	var agg *pipeline.Step
	for i := range aggregate.Steps {
		if aggregate.Steps[i].Aggregate != nil {
			agg = &aggregate.Steps[i]
		}
	}
	if agg == nil {
		t.Fatal("aggregate.yaml has no aggregate step")
	}

	seen := map[string]bool{}
	var ok, broken, filtered, repeats int
	customers := map[string]bool{}
	for i, line := range lines {
		key, value, found := strings.Cut(line, "|")
		if !found || key == "" {
			t.Fatalf("line %d: %q is not key|value", i+1, line)
		}
		ev, err := enrich.Source.Decode([]byte(value))
		if err != nil {
			broken++
			continue
		}
		v := &pipeline.Vars{Event: ev, Key: key, Topic: "cascade-orders", Timestamp: time.Now()}
		id, err := enrich.Source.IDFor(v)
		if err != nil || id != key {
			t.Fatalf("line %d: event id %q (%v); want the record key, the order id %q", i+1, id, err, key)
		}
		if seen[id] {
			repeats++
			continue
		}
		seen[id] = true
		keep := true
		for _, s := range enrich.Steps {
			if keep, err = s.Apply(v); err != nil {
				t.Fatalf("line %d: stage 1: %v", i+1, err)
			}
			if !keep {
				break
			}
		}
		if !keep {
			filtered++
			continue
		}
		b, err := enrich.Sink.Encode(v.Event)
		if err != nil {
			t.Fatalf("line %d: stage 1 sink: %v", i+1, err)
		}

		// Stage 2 reads what stage 1 wrote.
		ev2, err := aggregate.Source.Decode(b)
		if err != nil {
			t.Fatalf("line %d: stage 2 decode: %v", i+1, err)
		}
		v2 := &pipeline.Vars{Event: ev2, Key: v.Key, Topic: enrich.Sink.Topics[0], Timestamp: time.Now()}
		if ts, err := aggregate.Source.TimeFor(v2); err != nil || time.Since(ts) > time.Minute || time.Since(ts) < -time.Minute {
			t.Fatalf("line %d: stage 2 event time %v (%v); want now", i+1, ts, err)
		}
		group, err := agg.Aggregate.Key.String(v2)
		if err != nil || group != v.Key {
			t.Fatalf("line %d: stage 2 group key %q (%v), record key %q: not co-partitioned", i+1, group, err, v.Key)
		}
		customers[group] = true
		ok++
	}
	t.Logf("%d events: %d through both stages (%d customers), %d filtered, %d repeats, %d broken", n, ok, len(customers), filtered, repeats, broken)
	if ok < n*8/10 || len(customers) < 20 {
		t.Errorf("only %d of %d events, of %d customers, reach stage 2", ok, n, len(customers))
	}
}
