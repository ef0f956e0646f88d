package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// TestTopicsCheckAndCreate: worker topics check lists what a pipeline
// reads and writes and fails while something is missing; create makes
// the missing ones (outputs with the source's partition count, the
// internal topic with its step's), after which check passes.
func TestTopicsCheckAndCreate(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	in := testenv.Topic(t, brokers, 3)
	out, dlq, name := testenv.Unique("tout"), testenv.Unique("tdlq"), testenv.Unique("tpipe")
	internal := "eddy-" + name + "-rk"
	admin, err := sarama.NewClusterAdmin(brokers, testenv.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	t.Cleanup(func() {
		for _, tp := range []string{out, dlq, internal} {
			_ = admin.DeleteTopic(tp)
		}
	})
	path := writePipeline(t, fmt.Sprintf("name: %s\nkafka: {brokers: [%s]}\nsource: {topics: [%s]}\ndead_letter: {topic: %s}\nsteps:\n  - repartition: {name: rk, key: event.k, partitions: 2}\nsink: {topic: %s}\n",
		name, brokers[0], in, dlq, out))

	// has reports whether out holds the line want, spacing aside.
	has := func(out, want string) bool {
		return strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " "))
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"topics", "check", "-c", path}, &stdout, &stderr)
	if code != 1 || !has(stdout.String(), out+" output sink.topic MISSING") || !has(stdout.String(), in+" input source.topics[0] exists (3 partitions)") {
		t.Fatalf("check before: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"topics", "create", "-c", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("create: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{out + "  output  sink.topic  created (3 partitions)", dlq + "  output  dead_letter.topic  created (3 partitions)", internal + "  internal  internal (rk)  created (2 partitions)"} {
		if !has(stdout.String(), want) {
			t.Errorf("create printed\n%s\nwant a line %q", stdout.String(), want)
		}
	}
	stdout.Reset()
	if code := run([]string{"topics", "check", "-c", path}, &stdout, &stderr); code != 0 {
		t.Errorf("check after create: exit %d\n%s", code, stdout.String())
	}
}
