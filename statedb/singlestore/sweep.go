package singlestore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// startSweep starts the background sweep unless it is disabled.
func (s *Store) startSweep() {
	if s.sweepInterval < 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopSweep = cancel
	s.sweepDone = make(chan struct{})
	go s.sweepLoop(ctx)
}

// sweepLoop calls Sweep every sweepInterval until ctx ends (Close).
func (s *Store) sweepLoop(ctx context.Context) {
	defer close(s.sweepDone)
	tick := time.NewTicker(s.sweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		n, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("sweep of expired rows failed", zap.Int64("deleted", n), zap.Error(err))
		case n > 0:
			s.log.Debug("swept expired rows", zap.Int64("deleted", n), zap.Duration("took", time.Since(start)))
		}
	}
}

// Sweep deletes the state entries and event IDs of every partition of the
// namespace whose expire_at has passed on the server's clock, in statements
// of at most Config.SweepBatch rows (each in its own autocommit transaction,
// over the expire_at index), until none is left. It returns how many rows
// it deleted. Reads never return expired rows whether or not they have been
// swept; the sweep only reclaims space. The background sweep calls it every
// Config.SweepInterval; it is safe to call concurrently with everything,
// including other workers' sweeps over the same namespace.
//
// A row that a commit refreshes while the sweep runs is not deleted: the
// DELETE re-checks expire_at on the row version it locks.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	var total int64
	for _, table := range []string{s.t.state, s.t.ids} {
		q := "DELETE FROM " + table + " WHERE `expire_at` <= UTC_TIMESTAMP(6) LIMIT " + strconv.Itoa(s.sweepBatch)
		for {
			res, err := s.db.ExecContext(ctx, q)
			if err != nil {
				return total, fmt.Errorf("singlestore: sweep %s: %w", table, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("singlestore: sweep %s: rows affected: %w", table, err)
			}
			total += n
			if n < int64(s.sweepBatch) {
				break
			}
		}
	}
	return total, nil
}
