package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/eddy-streams/eddy/statedb"
)

var _ statedb.Inspector = (*Store)(nil)

// Inspect returns p's epoch, offset watermark and metadata without
// bumping the epoch: one HMGET of p's meta hash (one key, so valid on
// Cluster).
func (s *Store) Inspect(ctx context.Context, p statedb.Partition) (statedb.Claim, error) {
	k := s.keys(p)
	res, err := s.client.HMGet(ctx, k.meta, "epoch", "offset", "meta").Result()
	if err != nil {
		return statedb.Claim{}, fmt.Errorf("redis: inspect %v: %w", p, err)
	}
	if len(res) != 3 {
		return statedb.Claim{}, fmt.Errorf("redis: inspect %v: HMGET returned %d values, want 3", p, len(res))
	}
	c := statedb.Claim{Offset: statedb.NoOffset}
	if e, ok := res[0].(string); ok {
		if c.Epoch, err = strconv.ParseInt(e, 10, 64); err != nil {
			return statedb.Claim{}, fmt.Errorf("redis: inspect %v: field epoch of %s: %w", p, k.meta, err)
		}
	}
	if off, ok := res[1].(string); ok {
		if c.Offset, err = strconv.ParseInt(off, 10, 64); err != nil {
			return statedb.Claim{}, fmt.Errorf("redis: inspect %v: field offset of %s: %w", p, k.meta, err)
		}
	}
	if m, ok := res[2].(string); ok && m != "" {
		c.Meta = []byte(m)
	}
	return c, nil
}
