package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/redis"
)

// FailoverResult is the failover measurement: one entry per state size.
type FailoverResult struct {
	// SessionTimeoutMs is the workers' kafka.session_timeout: the broker
	// evicts a killed member only after it, which bounds detection. They
	// heartbeat every third of it.
	SessionTimeoutMs int            `json:"session_timeout_ms"`
	HeartbeatMs      int            `json:"heartbeat_interval_ms"`
	ProducerRate     int            `json:"producer_rate"`
	Sizes            []FailoverSize `json:"sizes"`
}

// FailoverSize is the kills at one state size.
type FailoverSize struct {
	Keys         int     `json:"keys"`
	StateEntries int64   `json:"state_entries"`
	LoadSeconds  float64 `json:"load_seconds"`
	Kills        []Kill  `json:"kills"`
	// Medians over Kills.
	RawMs            float64 `json:"raw_ms_median"`
	DetectionMs      float64 `json:"detection_ms_median"`
	AfterDetectionMs float64 `json:"after_detection_ms_median"`
	ClaimToFlushMs   float64 `json:"claim_to_first_flush_ms_median"`
}

// Kill is one SIGKILL and what the survivor did after it. All times are
// from the kill, in milliseconds, taken from the survivor's JSON log.
type Kill struct {
	Victim     string  `json:"victim"`
	Partitions []int32 `json:"partitions"`
	// DetectionMs: the survivor's first "partition released" after the
	// kill: when it learnt of the rebalance the eviction started.
	DetectionMs float64 `json:"detection_ms"`
	// ClaimMs: the last of the dead worker's partitions claimed by the
	// survivor (store Acquire done).
	ClaimMs float64 `json:"claim_ms"`
	// FirstFlushMs: the first of those partitions to flush new events;
	// RawMs: the last of them (all the dead worker's partitions live again).
	FirstFlushMs float64 `json:"first_flush_ms"`
	RawMs        float64 `json:"raw_ms"`
	// AfterDetectionMs is RawMs - DetectionMs; ClaimToFlushMs the longest
	// time from a partition's claim to its first flush.
	AfterDetectionMs float64 `json:"after_detection_ms"`
	ClaimToFlushMs   float64 `json:"claim_to_first_flush_ms"`
}

// failoverTS is the event time of every failover event: all in one
// tumbling hour, which never closes, so the state only grows.
const failoverTS = 1_700_002_800_000 + 1000

func failoverYAML(cfg *config, topic string) string {
	return fmt.Sprintf(`name: bench-failover
kafka: {brokers: %q, group: eddybench-%s-failover, session_timeout: %s}
source: {topics: [%s], event_time: event.ts}
state:
  backend: redis
  redis: {addrs: [%q], key_prefix: "eddybench:%s:"}
steps:
  - aggregate:
      name: per_user
      key: event.user
      window: {tumbling: 1h}
      values: {n: count(), total: sum(event.v)}
`, cfg.brokers, cfg.run, cfg.sessionTimeout, topic, cfg.redis, cfg.run)
}

func failoverKey(n int) string { return "f" + strconv.Itoa(n) }

// workerProc is one `worker run` process and its JSON log.
type workerProc struct {
	slot string
	cmd  *exec.Cmd
	log  string
	done chan struct{}

	mu      sync.Mutex
	off     int64
	partial []byte
	entries []logEntry
}

type logEntry struct {
	at        time.Time
	msg       string
	partition int32 // -1: none
}

const zapTime = "2006-01-02T15:04:05.000Z0700"

// poll reads the log lines written since the last poll.
func (p *workerProc) poll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.Open(p.log)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(p.off, io.SeekStart); err != nil {
		return
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return
	}
	p.off += int64(len(b))
	b = append(p.partial, b...)
	for {
		i := slices.Index(b, '\n')
		if i < 0 {
			break
		}
		line := b[:i]
		b = b[i+1:]
		var e struct {
			TS        string `json:"ts"`
			Msg       string `json:"msg"`
			Partition *int32 `json:"partition"`
		}
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		at, err := time.Parse(zapTime, e.TS)
		if err != nil {
			continue
		}
		le := logEntry{at: at, msg: e.Msg, partition: -1}
		if e.Partition != nil {
			le.partition = *e.Partition
		}
		p.entries = append(p.entries, le)
	}
	p.partial = append([]byte(nil), b...)
}

// since returns the entries at or after t.
func (p *workerProc) since(t time.Time) []logEntry {
	p.poll()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []logEntry
	for _, e := range p.entries {
		if !e.at.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// owned returns the partitions this process holds now by its log: claimed
// and not released or fenced since.
func (p *workerProc) owned() map[int32]time.Time {
	p.poll()
	p.mu.Lock()
	defer p.mu.Unlock()
	own := map[int32]time.Time{}
	for _, e := range p.entries {
		switch e.msg {
		case "partition claimed":
			own[e.partition] = e.at
		case "partition released", "partition fenced by a newer owner; dropping it and its unflushed work",
			"final flush failed; the next owner replays from the stored offset":
			delete(own, e.partition)
		}
	}
	return own
}

func (p *workerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

type failover struct {
	cfg    *config
	bin    string
	yaml   string
	dir    string
	topic  string
	store  *redis.Store
	procs  map[string]*workerProc
	starts int
}

func (f *failover) start(slot string) (*workerProc, error) {
	f.starts++
	p := &workerProc{slot: slot, log: filepath.Join(f.dir, fmt.Sprintf("%02d-%s.log", f.starts, slot)), done: make(chan struct{})}
	lf, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(f.bin, "run", "-c", f.yaml, "-http", "", "-log-level", "debug")
	p.cmd.Stdout, p.cmd.Stderr = lf, lf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("start worker %s: %w", slot, err)
	}
	go func() {
		_ = p.cmd.Wait()
		_ = lf.Close()
		close(p.done)
	}()
	f.procs[slot] = p
	return p, nil
}

// stopAll sends SIGTERM to every running worker and waits (then SIGKILL).
func (f *failover) stopAll() {
	for _, p := range f.procs {
		if !p.exited() {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	for _, p := range f.procs {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}

// steady waits until the two workers together own every partition, each
// owns at least one, and nothing changed for 2 s.
func (f *failover) steady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	since := time.Now()
	for {
		state := ""
		total, ok := 0, true
		for _, slot := range []string{"w1", "w2"} {
			p := f.procs[slot]
			if p == nil || p.exited() {
				return fmt.Errorf("worker %s is not running (log %s)", slot, p.log)
			}
			own := p.owned()
			if len(own) == 0 {
				ok = false
			}
			total += len(own)
			ps := make([]int32, 0, len(own))
			for part := range own {
				ps = append(ps, part)
			}
			slices.Sort(ps)
			state += fmt.Sprint(slot, ps)
		}
		if state != last {
			last, since = state, time.Now()
		}
		if ok && total == f.cfg.partitions && time.Since(since) >= 2*time.Second {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("workers not steady within %s (ownership %s)", timeout, state)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// caughtUp waits until the store holds the last offset of every partition.
func (f *failover) caughtUp(ctx context.Context, timeout time.Duration) error {
	k, err := newKafka(f.cfg.brokers)
	if err != nil {
		return err
	}
	defer k.close()
	ends, _, err := endOffsets(k.client, f.topic)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		behind := int64(0)
		for part, end := range ends {
			c, err := f.store.Inspect(ctx, statedb.Partition{Topic: f.topic, Partition: part})
			if err != nil {
				return err
			}
			if end > 0 && c.Offset < end-1 {
				behind += end - 1 - c.Offset
			}
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the workers did not persist the topic within %s (%d events behind)", timeout, behind)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stateEntries counts the window states in Redis: one timer each.
func (f *failover) stateEntries(ctx context.Context) (int64, error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: f.cfg.redis})
	defer rdb.Close()
	var n int64
	for part := range f.cfg.partitions {
		k := fmt.Sprintf("%s{%s:%d}:timers", f.store.KeyPrefix(), f.topic, part)
		c, err := rdb.ZCard(ctx, k).Result()
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

// buildWorker builds ./cmd/worker into dir.
func buildWorker(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/eddy-streams/eddy/cmd/worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/worker (run the bench from the repository): %v\n%s", err, out)
	}
	return bin, nil
}

// runFailover measures failover times at each state size.
func runFailover(ctx context.Context, cfg *config, k *kafka) (*FailoverResult, error) {
	dir, err := os.MkdirTemp("", "eddybench-failover")
	if err != nil {
		return nil, err
	}
	keepLogs := false
	defer func() {
		if keepLogs {
			logf("failover: worker logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	f := &failover{cfg: cfg, dir: dir, topic: "eddybench-" + cfg.run + "-failover", procs: map[string]*workerProc{}}
	f.bin = cfg.workerBin
	if f.bin == "" {
		logf("failover: building ./cmd/worker")
		if f.bin, err = buildWorker(ctx, dir); err != nil {
			return nil, err
		}
	}
	if err := k.createTopic(f.topic, cfg.partitions); err != nil {
		return nil, err
	}
	f.yaml = filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(f.yaml, []byte(failoverYAML(cfg, f.topic)), 0o644); err != nil {
		return nil, err
	}
	// The store the workers use (backends.Open: key_prefix + name + ":"),
	// for watermarks and counts only.
	f.store, err = redis.New(ctx, redis.Config{Addrs: []string{cfg.redis}, KeyPrefix: "eddybench:" + cfg.run + ":bench-failover:"})
	if err != nil {
		return nil, err
	}
	defer f.store.Close()
	defer f.stopAll()

	res := &FailoverResult{SessionTimeoutMs: int(cfg.sessionTimeout / time.Millisecond),
		HeartbeatMs: int(cfg.sessionTimeout / 3 / time.Millisecond), ProducerRate: cfg.failoverRate}
	for _, slot := range []string{"w1", "w2"} {
		if _, err := f.start(slot); err != nil {
			return nil, err
		}
	}
	loaded := 0
	victim := "w1"
	for _, size := range cfg.failoverSizes {
		fs := FailoverSize{Keys: size}
		if size > loaded {
			start := time.Now()
			from := loaded
			n, err := produceAll(ctx, cfg.brokers, f.topic, size-loaded, cfg.size, func(i int) (string, int, int64) {
				return failoverKey(from + i), i % 1000, failoverTS
			})
			if err != nil {
				return nil, fmt.Errorf("load %d keys: %w", size, err)
			}
			if err := f.caughtUp(ctx, 5*time.Minute); err != nil {
				keepLogs = true
				return nil, fmt.Errorf("load %d keys: %w", size, err)
			}
			loaded += n
			fs.LoadSeconds = time.Since(start).Seconds()
		}
		if fs.StateEntries, err = f.stateEntries(ctx); err != nil {
			return nil, err
		}
		logf("failover: %d keys of state in Redis (%d window states), loaded in %.1fs", size, fs.StateEntries, fs.LoadSeconds)

		// A paced producer over the loaded keys while the kills happen.
		pctx, stopProducer := context.WithCancel(ctx)
		var pc pacer
		perr := make(chan error, 1)
		rnd := rand.New(rand.NewPCG(5, uint64(size)))
		go func() {
			perr <- pc.run(pctx, cfg.brokers, f.topic, cfg.failoverRate, cfg.size, func(int) (string, int, int64) {
				return failoverKey(rnd.IntN(loaded)), rnd.IntN(1000), failoverTS
			})
		}()
		err := func() error {
			for range cfg.failoverKills {
				if err := f.steady(ctx, 2*time.Minute); err != nil {
					return err
				}
				time.Sleep(time.Second) // the producer's events flow through both
				kill, err := f.kill(ctx, victim)
				if err != nil {
					return err
				}
				logf("failover: %d keys: killed %s (partitions %v): detection %.0f ms, claimed %.0f ms, first flush %.0f ms, all flushed %.0f ms (%.0f ms after detection; claim to flush %.0f ms)",
					size, kill.Victim, kill.Partitions, kill.DetectionMs, kill.ClaimMs, kill.FirstFlushMs, kill.RawMs, kill.AfterDetectionMs, kill.ClaimToFlushMs)
				fs.Kills = append(fs.Kills, *kill)
				if _, err := f.start(victim); err != nil {
					return err
				}
				if victim == "w1" {
					victim = "w2"
				} else {
					victim = "w1"
				}
			}
			return f.steady(ctx, 2*time.Minute)
		}()
		stopProducer()
		<-perr
		if err != nil {
			keepLogs = true
			return nil, err
		}
		var raw, det, after, c2f []float64
		for _, k := range fs.Kills {
			raw, det = append(raw, k.RawMs), append(det, k.DetectionMs)
			after, c2f = append(after, k.AfterDetectionMs), append(c2f, k.ClaimToFlushMs)
		}
		fs.RawMs, fs.DetectionMs, fs.AfterDetectionMs, fs.ClaimToFlushMs = median(raw), median(det), median(after), median(c2f)
		res.Sizes = append(res.Sizes, fs)
	}
	return res, nil
}

// kill SIGKILLs the worker in slot and follows the survivor's log until it
// has flushed new events on every partition the victim held.
func (f *failover) kill(ctx context.Context, slot string) (*Kill, error) {
	victim := f.procs[slot]
	survivor := f.procs["w1"]
	if slot == "w1" {
		survivor = f.procs["w2"]
	}
	own := victim.owned()
	parts := make([]int32, 0, len(own))
	for p := range own {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	t0 := time.Now()
	if err := syscall.Kill(-victim.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return nil, fmt.Errorf("kill %s: %w", slot, err)
	}
	<-victim.done
	k := &Kill{Victim: slot, Partitions: parts}
	since := func(t time.Time) float64 { return ms(t.Sub(t0)) }
	deadline := t0.Add(2 * time.Minute)
	for {
		var released time.Time
		claimed := map[int32]time.Time{}
		flushed := map[int32]time.Time{}
		for _, e := range survivor.since(t0) {
			switch e.msg {
			case "partition released":
				if released.IsZero() {
					released = e.at
				}
			case "partition claimed":
				if slices.Contains(parts, e.partition) {
					claimed[e.partition] = e.at
				}
			case "flushed":
				if c, ok := claimed[e.partition]; ok && !e.at.Before(c) {
					if _, seen := flushed[e.partition]; !seen {
						flushed[e.partition] = e.at
					}
				}
			}
		}
		if len(flushed) == len(parts) {
			if released.IsZero() { // no release logged: the claim is the first sign
				for _, c := range claimed {
					if released.IsZero() || c.Before(released) {
						released = c
					}
				}
			}
			k.DetectionMs = since(released)
			first, last := time.Time{}, time.Time{}
			for p, t := range flushed {
				if first.IsZero() || t.Before(first) {
					first = t
				}
				if t.After(last) {
					last = t
				}
				k.ClaimToFlushMs = max(k.ClaimToFlushMs, ms(t.Sub(claimed[p])))
				k.ClaimMs = max(k.ClaimMs, since(claimed[p]))
			}
			k.FirstFlushMs, k.RawMs = since(first), since(last)
			k.AfterDetectionMs = k.RawMs - k.DetectionMs
			return k, nil
		}
		if survivor.exited() {
			return nil, fmt.Errorf("the surviving worker %s exited (log %s)", survivor.slot, survivor.log)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("survivor %s flushed %d of the %d partitions %v within 2 minutes of the kill (log %s)",
				survivor.slot, len(flushed), len(parts), parts, survivor.log)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
