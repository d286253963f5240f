package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/wmkafka"
)

// PublishBatchTimeout is how long the Kafka writer of Run waits to fill a partition's batch with
// records of concurrent requests. Measured with scripts/bench-ingest.sh on 2 cores: 10 ms gave
// batches of ~130 records instead of ~55 at 2 ms, less broker work per event, and higher
// throughput at no cost in median latency (the broker answered sooner).
const PublishBatchTimeout = 10 * time.Millisecond

// Run serves webhooks on cfg.Addr until ctx ends, publishing to Kafka at cfg.Brokers. The topics
// must exist (see kafkax.EnsureTopics); the partition count of MessageEvents is looked up when
// cfg.Partitions is 0.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Brokers) == 0 {
		return errors.New("ingest: no brokers")
	}
	if cfg.Topics.MessageEvents == "" {
		cfg.Topics = kafkax.DefaultTopics()
	}
	if cfg.Partitions <= 0 {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := kafkax.PartitionCount(lctx, cfg.Brokers, cfg.Topics.MessageEvents)
		cancel()
		if err != nil {
			return fmt.Errorf("ingest: partition count of %s: %w", cfg.Topics.MessageEvents, err)
		}
		cfg.Partitions = n
	}
	pub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{Brokers: cfg.Brokers, BatchTimeout: PublishBatchTimeout,
		Logger: log.With("component", "publisher")})
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	defer pub.Close()
	srv, err := New(cfg, pub, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", srv.cfg.Addr)
	if err != nil {
		return fmt.Errorf("ingest: listen on %s: %w", srv.cfg.Addr, err)
	}
	return Serve(ctx, srv, ln, log)
}

// Serve runs srv's router and serves its Handler on ln until ctx ends, then drains: requests in
// flight finish (and are acknowledged by Kafka) before Serve returns.
func Serve(ctx context.Context, srv *Server, ln net.Listener, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	rctx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouter()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(rctx) })
	g.Go(func() error {
		select {
		case <-srv.Running():
		case <-gctx.Done():
			return nil
		}
		log.Info("ingest listening", "addr", ln.Addr().String(), "path", srv.cfg.Path,
			"topic", srv.cfg.Topics.MessageEvents, "partitions", srv.cfg.Partitions)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("ingest: serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), srv.cfg.PublishTimeout+5*time.Second)
		defer cancel()
		err := hs.Shutdown(sctx)
		stopRouter()
		if err != nil {
			return fmt.Errorf("ingest: shutdown: %w", err)
		}
		return nil
	})
	return g.Wait()
}
