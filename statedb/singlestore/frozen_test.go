package singlestore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/eddy-streams/eddy/statedb"
)

// TestFrozenCommitIsUndoneAndTakenOver freezes a store between its
// commit's statements and the COMMIT, the way a SIGSTOPped or paused
// worker would: its transaction holds the partition's owner row locked.
//
// With WaitTimeout the server closes the silent connection and rolls the
// transaction back, so the next owner's Acquire goes through and sees
// none of the frozen commit; the frozen store, resumed, gets an error and
// then ErrFenced, never a commit. With the server's default (8 hours) the
// next owner stays blocked for as long as the worker stays frozen: that
// is what the setting is for.
func TestFrozenCommitIsUndoneAndTakenOver(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wait      time.Duration
		takenOver bool
	}{
		{"wait_timeout 2s", 2 * time.Second, true},
		{"server default", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := freshDSN(t)
			proxy := startFreezeProxy(t, dsn)
			zombie := newTestStore(t, Config{DSN: proxy.dsn, WaitTimeout: tc.wait})
			next := newTestStore(t, Config{DSN: dsn, WaitTimeout: tc.wait})
			p := statedb.Partition{Topic: "frozen", Partition: 3}

			first := mustAcquire(t, zombie, p)
			proxy.freezeAtCommit()
			commit := &statedb.Commit{Partition: p, Epoch: first.Epoch, Offset: 41,
				Puts: []statedb.Entry{{Key: "k", Value: []byte("from the frozen worker")}}}
			done := make(chan error, 1)
			go func() { done <- zombie.Commit(testCtx(t), commit) }()
			select {
			case <-proxy.frozen:
			case err := <-done:
				t.Fatalf("the commit ended without reaching COMMIT: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the commit never reached COMMIT")
			}

			limit := 20 * time.Second
			if !tc.takenOver {
				limit = 4 * time.Second // long enough to show that it blocks
			}
			ctx, cancel := context.WithTimeout(testCtx(t), limit)
			start := time.Now()
			claim, err := next.Acquire(ctx, p)
			took := time.Since(start)
			cancel()
			t.Logf("the next owner's Acquire took %v: %+v, %v", took.Round(time.Millisecond), claim, err)
			proxy.thaw()
			late := <-done

			if !tc.takenOver {
				if err == nil {
					t.Fatalf("Acquire went through while the frozen worker held the owner row locked: the test does not freeze")
				}
				if late != nil {
					t.Fatalf("the commit failed once resumed although nobody took over: %v", late)
				}
				if c := mustAcquire(t, next, p); c.Offset != 41 {
					t.Fatalf("after the resumed commit: watermark %d, want 41", c.Offset)
				}
				return
			}
			if err != nil {
				t.Fatalf("the next owner could not take the partition over within %v: %v", limit, err)
			}
			if took < tc.wait-500*time.Millisecond {
				t.Errorf("Acquire took %v, less than wait_timeout %v: did the freeze hold the lock?", took, tc.wait)
			}
			if claim.Epoch <= first.Epoch || claim.Offset != -1 {
				t.Errorf("takeover claim epoch %d watermark %d, want epoch > %d and watermark -1 (the frozen commit undone)",
					claim.Epoch, claim.Offset, first.Epoch)
			}
			if late == nil {
				t.Fatal("the frozen worker's commit succeeded after the takeover")
			}
			if err := zombie.Commit(testCtx(t), commit); !errors.Is(err, statedb.ErrFenced) {
				t.Fatalf("the frozen worker's retried commit: %v, want ErrFenced", err)
			}
			wantValues(t, next, p, []string{"k"}, map[string][]byte{})
		})
	}
}

// freezeProxy forwards TCP connections to a MySQL server and, once armed,
// holds the first COMMIT a client sends until thawed.
type freezeProxy struct {
	dsn    string // the test DSN, through the proxy
	target string
	armed  atomic.Bool
	frozen chan struct{} // closed when a COMMIT is held
	thawed chan struct{}
	thawMu sync.Once
}

func startFreezeProxy(t *testing.T, dsn string) *freezeProxy {
	t.Helper()
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{target: mc.Addr, frozen: make(chan struct{}), thawed: make(chan struct{})}
	mc.Addr = ln.Addr().String()
	p.dsn = mc.FormatDSN()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		p.thaw()
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				p.forward(server, client)
				_ = server.Close()
			}()
			go func() {
				defer wg.Done()
				_, _ = io.Copy(client, server)
				_ = client.Close()
			}()
		}
	}()
	return p
}

// freezeAtCommit arms the proxy: the next COMMIT is held.
func (p *freezeProxy) freezeAtCommit() { p.armed.Store(true) }

// thaw lets the held COMMIT (if any) go on.
func (p *freezeProxy) thaw() { p.thawMu.Do(func() { close(p.thawed) }) }

// forward copies client bytes to the server. A COM_QUERY "COMMIT" packet
// (command byte 0x03) seen while armed is held until thaw.
func (p *freezeProxy) forward(server, client net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if bytes.Contains(buf[:n], []byte("\x03COMMIT")) && p.armed.CompareAndSwap(true, false) {
				close(p.frozen)
				<-p.thawed
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
