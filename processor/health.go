package processor

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/eddy-streams/eddy/pipeline"
)

// Health is a Worker's readiness, with the reasons when it is not ready:
// what /readyz answers and eddy_ready reports, from this one place.
type Health struct {
	Ready   bool
	Reasons []string
}

// Health reports whether the Worker is ready: a member of its group with
// a live session, its state store answering (one Ping, bounded by ctx),
// and no partition paused (a produce or a store call being retried) for
// longer than WithUnreadyAfter's limit. A partition that is stuck — a
// broker that refuses its records, a store that is down — makes the
// worker unready, naming the partition and the cause.
func (w *Worker) Health(ctx context.Context) Health {
	var reasons []string
	if !w.ready.Load() {
		reasons = append(reasons, "not a member of the consumer group (joining, rebalancing or stopped)")
	}
	if s := w.store.Load(); s == nil {
		reasons = append(reasons, "state store not open yet (Run opens the one the pipeline names)")
	} else if err := (*s).Ping(ctx); err != nil {
		reasons = append(reasons, "state store unreachable: "+err.Error())
	}
	w.mu.Lock()
	for p, t := range w.tasks {
		if ps := t.paused.Load(); ps != nil {
			if d := time.Since(ps.since); ps.hold || d >= w.o.unreadyAfter {
				reasons = append(reasons, fmt.Sprintf("partition %s/%d paused for %s: %s failing: %s",
					p.Topic, p.Partition, d.Round(time.Second), ps.cause, ps.err))
			}
		}
	}
	w.mu.Unlock()
	sort.Strings(reasons)
	return Health{Ready: len(reasons) == 0, Reasons: reasons}
}

// Pipeline is the pipeline the Worker runs.
func (w *Worker) Pipeline() *pipeline.Pipeline { return w.p }
