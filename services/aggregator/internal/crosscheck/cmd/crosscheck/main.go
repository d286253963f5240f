// Command crosscheck is the crash tests' helper, built without -race: `crosscheck produce`
// writes generated traffic to a topic, `crosscheck check` compares the aggregator's output and
// dead-letter topics with a pure reference run and prints the totals as JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/aggregator/internal/crosscheck"
	"github.com/convmeter/convmeter/services/aggregator/traffic"
	"github.com/convmeter/convmeter/services/window"
)

type config struct {
	mode        string
	brokers     []string
	topicPrefix string
	partitions  int
	seed        uint64
	records     int
	users       int
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crosscheck produce|check [flags]")
		os.Exit(2)
	}
	c := config{mode: os.Args[1]}
	fs := flag.NewFlagSet(c.mode, flag.ExitOnError)
	brokers := fs.String("brokers", "", "Kafka brokers, comma-separated")
	fs.StringVar(&c.topicPrefix, "topic-prefix", "", "topic prefix")
	fs.IntVar(&c.partitions, "partitions", 4, "partitions")
	fs.Uint64Var(&c.seed, "seed", 1, "traffic seed")
	fs.IntVar(&c.records, "records", 200_000, "records to produce")
	fs.IntVar(&c.users, "users", 20_000, "users per number")
	_ = fs.Parse(os.Args[2:])
	c.brokers = strings.Split(*brokers, ",")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "crosscheck:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	topics := kafkax.PrefixedTopics(c.topicPrefix)
	switch c.mode {
	case "produce":
		msgs, err := traffic.Generate(traffic.Config{Seed: c.seed, Records: c.records, Partitions: c.partitions, Users: c.users})
		if err != nil {
			return err
		}
		return crosscheck.Produce(ctx, c.brokers, topics.MessageEvents, msgs)
	case "check":
		tot, err := crosscheck.Check(ctx, c.brokers, topics, c.partitions, window.Config{})
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(tot)
	}
	return errors.New("unknown mode " + c.mode)
}
