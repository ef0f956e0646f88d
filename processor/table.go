package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/route"
	"github.com/eddy-streams/eddy/statedb"
)

// Tables (stream-table joins). A table's topic is read by the pipeline's
// own group, as a stage of its own (pipeline.Stages): each table
// partition's task upserts every record's row into the partition's state,
// under the table's scope, and deletes it on a tombstone, committed with
// the partition's offset by the flush protocol. A table partition is
// claimed, fenced and committed like any partition, and its rows are in
// the shared store, not in the worker: a worker that takes it over has
// nothing to restore.
//
// A lookup reads rows from whichever partition holds them: a row's
// partition is the one Kafka's default partitioner (murmur2, package
// route's hash) gives its key, which the table task checks for every
// record (a misplaced one is a poison event: no lookup could find it).
// So any worker looks up any key, whoever owns the table partition, and
// the stream need not be co-partitioned with the table. A batch's lookups
// are one store read per table partition it needs (on Redis Cluster, a
// partition is one slot). An event sees the rows as the store holds them
// when its batch runs: what the table partitions' owners last committed.

// tableOp materializes a table partition.
type tableOp struct {
	stateless
	t     *pipeline.Table
	name  string // tables[i], for errors
	sc    string
	place route.Placer
}

func newTableOp(t *pipeline.Table, i int) *tableOp {
	pl, _ := route.NewPlacer(route.Hash)
	return &tableOp{t: t, name: fmt.Sprintf("tables[%d]", i), sc: tableScope(t), place: pl}
}

// tableScope is a table's state scope: "t\x00<name>".
func tableScope(t *pipeline.Table) string { return "t\x00" + t.Name }

func (o *tableOp) scope() string { return o.sc }
func (o *tableOp) untimed() bool { return true }

func (o *tableOp) process(_ context.Context, c *opCtx, in []*Record) ([]*Record, error) {
	n := c.partitions(o.t.Topic)
	for _, r := range in {
		if r.srcKey == nil {
			c.poison(r, o.name, errors.New("a table record needs a key (its row key)"))
			continue
		}
		if want := o.place.Place(r.srcKey, "", n); want != r.Partition {
			c.poison(r, o.name, fmt.Errorf("the row with key %q is in partition %d, but Kafka's default partitioner (murmur2) places it in %d of %d: lookups would not find it; produce the table keyed, with the default partitioner",
				r.srcKey, r.Partition, want, n))
			continue
		}
		k := c.state.key(string(r.srcKey))
		switch {
		case r.tombstone:
			c.state.del(k)
		case o.t.Format.Registered():
			// A row of a schema registry's format is kept as eddy's
			// JSON: lookups and queries read it without the registry.
			row, err := pipeline.EncodeJSON(r.Event)
			if err != nil {
				c.poison(r, o.name, err)
				continue
			}
			c.state.put(k, row, 0)
		default:
			c.state.put(k, r.raw, 0)
		}
		c.countAtCommit(&c.stats().tableRows, 1)
	}
	return nil, nil
}

// lookupOp is a lookup step.
type lookupOp struct {
	stateless
	l      *pipeline.Lookup
	name   string
	prefix string // the table's scope prefix
	place  route.Placer
}

func newLookupOp(i int, s *pipeline.Step) (operator, error) {
	pl, _ := route.NewPlacer(route.Hash)
	return &lookupOp{l: s.Lookup, name: stepName(i, s), prefix: scopePrefix(tableScope(s.Lookup.Table)), place: pl}, nil
}

func (o *lookupOp) process(ctx context.Context, c *opCtx, in []*Record) ([]*Record, error) {
	if o.l.Table.External != nil {
		return o.external(ctx, c, in)
	}
	topic := o.l.Table.Topic
	n := c.partitions(topic)
	// The row keys, then one read per table partition.
	keys := make([]string, len(in))
	parts := make([]int32, len(in))
	byPart := map[int32][]string{}
	ok := make([]bool, len(in))
	for i, r := range in {
		k, err := o.l.Key.String(c.bind(r))
		if err != nil {
			c.poison(r, o.name+".key", err)
			continue
		}
		keys[i], parts[i], ok[i] = o.prefix+k, o.place.Place([]byte(k), "", n), true
		byPart[parts[i]] = append(byPart[parts[i]], keys[i])
	}
	rows := map[int32]map[string][]byte{}
	for p, ks := range byPart {
		got, err := c.lookup(ctx, statedb.Partition{Topic: topic, Partition: p}, ks)
		if err != nil {
			return nil, err
		}
		rows[p] = got
	}
	out := in[:0]
	for i, r := range in {
		if !ok[i] {
			continue
		}
		raw, found := rows[parts[i]][keys[i]]
		c.stats().lookups.Add(1)
		if !found {
			c.stats().lookupMisses.Add(1)
			if o.l.Type == pipeline.JoinInner {
				c.stats().filtered.Add(1)
				continue
			}
			r.Event[o.l.As] = nil
			out = append(out, r)
			continue
		}
		row, err := o.decode(raw)
		if err != nil {
			c.poison(r, o.name, fmt.Errorf("the row of %q in table %s: %w", keys[i][len(o.prefix):], o.l.Table.Name, err))
			continue
		}
		r.Event[o.l.As] = row
		out = append(out, r)
	}
	return out, nil
}

// decode is a row's value as the table's format reads it.
func (o *lookupOp) decode(raw []byte) (map[string]any, error) {
	return decodeRow(o.l.Table, raw)
}

// decodeRow decodes a table's row as the store keeps it: as the table's
// format reads it, or JSON for a schema registry's format (see
// tableOp.process).
func decodeRow(t *pipeline.Table, raw []byte) (map[string]any, error) {
	f := t.Format
	if f.Registered() {
		f = pipeline.FormatJSON
	}
	src := pipeline.Source{Format: f}
	return src.Decode(raw)
}

// external looks the batch's keys up in a table the user keeps: one call
// of its source (cached), retried while it is down.
func (o *lookupOp) external(ctx context.Context, c *opCtx, in []*Record) ([]*Record, error) {
	keys := make([]string, len(in))
	ok := make([]bool, len(in))
	var ask []string
	for i, r := range in {
		k, err := o.l.Key.String(c.bind(r))
		if err != nil {
			c.poison(r, o.name+".key", err)
			continue
		}
		keys[i], ok[i] = k, true
		ask = append(ask, k)
	}
	rows, err := c.tableRows(ctx, o.l.Table.Name, ask)
	if err != nil {
		return nil, err
	}
	out := in[:0]
	for i, r := range in {
		if !ok[i] {
			continue
		}
		c.stats().lookups.Add(1)
		row, found := rows[keys[i]]
		switch {
		case found:
			r.Event[o.l.As] = copyRow(row)
		case o.l.Type == pipeline.JoinInner:
			c.stats().lookupMisses.Add(1)
			c.stats().filtered.Add(1)
			continue
		default:
			c.stats().lookupMisses.Add(1)
			r.Event[o.l.As] = nil
		}
		out = append(out, r)
	}
	return out, nil
}

// copyRow copies a cached row into the event, which later steps may
// change.
func copyRow(row map[string]any) map[string]any {
	out := make(map[string]any, len(row))
	for k, v := range row {
		out[k] = v
	}
	return out
}
