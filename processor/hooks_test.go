package processor

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// The flush hook sees the protocol's stages in order, each at the point it
// names: before the produce nothing is sent, before the commit the outputs
// are acknowledged and the store not yet written, after the commit the
// store holds the batch and the offset is not yet marked.
func TestFlushHookStagesInOrder(t *testing.T) {
	var (
		mu  sync.Mutex
		log []string
		h   *harness
	)
	hook := func(_ context.Context, p statedb.Partition, s FlushStage) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, fmt.Sprintf("%s %s sent=%d commits=%d mark=%d",
			s, p, h.prod.count(), h.store.commits.Load(), h.sess.lastMarkOr(-1)))
	}
	// The hook reads h only after the messages are sent, which is after h
	// is set.
	h = newHarnessYAML(t, fmt.Sprintf(testPipeline, false, 5, "1h"), memory.New(), WithFlushHook(hook))
	h.send(0, 5, event)
	h.waitMarked(5)
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"before-produce in/0 sent=0 commits=0 mark=-1",
		"before-commit in/0 sent=5 commits=0 mark=-1",
		"after-commit in/0 sent=5 commits=1 mark=-1",
	}
	if fmt.Sprint(log) != fmt.Sprint(want) {
		t.Errorf("hook calls:\n%q\nwant\n%q", log, want)
	}
}
