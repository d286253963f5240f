// Package dev runs the whole convmeter pipeline in one process, with nothing installed but Go:
// `convmeter dev`.
//
// It starts an embedded Kafka-protocol broker (franz-go's kfake, with its data directory, so
// the log survives restarts) and an embedded Redis-protocol server (miniredis, in memory), creates
// the topics, and runs the production services against them, unchanged: the aggregator
// (aggregator.Run, snapshots in Redis), the clock (clock.Run), the billing and rate-limit
// projection consumers (projector.Run with billing.Store and ratelimit.Store) and the API server
// (api.Run: billing queries, admission, dashboard). Only the broker and store addresses differ
// from a production deployment.
//
// # Restarts rebuild the projections from the log
//
// The Kafka log is the source of truth and the only thing kept on disk (<data>/kafka). Redis is
// in memory, so at every start the projections are empty; Run deletes the projection consumer
// groups' committed offsets first, so both projectors read conversation-events from offset 0 and
// rebuild the ledger and the counters, and the aggregator, finding no snapshot, re-derives its
// state from message-events offset 0 while suppressing the outputs the log already holds
// (architecture rule 3). Restart time grows with the log; delete the data directory to start
// over.
//
// # Simulation
//
// With Simulate, Run feeds realistic traffic from the loadgen model (many numbers and users,
// templates of every category, replies, ad referrals, failures, out-of-order and duplicate
// statuses) through the producer SDK into message-events, paced at Speedup (288: a simulated day
// in five minutes). The simulation starts at the wall clock and runs ahead of it at the speed-up,
// one simulated day after another (each day a fresh seed, so message ids never repeat); it records
// how far it got in <data>/simulation.json and resumes from there after a restart. Because
// event time runs ahead of the wall clock, the clock's ticks change nothing while the simulation
// runs; the dashboard shows the projections' stream time ("now" in event time), and the admission
// API takes the later of the wall clock and that stream time as "now" when a question has no "at".
//
// # miniredis
//
// miniredis runs the projections' Lua scripts with gopher-lua; ratelimit's tests run its apply
// script there too (gopher-lua's tonumber has no exponent notation, which the script avoids). It
// is the patched copy in third_party/miniredis, whose sorted sets keep their order between reads:
// upstream sorts a set on every range read, a cost that grows with the sets over a long simulation.
package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/services/admission"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/api"
	"github.com/convmeter/convmeter/services/clock"
	"github.com/convmeter/convmeter/services/loadgen"
	"github.com/convmeter/convmeter/services/projector"
)

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	// DataDir keeps the broker's log (required).
	DataDir string
	// Addr is the API and dashboard listen address; default 127.0.0.1:8080.
	Addr string
	// Partitions of the co-partitioned topics, used when they are created; default 4.
	Partitions int
	// Book prices the ledger and quotes; default the shipped example rate cards.
	Book *ratecard.Book

	// Simulate feeds generated traffic (see the package doc).
	Simulate bool
	// Speedup is how much faster than the wall clock simulated time runs; default 288 (a day in
	// five minutes); negative plays as fast as the pipeline takes it.
	Speedup float64
	// Model sizes the simulated traffic; zero fields take dev's defaults (DefaultModel). Start
	// and Seed are chosen by Run unless set.
	Model loadgen.Config
	// Days bounds the simulated days; 0 simulates until ctx ends.
	Days int

	// OnReady, when set, is called with the dashboard URL once everything runs.
	OnReady func(url string)
	// SampleEvery is the dashboard's history interval; default 5s.
	SampleEvery time.Duration
}

// DefaultModel is the simulated traffic of `convmeter dev --simulate`: three WABAs (time zones
// and currencies differ), nine numbers, 2000 users each, 120 sessions per number per simulated
// hour (about 160 000 input events per simulated day).
func DefaultModel() loadgen.Config {
	return loadgen.Config{WABAs: 3, Numbers: 9, UsersPerNumber: 2000, SessionsPerHour: 120}
}

// Key prefixes, as the production commands use them.
const (
	keyPrefix      = "convmeter:"
	snapshotPrefix = "convmeter:aggregator:"
	groupRateLimit = "convmeter." + ratelimit.Name + ".v1" // projector's default group for ratelimit
)

func (c *Config) defaults() error {
	if c.DataDir == "" {
		return errors.New("dev: no data directory")
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if c.Speedup == 0 {
		c.Speedup = 288
	}
	d := DefaultModel()
	if c.Model.WABAs == 0 {
		c.Model.WABAs = d.WABAs
	}
	if c.Model.Numbers == 0 {
		c.Model.Numbers = d.Numbers
	}
	if c.Model.UsersPerNumber == 0 {
		c.Model.UsersPerNumber = d.UsersPerNumber
	}
	if c.Model.SessionsPerHour == 0 {
		c.Model.SessionsPerHour = d.SessionsPerHour
	}
	if c.Book == nil {
		b, err := ratecard.Examples()
		if err != nil {
			return fmt.Errorf("dev: example rate cards: %w", err)
		}
		c.Book = b
	}
	return nil
}

// Run runs the pipeline until ctx ends, then stops every service, flushes the broker's data to
// disk and returns nil (or the first error).
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kdir := filepath.Join(cfg.DataDir, "kafka")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return fmt.Errorf("dev: data directory: %w", err)
	}
	unlock, err := lockDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DataDir(kdir),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }),
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.WithLogger(kfakeLogger{log.With("component", "kfake")}),
	)
	if err != nil {
		return fmt.Errorf("dev: start the embedded broker in %s: %w", kdir, err)
	}
	defer cluster.Close() // saves the broker's state to disk
	brokers := cluster.ListenAddrs()

	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return fmt.Errorf("dev: start the embedded redis: %w", err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	log.Info("dev: embedded broker and redis up", "brokers", brokers, "redis", mr.Addr(), "data", cfg.DataDir)

	topics := kafkax.DefaultTopics()
	if err := kafkax.EnsureTopics(ctx, brokers, topics.Specs(cfg.Partitions)...); err != nil {
		return fmt.Errorf("dev: topics: %w", err)
	}
	n, err := kafkax.PartitionCount(ctx, brokers, topics.ConversationEvents)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	if err := resetGroups(ctx, brokers, kafkax.GroupBilling, groupRateLimit); err != nil {
		return err
	}

	snaps, err := aggregator.NewRedisStore(rdb, snapshotPrefix, kafkax.GroupAggregator, topics.MessageEvents)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	bill, err := billing.NewStore(rdb, keyPrefix, cfg.Book, log.With("projection", billing.Name))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	rl, err := ratelimit.NewStore(rdb, ratelimit.WithNamespace(keyPrefix+ratelimit.Name+":"), ratelimit.WithPartitions(n))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}

	prog := &progress{client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second},
		metrics: aggregator.NewMetrics(), topic: topics.ConversationEvents, partitions: n,
		groups: []string{kafkax.GroupBilling, groupRateLimit}}
	prog.simulating.Store(cfg.Simulate)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		acfg := aggregator.Config{Brokers: brokers, Topics: topics, Store: snaps, MaxWait: aggregatorMaxWait,
			SessionTimeout: 6 * time.Second, ShutdownTimeout: 10 * time.Second, Metrics: prog.metrics}
		return aggregator.Run(gctx, acfg, log.With("service", "aggregator"))
	})
	g.Go(func() error {
		return clock.Run(gctx, clock.Config{Brokers: brokers, Topic: topics.MessageEvents}, log.With("service", "clock"))
	})
	g.Go(func() error {
		pcfg := projector.Config{Brokers: brokers, Topic: topics.ConversationEvents, Group: kafkax.GroupBilling,
			ReaderOptions: []kafkax.ReaderOption{projectorFetchWait}}
		return projector.Run(gctx, pcfg, bill, log.With("service", "project"))
	})
	g.Go(func() error {
		pcfg := projector.Config{Brokers: brokers, Topic: topics.ConversationEvents, Group: groupRateLimit,
			ReaderOptions: []kafkax.ReaderOption{projectorFetchWait}}
		return projector.Run(gctx, pcfg, rl, log.With("service", "project"))
	})
	g.Go(func() error {
		acfg := api.Config{Addr: cfg.Addr, Billing: bill, RateLimit: rl, Book: cfg.Book, SampleEvery: cfg.SampleEvery,
			Routes:           map[string]http.Handler{"GET /dev/progress": prog.handler()},
			AdmissionOptions: []admission.Option{admission.WithClock(simulatedNow(rl, log))},
			Check:            func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
			OnListen: func(a net.Addr) {
				url := "http://" + a.String() + "/"
				log.Info("dev: dashboard", "url", url)
				if cfg.OnReady != nil {
					cfg.OnReady(url)
				}
			}}
		return api.Run(gctx, acfg, log.With("service", "api"))
	})
	if cfg.Simulate {
		g.Go(func() error {
			defer prog.simulating.Store(false)
			err := simulate(gctx, cfg, brokers, topics.MessageEvents, &prog.published, log.With("service", "simulate"))
			if gctx.Err() != nil {
				return nil
			}
			return err
		})
	}
	err = g.Wait()
	log.Info("dev: stopped; saving the broker's data", "data", cfg.DataDir)
	return err
}

// Fetch waits. kafka-go gives the broker a quarter of a fetch's MaxWait (MaxWait under 1 s) to
// answer after the wait it asks for, then drops the connection with an i/o timeout. kfake answers
// from one goroutine that also writes the log to disk, so on a busy machine the production
// defaults (100 ms for the aggregator, 250 ms for the projectors' group readers) time out often;
// nothing is lost (the reader reconnects), but every time-out is logged as an error. Longer
// waits leave more slack: the aggregator batches for up to 500 ms, and the projectors' readers
// ask for 1 s with 1 s of slack (their batches still close after projector.Config.MaxWait).
const aggregatorMaxWait = 500 * time.Millisecond

func projectorFetchWait(c *kafka.ReaderConfig) { c.MaxWait = 2 * time.Second }

// resetGroups deletes the projection consumer groups, so the projectors start from offset 0 of
// the log and rebuild the (in-memory, empty) projections. A group that does not exist is fine.
func resetGroups(ctx context.Context, brokers []string, groups ...string) error {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := c.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: groups})
	if err != nil {
		return fmt.Errorf("dev: reset projection consumer groups %v: %w", groups, err)
	}
	for g, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.GroupIdNotFound) {
			return fmt.Errorf("dev: reset consumer group %s: %w", g, err)
		}
	}
	return nil
}

// simulatedNow is admission's clock in dev: the later of the wall clock and the rate-limit
// projection's stream time. Under --simulate event time runs ahead of the wall clock, and a
// question without "at" is meant for the simulation's now.
func simulatedNow(rl *ratelimit.Store, log *slog.Logger) func() time.Time {
	return func() time.Time {
		now := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, ok, err := rl.StreamTime(ctx)
		if err != nil {
			log.Warn("dev: stream time for admission's now", "err", err)
			return now
		}
		if ok && st.Time().After(now) {
			return st.Time()
		}
		return now
	}
}

// kfakeLogger sends the embedded broker's warnings and errors to slog.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error(fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		l.log.Warn(fmt.Sprintf(msg, args...))
	default:
		l.log.Debug(fmt.Sprintf(msg, args...))
	}
}

// simState is what <data>/simulation.json keeps: where the simulation's event time got to.
type simState struct {
	Next int64 `json:"next"` // Unix seconds: the next simulated day starts no earlier
}

func readSimState(path string) (simState, error) {
	var s simState
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("dev: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("dev: parse %s: %w", path, err)
	}
	return s, nil
}

func writeSimState(path string, s simState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("dev: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("dev: write %s: %w", path, err)
	}
	return nil
}
