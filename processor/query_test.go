package processor_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/eddytest"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
)

const queriedYAML = `
name: queried
source: {topics: [clicks], event_time: timestamp(event.ts)}
steps:
  - lookup: {table: plans, key: event.user, as: plan, type: left}
  - aggregate:
      name: per_minute
      key: event.user
      window: {tumbling: 1m}
      values: {n: count(), ms: sum(event.ms)}
  - aggregate:
      name: visits
      key: key
      window: {session: 10m}
      values: {n: count()}
sink: {topic: out}
tables:
  - {name: plans, topic: plans}
`

// TestStateReaderReadsWhatTheOwnersCommitted runs a pipeline on an
// embedded broker with memory state, on three partitions, and reads its
// state back as a query would: a key's windows, open and closed (kept
// for retention), the window at a time, sessions, a table row; unknown
// steps, tables and keys are errors of their own.
func TestStateReaderReadsWhatTheOwnersCommitted(t *testing.T) {
	p, err := pipeline.Parse("queried.yaml", []byte(queriedYAML), pipeline.WithBrokers("embedded:9092"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := eddytest.Start(ctx, []*pipeline.Pipeline{p}, eddytest.Config{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := r.Send(eddytest.Event{Topic: "plans", Key: "ann", Value: []byte(`{"tier":"pro"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := r.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	click := func(user, ts string, ms int) eddytest.Event {
		return eddytest.Event{Key: user, Value: []byte(`{"user":"` + user + `","ts":"2024-01-01T` + ts + `Z","ms":` + strconv.Itoa(ms) + `}`)}
	}
	// ann: two clicks in minute 0, one in minute 1 (which closes minute 0
	// on her partition); the session goes on (gap 10m).
	if err := r.Send(click("ann", "00:00:10", 5), click("ann", "00:00:20", 7), click("bob", "00:00:30", 1), click("ann", "00:01:05", 2)); err != nil {
		t.Fatal(err)
	}
	if err := r.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.Stages()[0]
	q, err := processor.NewStateReader(st.Pipeline, st.Store, func(context.Context, string) (int32, error) { return 3, nil })
	if err != nil {
		t.Fatal(err)
	}
	ks, err := q.Windows(ctx, "per_minute", "ann", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Minute 0 closed (its result emitted) and its state went in the same
	// commit: what is left is minute 1, open.
	if len(ks.Windows) != 1 {
		t.Fatalf("ann's windows: %+v, want minute 1 alone", ks.Windows)
	}
	if w := ks.Windows[0]; w.Closed || w.Result["n"] != int64(1) || w.Result["ms"] != int64(2) || w.Result["key"] != "ann" ||
		w.Start != time.Date(2024, 1, 1, 0, 1, 0, 0, time.UTC) || w.Result["window_end"] != time.Date(2024, 1, 1, 0, 2, 0, 0, time.UTC) {
		t.Errorf("minute 1: %+v; want open, n 1, ms 2", w)
	}
	if wm := ks.Watermark[ks.Windows[0].Partition]; !wm.Equal(time.Date(2024, 1, 1, 0, 1, 5, 0, time.UTC)) {
		t.Errorf("the partition's watermark %v, want ann's last click, 00:01:05", wm)
	}
	bob, err := q.Windows(ctx, "per_minute", "bob", time.Date(2024, 1, 1, 0, 0, 59, 0, time.UTC))
	if err != nil || len(bob.Windows) != 1 || bob.Windows[0].Result["n"] != int64(1) {
		t.Errorf("bob at 00:00:59: %+v (%v); want his open minute 0", bob, err)
	}
	sess, err := q.Windows(ctx, "visits", "ann", time.Time{})
	// visits counts per_minute's results: ann's closed minute 0 so far,
	// stamped at its end.
	if err != nil || len(sess.Windows) != 1 || sess.Windows[0].Result["n"] != int64(1) || sess.Windows[0].Closed ||
		!sess.Windows[0].Start.Equal(time.Date(2024, 1, 1, 0, 0, 59, 999e6, time.UTC)) {
		t.Errorf("ann's sessions: %+v (%v); want one open session of her one closed minute", sess, err)
	}
	row, err := q.Row(ctx, "plans", "ann")
	if err != nil || row["tier"] != "pro" {
		t.Errorf("plans/ann: %v (%v); want tier pro", row, err)
	}
	for _, tc := range []struct {
		what string
		err  error
		want error
	}{
		{"unknown step", second(q.Windows(ctx, "nope", "ann", time.Time{})), processor.ErrUnknown},
		{"unknown key", second(q.Windows(ctx, "per_minute", "zoe", time.Time{})), processor.ErrNotFound},
		{"no window at", second(q.Windows(ctx, "per_minute", "ann", time.Date(2024, 1, 1, 0, 0, 15, 0, time.UTC))), processor.ErrNotFound},
		{"unknown table", second(q.Row(ctx, "nope", "ann")), processor.ErrUnknown},
		{"unknown row", second(q.Row(ctx, "plans", "zoe")), processor.ErrNotFound},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.what, tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }
