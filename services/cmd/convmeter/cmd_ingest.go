package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/ingest"
)

func init() {
	commands["ingest"] = command{
		summary: "serve the webhook endpoint Meta calls; publish normalised events to Kafka",
		parse:   parseIngest,
	}
}

// Secrets come from the environment only, never from flags (flags show in process lists).
const (
	envVerifyToken = "CONVMETER_VERIFY_TOKEN"
	envAppSecrets  = "CONVMETER_APP_SECRETS" // comma-separated; several during a rotation
)

func parseIngest(fs *flag.FlagSet, args []string, env func(string) string) (runner, error) {
	var c ingest.Config
	var brokers, prefix string
	fs.StringVar(&c.Addr, "addr", ":8081", "HTTP listen address")
	fs.StringVar(&c.Path, "path", "/webhook", "webhook path")
	fs.StringVar(&brokers, "brokers", env(envBrokers), "Kafka brokers, comma-separated ($"+envBrokers+")")
	fs.StringVar(&prefix, "topic-prefix", env(envTopicPrefix), "prefix of every topic name ($"+envTopicPrefix+")")
	fs.Int64Var(&c.MaxBodyBytes, "max-body", 8<<20, "largest accepted request body in bytes")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Brokers = splitList(brokers); len(c.Brokers) == 0 {
		return nil, errors.New("no brokers: set -brokers or " + envBrokers)
	}
	c.Topics = kafkax.PrefixedTopics(prefix)
	c.VerifyToken = env(envVerifyToken)
	c.AppSecrets = splitList(env(envAppSecrets))
	if c.VerifyToken == "" || len(c.AppSecrets) == 0 {
		return nil, errors.New("set " + envVerifyToken + " and " + envAppSecrets)
	}
	return func(ctx context.Context, log *slog.Logger) error { return ingest.Run(ctx, c, log) }, nil
}
