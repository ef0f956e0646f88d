package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
)

// The worker's HTTP endpoints (the Kubernetes manifests probe these).
const (
	DefaultHTTPAddr = ":9100"
	PathHealth      = "/healthz" // 200 while the process runs
	PathReady       = "/readyz"  // 200 when the group is joined and the store answers
	PathMetrics     = "/metrics" // Prometheus
)

// servedWorker is a worker and its store, as the endpoints see them.
type servedWorker struct {
	w     *processor.Worker
	store statedb.Store
}

// serveHTTP starts the health and metrics endpoints of the workers on addr
// (nothing if addr is empty), and with query the state query endpoints,
// and returns a function that stops them: ready when every worker is,
// metrics of all (`worker dev` runs a cascade's stages in one process).
func serveHTTP(addr string, query bool, log *zap.Logger, ws ...servedWorker) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-http %s: %w", addr, err)
	}
	var workers workerCollectors
	for _, sw := range ws {
		workers = append(workers, sw.w.Collector())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(workers, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.HandleFunc(PathHealth, func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc(PathReady, func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var reasons []string
		for _, sw := range ws {
			for _, why := range sw.w.Health(ctx).Reasons {
				if len(ws) > 1 {
					why = sw.w.Pipeline().Spec.Name + ": " + why
				}
				reasons = append(reasons, why)
			}
		}
		if len(reasons) > 0 {
			http.Error(rw, "not ready: "+strings.Join(reasons, "; "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	mux.Handle(PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	paths := []string{PathHealth, PathReady, PathMetrics}
	if query {
		handleQueries(mux, func() ([]*processor.StateReader, error) {
			var out []*processor.StateReader
			for _, sw := range ws {
				q, err := sw.w.StateReader()
				if err != nil {
					return nil, err
				}
				out = append(out, q)
			}
			return out, nil
		})
		paths = append(paths, PathState+"/<step>/<key>", PathTables+"/<table>/<key>")
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http endpoints stopped", zap.Error(err))
		}
	}()
	log.Info("http endpoints up", zap.String("addr", ln.Addr().String()), zap.Strings("paths", paths))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// workerCollectors joins the Collectors of several workers. Their
// descriptions are the same (a worker's metrics differ by their pipeline
// label), so each is described once and a registry accepts them together.
type workerCollectors []prometheus.Collector

func (c workerCollectors) Describe(ch chan<- *prometheus.Desc) {
	descs := make(chan *prometheus.Desc)
	go func() {
		for _, x := range c {
			x.Describe(descs)
		}
		close(descs)
	}()
	seen := map[string]bool{}
	for d := range descs {
		if !seen[d.String()] {
			seen[d.String()] = true
			ch <- d
		}
	}
}

func (c workerCollectors) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c {
		x.Collect(ch)
	}
}
