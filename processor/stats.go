package processor

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Worker's counters since it started.
type Stats struct {
	// In counts source messages read (including skipped and duplicates):
	// records of source and internal topics, not watermark markers.
	In uint64
	// Repartitioned counts records written to internal topics by
	// repartition steps, acknowledged and committed; Markers counts the
	// watermark markers read from internal topics.
	Repartitioned, Markers uint64
	// TableRows counts table records applied (upserts and deletes);
	// Lookups counts lookup steps' row reads, LookupMisses those that found
	// no row.
	TableRows, Lookups, LookupMisses uint64
	// Rebuilds counts partitions whose missing state was rebuilt by a
	// replay from offset 0 (state.missing: rebuild).
	Rebuilds uint64
	// Out counts records produced to the sink, acknowledged and committed.
	Out uint64
	// Filtered counts records dropped by filter steps.
	Filtered uint64
	// Duplicates counts events dropped because their ID was seen before.
	Duplicates uint64
	// Skipped counts messages at or below the partition's stored offset
	// watermark: already applied by an earlier owner.
	Skipped uint64
	// Poison counts events that failed (bad JSON, a CEL runtime error, a
	// processor error); DeadLettered counts those of them sent to the
	// dead-letter topic (the others were counted and skipped).
	Poison, DeadLettered uint64
	// Flushes counts successful flushes; Fenced counts partitions given up
	// because a newer owner fenced this worker; Rebalances counts sessions.
	Flushes, Fenced, Rebalances uint64
	// Late counts events that arrived after every window they belong to
	// had closed; WindowsClosed counts windows closed (and, with
	// emit: on_close, emitted).
	Late, WindowsClosed uint64
	// NotCoPartitioned counts sampled events whose aggregate group key
	// differs from the message key and would not hash to the partition
	// they were read from: their key's results are split across
	// partitions (see the README on co-partitioning).
	NotCoPartitioned uint64
	// StoreCalls counts state store calls, each one network round trip.
	StoreCalls uint64
	// StoreErrors counts failed store calls (and table lookups) that were
	// retried; ProduceErrors failed produces that were retried.
	StoreErrors, ProduceErrors uint64
	// FlushTime is the total time spent in flushes.
	FlushTime time.Duration
	// Partitions is the number of partitions claimed now; Lag the sum of
	// their lags (high watermark minus next offset to process).
	Partitions int
	Lag        int64
}

type counters struct {
	in, out, filtered, dups, skipped, poison, dlq   atomic.Uint64
	flushes, fenced, rebalances, storeErrs, flushNs atomic.Uint64
	late, windowsClosed, notCoPart, storeCalls      atomic.Uint64
	repartitioned, markers                          atomic.Uint64
	tableRows, lookups, lookupMisses, produceErrs   atomic.Uint64
	rebuilds                                        atomic.Uint64
}

// Stats returns a snapshot of the Worker's counters.
func (w *Worker) Stats() Stats {
	c := &w.stats
	s := Stats{
		In: c.in.Load(), Out: c.out.Load(), Filtered: c.filtered.Load(),
		Duplicates: c.dups.Load(), Skipped: c.skipped.Load(),
		Poison: c.poison.Load(), DeadLettered: c.dlq.Load(),
		Flushes: c.flushes.Load(), Fenced: c.fenced.Load(), Rebalances: c.rebalances.Load(),
		StoreErrors: c.storeErrs.Load(), ProduceErrors: c.produceErrs.Load(), FlushTime: time.Duration(c.flushNs.Load()),
		Late: c.late.Load(), WindowsClosed: c.windowsClosed.Load(), NotCoPartitioned: c.notCoPart.Load(),
		StoreCalls: c.storeCalls.Load(), Repartitioned: c.repartitioned.Load(), Markers: c.markers.Load(),
		TableRows: c.tableRows.Load(), Lookups: c.lookups.Load(), LookupMisses: c.lookupMisses.Load(),
		Rebuilds: c.rebuilds.Load(),
	}
	w.mu.Lock()
	for _, t := range w.tasks {
		s.Partitions++
		s.Lag += t.lag()
	}
	w.mu.Unlock()
	return s
}
