package offsets_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/eddy-streams/eddy/offsets"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/backends"
)

// Replay a pipeline's source topic from the start: plan the reset, look
// at what the replay will skip (already in state) and process, then apply
// it once the workers are stopped. (Not run: it needs a Kafka cluster.)
func Example_replay() {
	ctx := context.Background()
	p, err := pipeline.Load("pipeline.yaml")
	if err != nil {
		log.Fatal(err)
	}
	store, err := backends.Open(ctx, p, nil) // the pipeline's own state store
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	var opts []offsets.Option
	if in, ok := store.(statedb.Inspector); ok {
		opts = append(opts, offsets.WithStore(in))
	}
	tool, err := offsets.New(p.Spec.Kafka.Brokers, offsets.GroupOf(p), opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer tool.Close()

	plan, err := tool.Plan(ctx, offsets.Reset{Topic: p.Spec.Source.Topics[0], To: offsets.ToEarliest()})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range plan.Moves {
		fmt.Printf("%s/%d: %d -> %d: %s\n", m.Topic, m.Partition, m.Committed, m.New, m.Replay)
	}
	_, err = tool.Apply(ctx, plan, false)
	var active *offsets.ActiveGroupError
	if errors.As(err, &active) {
		log.Fatalf("stop the workers first: %v", err)
	}
	if err != nil {
		log.Fatal(err)
	}
}
