package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/clock"
)

func init() {
	commands["clock"] = command{
		summary: "write one clock tick per partition per interval into the message-events topic",
		parse:   parseClock,
	}
}

// clockConfig is the clock command's configuration.
type clockConfig struct {
	Brokers     []string
	TopicPrefix string
	Interval    time.Duration
}

func parseClock(fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	var c clockConfig
	var brokers string
	fs.StringVar(&brokers, "brokers", env(envBrokers), "Kafka brokers, comma-separated ($"+envBrokers+")")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", env(envTopicPrefix), "prefix of every topic name ($"+envTopicPrefix+")")
	fs.DurationVar(&c.Interval, "interval", time.Second, "time between rounds of ticks")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Brokers = splitList(brokers); len(c.Brokers) == 0 {
		return nil, errors.New("no brokers: set -brokers or " + envBrokers)
	}
	if c.Interval <= 0 {
		return nil, fmt.Errorf("interval %v must be positive", c.Interval)
	}
	return func(ctx context.Context, log *slog.Logger) error {
		return clock.Run(ctx, clock.Config{Brokers: c.Brokers, Topic: kafkax.PrefixedTopics(c.TopicPrefix).MessageEvents, Interval: c.Interval}, log)
	}, nil
}
