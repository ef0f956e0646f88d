package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb/backends"
)

// cmdState is `worker state get`: what the store holds for a key of an
// aggregate step, or a table's row, read from the store directly (no
// worker needed; Kafka only for the topics' partition counts).
func cmdState(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "get" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, stateUsage)
			return nil
		}
		fmt.Fprint(stderr, stateUsage)
		return errUsage
	}
	fs := newFlags("state get", stderr)
	path := fs.String("c", "", "pipeline file (required)")
	step := fs.String("step", "", "aggregate step (its name) whose windows to show")
	table := fs.String("table", "", "table whose row to show (instead of -step)")
	key := fs.String("key", "", "the key (required)")
	atFlag := fs.String("at", "", "with -step: only the window(s) containing this time (RFC 3339)")
	asJSON := fs.Bool("json", false, "print JSON, as the query endpoints answer")
	parts := fs.Int("partitions", 0, "partitions of the step's or table's topic (default: from Kafka's metadata)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case *path == "" || *key == "":
		fmt.Fprintln(stderr, "worker state get: -c pipeline.yaml and -key are required")
		return errUsage
	case (*step == "") == (*table == ""):
		fmt.Fprintln(stderr, "worker state get: give one of -step and -table")
		return errUsage
	}
	var at time.Time
	if *atFlag != "" {
		t, err := time.Parse(time.RFC3339Nano, *atFlag)
		if err != nil {
			fmt.Fprintf(stderr, "worker state get: -at: %q is not an RFC 3339 time (2024-01-01T00:00:00Z)\n", *atFlag)
			return errUsage
		}
		at = t
	}
	p, err := pipeline.Load(*path)
	if err != nil {
		return err
	}
	if p.Spec.State.Backend == pipeline.BackendMemory || p.Spec.State.Backend == "" {
		return errors.New("state.backend is memory: the state lives inside each worker process; query a worker (worker run -query) instead")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := backends.Open(ctx, p, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	partitions := func(context.Context, string) (int32, error) { return int32(*parts), nil }
	if *parts <= 0 {
		cfg, err := offsetsKafkaConfig(p)
		if err != nil {
			return err
		}
		client, err := sarama.NewClient(p.Spec.Kafka.Brokers, cfg)
		if err != nil {
			return fmt.Errorf("kafka (for the partition counts; or give -partitions): %w", err)
		}
		defer client.Close()
		partitions = func(_ context.Context, topic string) (int32, error) {
			ps, err := client.Partitions(topic)
			return int32(len(ps)), err
		}
	}
	q, err := processor.NewStateReader(p, store, partitions)
	if err != nil {
		return err
	}
	if *table != "" {
		row, err := q.Row(ctx, *table, *key)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, map[string]any{"table": *table, "key": *key, "row": row})
		}
		b, err := pipeline.EncodeJSON(row)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s: %s\n", *table, *key, b)
		return nil
	}
	ks, err := q.Windows(ctx, *step, *key, at)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, keyStateJSON(ks))
	}
	for _, w := range ks.Windows {
		state := "open"
		if w.Closed {
			state = "closed"
		}
		b, err := pipeline.EncodeJSON(w.Result)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s .. %s  %-6s %s  (%s, watermark %s)\n", w.Start.Format(time.RFC3339Nano), w.End.Format(time.RFC3339Nano),
			state, b, w.Partition, ks.Watermark[w.Partition].Format(time.RFC3339Nano))
	}
	return nil
}

const stateUsage = `usage: worker state get -c pipeline.yaml -step <aggregate> -key <k> [-at T] [-json]
       worker state get -c pipeline.yaml -table <table> -key <k> [-json]

Reads what the pipeline's state store holds, as the workers last
committed it: an aggregate key's windows (every partition of its stage
is read), or a table's row. No worker is needed; Kafka is asked for the
topics' partition counts unless -partitions is given.
`
