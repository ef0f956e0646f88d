package dimension

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Source reads rows by key. Get returns the rows of the keys found (a row
// is a map of field to value: strings, int64, float64, bool, time.Time or
// nil); absent keys are missing from the map. It is safe for concurrent
// use.
type Source interface {
	Get(ctx context.Context, keys []string) (map[string]map[string]any, error)
	Close() error
}

// Cached wraps src with an LRU cache of at most size keys, each kept for
// ttl after it was read, found or not (a miss is cached too, so a key
// that is not there does not cost a round trip per event). Rows handed
// out are shared: callers must not change them.
func Cached(src Source, size int, ttl time.Duration) *Cache {
	return &Cache{src: src, size: max(size, 1), ttl: ttl, byKey: map[string]*list.Element{}, lru: list.New(), now: time.Now}
}

// Cache is a Source with a cache in front (see Cached).
type Cache struct {
	src  Source
	size int
	ttl  time.Duration
	now  func() time.Time

	mu    sync.Mutex
	byKey map[string]*list.Element // of *entry
	lru   *list.List               // front: most recently used

	// Hits and Misses count keys answered from the cache and read from the
	// source.
	hits, misses int64
}

type entry struct {
	key   string
	row   map[string]any // nil: not found
	until time.Time
}

// Get answers from the cache what it can and reads the rest from the
// source in one call.
func (c *Cache) Get(ctx context.Context, keys []string) (map[string]map[string]any, error) {
	out := make(map[string]map[string]any, len(keys))
	var miss []string
	now := c.now()
	c.mu.Lock()
	for _, k := range keys {
		if el, ok := c.byKey[k]; ok {
			e := el.Value.(*entry)
			if now.Before(e.until) {
				c.lru.MoveToFront(el)
				c.hits++
				if e.row != nil {
					out[k] = e.row
				}
				continue
			}
		}
		miss = append(miss, k)
	}
	c.mu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	got, err := c.src.Get(ctx, miss)
	if err != nil {
		return nil, err
	}
	until := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range miss {
		row := got[k]
		if row != nil {
			out[k] = row
		}
		c.misses++
		if el, ok := c.byKey[k]; ok {
			e := el.Value.(*entry)
			e.row, e.until = row, until
			c.lru.MoveToFront(el)
			continue
		}
		c.byKey[k] = c.lru.PushFront(&entry{key: k, row: row, until: until})
		for c.lru.Len() > c.size {
			old := c.lru.Back()
			c.lru.Remove(old)
			delete(c.byKey, old.Value.(*entry).key)
		}
	}
	return out, nil
}

// Stats returns the keys answered from the cache and those read from the
// source so far.
func (c *Cache) Stats() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// Close closes the source.
func (c *Cache) Close() error { return c.src.Close() }
