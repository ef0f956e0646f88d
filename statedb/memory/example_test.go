package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// A partition's life: claim, flush, and a successor fencing the first
// owner off.
func Example() {
	ctx := context.Background()
	st := memory.New()
	defer func() { _ = st.Close() }()
	p := statedb.Partition{Topic: "orders", Partition: 0}

	first, _ := st.Acquire(ctx, p)
	fmt.Println("claim: epoch", first.Epoch, "offset", first.Offset)

	err := st.Commit(ctx, &statedb.Commit{
		Partition: p, Epoch: first.Epoch, Offset: 41,
		Puts:  []statedb.Entry{{Key: "count:alice", Value: []byte("3")}},
		IDs:   []string{"evt-1", "evt-2", "evt-3"},
		IDTTL: time.Hour,
	})
	fmt.Println("commit:", err)

	vals, _ := st.Load(ctx, p, []string{"count:alice", "count:bob"})
	seen, _ := st.Seen(ctx, p, []string{"evt-2", "evt-9"})
	fmt.Printf("alice=%s bob present=%v evt-2 seen=%v evt-9 seen=%v\n", vals["count:alice"], vals["count:bob"] != nil, seen["evt-2"], seen["evt-9"])

	second, _ := st.Acquire(ctx, p) // another worker takes the partition over
	fmt.Println("claim: epoch", second.Epoch, "offset", second.Offset)

	err = st.Commit(ctx, &statedb.Commit{Partition: p, Epoch: first.Epoch, Offset: 42})
	fmt.Println("old owner fenced:", errors.Is(err, statedb.ErrFenced))
	// Output:
	// claim: epoch 1 offset -1
	// commit: <nil>
	// alice=3 bob present=false evt-2 seen=true evt-9 seen=false
	// claim: epoch 2 offset 41
	// old owner fenced: true
}
