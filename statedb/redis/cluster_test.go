package redis_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/statedb"
	redisstore "github.com/eddy-streams/eddy/statedb/redis"
	"github.com/eddy-streams/eddy/statedb/statedbtest"
)

// startCluster starts a private Redis Cluster of n masters (no replicas,
// no persistence), the 16384 slots split evenly, and returns their
// addresses once every node reports cluster_state:ok.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range n {
		addrs[i] = startServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--appendonly", "no").addr
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	clients := make([]*goredis.Client, n)
	for i, a := range addrs {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: a})
		defer func() { _ = clients[i].Close() }()
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := clients[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("node %s: CLUSTER ADDSLOTSRANGE %d %d: %v", a, lo, hi, err)
		}
	}
	for _, a := range addrs[1:] {
		host, port, _ := net.SplitHostPort(a)
		if err := clients[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatalf("CLUSTER MEET %s: %v", a, err)
		}
	}
	for {
		ready := true
		for _, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				t.Fatalf("CLUSTER INFO: %v", err)
			}
			shards, err := c.ClusterShards(ctx).Result()
			if err != nil {
				t.Fatalf("CLUSTER SHARDS: %v", err)
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) || len(shards) != n {
				ready = false
			}
		}
		if ready {
			return addrs
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the private cluster %v did not become ready: %v", addrs, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestConformanceCluster runs the suite against a 3-master Redis Cluster,
// through New (Addrs with several seeds make a cluster client) and through
// NewFromClient with round trips counted on the node connections. A
// script whose KEYS spanned slots would fail with CROSSSLOT here.
func TestConformanceCluster(t *testing.T) {
	addrs := startCluster(t, 3)
	t.Run("New", func(t *testing.T) {
		statedbtest.Run(t, func(t *testing.T) statedb.Store {
			st, err := redisstore.New(t.Context(), redisstore.Config{Addrs: addrs, KeyPrefix: uniquePrefix(t)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		})
	})
	t.Run("NewFromClient", func(t *testing.T) {
		trips := &roundTrips{}
		client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		client.OnNewNode(func(node *goredis.Client) { node.AddHook(trips) })
		t.Cleanup(func() { _ = client.Close() })
		statedbtest.Run(t, func(t *testing.T) statedb.Store {
			st, err := redisstore.NewFromClient(client, uniquePrefix(t))
			if err != nil {
				t.Fatalf("NewFromClient: %v", err)
			}
			return st
		}, statedbtest.WithRoundTrips(trips.n.Load))
	})
}

// TestKeyLayout checks on the cluster that the keys are the documented
// ones, that every key of a partition is in one slot (also for topics with
// braces and colons), and that partitions spread over the nodes.
func TestKeyLayout(t *testing.T) {
	addrs := startCluster(t, 3)
	ctx := t.Context()
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = client.Close() })
	prefix := "eddy:layout:"
	st, err := redisstore.NewFromClient(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	wantBase := map[statedb.Partition]string{
		{Topic: "orders", Partition: 0}:        prefix + "{orders:0}",
		{Topic: "orders", Partition: 11}:       prefix + "{orders:11}",
		{Topic: "Orders.v2_x-y", Partition: 3}: prefix + "{Orders.v2_x-y:3}",
		{Topic: "we{ir}d:topic", Partition: 1}: prefix + "{we%7Bir%7Dd%3Atopic:1}",
		{Topic: "}", Partition: 2}:             prefix + "{%7D:2}",
		{Topic: "ünï %", Partition: 5}:         prefix + "{%C3%BCn%C3%AF%20%25:5}",
	}
	for i := range 16 {
		p := statedb.Partition{Topic: "spread", Partition: int32(i)}
		wantBase[p] = fmt.Sprintf("%s{spread:%d}", prefix, i)
	}
	for p := range wantBase {
		c, err := st.Acquire(ctx, p)
		if err != nil {
			t.Fatalf("Acquire(%v): %v", p, err)
		}
		if err := st.Commit(ctx, &statedb.Commit{Partition: p, Epoch: c.Epoch, Offset: 1, Meta: []byte("m"),
			Puts:      []statedb.Entry{{Key: "k", Value: []byte("v")}, {Key: "{odd}:key }{", Value: []byte("v"), TTL: time.Hour}},
			IDs:       []string{"id"},
			SetTimers: []statedb.Timer{{Key: "t", Due: 1}}}); err != nil {
			t.Fatalf("Commit(%v): %v", p, err)
		}
	}
	// The cluster refuses a script whose keys span slots, so the suite
	// runs above would have failed had any call done so.
	if err := client.Eval(ctx, "return 1", []string{"a", "b"}).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("a script over keys in two slots: err = %v, want CROSSSLOT", err)
	}
	// Every key in the cluster, from every master.
	var mu sync.Mutex
	var keys []string
	err = client.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
		ks, err := node.Keys(ctx, "*").Result()
		mu.Lock()
		keys = append(keys, ks...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatalf("KEYS on the masters: %v", err)
	}
	var want []string
	for _, base := range wantBase {
		want = append(want, base+":meta", base+":ids", base+":timers", base+":s:k", base+":s:{odd}:key }{")
	}
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys in Redis:\n%q\nwant:\n%q", keys, want)
	}
	slotOf := map[string]int64{}
	nodes := map[string]bool{}
	for _, base := range wantBase {
		for _, suffix := range []string{":meta", ":ids", ":timers", ":s:k", ":s:{odd}:key }{"} {
			slot, err := client.ClusterKeySlot(ctx, base+suffix).Result()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT: %v", err)
			}
			if s, ok := slotOf[base]; ok && s != slot {
				t.Errorf("key %q in slot %d, other keys of its partition in slot %d", base+suffix, slot, s)
			}
			slotOf[base] = slot
		}
		nodes[fmt.Sprint(slotOf[base]*3/16384)] = true
	}
	if len(nodes) != 3 {
		t.Errorf("the %d partitions landed on %d of 3 masters", len(wantBase), len(nodes))
	}
}
