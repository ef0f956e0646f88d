package singlestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/eddy-streams/eddy/statedb"
)

var _ statedb.Inspector = (*Store)(nil)

// Inspect returns p's epoch, offset watermark and metadata without
// bumping the epoch: one SELECT of p's owner row, outside any transaction
// (it sees the last committed flush, never part of one).
func (s *Store) Inspect(ctx context.Context, p statedb.Partition) (statedb.Claim, error) {
	if err := checkPartition(p); err != nil {
		return statedb.Claim{}, fmt.Errorf("singlestore: inspect: %w", err)
	}
	c := statedb.Claim{Offset: statedb.NoOffset}
	err := s.db.QueryRowContext(ctx, "SELECT `epoch`, `watermark`, `meta` FROM "+s.t.owners+
		" WHERE `topic` = ? AND `part` = ?", []byte(p.Topic), p.Partition).
		Scan(&c.Epoch, &c.Offset, &c.Meta)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return statedb.Claim{Offset: statedb.NoOffset}, nil
	case err != nil:
		return statedb.Claim{}, fmt.Errorf("singlestore: inspect %s: %w", p, err)
	}
	if len(c.Meta) == 0 {
		c.Meta = nil
	}
	return c, nil
}
