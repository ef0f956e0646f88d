package memory

import (
	"context"

	"github.com/eddy-streams/eddy/statedb"
)

var _ statedb.Inspector = (*Store)(nil)

// Inspect returns p's epoch, offset watermark and metadata without
// bumping the epoch. It takes the read lock only.
func (s *Store) Inspect(ctx context.Context, p statedb.Partition) (statedb.Claim, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, "inspect", p); err != nil {
		return statedb.Claim{}, err
	}
	ps := s.part(p, false)
	if ps == nil {
		return statedb.Claim{Offset: statedb.NoOffset}, nil
	}
	c := statedb.Claim{Epoch: ps.epoch, Offset: ps.offset}
	if len(ps.meta) > 0 {
		c.Meta = clone(ps.meta)
	}
	return c, nil
}
