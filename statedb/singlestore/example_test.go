package singlestore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/singlestore"
)

// A partition task's life against SingleStore: claim the partition, flush
// a batch in one transaction, and stop when a newer owner fences it.
func Example() {
	ctx := context.Background()
	st, err := singlestore.New(ctx, singlestore.Config{
		DSN:       os.Getenv("EDDY_SINGLESTORE_DSN"), // user:password@tcp(host:3306)/eddy
		Dialect:   singlestore.DialectSingleStore,
		Namespace: "clicks_per_user",
	})
	if err != nil {
		log.Fatal(err) // the password is never in err
	}
	defer func() { _ = st.Close() }()

	p := statedb.Partition{Topic: "clicks", Partition: 0}
	claim, err := st.Acquire(ctx, p)
	if err != nil {
		log.Fatal(err)
	}
	// Resume after claim.Offset; load the batch's keys in one SELECT.
	state, err := st.Load(ctx, p, []string{"user:1", "user:2"})
	if err != nil {
		log.Fatal(err)
	}
	_ = state

	err = st.Commit(ctx, &statedb.Commit{
		Partition: p, Epoch: claim.Epoch, Offset: claim.Offset + 100,
		Puts:  []statedb.Entry{{Key: "user:1", Value: []byte("42"), TTL: 24 * time.Hour}},
		IDs:   []string{"evt-1", "evt-2"},
		IDTTL: time.Hour,
	})
	switch {
	case errors.Is(err, statedb.ErrFenced):
		fmt.Println("another worker owns the partition now: stop and drop the cache")
	case err != nil:
		log.Fatal(err) // unknown outcome: the same Commit may be retried
	}
}

// The DDL a database administrator runs ahead of time when the worker's
// user may not create tables.
func ExampleDDL() {
	stmts, err := singlestore.DDL(singlestore.DialectSingleStore, "clicks_per_user")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(stmts), "tables")
	fmt.Println(stmts[3])
	// Output:
	// 4 tables
	// CREATE ROWSTORE TABLE IF NOT EXISTS `clicks_per_user_timers` (
	//   `topic` VARBINARY(255) NOT NULL,
	//   `part` INT NOT NULL,
	//   `k` VARBINARY(1024) NOT NULL,
	//   `due` BIGINT NOT NULL,
	//   PRIMARY KEY (`topic`, `part`, `k`),
	//   KEY `due` (`topic`, `part`, `due`),
	//   SHARD KEY (`topic`, `part`)
	// )
}
