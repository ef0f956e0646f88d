package dedup

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestDefaultID(t *testing.T) {
	if got := DefaultID("t", 3, 42, nil); got != "t-3-42" {
		t.Errorf("DefaultID without header = %q", got)
	}
	if got := DefaultID("t", 3, 42, map[string]string{IDHeader: "abc"}); got != "abc" {
		t.Errorf("DefaultID with eddy-id = %q", got)
	}
	if got := DefaultID("t", 3, 42, map[string]string{IDHeader: ""}); got != "t-3-42" {
		t.Errorf("DefaultID with an empty eddy-id = %q", got)
	}
}

func TestTracker(t *testing.T) {
	store := map[string]bool{"old": true}
	calls := 0
	seen := func(_ context.Context, ids []string) (map[string]bool, error) {
		calls++
		out := map[string]bool{}
		for _, id := range ids {
			if store[id] {
				out[id] = true
			}
		}
		return out, nil
	}
	tr := NewTracker()
	keep, err := tr.Filter(context.Background(), []string{"a", "old", "b", "a"}, seen)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keep) != "[true false true false]" {
		t.Errorf("first batch keep = %v", keep)
	}
	keep, _ = tr.Filter(context.Background(), []string{"b", "c"}, seen)
	if fmt.Sprint(keep) != "[false true]" {
		t.Errorf("second batch keep = %v: pending IDs must be duplicates", keep)
	}
	if fmt.Sprint(tr.Pending()) != "[a b c]" {
		t.Errorf("pending = %v", tr.Pending())
	}
	if calls != 2 {
		t.Errorf("%d store calls, want one per batch", calls)
	}
	for _, id := range tr.Pending() {
		store[id] = true
	}
	tr.Committed()
	keep, _ = tr.Filter(context.Background(), []string{"a", "d"}, seen)
	if fmt.Sprint(keep) != "[false true]" {
		t.Errorf("after commit keep = %v: the store must now answer for a", keep)
	}
	boom := errors.New("down")
	before := fmt.Sprint(tr.Pending())
	if _, err := tr.Filter(context.Background(), []string{"e"}, func(context.Context, []string) (map[string]bool, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
	if fmt.Sprint(tr.Pending()) != before {
		t.Errorf("a failed Filter changed the pending IDs: %v", tr.Pending())
	}
}
