package memory_test

import (
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
	"github.com/eddy-streams/eddy/statedb/statedbtest"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newStore(opts ...memory.Option) func(t *testing.T) statedb.Store {
	return func(t *testing.T) statedb.Store {
		st := memory.New(opts...)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
}

func TestConformance(t *testing.T) {
	t.Run("wall clock", func(t *testing.T) {
		statedbtest.Run(t, newStore())
	})
	t.Run("fake clock", func(t *testing.T) {
		clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
		statedbtest.Run(t, newStore(memory.WithClock(clock.Now)), statedbtest.WithClock(clock.Advance))
	})
}
