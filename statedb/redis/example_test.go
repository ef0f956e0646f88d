package redis_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/eddy-streams/eddy/statedb"
	redisstore "github.com/eddy-streams/eddy/statedb/redis"
)

// Connecting to a standalone Redis; Sentinel and Cluster differ only in
// Config (MasterName, several Addrs or Cluster).
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := redisstore.New(ctx, redisstore.Config{
		Addrs:     []string{"127.0.0.1:6379"},
		Password:  os.Getenv("REDIS_PASSWORD"),
		KeyPrefix: "eddy:orders-by-customer:",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = st.Close() }()

	p := statedb.Partition{Topic: "orders", Partition: 0}
	claim, err := st.Acquire(ctx, p)
	if err != nil {
		log.Fatal(err)
	}
	// One flush: one script call, applied whole or (ErrFenced) not at all.
	err = st.Commit(ctx, &statedb.Commit{
		Partition: p, Epoch: claim.Epoch, Offset: claim.Offset + 100,
		Puts:  []statedb.Entry{{Key: "count:alice", Value: []byte("3")}},
		IDs:   []string{"evt-1"},
		IDTTL: 24 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
}
