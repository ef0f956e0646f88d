package integration_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/IBM/sarama"
	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/dimension"
	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb/memory"
)

const tablePipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source: {topics: [%s], event_id: event.id}
state: %s
dedup: {enabled: true}
dead_letter: {topic: %s}
flush: {max_messages: 100, interval: 50ms}
tables:
  - {name: profiles, topic: %s}
steps:
  - lookup: {table: profiles, key: event.user, type: %s, as: profile}
  - map: {id: event.id, user: event.user, tier: 'event.profile == null ? "none" : event.profile.tier'}
sink: {topic: %s}
`

// TestLookupSeesTheTableAsMaterialized: clicks (3 partitions, keyed by
// click) look up a profiles table (2 partitions, keyed by user: not
// co-partitioned), with two workers in the group, on Redis and MariaDB.
// The table is materialized, the first clicks are looked up; then rows
// are updated and deleted, and the next clicks see the new rows. A row
// produced to a partition Kafka's default partitioner would not choose
// is a dead letter (no lookup could find it).
func TestLookupSeesTheTableAsMaterialized(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	for _, be := range aggBackends {
		for _, typ := range []string{"left", "inner"} {
			t.Run(be.name+"/"+typ, func(t *testing.T) {
				clicks, profiles, out, dlq := testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 2), testenv.Topic(t, brokers, 3), testenv.Topic(t, brokers, 1)
				p := loadPipeline(t, tablePipeline, testenv.Unique("lookup"), clicks, be.state(t), dlq, profiles, typ, out)
				group := testenv.Group(t)
				wa, stopA := startWorker(t, "A", p, brokers, group, openStore(t, p))
				defer stopA()
				wb, stopB := startWorker(t, "B", p, brokers, group, openStore(t, p))
				defer stopB()
				rows := func() uint64 { return wa.Stats().TableRows + wb.Stats().TableRows }
				outs := func() uint64 { return wa.Stats().Out + wb.Stats().Out }

				tier := map[string]string{} // the table as the reference knows it
				var msgs []*sarama.ProducerMessage
				for u := range 30 {
					user := fmt.Sprintf("u%02d", u)
					tier[user] = fmt.Sprintf("t%d", u%4)
					msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(user),
						Value: sarama.StringEncoder(fmt.Sprintf(`{"tier":%q}`, tier[user]))})
				}
				produce(t, brokers, profiles, msgs)
				waitFor(t, 60*time.Second, "the table materialized", func() bool { return rows() >= 30 })

				ref := map[string]string{} // click id -> tier
				clickBatch := func(from, to int) {
					t.Helper()
					var cm []*sarama.ProducerMessage
					for i := from; i < to; i++ {
						id, user := fmt.Sprintf("c%03d", i), fmt.Sprintf("u%02d", i%35) // u30-u34 have no row
						cm = append(cm, &sarama.ProducerMessage{Key: sarama.StringEncoder(id),
							Value: sarama.StringEncoder(fmt.Sprintf(`{"id":%q,"user":%q}`, id, user))})
						if tr, ok := tier[user]; ok {
							ref[id] = tr
						} else if typ == "left" {
							ref[id] = "none"
						}
					}
					produce(t, brokers, clicks, cm)
					waitFor(t, 60*time.Second, fmt.Sprintf("%d outputs", len(ref)), func() bool { return outs() >= uint64(len(ref)) })
				}
				clickBatch(0, 200)

				// Updates, deletes and one misplaced row.
				msgs = msgs[:0]
				for u := range 10 {
					user := fmt.Sprintf("u%02d", u)
					tier[user] = "gold"
					msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(user), Value: sarama.StringEncoder(`{"tier":"gold"}`)})
				}
				for u := 10; u < 15; u++ {
					user := fmt.Sprintf("u%02d", u)
					delete(tier, user)
					msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(user)}) // a tombstone
				}
				produce(t, brokers, profiles, msgs)
				var misplaced int32 = 0
				if r, _ := sarama.NewHashPartitioner(profiles).Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder("u31")}, 2); r == 0 {
					misplaced = 1
				}
				produceManual(t, brokers, []*sarama.ProducerMessage{{Topic: profiles, Partition: misplaced,
					Key: sarama.StringEncoder("u31"), Value: sarama.StringEncoder(`{"tier":"misplaced"}`)}})
				waitFor(t, 60*time.Second, "the updates materialized", func() bool { return rows() >= 45 })
				clickBatch(200, 400)
				stopA()
				stopB()

				got := map[string]string{}
				for _, m := range testenv.ReadCommitted(t, brokers, out, 30*time.Second) {
					var ev struct{ ID, Tier string }
					if err := json.Unmarshal(m.Value, &ev); err != nil {
						t.Fatal(err)
					}
					if prev, dup := got[ev.ID]; dup {
						t.Errorf("click %s out twice (%s, %s)", ev.ID, prev, ev.Tier)
					}
					got[ev.ID] = ev.Tier
				}
				if !maps.Equal(got, ref) {
					wrong := 0
					for id, want := range ref {
						if got[id] != want {
							if wrong < 10 {
								t.Errorf("click %s: tier %q, want %q", id, got[id], want)
							}
							wrong++
						}
					}
					t.Errorf("%d outputs, %d in the reference, %d wrong", len(got), len(ref), wrong)
				}
				dead := testenv.ReadCommitted(t, brokers, dlq, 30*time.Second)
				if len(dead) != 1 || string(dead[0].Key) != "u31" || header(dead[0], processor.HeaderStep) != "tables[0]" {
					t.Errorf("dead letters %d, want the misplaced row of u31 from tables[0]", len(dead))
				}
				sa, sb := wa.Stats(), wb.Stats()
				t.Logf("A: %d lookups, %d table rows; B: %d lookups, %d table rows", sa.Lookups, sa.TableRows, sb.Lookups, sb.TableRows)
			})
		}
	}
}

const dimensionPipeline = `
name: %s
kafka: {brokers: [unused:9092]}
source: {topics: [%s], event_id: event.id}
flush: {max_messages: 100, interval: 50ms}
tables:
  - {name: users, redis: {addrs: [%q], key_prefix: %q}, cache: {ttl: 300ms}}
  - {name: products, sql: {dsn: %q, table: %s, key_column: sku}, cache: {ttl: 300ms}}
steps:
  - lookup: {table: users, key: event.user, type: left}
  - lookup: {table: products, key: event.sku}
  - map: {id: event.id, tier: 'event.users == null ? "none" : event.users.tier', name: event.products.name, qty: event.products.qty}
sink: {topic: %s}
`

// TestLookupInTablesYouKeep looks events up in a Redis hash per user
// (left) and a MariaDB table of products (inner) that the test keeps, as
// a user would: a missing user gives null, a missing product drops the
// event, and a row changed in the source is seen once the cache's TTL has
// passed.
func TestLookupInTablesYouKeep(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	addr, prefix, dsn := testenv.RedisAddr(t), testenv.RedisPrefix(t), testenv.MySQL(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	table := fmt.Sprintf("products_%d", time.Now().UnixNano()%1_000_000_000)
	for _, q := range []string{
		"CREATE TABLE " + table + " (sku VARCHAR(20) PRIMARY KEY, name VARCHAR(40), qty INT)",
		"INSERT INTO " + table + " VALUES ('s1', 'pen', 3), ('s2', 'ink', 7)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE " + table) })
	ctx := t.Context()
	rdb.HSet(ctx, prefix+"u1", "tier", "gold")
	rdb.HSet(ctx, prefix+"u2", "tier", "silver")

	in, out := testenv.Topic(t, brokers, 2), testenv.Topic(t, brokers, 2)
	p := loadPipeline(t, dimensionPipeline, testenv.Unique("dim"), in, addr, prefix, dsn, table, out)
	tables, err := dimension.Open(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := []processor.Option{}
	for name, src := range tables {
		defer src.Close()
		opts = append(opts, processor.WithTableSource(name, src))
	}
	w, stop := startWorker(t, "w", p, brokers, testenv.Group(t), memory.New(), opts...)
	defer stop()

	send := func(from int, evs ...[2]string) {
		t.Helper()
		var msgs []*sarama.ProducerMessage
		for i, e := range evs {
			msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(e[0]),
				Value: sarama.StringEncoder(fmt.Sprintf(`{"id":"e%d","user":%q,"sku":%q}`, from+i, e[0], e[1]))})
		}
		produce(t, brokers, in, msgs)
	}
	send(0, [2]string{"u1", "s1"}, [2]string{"u2", "s2"}, [2]string{"u9", "s1"}, [2]string{"u1", "s9"})
	waitFor(t, 60*time.Second, "3 outputs", func() bool { return w.Stats().Out >= 3 })
	// Change the sources; after the TTL the new rows are used.
	rdb.HSet(ctx, prefix+"u1", "tier", "platinum")
	if _, err := db.Exec("UPDATE " + table + " SET qty = 30 WHERE sku = 's1'"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	send(4, [2]string{"u1", "s1"})
	waitFor(t, 60*time.Second, "4 outputs", func() bool { return w.Stats().Out >= 4 })
	stop()

	got := map[string]string{}
	for _, m := range testenv.ReadCommitted(t, brokers, out, 30*time.Second) {
		var ev struct {
			ID, Tier, Name string
			Qty            int
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		got[ev.ID] = fmt.Sprintf("%s %s %d", ev.Tier, ev.Name, ev.Qty)
	}
	want := map[string]string{"e0": "gold pen 3", "e1": "silver ink 7", "e2": "none pen 3", "e4": "platinum pen 30"}
	if !maps.Equal(got, want) {
		t.Errorf("outputs %v, want %v", got, want)
	}
	if s := w.Stats(); s.Lookups != 10 || s.LookupMisses != 2 || s.Filtered != 1 {
		t.Errorf("lookups %d, misses %d, filtered %d; want 10, 2 (u9, s9), 1 (s9)", s.Lookups, s.LookupMisses, s.Filtered)
	}
}
