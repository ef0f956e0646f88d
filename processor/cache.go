package processor

import (
	"context"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// cache is a partition task's view of its partition's state: values read
// from the store, and the changes not yet committed. It is owned by the
// task's goroutine.
//
// Clean entries are evicted after a commit once there are more than max;
// dirty entries stay until committed, so memory is bounded by the cache size
// plus one batch's writes, not by the number of keys. A deleted key is
// forgotten once its delete is committed (a later read asks the store,
// which answers absent): closed windows' keys, which are never read again,
// do not fill the map and slow every lookup.
type cache struct {
	store statedb.Store
	part  statedb.Partition
	max   int

	vals  map[string]cached
	dirt  map[string]struct{}
	setT  map[string]int64
	clrT  map[string]struct{}
	dels  []string // keys deleted since the last commit
	loads int      // store round trips, for tests and metrics
}

type cached struct {
	val []byte
	ok  bool // false: known absent (or deleted)
	ttl time.Duration
}

func newCache(s statedb.Store, p statedb.Partition, max int) *cache {
	c := &cache{store: s, part: p, max: max}
	c.reset()
	return c
}

func (c *cache) reset() {
	c.vals = map[string]cached{}
	c.dirt = map[string]struct{}{}
	c.setT = map[string]int64{}
	c.clrT = map[string]struct{}{}
	c.dels = nil
}

// get returns a cached value; known reports whether the key is cached at
// all (present or known absent).
func (c *cache) get(key string) (val []byte, ok, known bool) {
	e, known := c.vals[key]
	return e.val, e.ok, known
}

// load reads the keys that are not cached, in one store round trip (none
// when every key is cached): missing, then fetch, then forget on error.
func (c *cache) load(ctx context.Context, keys []string) error {
	miss := c.missing(keys)
	if len(miss) == 0 {
		return nil
	}
	if err := c.fetch(ctx, miss); err != nil {
		c.forget(miss)
		return err
	}
	return nil
}

// missing returns the keys that are not cached, each once. Until fetch
// fills them in, they sit in the cache as known absent (which is how their
// repeats are dropped); if they cannot be fetched, forget must take them
// out again.
func (c *cache) missing(keys []string) []string {
	var miss []string
	for _, k := range keys {
		if _, ok := c.vals[k]; ok {
			continue
		}
		c.vals[k] = cached{}
		miss = append(miss, k)
	}
	return miss
}

// fetch reads keys returned by missing in one store round trip and caches
// the present ones. On error the cache is as missing left it.
func (c *cache) fetch(ctx context.Context, keys []string) error {
	c.loads++
	got, err := c.store.Load(ctx, c.part, keys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if v, ok := got[k]; ok {
			c.vals[k] = cached{val: v, ok: true}
		}
	}
	return nil
}

// forget takes keys returned by missing out of the cache, when their fetch
// failed for good.
func (c *cache) forget(keys []string) {
	for _, k := range keys {
		delete(c.vals, k)
	}
}

func (c *cache) put(key string, val []byte, ttl time.Duration) {
	c.vals[key] = cached{val: val, ok: true, ttl: ttl}
	c.dirt[key] = struct{}{}
}

func (c *cache) del(key string) {
	c.vals[key] = cached{}
	c.dirt[key] = struct{}{}
	c.dels = append(c.dels, key)
}

func (c *cache) setTimer(key string, due int64) {
	delete(c.clrT, key)
	c.setT[key] = due
}

func (c *cache) clearTimer(key string) {
	delete(c.setT, key)
	c.clrT[key] = struct{}{}
}

func (c *cache) dirty() bool {
	return len(c.dirt) > 0 || len(c.setT) > 0 || len(c.clrT) > 0
}

// commit builds the store commit of everything dirty.
func (c *cache) commit(epoch, offset int64, meta []byte) *statedb.Commit {
	cm := &statedb.Commit{Partition: c.part, Epoch: epoch, Offset: offset, Meta: meta}
	// Every slice is sized once: no growing while 1,000s of entries are
	// appended.
	if len(c.dirt) > 0 {
		cm.Puts = make([]statedb.Entry, 0, len(c.dirt))
	}
	if len(c.setT) > 0 {
		cm.SetTimers = make([]statedb.Timer, 0, len(c.setT))
	}
	if len(c.clrT) > 0 {
		cm.ClearTimers = make([]string, 0, len(c.clrT))
	}
	for k := range c.dirt {
		e := c.vals[k]
		if e.ok {
			cm.Puts = append(cm.Puts, statedb.Entry{Key: k, Value: e.val, TTL: e.ttl})
		} else {
			if cm.Deletes == nil { // at most the dirty keys not seen yet
				cm.Deletes = make([]string, 0, len(c.dirt)-len(cm.Puts))
			}
			cm.Deletes = append(cm.Deletes, k)
		}
	}
	for k, due := range c.setT {
		cm.SetTimers = append(cm.SetTimers, statedb.Timer{Key: k, Due: due})
	}
	for k := range c.clrT {
		cm.ClearTimers = append(cm.ClearTimers, k)
	}
	return cm
}

// committed marks everything clean after a successful commit and evicts
// clean entries beyond the bound.
func (c *cache) committed() {
	clear(c.dirt)
	clear(c.setT)
	clear(c.clrT)
	for _, k := range c.dels {
		if e, ok := c.vals[k]; ok && !e.ok { // not put again since
			delete(c.vals, k)
		}
	}
	clear(c.dels)
	c.dels = c.dels[:0]
	if len(c.vals) <= c.max {
		return
	}
	target := c.max * 3 / 4
	for k := range c.vals { // map order: a cheap random eviction
		if len(c.vals) <= target {
			break
		}
		delete(c.vals, k)
	}
}
