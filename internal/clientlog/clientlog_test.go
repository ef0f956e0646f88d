package clientlog

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestLimited: one line per format per Every, as JSON-able fields, with
// the count of the ones left out in between.
func TestLimited(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	l := New(zap.New(core))
	now := time.Unix(0, 0)
	l.now = func() time.Time { return now }
	for i := range 5 {
		l.Printf(context.Background(), "pool.go:770: dial %s: refused", "127.0.0.1:6379")
		now = now.Add(time.Second * time.Duration(i))
	}
	l.Printf(context.Background(), "another: %d", 1)
	now = now.Add(Every)
	l.Printf(context.Background(), "pool.go:770: dial %s: refused", "127.0.0.1:6379")
	got := logs.All()
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3: %v", len(got), got)
	}
	if m := got[0].ContextMap(); m["message"] != "pool.go:770: dial 127.0.0.1:6379: refused" || got[0].Message != "client library" {
		t.Errorf("first line %v", got[0])
	}
	if m := got[2].ContextMap(); m["similar_left_out"] != int64(4) {
		t.Errorf("third line %v, want 4 left out", m)
	}
}
