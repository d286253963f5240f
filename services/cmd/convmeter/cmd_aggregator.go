package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/internal/memlimit"
	"github.com/redis/go-redis/v9"
)

func init() {
	commands["aggregator"] = command{
		summary: "consume message events, run the window engine per partition, write conversation events",
		parse:   parseAggregator,
	}
}

// aggregatorConfig is the aggregator command's configuration.
type aggregatorConfig struct {
	Brokers          []string
	RedisURL         string
	TopicPrefix      string
	Group            string
	HTTPAddr         string
	SnapshotPrefix   string
	Partitions       int // > 0: create missing topics with this many partitions first
	MaxBatch         int
	MaxWait          time.Duration
	SnapshotEvery    int
	SnapshotInterval time.Duration
	SessionTimeout   time.Duration
	Instance         string
	ShutdownTimeout  time.Duration
	Lateness         time.Duration
	Compression      string
	GCPercent        int // Go GC target; the engine's state is large and long-lived
	MemoryLimit      memlimit.Bytes
}

func parseAggregator(fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	var c aggregatorConfig
	return parseAggregatorInto(&c, fs, args, env)
}

func parseAggregatorInto(cp *aggregatorConfig, fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	c := cp
	var brokers string
	fs.StringVar(&brokers, "brokers", env(envBrokers), "Kafka brokers, comma-separated ($"+envBrokers+")")
	fs.StringVar(&c.RedisURL, "redis", env(envRedisURL), "Redis URL of the snapshot store ($"+envRedisURL+")")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", env(envTopicPrefix), "prefix of every topic name ($"+envTopicPrefix+")")
	fs.StringVar(&c.Group, "group", kafkax.GroupAggregator, "consumer group")
	fs.StringVar(&c.HTTPAddr, "http", ":9464", "listen address of /metrics, /healthz, /readyz (empty: none)")
	fs.StringVar(&c.SnapshotPrefix, "snapshot-prefix", "convmeter:aggregator:", "Redis key prefix of snapshots")
	fs.IntVar(&c.Partitions, "create-topics", 0, "create missing topics with this many partitions (0: topics must exist)")
	fs.IntVar(&c.MaxBatch, "max-batch", 5000, "input records per partition batch")
	fs.DurationVar(&c.MaxWait, "max-wait", 100*time.Millisecond, "longest wait for a batch to fill")
	fs.IntVar(&c.SnapshotEvery, "snapshot-every", 200_000, "snapshot a partition after this many input records")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", 30*time.Second, "snapshot a partition with input at least this often")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 10*time.Second, "consumer group session timeout")
	fs.StringVar(&c.Instance, "instance", env("CONVMETER_INSTANCE"), "name of this process's place in the group, unique among live processes (e.g. a StatefulSet pod name; $CONVMETER_INSTANCE): after a crash, the next process of the instance on the same host removes the dead member at once instead of waiting out its session")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "bound on finishing a batch when stopping or revoked")
	fs.DurationVar(&c.Lateness, "lateness", 72*time.Hour, "how late an event may be and still count (must not change across restores)")
	fs.StringVar(&c.Compression, "compression", "lz4", "compression of output records: lz4, snappy, none, zstd, gzip")
	fs.IntVar(&c.GCPercent, "gc-percent", 400, "Go GC target (GOGC): the engine keeps every live pair in memory, so scanning it dominates at the default 100 (about 2.5x events/s at 400 in the window benchmark); 0 leaves the runtime default")
	memoryLimitFlag(fs, &c.MemoryLimit, "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Brokers = splitList(brokers)
	if len(c.Brokers) == 0 {
		return nil, errors.New("no brokers: set -brokers or " + envBrokers)
	}
	if c.RedisURL == "" {
		return nil, errors.New("no snapshot store: set -redis or " + envRedisURL)
	}
	return func(ctx context.Context, log *slog.Logger) error { return runAggregator(ctx, *c, log) }, nil
}

func runAggregator(ctx context.Context, c aggregatorConfig, log *slog.Logger) error {
	setMemory(log, c.GCPercent, c.MemoryLimit)
	topics := kafkax.PrefixedTopics(c.TopicPrefix)
	if c.Partitions > 0 {
		if err := kafkax.EnsureTopics(ctx, c.Brokers, topics.Specs(c.Partitions)...); err != nil {
			return err
		}
	}
	opts, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	store, err := aggregator.NewRedisStore(rdb, c.SnapshotPrefix, c.Group, topics.MessageEvents)
	if err != nil {
		return err
	}
	cfg := aggregator.Config{
		Brokers: c.Brokers, Topics: topics, Group: c.Group, Store: store,
		MaxBatch: c.MaxBatch, MaxWait: c.MaxWait, SnapshotEvery: c.SnapshotEvery, SnapshotInterval: c.SnapshotInterval,
		SessionTimeout: c.SessionTimeout, ShutdownTimeout: c.ShutdownTimeout, HTTPAddr: c.HTTPAddr, Compression: c.Compression,
		Instance: c.Instance,
	}
	cfg.Engine.Lateness = c.Lateness
	return aggregator.Run(ctx, cfg, log)
}
