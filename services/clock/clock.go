// Package clock writes the wall clock into the log: one clock.tick.v1 per partition of the
// message-events topic per interval, written to each partition explicitly, so a quiet
// partition's stream time still moves and its windows expire (architecture rule 1). Ticks have
// deterministic ids (events.NewTick), so a clock that restarts, or two clocks running side by
// side, write events the engine treats as what they are: the same instant again.
package clock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/segmentio/kafka-go"
)

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	Brokers  []string
	Topic    string        // default kafkax.MessageEvents
	Interval time.Duration // default 1s
	// Now is the wall clock; default time.Now. Tests set it.
	Now func() time.Time
	// OnTick, when set, is called after each round is written (tests, metrics).
	OnTick func(t events.UnixTime, partitions int)
}

// Ticks returns the ticks of one round at t for a topic of n partitions: tick p goes to
// partition p (mark the records with kafkax.ToPartition).
func Ticks(t time.Time, n int) []events.Event {
	out := make([]events.Event, n)
	for p := range out {
		out[p] = events.NewTick(int32(p), events.FromTime(t))
	}
	return out
}

// Run writes a round of ticks every interval until ctx ends, then returns nil. The partition
// count is read from the topic at start. A round that fails to write is logged and the next
// round goes on: a missed tick only delays expiries until the next one.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if len(cfg.Brokers) == 0 {
		return errors.New("clock: no brokers")
	}
	if cfg.Topic == "" {
		cfg.Topic = kafkax.MessageEvents
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := kafkax.PartitionCount(ctx, cfg.Brokers, cfg.Topic)
	if err != nil {
		return fmt.Errorf("clock: %w", err)
	}
	w, err := kafkax.NewWriter(cfg.Brokers, cfg.Topic, kafkax.WithWriterLogger(log))
	if err != nil {
		return fmt.Errorf("clock: %w", err)
	}
	defer w.Close()
	log.Info("clock starting", "topic", cfg.Topic, "partitions", n, "interval", cfg.Interval)
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		now := cfg.Now()
		if err := write(ctx, w, now, n); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Error("write ticks", "topic", cfg.Topic, "event_type", events.TypeTick, "err", err)
		} else if cfg.OnTick != nil {
			cfg.OnTick(events.FromTime(now), n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// write writes one round in one synchronous call.
func write(ctx context.Context, w *kafka.Writer, now time.Time, n int) error {
	ticks := Ticks(now, n)
	msgs := make([]kafka.Message, n)
	for p, e := range ticks {
		m, err := kafkax.ToMessage(e)
		if err != nil {
			return err
		}
		msgs[p] = kafkax.ToPartition(m, p)
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d ticks at %s: %w", n, events.FromTime(now), err)
	}
	return nil
}
