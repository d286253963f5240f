package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/services/api"
)

func init() {
	commands["api"] = command{
		summary: "serve the billing query API, the admission/quote API and the dashboard",
		parse:   parseAPI,
	}
}

// apiConfig is the api command's configuration.
type apiConfig struct {
	Addr        string
	Brokers     []string
	RedisURL    string
	TopicPrefix string
	KeyPrefix   string
	RateCards   []string
	Partitions  int
	SampleEvery time.Duration
}

func parseAPI(fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	var c apiConfig
	var brokers, cards string
	fs.StringVar(&c.Addr, "addr", ":8080", "listen address")
	fs.StringVar(&brokers, "brokers", env(envBrokers), "Kafka brokers, comma-separated, to read the partition count ($"+envBrokers+")")
	fs.StringVar(&c.RedisURL, "redis", env(envRedisURL), "Redis URL ($"+envRedisURL+")")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", env(envTopicPrefix), "prefix of every topic name ($"+envTopicPrefix+")")
	fs.StringVar(&c.KeyPrefix, "key-prefix", "convmeter:", "prefix of every Redis key (the projections' namespace)")
	fs.StringVar(&cards, "ratecards", "", "rate-card files or directories, comma-separated (default: the shipped EXAMPLE cards)")
	fs.IntVar(&c.Partitions, "partitions", 0, "partitions of the conversation-events topic (default: read from Kafka)")
	fs.DurationVar(&c.SampleEvery, "dashboard-sample", 30*time.Second, "how often the dashboard samples its charts (each sample walks the live pair state)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Brokers = splitList(brokers)
	if c.Partitions <= 0 && len(c.Brokers) == 0 {
		return nil, errors.New("set -partitions, or -brokers / " + envBrokers + " to read it from Kafka")
	}
	if c.RedisURL == "" {
		return nil, errors.New("no Redis: set -redis or " + envRedisURL)
	}
	c.RateCards = splitList(cards)
	return func(ctx context.Context, log *slog.Logger) error { return runAPI(ctx, c, log) }, nil
}

func runAPI(ctx context.Context, c apiConfig, log *slog.Logger) error {
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	n := c.Partitions
	if n <= 0 {
		topic := kafkax.PrefixedTopics(c.TopicPrefix).ConversationEvents
		if n, err = kafkax.PartitionCount(ctx, c.Brokers, topic); err != nil {
			return fmt.Errorf("partitions of %s: %w", topic, err)
		}
	}
	book, err := loadBook(c.RateCards)
	if err != nil {
		return err
	}
	bill, err := billing.NewStore(rdb, c.KeyPrefix, book, log)
	if err != nil {
		return err
	}
	rl, err := ratelimit.NewStore(rdb, ratelimit.WithNamespace(c.KeyPrefix+ratelimit.Name+":"), ratelimit.WithPartitions(n))
	if err != nil {
		return err
	}
	return api.Run(ctx, api.Config{Addr: c.Addr, Billing: bill, RateLimit: rl, Book: book, SampleEvery: c.SampleEvery,
		Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}, log)
}
