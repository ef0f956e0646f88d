// Package examples holds runnable pipelines, one folder each
// (examples/<name>/pipeline.yaml), and the generators that feed them
// realistic events in `worker dev`:
//
//	go run ./cmd/worker dev                                  # the default example
//	go run ./cmd/worker dev -c examples/orders/pipeline.yaml
//
// examples/custom-processor shows a Go program that registers its own
// Processor and runs the same runtime as a library.
package examples
