package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/window"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	Brokers []string
	Topics  kafkax.Topics // default kafkax.DefaultTopics()
	Group   string        // default kafkax.GroupAggregator
	Store   SnapshotStore // required
	// Engine configures every partition's engine (Partition is set per partition). It must not
	// change between a snapshot and its restore.
	Engine window.Config
	// MaxBatch bounds the input records of one partition's batch; default 5000. MaxWait bounds
	// how long a batch waits to fill; default 100ms. A batch that holds every record the
	// partition had when last fetched goes at once.
	MaxBatch int
	MaxWait  time.Duration
	// A partition is snapshotted after SnapshotEvery input records (default 200000) or
	// SnapshotInterval of wall-clock time with input (default 30s), whichever comes first, and
	// when it is revoked or the process stops.
	SnapshotEvery    int
	SnapshotInterval time.Duration
	// SessionTimeout is the consumer group session timeout; default 10s (the broker's minimum
	// is 6s by default). A killed instance's partitions move after it.
	SessionTimeout time.Duration
	// ShutdownTimeout bounds finishing the current batch (write, snapshot, commit) once ctx
	// ends or the partition is revoked; default 20s.
	ShutdownTimeout time.Duration
	// RetryMin and RetryMax bound the backoff before a failed partition restarts from its
	// snapshot; defaults 200ms and 10s.
	RetryMin, RetryMax time.Duration
	// Compression of the output and dead-letter records: "lz4" (default, as every kafkax
	// writer), "none", "snappy", "zstd" or "gzip". LZ4 and Snappy batches are compressed by
	// kafkax.RecordBatch itself (on the outputs Snappy costs this process a little less than LZ4
	// and the broker, which decompresses either to validate it, a little more: end to end the
	// benchmark could not tell them apart); on a CPU-bound host "none" trades network and disk for
	// the compression's CPU, and the broker's writes cost more than the compression saves.
	Compression string
	compression kafka.Compression
	// HTTPAddr, when set, serves /metrics, /healthz and /readyz.
	HTTPAddr string
	// Instance, when set, names this process's place among the group's members (a StatefulSet
	// pod's name, a systemd unit's): a process of an instance that finds, in the consumer
	// group, a member of the same instance whose process on this host has ended (killed with
	// SIGKILL, crashed) removes it before joining, so its partitions move at once instead of
	// after its session timeout. Two live processes must not share an instance name. Empty:
	// off (a crashed member's partitions move after SessionTimeout). Linux only; elsewhere it
	// is ignored.
	Instance string
	// WrapWriter, when set, wraps the writer of the output and of the dead-letter records
	// (instrumentation, fault injection in tests). Whatever it returns must write synchronously
	// and in order.
	WrapWriter func(topic string, w RecordWriter) RecordWriter
	// Metrics defaults to NewMetrics().
	Metrics *Metrics
	// OnListen, when set, is called with the HTTP listener's address (tests, ":0").
	OnListen func(addr net.Addr)
}

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("aggregator: no brokers")
	}
	if c.Store == nil {
		return errors.New("aggregator: no snapshot store")
	}
	if c.Topics == (kafkax.Topics{}) {
		c.Topics = kafkax.DefaultTopics()
	}
	if c.Group == "" {
		c.Group = kafkax.GroupAggregator
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 5000
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = 200_000
	}
	def(&c.MaxWait, 100*time.Millisecond)
	def(&c.SnapshotInterval, 30*time.Second)
	def(&c.SessionTimeout, 10*time.Second)
	def(&c.ShutdownTimeout, 20*time.Second)
	def(&c.RetryMin, 200*time.Millisecond)
	def(&c.RetryMax, 10*time.Second)
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	switch c.Compression {
	case "", "lz4":
		c.compression = kafka.Lz4
	case "none":
		c.compression = 0
	case "snappy":
		c.compression = kafka.Snappy
	case "zstd":
		c.compression = kafka.Zstd
	case "gzip":
		c.compression = kafka.Gzip
	default:
		return fmt.Errorf("aggregator: compression %q: want lz4, none, snappy, zstd or gzip", c.Compression)
	}
	if strings.Contains(c.Instance, "|") {
		return fmt.Errorf("aggregator: instance %q: must not contain '|' (it separates the fields of the client id)", c.Instance)
	}
	if _, err := window.New(c.Engine); err != nil {
		return fmt.Errorf("aggregator: engine config: %w", err)
	}
	return nil
}

// RecordWriter appends a sealed record batch to a partition of its topic and returns once the
// batch is acknowledged by every in-sync replica, with a single attempt; *kafkax.BatchWriter is
// one.
type RecordWriter interface {
	WriteBatch(ctx context.Context, partition int, b *kafkax.RecordBatch) error
}

// sink is a writer, the topic it writes to, and the bound of a chunk: one record batch of at most
// maxBytes bytes before compression, sent in one produce request.
type sink struct {
	topic       string
	w           RecordWriter
	maxBytes    int
	compression kafka.Compression
}

// aggregator is Run's state shared by the partition loops.
type aggregator struct {
	cfg    Config
	log    *slog.Logger
	m      *Metrics
	client *kafka.Client
	out    sink
	dead   sink
}

// Run consumes the message-events topic in the consumer group until ctx ends, then finishes
// every partition's batch, snapshots, commits, leaves the group and returns nil. It refuses to
// start when the input, output and dead-letter topics do not have the same partition count.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := CheckTopics(ctx, cfg.Brokers, cfg.Topics)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: nothing to finish
		}
		return err
	}
	// Outputs and dead letters go out as record batches built here, one produce request each,
	// to the partition the records belong to (a failed write restarts the partition from its
	// snapshot, so one attempt). A chunk's uncompressed size is at most three quarters of the
	// topic's max.message.bytes, so the batch fits it compressed or not.
	newSink := func(topic string) (sink, error) {
		bw, err := kafkax.NewBatchWriter(cfg.Brokers, topic)
		if err != nil {
			return sink{}, err
		}
		var w RecordWriter = bw
		if cfg.WrapWriter != nil {
			w = cfg.WrapWriter(topic, w)
		}
		return sink{topic: topic, w: w, maxBytes: bw.MaxBytes() / 4 * 3, compression: cfg.compression}, nil
	}
	out, err := newSink(cfg.Topics.ConversationEvents)
	if err != nil {
		return err
	}
	dead, err := newSink(cfg.Topics.DeadLetter)
	if err != nil {
		return err
	}
	a := &aggregator{cfg: cfg, log: log, m: cfg.Metrics,
		out: out, dead: dead,
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 15 * time.Second}}
	log.Info("aggregator starting", "topic", cfg.Topics.MessageEvents, "partitions", n, "group", cfg.Group,
		"output", cfg.Topics.ConversationEvents, "deadletter", cfg.Topics.DeadLetter)

	g, gctx := errgroup.WithContext(ctx)
	if cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("aggregator: listen %s: %w", cfg.HTTPAddr, err)
		}
		if cfg.OnListen != nil {
			cfg.OnListen(ln.Addr())
		}
		srv := &http.Server{Handler: a.m.Handler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("aggregator: http: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	g.Go(func() error { return a.consume(gctx) })
	return g.Wait()
}

// CheckTopics returns the partition count shared by the input, output and dead-letter topics, or
// an error joining a *kafkax.PartitionMismatchError for each topic whose count differs from the
// input's: co-partitioning is what lets partition p's outputs go to partition p.
func CheckTopics(ctx context.Context, brokers []string, t kafkax.Topics) (int, error) {
	n, err := kafkax.PartitionCount(ctx, brokers, t.MessageEvents)
	if err != nil {
		return 0, fmt.Errorf("aggregator: input topic: %w", err)
	}
	var errs []error
	for _, topic := range []string{t.ConversationEvents, t.DeadLetter} {
		m, err := kafkax.PartitionCount(ctx, brokers, topic)
		if err != nil {
			errs = append(errs, fmt.Errorf("aggregator: %w", err))
			continue
		}
		if m != n {
			errs = append(errs, &kafkax.PartitionMismatchError{Topic: topic, Want: n, Got: m})
		}
	}
	if len(errs) > 0 {
		return 0, fmt.Errorf("aggregator: refusing to run: topics must be co-partitioned with %s (%d partitions): %w", t.MessageEvents, n, errors.Join(errs...))
	}
	return n, nil
}

// consume runs the consumer group: for each generation, one loop per assigned partition, until
// the generation ends (rebalance) or ctx ends.
func (a *aggregator) consume(ctx context.Context) error {
	topic := a.cfg.Topics.MessageEvents
	dialer := a.instanceDialer(ctx)
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                a.cfg.Group,
		Dialer:            dialer,
		Brokers:           a.cfg.Brokers,
		Topics:            []string{topic},
		SessionTimeout:    a.cfg.SessionTimeout,
		HeartbeatInterval: a.cfg.SessionTimeout / 10,
		RebalanceTimeout:  a.cfg.ShutdownTimeout + 10*time.Second,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		ErrorLogger:       kafkax.ErrorLogger(a.log),
	})
	if err != nil {
		return fmt.Errorf("aggregator: consumer group %q: %w", a.cfg.Group, err)
	}
	defer group.Close()
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			a.log.Warn("consumer group", "group", a.cfg.Group, "err", err)
			continue
		}
		var parts []int
		for _, pa := range gen.Assignments[topic] {
			parts = append(parts, pa.ID)
		}
		slices.Sort(parts)
		a.log.Info("assigned partitions", "topic", topic, "generation", gen.ID, "partitions", parts)
		a.m.generation(parts)
		var commitMu sync.Mutex
		commit := func(p int, next int64) error {
			commitMu.Lock()
			defer commitMu.Unlock()
			return gen.CommitOffsets(map[string]map[int]int64{topic: {p: next}})
		}
		var wg sync.WaitGroup
		for _, p := range parts {
			wg.Add(1)
			gen.Start(func(gctx context.Context) {
				defer wg.Done()
				pctx, cancel := context.WithCancel(ctx)
				defer cancel()
				stop := context.AfterFunc(gctx, cancel)
				defer stop()
				a.partition(pctx, p, commit)
			})
		}
		wg.Wait()
		a.log.Info("released partitions", "topic", topic, "generation", gen.ID, "partitions", parts)
	}
}
