package offsets

import (
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
)

func TestReplay(t *testing.T) {
	wm := func(off int64) *Watermark { return &Watermark{Offset: off, Epoch: 1} }
	for _, c := range []struct {
		name              string
		start, end, new   int64
		w                 *Watermark
		skip, proc, never int64
		text              string
	}{
		{"back to the start of a fully applied log", 0, 100, 0, wm(99), 100, 0, 0,
			"skip 0-99 (100 already in state); nothing to process until new messages arrive"},
		{"back into a partly applied log", 0, 100, 40, wm(59), 20, 40, 0,
			"skip 40-59 (20 already in state); process 60-99 (40)"},
		{"to W+1: nothing skipped", 0, 100, 60, wm(59), 0, 40, 0, "process 60-99 (40)"},
		{"forward past W is rewound to W+1 (read-only store)", 0, 100, 100, wm(59), 0, 40, 0,
			"workers rewind to W+1 (a forward reset past the store's watermark skips nothing); process 60-99 (40)"},
		{"rewound below the log start starts at the log start (read-only store)", 50, 100, 80, wm(9), 0, 50, 0,
			"workers rewind to W+1 (a forward reset past the store's watermark skips nothing); process 50-99 (50)"},
		{"forward past W advances W (writable store)", 0, 100, 100, wm(59), 0, 0, 40,
			"NEVER process 60-99 (40, skipped on purpose: the store's watermark moves to 99); nothing to process until new messages arrive"},
		{"forward into the log advances W to new-1 (writable store)", 0, 100, 80, wm(59), 0, 20, 20,
			"NEVER process 60-79 (20, skipped on purpose: the store's watermark moves to 79); process 80-99 (20)"},
		{"forward on a partition the store has no record of", 0, 100, 30, wm(statedb.NoOffset), 0, 70, 30,
			"NEVER process 0-29 (30, jumped over; the store has no record of the partition); process 30-99 (70)"},
		{"forward on a partition the store has no record of sets W (writable store)", 0, 100, 30, wm(statedb.NoOffset), 0, 70, 30,
			"NEVER process 0-29 (30, skipped on purpose: the store's watermark moves to 29); process 30-99 (70)"},
		{"forward with an unknown watermark", 0, 100, 30, nil, 0, 70, 0,
			"process 30-99 (70; watermark unknown: what is in state is skipped)"},
		{"never applied", 0, 10, 0, wm(statedb.NoOffset), 0, 10, 0, "process 0-9 (10)"},
		{"single offsets", 0, 2, 1, wm(1), 1, 0, 0, "skip 1 (1 already in state); nothing to process until new messages arrive"},
		{"watermark beyond the log end", 0, 10, 0, wm(500), 10, 0, 0,
			"skip 0-9 (10 already in state); nothing to process until new messages arrive"},
		{"unknown watermark", 0, 10, 3, nil, 0, 7, 0, "process 3-9 (7; watermark unknown: what is in state is skipped)"},
		{"empty partition", 0, 0, 0, wm(statedb.NoOffset), 0, 0, 0, "nothing to process until new messages arrive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := Move{PartitionStatus: PartitionStatus{LogStart: c.start, LogEnd: c.end, Watermark: c.w}, New: c.new}
			m.replay(strings.Contains(c.name, "writable"))
			r := m.Replay
			if r.Skip.Len() != c.skip || r.Process.Len() != c.proc || r.Never.Len() != c.never {
				t.Errorf("skip %v (%d) process %v (%d) never %v (%d), want %d, %d, %d",
					r.Skip, r.Skip.Len(), r.Process, r.Process.Len(), r.Never, r.Never.Len(), c.skip, c.proc, c.never)
			}
			if r.Rewind != strings.HasPrefix(c.text, "workers rewind") {
				t.Errorf("rewind %v", r.Rewind)
			}
			if r.Advance != strings.Contains(c.text, "skipped on purpose") {
				t.Errorf("advance %v", r.Advance)
			}
			if r.Known != (c.w != nil) {
				t.Errorf("known %v with watermark %v", r.Known, c.w)
			}
			if got := r.String(); got != c.text {
				t.Errorf("String:\n got  %q\n want %q", got, c.text)
			}
		})
	}
}

func TestPartitionStatusCheck(t *testing.T) {
	for _, c := range []struct {
		name                  string
		start, end, committed int64
		w                     *Watermark
		next, lag             int64
		warning               string
	}{
		{"caught up", 0, 100, 100, &Watermark{Offset: 99}, 100, 0, ""},
		{"commit behind the store (commit interval)", 0, 100, 80, &Watermark{Offset: 89}, 90, 10, ""},
		{"nothing yet", 0, 100, -1, &Watermark{Offset: -1}, 0, 100, ""},
		{"nothing yet, log truncated", 30, 100, -1, nil, 30, 70, ""},
		{"no store: from the commit", 0, 100, 60, nil, 60, 40, ""},
		{"commit ahead of the store: rewound", 0, 100, 80, &Watermark{Offset: 49}, 50, 50,
			"committed offset 80 is ahead of the store watermark 49: a worker that claims the partition rewinds the group to 50 and processes 50-79"},
		{"commit but no record in the store", 0, 100, 80, &Watermark{Offset: -1}, 80, 20,
			"the store has no record of this partition but the group has committed offset 80: offsets 0-79 are not in state (a new or wiped store: a worker that claims it rebuilds it from offset 0 when the log starts there, else holds it; see state.missing)"},
		{"watermark beyond the log end", 0, 10, 10, &Watermark{Offset: 500}, 501, 0,
			"store watermark 500 is at or beyond the log end 10: the topic was recreated or truncated?"},
		{"commit beyond the log end", 0, 10, 20, nil, 20, 0, "committed offset 20 is beyond the log end 10"},
		{"commit deleted by retention", 50, 100, 20, nil, 50, 50,
			"committed offset 20 is below the log start 50: offsets 20-49 were deleted by retention before being read"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := PartitionStatus{LogStart: c.start, LogEnd: c.end, Committed: c.committed, Watermark: c.w}
			p.check()
			if p.Next() != c.next || p.Lag != c.lag {
				t.Errorf("next %d lag %d, want %d and %d", p.Next(), p.Lag, c.next, c.lag)
			}
			switch {
			case c.warning == "" && len(p.Warnings) != 0:
				t.Errorf("warnings %q, want none", p.Warnings)
			case c.warning != "" && (len(p.Warnings) != 1 || !strings.HasPrefix(p.Warnings[0], c.warning)):
				t.Errorf("warnings %q, want one starting %q", p.Warnings, c.warning)
			}
		})
	}
}

func TestActiveGroupErrorNamesMembers(t *testing.T) {
	inst := Member{ID: "eddy-2-b", InstanceID: "pod-1", ClientID: "eddy", Host: "/10.0.0.2", Assigned: map[string][]int32{"orders": {1, 3}}}
	e := &ActiveGroupError{Group: &Group{ID: "eddy-orders", State: "Stable", Members: []Member{
		{ID: "eddy-1-a", ClientID: "eddy", Host: "/10.0.0.1"}, inst}}}
	want := "offsets: group eddy-orders is Stable with 2 live member(s): " +
		"eddy-1-a (client eddy, host /10.0.0.1); " +
		"eddy-2-b (client eddy, host /10.0.0.2, static instance pod-1, partitions orders[1 3]). " +
		"Kafka accepts offsets from outside a group only while it has no members: stop the workers first " +
		"(they leave the group when they stop); static members stay in the group for the session timeout after their worker stops"
	if got := e.Error(); got != want {
		t.Errorf("Error:\n got  %q\n want %q", got, want)
	}
}

func TestTargets(t *testing.T) {
	for _, c := range []struct {
		to   To
		want string
	}{
		{ToEarliest(), "earliest"}, {ToLatest(), "latest"}, {ToOffset(42), "offset 42"}, {To{}, "nowhere"},
	} {
		if got := c.to.String(); got != c.want {
			t.Errorf("String = %q, want %q", got, c.want)
		}
	}
}

func TestNewChecksItsArguments(t *testing.T) {
	old := sarama.NewConfig()
	old.Version = sarama.V2_0_0_0
	for _, c := range []struct {
		name    string
		brokers []string
		group   string
		opts    []Option
		want    string
	}{
		{"no brokers", nil, "g", nil, "offsets: no brokers"},
		{"no group", []string{"127.0.0.1:1"}, "", nil, "offsets: empty group id"},
		{"old version", []string{"127.0.0.1:1"}, "g", []Option{WithSaramaConfig(old)}, "offsets: kafka version 2.0.0: at least 2.1.0 is needed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.brokers, c.group, c.opts...)
			if err == nil || err.Error() != c.want {
				t.Errorf("New: %v, want %q", err, c.want)
			}
		})
	}
}

// GroupOf must name the group processor.New joins, or show and reset
// would look at another group than the workers use.
func TestGroupOfMatchesTheRuntime(t *testing.T) {
	for _, yaml := range []string{
		"name: orders\nkafka: {brokers: [k:9092]}\nsource: {topics: [in]}\nsink: {topic: out}\n",
		"name: orders\nkafka: {brokers: [k:9092], group: billing}\nsource: {topics: [in]}\nsink: {topic: out}\n",
	} {
		p, err := pipeline.Parse("p.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		w, err := processor.New(p, processor.WithStore(memory.New()))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := GroupOf(p), w.Group(); got != want {
			t.Errorf("GroupOf = %q, the runtime joins %q", got, want)
		}
	}
}
