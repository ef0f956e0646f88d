// Package deploy holds what the deployment files (the Dockerfile,
// docker-compose.yml and the Kubernetes manifests under deploy/k8s) and the
// worker binary must agree on, and the tests that check those files.
//
// It has no code to run: the constants below are the contract, and the
// package's tests parse every deployment file and fail when one of them
// drifts from it (or from the pipeline it ships).
//
// # The contract with the worker binary
//
// The worker serves its health and metrics endpoints over HTTP on HTTPAddr
// (flag -http, or the environment variable named by HTTPAddrEnv):
//
//	GET /healthz   liveness: the process is running and not wedged
//	GET /readyz    readiness: the worker is a working member of its group
//	GET /metrics   Prometheus metrics
//
// The manifests probe HealthzPath and ReadyzPath on HTTPPort and scrape
// MetricsPath there; the image EXPOSEs HTTPPort. The worker takes its static
// group membership id from the variable named by InstanceIDEnv (set from
// the pod name on Kubernetes) and reads its pipeline from PipelinePath
// unless told otherwise. The image runs as the numeric user UID, so that
// Kubernetes' runAsNonRoot can verify it.
//
// # Shutdown
//
// On SIGTERM a worker flushes and commits within the pipeline's
// flush.shutdown_timeout, then has LeaveMargin more to leave the group
// before it gives up. Whatever stops it (Kubernetes'
// terminationGracePeriodSeconds, compose's stop_grace_period) must wait
// longer than the sum, or the final flush is cut short and its work is
// replayed by the partition's next owner.
//
// # Files
//
//	Dockerfile, .dockerignore     the image: static binary on distroless, non-root
//	docker-compose.yml            a local cluster: Kafka, Redis, SingleStore, workers, a producer
//	examples/compose/             the pipeline, producer script and SQL the compose file mounts
//	examples/cascade/             the cascade's two stages and producer (compose profile cascade)
//	deploy/k8s/base/              Deployment, HPA, PDB, metrics Service, pipeline ConfigMap
//	deploy/k8s/overlays/keda/     lag-based scaling with a KEDA ScaledObject instead of the HPA
//	deploy/k8s/overlays/cascade/  the cascade: the base twice, one Deployment and HPA per stage
//
// # Tests
//
// dockerfile_test.go parses the Dockerfile, checks .dockerignore keeps the
// build's inputs, and runs the Dockerfile's go build command: the result
// must be a static binary that reports the stamped version, takes its
// defaults from the variables above and serves the endpoints above (checked
// on `worker dev`, which needs no services). compose_test.go loads
// docker-compose.yml with the compose-spec loader; k8s_test.go decodes every
// manifest strictly into the Kubernetes API types, builds the kustomizations
// with kustomize's library, and checks the invariants between them, the
// pipeline they ship and this contract. For the cascade both check that
// each stage is its own group with its own scale, at most one replica per
// partition of its source topic (the compose services' label
// eddy-streams.io/max-replicas, the HPAs' annotation
// eddy-streams.io/source-partitions), and that stage 2 reads stage 1's
// sink. None needs a Docker engine, a
// cluster or the network.
package deploy

import "time"

// The HTTP endpoints of the worker, probed and scraped by the manifests.
const (
	// HTTPPort is the port of the worker's HTTP server.
	HTTPPort = 9100
	// HTTPAddr is the listen address the deployment files give the worker.
	HTTPAddr = ":9100"
	// HTTPAddrEnv names the variable the worker reads its listen address
	// from (the -http flag's default).
	HTTPAddrEnv = "EDDY_HTTP_ADDR"
	// HealthzPath answers 200 while the process is alive (liveness).
	HealthzPath = "/healthz"
	// ReadyzPath answers 200 once the worker is ready to process (readiness).
	ReadyzPath = "/readyz"
	// MetricsPath serves Prometheus metrics.
	MetricsPath = "/metrics"
)

// The rest of the contract between the deployment files and the binary.
const (
	// InstanceIDEnv names the variable the worker reads its static group
	// membership id from (the -instance-id flag's default).
	InstanceIDEnv = "EDDY_INSTANCE_ID"
	// PipelinePath is where the image expects the pipeline file.
	PipelinePath = "/etc/eddy/pipeline.yaml"
	// UID is the numeric user (and group) the image runs as: distroless's
	// "nonroot".
	UID = 65532
	// LeaveMargin is what the worker allows beyond flush.shutdown_timeout
	// to leave the group on shutdown.
	LeaveMargin = 5 * time.Second
)
