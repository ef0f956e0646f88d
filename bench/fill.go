package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"
)

// tsBase is the event time of event 0 (Unix ms); event i has tsBase + i.
const tsBase = 1_700_000_000_000

// saramaConfig is the bench's client configuration for filling, admin
// and reading outputs (the runtime and the raw consumer make their own).
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "eddy-bench"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	return cfg
}

type kafka struct {
	client sarama.Client
	admin  sarama.ClusterAdmin
}

func newKafka(brokers []string) (*kafka, error) {
	client, err := sarama.NewClient(brokers, saramaConfig())
	if err != nil {
		return nil, fmt.Errorf("kafka %v: %w (run `make services`, or set %s)", brokers, err, envKafka)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	return &kafka{client: client, admin: admin}, nil
}

func (k *kafka) close() { _ = k.admin.Close() } // closes the client too

// createTopic creates topic with n partitions and waits until every
// partition has a leader.
func (k *kafka) createTopic(topic string, n int) error {
	err := k.admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: int32(n), ReplicationFactor: 1}, false)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := k.client.RefreshMetadata(topic)
		var ps []int32
		if err == nil {
			ps, err = k.client.Partitions(topic)
		}
		if err == nil && len(ps) == n {
			ok := true
			for _, p := range ps {
				if _, err := k.client.Leader(topic, p); err != nil {
					ok = false
				}
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: no leaders for its %d partitions within 30s: %v", topic, n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// endOffsets returns the next offset of every partition of topic, and
// their sum (the number of records, on a topic nothing was deleted from).
func endOffsets(client sarama.Client, topic string) (ends map[int32]int64, total int64, err error) {
	ps, err := client.Partitions(topic)
	if err != nil {
		return nil, 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	ends = make(map[int32]int64, len(ps))
	for _, p := range ps {
		off, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, 0, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
		}
		ends[p] = off
		total += off
	}
	return ends, total, nil
}

// appendEvent appends one event, padded to size bytes:
//
//	{"id":"e42","user":"u00017","v":523,"ts":1700000000042,"pt":<unix ns>,"pad":"xxx"}
//
// pt is the produce time (Unix ns), for the latency measurement.
func appendEvent(b []byte, id int, user string, v int, ts, pt int64, size int) []byte {
	start := len(b)
	b = append(b, `{"id":"e`...)
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, `","user":"`...)
	b = append(b, user...)
	b = append(b, `","v":`...)
	b = strconv.AppendInt(b, int64(v), 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"pt":`...)
	b = strconv.AppendInt(b, pt, 10)
	b = append(b, `,"pad":"`...)
	for len(b)-start < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

func userKey(n int) string { return fmt.Sprintf("u%05d", n) }

// newProducer returns an async producer partitioning by murmur2 of the key
// (as eddy's sinks and Java producers do), acks from the leader.
func newProducer(brokers []string) (sarama.AsyncProducer, error) {
	cfg := saramaConfig()
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Flush.Frequency = time.Millisecond
	cfg.ChannelBufferSize = 4096
	p, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return p, nil
}

// fill writes cfg.events events to topic, over cfg.keys users, and waits
// for their acks. It returns the reference of the aggregate scenarios,
// computed from the same events as it generates them.
func fill(ctx context.Context, cfg *config, topic string) (int, *reference, error) {
	rnd := rand.New(rand.NewPCG(1, 2))
	users := make([]string, cfg.keys)
	for i := range users {
		users[i] = userKey(i)
	}
	ref := newReference(cfg.partitions)
	n, err := produceAll(ctx, cfg.brokers, topic, cfg.events, cfg.size, func(i int) (string, int, int64) {
		user, v, ts := users[rnd.IntN(cfg.keys)], rnd.IntN(1000), tsBase+int64(i)
		ref.add(user, v, ts)
		return user, v, ts
	})
	return n, ref, err
}

// produceAll writes n events of about size bytes to topic as fast as the
// broker takes them and waits for their acks; gen returns the user (the
// key), v and ts of the i-th event.
func produceAll(ctx context.Context, brokers []string, topic string, n, size int,
	gen func(i int) (user string, v int, ts int64)) (int, error) {
	p, err := newProducer(brokers)
	if err != nil {
		return 0, err
	}
	var acked, failed atomic.Int64
	var firstErr atomic.Value
	done := countAnswers(p, &acked, &failed, &firstErr)
	var buf []byte
	for i := 0; i < n; i++ {
		if i%10000 == 0 && ctx.Err() != nil {
			break
		}
		user, v, ts := gen(i)
		buf = appendEvent(buf[:0], i, user, v, ts, time.Now().UnixNano(), size)
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(user), Value: sarama.ByteEncoder(append([]byte(nil), buf...))}
	}
	p.AsyncClose()
	<-done
	if f := failed.Load(); f > 0 {
		return int(acked.Load()), fmt.Errorf("%d of %d events not written to %s: %v", f, n, topic, firstErr.Load())
	}
	if err := ctx.Err(); err != nil {
		return int(acked.Load()), err
	}
	return int(acked.Load()), nil
}

// countAnswers counts p's acks and errors until both channels close (after
// AsyncClose), then closes the channel it returns. The first error is
// kept in firstErr, unless that is nil.
func countAnswers(p sarama.AsyncProducer, acked, failed *atomic.Int64, firstErr *atomic.Value) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		succ, errs := p.Successes(), p.Errors()
		for succ != nil || errs != nil {
			select {
			case _, ok := <-succ:
				if !ok {
					succ = nil
					continue
				}
				acked.Add(1)
			case e, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				if failed.Add(1) == 1 && firstErr != nil {
					firstErr.Store(e.Err)
				}
			}
		}
	}()
	return done
}

// pacer produces events at a steady rate until its context ends, each
// carrying its produce time in pt.
type pacer struct {
	sent, acked, failed atomic.Int64
	// onSend, if set, is called with each event's user, ts and pt before
	// it is handed to the producer.
	onSend func(user string, ts, pt int64)
}

// run produces to topic at rate events/s, each of about size bytes; gen
// returns the user (the key), v and ts of the i-th event. It returns when ctx ends and every
// send has been answered.
func (pc *pacer) run(ctx context.Context, brokers []string, topic string, rate, size int,
	gen func(i int) (user string, v int, ts int64)) error {
	p, err := newProducer(brokers)
	if err != nil {
		return err
	}
	done := countAnswers(p, &pc.acked, &pc.failed, nil)
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	i := 0
	var buf []byte
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		want := int(float64(rate) * time.Since(start).Seconds())
		for ; i < want; i++ {
			user, v, ts := gen(i)
			pt := time.Now().UnixNano()
			if pc.onSend != nil {
				pc.onSend(user, ts, pt)
			}
			buf = appendEvent(buf[:0], i, user, v, ts, pt, size)
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(user), Value: sarama.ByteEncoder(append([]byte(nil), buf...))}
			pc.sent.Add(1)
		}
	}
	p.AsyncClose()
	<-done
	return nil
}

// cleanupRun removes what the run created: topics and groups named
// eddybench-<run>*, Redis keys eddybench:<run>:*, tables eddybench_<run>_*.
func cleanupRun(ctx context.Context, cfg *config, k *kafka) {
	prefix := "eddybench-" + cfg.run
	internal := "eddy-bench-" + cfg.run // scenario i's internal topic
	if topics, err := k.admin.ListTopics(); err == nil {
		for t := range topics {
			if strings.HasPrefix(t, prefix) || strings.HasPrefix(t, internal) {
				if err := k.admin.DeleteTopic(t); err != nil {
					logf("cleanup: delete topic %s: %v", t, err)
				}
			}
		}
	}
	if groups, err := k.admin.ListConsumerGroups(); err == nil {
		for g := range groups {
			if strings.HasPrefix(g, prefix) {
				if err := k.admin.DeleteConsumerGroup(g); err != nil && !errors.Is(err, sarama.ErrGroupIDNotFound) {
					logf("cleanup: delete group %s: %v", g, err)
				}
			}
		}
	}
	if n, err := deleteRedisPrefix(ctx, cfg.redis, "eddybench:"+cfg.run+":"); err != nil {
		logf("cleanup: redis: %v", err)
	} else if n > 0 {
		logf("cleanup: deleted %d Redis keys", n)
	}
	if err := dropTables(ctx, cfg.mysql, "eddybench_"+cfg.run+"_"); err != nil {
		logf("cleanup: mariadb: %v", err)
	}
}

// deleteRedisPrefix unlinks every key starting with prefix.
func deleteRedisPrefix(ctx context.Context, addr, prefix string) (int, error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	n := 0
	iter := rdb.Scan(ctx, 0, prefix+"*", 5000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 5000 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return n, err
			}
			n += len(batch)
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	if len(batch) > 0 {
		if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
			return n, err
		}
		n += len(batch)
	}
	return n, nil
}

// dropTables drops the tables whose names start with prefix.
func dropTables(ctx context.Context, dsn, prefix string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE ?",
		strings.ReplaceAll(prefix, "_", `\_`)+"%")
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS `"+n+"`"); err != nil {
			return fmt.Errorf("drop %s: %w", n, err)
		}
	}
	return nil
}
