package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Images started when a Docker engine answers.
const (
	KafkaImage = "apache/kafka:3.9.1"
	RedisImage = "redis:7"
	MySQLImage = "mariadb:11"
	// RegistryImage is Apicurio Registry (in memory), as make services
	// runs it.
	RegistryImage = "quay.io/apicurio/apicurio-registry-mem:2.4.2.Final"
)

// containerStartTimeout bounds pulling and starting one container.
const containerStartTimeout = 5 * time.Minute

// started is one service container, started at most once per process.
type started struct {
	once sync.Once
	addr string
	err  error
}

// containers holds the containers of this test binary. It is the package's
// only shared state: a test binary starts each container at most once and
// shares it between its tests; testcontainers' reaper (ryuk) removes them
// when the process exits.
type containers struct {
	docker   sync.Once
	dockerOK bool

	kafkaC, redisC, mysqlC, registryC started
}

var shared containers

// containersFor returns the shared containers when a Docker engine answers
// and EDDY_TESTCONTAINERS is not "off", else nil.
func containersFor(t testing.TB) *containers {
	t.Helper()
	switch strings.ToLower(os.Getenv(EnvTestcontainers)) {
	case "off", "0", "false", "no":
		return nil
	}
	shared.docker.Do(func() {
		shared.dockerOK = dockerAnswers()
	})
	if !shared.dockerOK {
		return nil
	}
	return &shared
}

// dockerAnswers reports whether a Docker engine answers an info request.
// No engine at all is the common case (CI, our machines), not an error.
func dockerAnswers() (ok bool) {
	defer func() {
		// The Docker client setup panics on some broken configurations;
		// treat that as "no engine" rather than failing every test.
		if recover() != nil {
			ok = false
		}
	}()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.Health(ctx) == nil // Health closes p.
}

func (s *started) get(t testing.TB, name string, start func(context.Context) (string, error)) string {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), containerStartTimeout)
		defer cancel()
		s.addr, s.err = start(ctx)
	})
	if s.err != nil {
		t.Fatalf("starting the %s container failed (set %s=off to use `make services` instead): %v",
			name, EnvTestcontainers, s.err)
	}
	return s.addr
}

func (c *containers) kafka(t testing.TB) string {
	t.Helper()
	return c.kafkaC.get(t, "Kafka", startKafka)
}

func (c *containers) redis(t testing.TB) string {
	t.Helper()
	return c.redisC.get(t, "Redis", func(ctx context.Context) (string, error) {
		ctr, err := testcontainers.Run(ctx, RedisImage,
			testcontainers.WithExposedPorts("6379/tcp"),
			testcontainers.WithCmd("redis-server", "--save", "", "--appendonly", "no"),
			testcontainers.WithWaitStrategy(
				wait.ForLog("Ready to accept connections"),
				wait.ForListeningPort("6379/tcp"),
			),
		)
		if err != nil {
			return "", fmt.Errorf("run %s: %w", RedisImage, err)
		}
		return ctr.PortEndpoint(ctx, "6379/tcp", "")
	})
}

func (c *containers) registry(t testing.TB) string {
	t.Helper()
	return c.registryC.get(t, "Apicurio Registry", func(ctx context.Context) (string, error) {
		ctr, err := testcontainers.Run(ctx, RegistryImage,
			testcontainers.WithExposedPorts("8080/tcp"),
			testcontainers.WithWaitStrategy(wait.ForHTTP("/apis/ccompat/v7/subjects").WithPort("8080/tcp")),
		)
		if err != nil {
			return "", fmt.Errorf("run %s: %w", RegistryImage, err)
		}
		addr, err := ctr.PortEndpoint(ctx, "8080/tcp", "")
		if err != nil {
			return "", err
		}
		return "http://" + addr + "/apis/ccompat/v7", nil
	})
}

func (c *containers) mysql(t testing.TB) string {
	t.Helper()
	return c.mysqlC.get(t, "MariaDB", func(ctx context.Context) (string, error) {
		ctr, err := testcontainers.Run(ctx, MySQLImage,
			testcontainers.WithExposedPorts("3306/tcp"),
			testcontainers.WithEnv(map[string]string{
				"MARIADB_ROOT_PASSWORD": "eddy",
				"MARIADB_DATABASE":      "eddy",
			}),
			testcontainers.WithWaitStrategy(
				// The entrypoint first runs a temporary server without
				// networking; only the real one listens on 3306.
				wait.ForLog("port: 3306"),
				wait.ForListeningPort("3306/tcp"),
			),
		)
		if err != nil {
			return "", fmt.Errorf("run %s: %w", MySQLImage, err)
		}
		hostPort, err := ctr.PortEndpoint(ctx, "3306/tcp", "")
		if err != nil {
			return "", fmt.Errorf("mariadb endpoint: %w", err)
		}
		return "root:eddy@tcp(" + hostPort + ")/eddy", nil
	})
}

// kafkaStarter is the script the Kafka container waits for: it needs the
// host's mapped port in its advertised listener, which is known only after
// the container has started.
const (
	kafkaStarterPath = "/tmp/eddy-start-kafka.sh"
	kafkaStarter     = `#!/bin/sh
export KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://%s,BROKER://localhost:9094"
exec /etc/kafka/docker/run
`
)

func startKafka(ctx context.Context) (string, error) {
	ctr, err := testcontainers.Run(ctx, KafkaImage,
		testcontainers.WithExposedPorts("9092/tcp"),
		testcontainers.WithEnv(map[string]string{
			"CLUSTER_ID":                                     "MkU3OEVBNTcwNTJENDM2Qk",
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9094,CONTROLLER://0.0.0.0:9093",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_INTER_BROKER_LISTENER_NAME":               "BROKER",
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                "false",
			"KAFKA_NUM_PARTITIONS":                           "1",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS":             "3",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
		}),
		testcontainers.WithCmd("sh", "-c",
			"while [ ! -f "+kafkaStarterPath+" ]; do sleep 0.1; done; exec sh "+kafkaStarterPath),
		testcontainers.WithLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{
				func(ctx context.Context, c testcontainers.Container) error {
					if err := wait.ForMappedPort("9092/tcp").WaitUntilReady(ctx, c); err != nil {
						return fmt.Errorf("wait for mapped port: %w", err)
					}
					endpoint, err := c.PortEndpoint(ctx, "9092/tcp", "")
					if err != nil {
						return fmt.Errorf("kafka endpoint: %w", err)
					}
					script := fmt.Sprintf(kafkaStarter, endpoint)
					if err := c.CopyToContainer(ctx, []byte(script), kafkaStarterPath, 0o755); err != nil {
						return fmt.Errorf("copy starter script: %w", err)
					}
					return wait.ForLog("Kafka Server started").WaitUntilReady(ctx, c)
				},
			},
		}),
	)
	if err != nil {
		return "", fmt.Errorf("run %s: %w", KafkaImage, err)
	}
	return ctr.PortEndpoint(ctx, "9092/tcp", "")
}
