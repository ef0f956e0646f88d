package processor

import (
	"context"

	"github.com/eddy-streams/eddy/statedb"
)

// FlushStage names a point of the flush protocol at which a flush hook is
// called (see WithFlushHook).
type FlushStage int

const (
	// BeforeProduce: the batch is processed; its outputs are buffered and
	// about to be produced (step a).
	BeforeProduce FlushStage = iota + 1
	// BeforeCommit: the outputs are acknowledged; state, event IDs and the
	// offset watermark are about to be committed to the store (step b).
	BeforeCommit
	// AfterCommit: the store commit succeeded; the Kafka offset is about to
	// be marked (step c).
	AfterCommit
)

func (s FlushStage) String() string {
	switch s {
	case BeforeProduce:
		return "before-produce"
	case BeforeCommit:
		return "before-commit"
	case AfterCommit:
		return "after-commit"
	}
	return "unknown"
}

// FlushHook is called by a partition task at each stage of every flush
// that has work to persist, on the task's goroutine: the task waits until
// it returns. ctx is the flush's context. A hook that blocks holds the
// partition (that is how tests freeze a task at an exact point of the
// protocol, deterministically); one that only observes must be quick and
// safe for concurrent use, since every partition task calls it.
type FlushHook func(ctx context.Context, p statedb.Partition, s FlushStage)

// WithFlushHook calls f at each stage of every flush (see FlushStage).
// It is meant for tests, fault injection and tracing.
func WithFlushHook(f FlushHook) Option { return func(o *options) { o.onFlush = f } }

// flushHook runs the configured hook, if any.
func (t *task) flushHook(ctx context.Context, s FlushStage) {
	if f := t.w.o.onFlush; f != nil {
		f(ctx, t.part, s)
	}
}
