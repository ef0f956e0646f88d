//go:build chaos

package main

import (
	"context"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
)

// msgChaosFreeze is logged by a chaos build right before it stops itself.
const msgChaosFreeze = "chaos: freezing before the state commit"

// chaosOptions exists only in the chaos test's build of the worker (go
// build -tags chaos; see integration/chaos). SIGUSR1 arms a freeze: the
// next partition task that reaches the store commit of a flush (its
// outputs produced, its state not yet committed) logs msgChaosFreeze and
// stops the whole process with SIGSTOP, exactly there. When the test
// resumes it (SIGCONT) after another worker has claimed the partition,
// that commit meets a newer epoch: the zombie is fenced by construction,
// not by the luck of being frozen inside a commit.
func chaosOptions(log *zap.Logger) []processor.Option {
	var armed atomic.Bool
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			armed.Store(true)
		}
	}()
	return []processor.Option{processor.WithFlushHook(func(_ context.Context, p statedb.Partition, s processor.FlushStage) {
		if s != processor.BeforeCommit || !armed.CompareAndSwap(true, false) {
			return
		}
		log.Warn(msgChaosFreeze, zap.String("topic", p.Topic), zap.Int32("partition", p.Partition))
		_ = log.Sync()
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	})}
}
