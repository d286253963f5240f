package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/convmeter/convmeter/events"
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
	HTTPAddr    string // /healthz, /readyz; empty: none
}

func parseClock(fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	var c clockConfig
	var brokers string
	fs.StringVar(&brokers, "brokers", env(envBrokers), "Kafka brokers, comma-separated ($"+envBrokers+")")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", env(envTopicPrefix), "prefix of every topic name ($"+envTopicPrefix+")")
	fs.DurationVar(&c.Interval, "interval", time.Second, "time between rounds of ticks")
	fs.StringVar(&c.HTTPAddr, "http", "", "listen address of /healthz (a round written lately) and /readyz (empty: none)")
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
		h := clock.NewHealth(c.Interval)
		if err := serveOps(ctx, c.HTTPAddr, h.Handler(), log); err != nil {
			return err
		}
		return clock.Run(ctx, clock.Config{Brokers: c.Brokers, Topic: kafkax.PrefixedTopics(c.TopicPrefix).MessageEvents, Interval: c.Interval,
			OnTick: func(events.UnixTime, int) { h.Ticked() }}, log)
	}, nil
}
