package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/services/projector"
)

func init() {
	commands["project"] = command{
		summary: "run a projection consumer: `project billing` (ledger) or `project ratelimit` (limit counters)",
		parse:   parseProject,
	}
}

// projectConfig is the project command's configuration.
type projectConfig struct {
	Projection  string // billing or ratelimit
	Brokers     []string
	RedisURL    string
	TopicPrefix string
	KeyPrefix   string
	RateCards   []string // files or directories; empty = the shipped examples
	Partitions  int      // of the conversation-events topic (ratelimit queries merge them)
	Parallel    int      // partitions of a round applied at once
	MaxBatch    int      // records fetched per round, all partitions together
	HTTPAddr    string   // /metrics, /healthz, /readyz; empty: none
}

func parseProject(fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	var c projectConfig
	var brokers, cards string
	fs.StringVar(&brokers, "brokers", env(envBrokers), "Kafka brokers, comma-separated ($"+envBrokers+")")
	fs.StringVar(&c.RedisURL, "redis", env(envRedisURL), "Redis URL ($"+envRedisURL+")")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", env(envTopicPrefix), "prefix of every topic name ($"+envTopicPrefix+")")
	fs.StringVar(&c.KeyPrefix, "key-prefix", "convmeter:", "prefix of every Redis key (a namespace; replay builds into another)")
	fs.StringVar(&cards, "ratecards", "", "rate-card files or directories, comma-separated (default: the shipped EXAMPLE cards)")
	fs.IntVar(&c.Partitions, "partitions", 0, "partitions of the conversation-events topic (default: read from Kafka)")
	// Both projections' Apply is safe for different partitions at once (tested), and several
	// writers overlap some partitions' Go work and round trips with another's Redis transaction:
	// billing applied 274k events/s with 4 writers and 237k with 2 on an idle 2-core machine
	// (BenchmarkApplyParallel, log order; 230k and 221k with random delivery times).
	fs.IntVar(&c.Parallel, "parallel", 4, "partitions of a fetched round applied at once")
	fs.IntVar(&c.MaxBatch, "max-batch", 40000, "records fetched per round, all partitions together (bigger rounds: bigger, cheaper batches per partition)")
	fs.StringVar(&c.HTTPAddr, "http", "", "listen address of /metrics, /healthz, /readyz (empty: none)")
	if len(args) == 0 {
		return nil, errors.New("which projection? `project billing` or `project ratelimit`")
	}
	c.Projection = args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Projection != "billing" && c.Projection != "ratelimit" {
		return nil, fmt.Errorf("unknown projection %q (billing or ratelimit)", c.Projection)
	}
	if c.Brokers = splitList(brokers); len(c.Brokers) == 0 {
		return nil, errors.New("no brokers: set -brokers or " + envBrokers)
	}
	if c.RedisURL == "" {
		return nil, errors.New("no Redis: set -redis or " + envRedisURL)
	}
	c.RateCards = splitList(cards)
	return func(ctx context.Context, log *slog.Logger) error { return runProject(ctx, c, log) }, nil
}

func runProject(ctx context.Context, c projectConfig, log *slog.Logger) error {
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	topics := kafkax.PrefixedTopics(c.TopicPrefix)
	var p projections.Projection
	switch c.Projection {
	case "billing":
		book, err := loadBook(c.RateCards)
		if err != nil {
			return err
		}
		if p, err = billing.NewStore(rdb, c.KeyPrefix, book, log); err != nil {
			return err
		}
	case "ratelimit":
		n := c.Partitions
		if n == 0 {
			if n, err = kafkax.PartitionCount(ctx, c.Brokers, topics.ConversationEvents); err != nil {
				return fmt.Errorf("partitions of %s: %w", topics.ConversationEvents, err)
			}
		}
		if p, err = ratelimit.NewStore(rdb, ratelimit.WithNamespace(c.KeyPrefix+ratelimit.Name+":"), ratelimit.WithPartitions(n)); err != nil {
			return err
		}
	}
	log = log.With("projection", p.Name())
	m := projector.NewMetrics(p.Name())
	if err := serveOps(ctx, c.HTTPAddr, m.Handler(), log); err != nil {
		return err
	}
	return projector.Run(ctx, projector.Config{Brokers: c.Brokers, Topic: topics.ConversationEvents, Parallel: c.Parallel, MaxBatch: c.MaxBatch, Metrics: m}, p, log)
}

// loadBook loads the operator's rate cards, or the shipped examples when none are given.
func loadBook(paths []string) (*ratecard.Book, error) {
	if len(paths) == 0 {
		return ratecard.Examples()
	}
	return ratecard.Load(paths...)
}
