package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/examples"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/processor"
	"github.com/eddy-streams/eddy/statedb/memory"
)

// cmdDev runs a pipeline with nothing installed: an in-process
// Kafka-protocol broker (franz-go's kfake, spoken to over TCP by sarama like
// any broker), memory state, and an example's generator feeding the source.
func cmdDev(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	path := fs.String("c", "", "pipeline file (default: the "+examples.Default+" example; examples/<name>/pipeline.yaml picks that example's generator)")
	gen := fs.String("generator", "", "example whose generator feeds the source (default: from -c's folder name)")
	rate := fs.Int("rate", 100, "events generated per second")
	count := fs.Int("events", 0, "stop generating after this many events (0: no limit)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	partitions := fs.Int("partitions", 6, "partitions of every topic")
	printRate := fs.Int("print", 10, "outputs printed per second at most (the rest are counted)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	httpAddr := fs.String("http", "", "address of /healthz, /readyz and /metrics (e.g. :9100; default off)")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*level, true, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	file, data, genName := "", []byte(nil), *gen
	if *path == "" {
		ex, err := examples.Get(examples.Default)
		if err != nil {
			return err
		}
		file, data = ex.Pipelines[0].Path, ex.Pipelines[0].Data
		if genName == "" {
			genName = ex.Name
		}
	} else {
		file = *path
		if data, err = os.ReadFile(*path); err != nil {
			return err
		}
		if genName == "" {
			genName = filepath.Base(filepath.Dir(*path))
		}
	}
	ex, err := examples.Get(genName)
	if err != nil {
		return fmt.Errorf("-generator: %w", err)
	}

	// The pipeline's brokers are the embedded broker's, whatever the file
	// says; they are known once the broker is up (below).
	p, err := pipeline.Parse(file, data, pipeline.WithBrokers("embedded:9092"))
	if err != nil {
		return err
	}

	topics := append([]string{}, p.Spec.Source.Topics...)
	if p.Sink != nil {
		topics = append(topics, p.Sink.Topic)
	}
	if p.Spec.DeadLetter != nil {
		topics = append(topics, p.Spec.DeadLetter.Topic)
	}
	for _, st := range p.Steps {
		if st.Aggregate != nil && st.Aggregate.LateTopic != "" {
			topics = append(topics, st.Aggregate.LateTopic)
		}
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(*partitions), topics...))
	if err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	log.Info("embedded Kafka-protocol broker up", zap.Strings("addrs", brokers), zap.Strings("topics", topics))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	store := memory.New()
	defer store.Close()
	pr := newPrinter(stdout, *printRate)
	w, err := processor.New(p,
		processor.WithStore(store),
		processor.WithLogger(log),
		processor.WithBrokers(brokers...),
		processor.WithOutputHook(pr.print),
	)
	if err != nil {
		return err
	}

	stopHTTP, err := serveHTTP(*httpAddr, w, store, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	var wg sync.WaitGroup
	var produced atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := generate(ctx, brokers, ex.New(uint64(time.Now().UnixNano())), *rate, *count, &produced); err != nil {
			log.Error("generator stopped", zap.Error(err))
		}
	}()
	go func() {
		defer wg.Done()
		progress(ctx, stdout, w, pr, &produced)
	}()
	fmt.Fprintf(stdout, "eddy dev: pipeline %q, %s generator at %d events/s; Ctrl-C to stop\n", p.Spec.Name, ex.Name, *rate)
	err = runUntilSignal(ctx, w, p.Spec.Flush.ShutdownTimeout, log)
	wg.Wait()
	s := w.Stats()
	fmt.Fprintf(stdout, "eddy dev: done: %d events in, %d out, %d filtered, %d duplicates dropped, %d late, %d poison (%d dead-lettered)\n",
		s.In, s.Out, s.Filtered, s.Duplicates, s.Late, s.Poison, s.DeadLettered)
	return err
}

// generate produces the generator's events at rate per second.
func generate(ctx context.Context, brokers []string, g examples.Generator, rate, limit int, n *atomic.Int64) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	cfg.Producer.Return.Successes = false
	cfg.Producer.Flush.Frequency = 20 * time.Millisecond
	p, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	go func() {
		for range p.Errors() {
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	perTick, carry := float64(rate)/50, 0.0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			carry += perTick
			for ; carry >= 1; carry-- {
				if limit > 0 && n.Load() >= int64(limit) {
					continue
				}
				ev := g.Next(now)
				p.Input() <- &sarama.ProducerMessage{Topic: ev.Topic, Key: sarama.StringEncoder(ev.Key), Value: sarama.ByteEncoder(ev.Value)}
				n.Add(1)
			}
		}
	}
}

// printer prints outputs as they come, at most perSec a second.
type printer struct {
	mu         sync.Mutex
	w          io.Writer
	perSec     int
	second     int64
	inSecond   int
	suppressed int64
}

func newPrinter(w io.Writer, perSec int) *printer { return &printer{w: w, perSec: perSec} }

func (p *printer) print(r *processor.Record) {
	v, err := pipeline.EncodeJSON(r.Event)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := time.Now().Unix(); s != p.second {
		p.second, p.inSecond = s, 0
	}
	if p.inSecond >= p.perSec {
		p.suppressed++
		return
	}
	p.inSecond++
	fmt.Fprintf(p.w, "→ key=%s  %s\n", r.Key, v)
}

func progress(ctx context.Context, w io.Writer, wk *processor.Worker, pr *printer, produced *atomic.Int64) {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s := wk.Stats()
			pr.mu.Lock()
			hidden := pr.suppressed
			pr.mu.Unlock()
			fmt.Fprintf(w, "· produced %d | in %d  out %d  filtered %d  dups %d  late %d  poison %d  windows closed %d | lag %d  partitions %d  flushes %d | %d outputs not printed\n",
				produced.Load(), s.In, s.Out, s.Filtered, s.Duplicates, s.Late, s.Poison, s.WindowsClosed, s.Lag, s.Partitions, s.Flushes, hidden)
		}
	}
}
