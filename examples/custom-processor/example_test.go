package main

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// followed-by on an in-process Kafka-protocol broker: ann checks out a
// minute after her cart (a match, emitted when the checkout arrives); bob
// never does, and his miss is emitted by the timer once bob's partition's
// watermark passes his deadline, moved there by carol's later event.
func Example_followedBy() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "shop-events", "cart-outcomes"))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	p, err := pipeline.Load("followed-by.yaml")
	if err != nil {
		panic(err)
	}
	outputs := make(chan *processor.Record, 10)
	w, err := processor.New(p,
		processor.WithStore(memory.New()),
		processor.WithBrokers(brokers...),
		processor.WithProcessor("followed-by", newFollowedBy),
		processor.WithOutputHook(func(r *processor.Record) { outputs <- r }),
	)
	if err != nil {
		panic(err)
	}

	prod, err := sarama.NewSyncProducer(brokers, nil)
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	for _, e := range []struct {
		user, typ string
		at        time.Duration
	}{
		{"ann", "cart", 0},
		{"bob", "cart", 30 * time.Second},
		{"ann", "checkout", time.Minute},
		{"carol", "cart", 10 * time.Minute}, // moves the watermark past bob's deadline
	} {
		v := fmt.Sprintf(`{"type":%q,"ts":%d}`, e.typ, t0+e.at.Milliseconds())
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "shop-events", Key: sarama.StringEncoder(e.user), Value: sarama.StringEncoder(v)}); err != nil {
			panic(err)
		}
	}
	_ = prod.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for range 2 {
		select {
		case r := <-outputs:
			if r.Event["matched"] == true {
				fmt.Printf("%s: checked out %v after the cart\n", r.Key, time.Duration(r.Event["after_ms"].(int64))*time.Millisecond)
			} else {
				fmt.Printf("%s: no checkout by %s\n", r.Key, r.Event["deadline"].(time.Time).Format(time.TimeOnly))
			}
		case <-ctx.Done():
			panic("no output")
		}
	}
	cancel()
	<-done
	// Output:
	// ann: checked out 1m0s after the cart
	// bob: no checkout by 12:05:30
}
