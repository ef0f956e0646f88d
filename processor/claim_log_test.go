package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// TestClaimLogsWhereItStarts: the "partition claimed" line says where a
// partition without a committed offset starts in the config's words
// (source.start: earliest or latest), not as sarama's -2 or -1; a
// committed offset is logged as initial_offset.
func TestClaimLogsWhereItStarts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		initial int64
		want    map[string]any // fields of the line
		absent  string         // a field the line must not have
	}{
		{"no committed offset, start earliest", sarama.OffsetOldest, map[string]any{"start": "earliest"}, "initial_offset"},
		{"no committed offset, start latest", sarama.OffsetNewest, map[string]any{"start": "latest"}, "initial_offset"},
		{"committed offset", 0, map[string]any{"initial_offset": int64(0)}, "start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pipeline.Parse("unit.yaml", []byte(fmt.Sprintf(testPipeline, false, 100, "20ms")))
			if err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zap.InfoLevel)
			w, err := New(p, WithStore(memory.New()), WithLogger(zap.New(core)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			claim := &fakeClaim{topic: "in", msgs: make(chan *sarama.ConsumerMessage), initial: tc.initial}
			tk, err := newTask(&handler{w: w, producer: &fakeProducer{}, marked: make(chan struct{}, 1)}, &fakeSession{ctx: ctx}, claim)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tk.run() }()
			defer func() { cancel(); <-done }()

			deadline := time.Now().Add(10 * time.Second)
			for logs.FilterMessage("partition claimed").Len() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no \"partition claimed\" line")
				}
				time.Sleep(5 * time.Millisecond)
			}
			fields := logs.FilterMessage("partition claimed").All()[0].ContextMap()
			for k, v := range tc.want {
				if fields[k] != v {
					t.Errorf("%s = %#v; want %#v (line %v)", k, fields[k], v, fields)
				}
			}
			if _, ok := fields[tc.absent]; ok {
				t.Errorf("the line has %s: %v", tc.absent, fields)
			}
		})
	}
}
