package singlestore

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

func TestFenceStaleEpoch(t *testing.T) {
	s := newTestStore(t, Config{})
	p := statedb.Partition{Topic: "t", Partition: 0}
	old := mustAcquire(t, s, p)
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: old.Epoch, Offset: 1, Puts: []statedb.Entry{{Key: "k", Value: []byte("old")}}})
	cur := mustAcquire(t, s, p)

	tests := []struct {
		name string
		c    statedb.Commit
	}{
		{"offset only", statedb.Commit{Epoch: old.Epoch, Offset: 2}},
		{"with state", statedb.Commit{Epoch: old.Epoch, Offset: 2, Puts: []statedb.Entry{{Key: "k", Value: []byte("zombie")}},
			Deletes: []string{"k"}, IDs: []string{"id"}, SetTimers: []statedb.Timer{{Key: "t", Due: 1}}}},
		{"future epoch", statedb.Commit{Epoch: cur.Epoch + 1, Offset: 2, Puts: []statedb.Entry{{Key: "k", Value: []byte("zombie")}}}},
		{"never acquired", statedb.Commit{Epoch: 1, Offset: 2, Puts: []statedb.Entry{{Key: "k", Value: []byte("zombie")}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			c.Partition = p
			if tt.name == "never acquired" {
				c.Partition.Partition = 99
			}
			if err := s.Commit(testCtx(t), &c); !isFenced(err) {
				t.Fatalf("Commit(epoch %d) = %v, want ErrFenced", c.Epoch, err)
			}
			wantValues(t, s, p, []string{"k"}, map[string][]byte{"k": []byte("old")})
			if seen, _ := s.Seen(testCtx(t), c.Partition, []string{"id"}); seen["id"] {
				t.Error("fenced commit recorded its id")
			}
			if due, _ := s.Due(testCtx(t), c.Partition, "", 10, 10); len(due) != 0 {
				t.Errorf("fenced commit set timers: %v", due)
			}
			if _, wm := ownerRow(t, s, p); wm != 1 {
				t.Errorf("watermark = %d after a fenced commit, want 1", wm)
			}
		})
	}
	// The current owner still commits.
	mustCommit(t, s, &statedb.Commit{Partition: p, Epoch: cur.Epoch, Offset: 2, Puts: []statedb.Entry{{Key: "k", Value: []byte("new")}}})
	wantValues(t, s, p, []string{"k"}, map[string][]byte{"k": []byte("new")})
}

// TestFenceRace races an owner's commits against a successor's Acquire, many
// times, alongside a zombie that is two epochs behind. Whatever the
// interleaving: the zombie never commits; every commit of the owner that
// succeeded is visible to the successor's claim, and none lands after it,
// so the claim's offset is exactly the owner's last successful commit and
// the state holds that commit's value.
func TestFenceRace(t *testing.T) {
	s := newTestStore(t, Config{MaxOpenConns: 8})
	p := statedb.Partition{Topic: "race", Partition: 0}
	zombie := mustAcquire(t, s, p)
	owner := mustAcquire(t, s, p)

	const rounds = 30
	var fencedAfter []int
	for round := range rounds {
		base := int64(round) * 1000
		_, wmBefore := ownerRow(t, s, p)
		var wg sync.WaitGroup
		var lastOK int64 = -1
		var ownerErr error
		fenced := 0
		start := make(chan struct{})
		wg.Add(3)
		go func() { // the owner commits until it is fenced, and a few times after
			defer wg.Done()
			<-start
			for off := base + 1; off < base+1000 && fenced < 3; off++ {
				err := s.Commit(testCtx(t), &statedb.Commit{Partition: p, Epoch: owner.Epoch, Offset: off,
					Puts: []statedb.Entry{{Key: "k", Value: fmt.Appendf(nil, "%d", off)}}, IDs: []string{fmt.Sprint(off)}})
				switch {
				case err == nil && fenced > 0:
					ownerErr = fmt.Errorf("commit at offset %d succeeded after an earlier one was fenced", off)
					return
				case err == nil:
					lastOK = off
				case isFenced(err):
					fenced++
				default:
					ownerErr = err
					return
				}
			}
		}()
		var zombieErr error
		go func() { // the zombie never gets in
			defer wg.Done()
			<-start
			for off := base + 1; off < base+20; off++ {
				err := s.Commit(testCtx(t), &statedb.Commit{Partition: p, Epoch: zombie.Epoch, Offset: off,
					Puts: []statedb.Entry{{Key: "k", Value: []byte("zombie")}}})
				if !isFenced(err) {
					zombieErr = fmt.Errorf("zombie commit at offset %d: %v, want ErrFenced", off, err)
					return
				}
			}
		}()
		var next statedb.Claim
		var acqErr error
		go func() {
			defer wg.Done()
			<-start
			// Land the Acquire at a different point of the owner's
			// stream each round.
			time.Sleep(time.Duration(round%8) * time.Millisecond)
			next, acqErr = s.Acquire(testCtx(t), p)
		}()
		close(start)
		wg.Wait()
		for _, err := range []error{ownerErr, zombieErr, acqErr} {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if fenced == 0 {
			t.Fatalf("round %d: the owner was never fenced", round)
		}
		wantOffset := lastOK
		if lastOK < 0 { // fenced before its first commit
			wantOffset = wmBefore
		}
		if next.Offset != wantOffset {
			t.Fatalf("round %d: successor's claim offset %d, owner's last successful commit %d", round, next.Offset, lastOK)
		}
		if _, wm := ownerRow(t, s, p); wm != next.Offset {
			t.Fatalf("round %d: watermark %d after the race, claim said %d: a stale commit landed late", round, wm, next.Offset)
		}
		if lastOK >= 0 {
			wantValues(t, s, p, []string{"k"}, map[string][]byte{"k": fmt.Appendf(nil, "%d", lastOK)})
			if seen, _ := s.Seen(testCtx(t), p, []string{fmt.Sprint(lastOK + 1)}); len(seen) != 0 {
				t.Fatalf("round %d: the id of a fenced commit was recorded", round)
			}
		}
		fencedAfter = append(fencedAfter, int(max(lastOK-base, 0)))
		zombie, owner = owner, next
	}
	// The race is real when the Acquire lands at different points.
	slices.Sort(fencedAfter)
	t.Logf("commits before the successor's Acquire, per round (sorted): %v", fencedAfter)
}

// TestAcquireConcurrent runs Acquires of one partition from many goroutines:
// every epoch is handed out exactly once, and each goroutine sees its own
// epochs increase.
func TestAcquireConcurrent(t *testing.T) {
	s := newTestStore(t, Config{MaxOpenConns: 8})
	p := statedb.Partition{Topic: "acq", Partition: 0}
	const workers, each = 8, 25
	epochs := make([][]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				c, err := s.Acquire(testCtx(t), p)
				if err != nil {
					errs[w] = err
					return
				}
				epochs[w] = append(epochs[w], c.Epoch)
			}
		})
	}
	wg.Wait()
	var all []int64
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		if !slices.IsSorted(epochs[w]) {
			t.Errorf("worker %d saw epochs out of order: %v", w, epochs[w])
		}
		all = append(all, epochs[w]...)
	}
	slices.Sort(all)
	for i, e := range all {
		if e != int64(i+1) {
			t.Fatalf("epochs handed out: %v..., want each of 1..%d exactly once", all[:min(len(all), i+3)], workers*each)
		}
	}
}
