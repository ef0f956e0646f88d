package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
)

const topicsUsage = `usage:
  worker topics check -c pipeline.yaml [--brokers B]
      every topic the pipeline reads or writes, the field naming it, and whether
      it exists (exit 1 if one is missing)
  worker topics create -c pipeline.yaml [--brokers B] [--partitions N]
      [--replication R] [--dry-run]
      create the ones that do not exist: inputs and outputs with N partitions
      (default: the source topics' count, or 1 when they do not exist either),
      internal topics with their step's partitions; R replicas (default: the
      broker's default.replication.factor)

A worker fails at start-up when an input or output topic is missing (output
topics too, unless kafka.create_topics is on): a record produced to a topic
that does not exist would pause its partition.
`

func cmdTopics(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topicsUsage)
		return errUsage
	}
	switch args[0] {
	case "check", "create":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, topicsUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "worker topics: unknown subcommand %q\n\n%s", args[0], topicsUsage)
		return errUsage
	}
	create := args[0] == "create"
	fs := newFlags("topics "+args[0], stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\nflags:\n", topicsUsage)
		fs.PrintDefaults()
	}
	path := fs.String("c", "", "pipeline file (required)")
	brokers := fs.String("brokers", "", "bootstrap brokers, comma-separated (default: the pipeline's)")
	partitions := fs.Int("partitions", 0, "partitions of created inputs and outputs (default: the source topics' count)")
	replication := fs.Int("replication", -1, "replication factor of created topics (-1: the broker's default)")
	dry := fs.Bool("dry-run", false, "print what would be created, create nothing")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "worker topics: -c is required")
		return errUsage
	}
	p, err := pipeline.Load(*path)
	if err != nil {
		return err
	}
	cfg, err := offsetsKafkaConfig(p)
	if err != nil {
		return err
	}
	addrs := p.Spec.Kafka.Brokers
	if *brokers != "" {
		addrs = strings.Split(*brokers, ",")
	}
	admin, err := sarama.NewClusterAdmin(addrs, cfg)
	if err != nil {
		return fmt.Errorf("kafka %s: %w", strings.Join(addrs, ","), err)
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	type need struct {
		pipeline.TopicUse
		kind       string
		partitions int // 0: the default
	}
	var needs []need
	for _, u := range p.Inputs() {
		needs = append(needs, need{u, "input", 0})
	}
	for _, u := range p.Outputs() {
		needs = append(needs, need{u, "output", 0})
	}
	for _, st := range p.Stages() {
		if r := st.Repartition; r != nil {
			needs = append(needs, need{pipeline.TopicUse{Topic: r.Topic, Field: "internal (" + r.Name + ")"}, "internal", r.Partitions})
		}
	}
	srcParts := 0
	for _, t := range p.Source.Topics {
		if d, ok := existing[t]; ok {
			srcParts += int(d.NumPartitions)
		}
	}
	def := *partitions
	if def <= 0 {
		def = max(srcParts, 1)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tKIND\tFIELD\tSTATUS")
	seen := map[string]bool{}
	missing := 0
	var failed []error
	for _, n := range needs {
		if seen[n.Topic] {
			continue
		}
		seen[n.Topic] = true
		if d, ok := existing[n.Topic]; ok {
			fmt.Fprintf(tw, "%s\t%s\t%s\texists (%d partitions)\n", n.Topic, n.kind, n.Field, d.NumPartitions)
			continue
		}
		missing++
		parts := def
		if n.partitions > 0 {
			parts = n.partitions
		}
		switch {
		case !create:
			fmt.Fprintf(tw, "%s\t%s\t%s\tMISSING\n", n.Topic, n.kind, n.Field)
		case *dry:
			fmt.Fprintf(tw, "%s\t%s\t%s\twould be created (%d partitions)\n", n.Topic, n.kind, n.Field, parts)
		default:
			err := admin.CreateTopic(n.Topic, &sarama.TopicDetail{NumPartitions: int32(parts), ReplicationFactor: int16(*replication)}, false)
			if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				fmt.Fprintf(tw, "%s\t%s\t%s\tFAILED: %v\n", n.Topic, n.kind, n.Field, err)
				failed = append(failed, fmt.Errorf("%s (%s): %w", n.Topic, n.Field, err))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\tcreated (%d partitions)\n", n.Topic, n.kind, n.Field, parts)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case len(failed) > 0:
		return fmt.Errorf("creating topics: %w", errors.Join(failed...))
	case !create && missing > 0:
		return fmt.Errorf("%d topic(s) missing: worker topics create -c %s creates them", missing, *path)
	}
	return nil
}
