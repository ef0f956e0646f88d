package processor_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
)

// counter counts events per key in the partition's state.
type counter struct{}

func (counter) Process(ctx context.Context, rec *processor.Record, out processor.Emitter, st processor.State) error {
	v, _, err := st.Get(ctx, rec.Key)
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(string(v))
	n++
	st.Put(rec.Key, []byte(strconv.Itoa(n)), 0)
	rec.Event["seen"] = int64(n)
	out.Emit(rec)
	return nil
}

// A Go program registers its own Processor by name and runs a pipeline that
// uses it. The broker here is an in-process Kafka-protocol broker; any
// Kafka cluster works the same.
func Example_customProcessor() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "clicks", "counted"))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	p, err := pipeline.Parse("example.yaml", []byte(`
name: example
kafka: {brokers: [unused:9092]}
source: {topics: [clicks]}
steps:
  - processor: {name: count-per-user}
sink: {topic: counted}
`))
	if err != nil {
		panic(err)
	}

	outputs := make(chan *processor.Record, 10)
	// The store is the pipeline's (memory: its file names none), opened by
	// Run; the logs go to stderr.
	w, err := processor.New(p,
		processor.WithBrokers(brokers...),
		processor.WithProcessor("count-per-user", func(map[string]any) (processor.Processor, error) { return counter{}, nil }),
		processor.WithOutputHook(func(r *processor.Record) { outputs <- r }),
	)
	if err != nil {
		panic(err)
	}

	prod, err := sarama.NewSyncProducer(brokers, nil)
	if err != nil {
		panic(err)
	}
	for _, user := range []string{"ann", "bob", "ann"} {
		_, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "clicks", Key: sarama.StringEncoder(user), Value: sarama.StringEncoder(`{"page":"/"}`)})
		if err != nil {
			panic(err)
		}
	}
	_ = prod.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for range 3 {
		select {
		case r := <-outputs:
			fmt.Println(r.Key, r.Event["seen"])
		case <-ctx.Done():
			panic(errors.New("no output"))
		}
	}
	cancel()
	<-done
	// Output:
	// ann 1
	// bob 1
	// ann 2
}
