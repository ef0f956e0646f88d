package redis_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/statedb"
	redisstore "github.com/eddy-streams/eddy/statedb/redis"
	"github.com/eddy-streams/eddy/statedb/statedbtest"
)

// TestSentinel runs the suite through a Sentinel (Config.MasterName), then
// has the Sentinel fail the master over to its replica: the same store
// carries on against the new master with everything committed before.
func TestSentinel(t *testing.T) {
	master := startServer(t, append([]string{"--repl-diskless-sync-delay", "0"}, aofAlways...)...)
	replica := startServer(t, append([]string{"--replicaof"}, strings.Fields(strings.Replace(master.addr, ":", " ", 1))...)...)
	sentinel := startSentinel(t, master.addr)
	cfg := func(prefix string) redisstore.Config {
		return redisstore.Config{Addrs: []string{sentinel.addr}, MasterName: "mymaster", KeyPrefix: prefix}
	}
	waitReplica(t, replica.addr)

	t.Run("suite", func(t *testing.T) {
		statedbtest.Run(t, func(t *testing.T) statedb.Store {
			st, err := redisstore.New(t.Context(), cfg(uniquePrefix(t)))
			if err != nil {
				t.Fatalf("New via Sentinel: %v", err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		})
	})

	t.Run("failover", func(t *testing.T) {
		ctx := t.Context()
		st, err := redisstore.New(ctx, cfg(uniquePrefix(t)))
		if err != nil {
			t.Fatalf("New via Sentinel: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		p := statedb.Partition{Topic: "orders", Partition: 0}
		c := acquireT(t, st, p)
		if err := st.Commit(ctx, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 42, Meta: []byte("m"),
			Puts: []statedb.Entry{{Key: "k", Value: []byte("v")}}, IDs: []string{"id"}}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		// Replication is asynchronous: wait until the replica has it all
		// before the failover, as min-replicas-to-write would.
		mc := goredis.NewClient(&goredis.Options{Addr: master.addr})
		defer func() { _ = mc.Close() }()
		if n, err := mc.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n < 1 {
			t.Fatalf("WAIT 1: %d replicas, %v", n, err)
		}
		sc := goredis.NewSentinelClient(&goredis.Options{Addr: sentinel.addr})
		defer func() { _ = sc.Close() }()
		if err := sc.Failover(ctx, "mymaster").Err(); err != nil {
			t.Fatalf("SENTINEL FAILOVER: %v", err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
			if err == nil && net.JoinHostPort(addr[0], addr[1]) == replica.addr {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Sentinel did not promote the replica %s within 30 s (master now %v, %v)", replica.addr, addr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The same store, without reconnecting by hand: go-redis follows
		// the Sentinel to the new master (possibly after an error or two
		// while the old master turns replica).
		var next statedb.Claim
		for {
			next, err = st.Acquire(ctx, p)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Acquire after the failover: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if next.Offset != 42 || next.Epoch <= c.Epoch {
			t.Errorf("claim on the new master: epoch %d offset %d, want > %d and 42", next.Epoch, next.Offset, c.Epoch)
		}
		if err := st.Commit(ctx, &statedb.Commit{Partition: p, Epoch: next.Epoch, Offset: 43}); err != nil {
			t.Fatalf("Commit on the new master: %v", err)
		}
		rc := goredis.NewClient(&goredis.Options{Addr: replica.addr})
		defer func() { _ = rc.Close() }()
		if role, err := rc.Do(ctx, "ROLE").Slice(); err != nil || role[0] != "master" {
			t.Errorf("ROLE of the promoted replica: %v, %v", role, err)
		}
	})
}

// waitReplica waits until the replica at addr has synced with its master.
func waitReplica(t *testing.T, addr string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replica %s did not sync: %v", addr, info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
