// Package examples holds runnable pipelines, one folder each
// (examples/<name>/pipeline.yaml), and the generators that feed them
// realistic events in `worker dev`:
//
//	go run ./cmd/worker dev                                  # the default example
//	go run ./cmd/worker dev -c examples/orders/pipeline.yaml
//	go run ./cmd/worker dev -example cascade                 # two stages joined by a topic
//
// examples/cascade is a cascade: two pipelines, enrich.yaml (stateless:
// re-key by customer) and aggregate.yaml (windowed totals per customer),
// joined by the topic cascade-enriched, each its own consumer group. `worker
// dev` runs both, and docker-compose.yml and deploy/k8s/overlays/cascade
// scale each stage on its own.
//
// examples/custom-processor shows a Go program that registers its own
// Processor and runs the same runtime as a library.
package examples
