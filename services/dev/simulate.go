package dev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/producer"
	"github.com/convmeter/convmeter/services/loadgen"
)

// Publishing: items are handed from the paced player to a publisher that writes them in batches
// of up to publishMax events, or whatever arrived within publishWait of the first.
const (
	publishMax  = 1000
	publishWait = 100 * time.Millisecond
	stateEvery  = 5 * time.Second
)

// simulate plays simulated days through the producer SDK until ctx ends or cfg.Days are done.
func simulate(ctx context.Context, cfg Config, brokers []string, topic string, published *atomic.Int64, log *slog.Logger) error {
	p, err := producer.New(ctx, brokers, producer.WithTopic(topic), producer.WithLogger(log))
	if err != nil {
		return fmt.Errorf("dev: simulate: %w", err)
	}
	defer p.Close()
	statePath := filepath.Join(cfg.DataDir, "simulation.json")
	st, err := readSimState(statePath)
	if err != nil {
		return err
	}
	start := time.Now().Truncate(time.Second)
	if next := time.Unix(st.Next, 0); next.After(start) {
		start = next // resume ahead of the wall clock where the last run got to
	}
	speed := cfg.Speedup
	if speed < 0 {
		speed = 0 // loadgen.Play: as fast as the pipeline takes it
	}
	for day := 0; cfg.Days == 0 || day < cfg.Days; day++ {
		mc := cfg.Model
		if mc.Start.IsZero() || day > 0 {
			mc.Start = start
		}
		if mc.Seed == 0 || day > 0 {
			mc.Seed = uint64(mc.Start.Unix()) // a fresh seed per day: message ids never repeat
		}
		m, err := loadgen.New(mc)
		if err != nil {
			return fmt.Errorf("dev: simulate: %w", err)
		}
		mc = m.Config()
		log.Info("dev: simulating", "from", mc.Start.UTC().Format(time.RFC3339), "span", mc.Duration, "speedup", speed,
			"numbers", mc.Numbers, "wabas", mc.WABAs, "sessions_per_hour", mc.SessionsPerHour)
		n, err := playDay(ctx, m, speed, p, statePath, published, log)
		if err != nil {
			return err
		}
		start = mc.Start.Add(mc.Duration)
		if err := writeSimState(statePath, simState{Next: start.Unix()}); err != nil {
			return err
		}
		log.Info("dev: simulated day done", "events", n, "next", start.UTC().Format(time.RFC3339))
	}
	return nil
}

// playDay plays one model at speed and publishes its events in batches; it returns how many
// events it published.
func playDay(ctx context.Context, m *loadgen.Model, speed float64, p *producer.Producer, statePath string, total *atomic.Int64, log *slog.Logger) (int, error) {
	items := make(chan loadgen.Item, 4*publishMax)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := make(chan error, 1)
	published := 0
	go func() {
		err := publish(pctx, items, p, statePath, &published, total, log)
		if err != nil {
			cancel() // stop the player: nobody drains items any more
		}
		g <- err
	}()
	err := loadgen.Play(pctx, m, speed, func(it loadgen.Item) error {
		select {
		case items <- it:
			return nil
		case <-pctx.Done():
			return pctx.Err()
		}
	})
	close(items)
	if perr := <-g; perr != nil {
		return published, perr
	}
	if err != nil {
		return published, fmt.Errorf("dev: simulate: %w", err)
	}
	return published, nil
}

// publish drains items into batches and publishes each; it records the simulation's progress
// every stateEvery.
func publish(ctx context.Context, items <-chan loadgen.Item, p *producer.Producer, statePath string, published *int, total *atomic.Int64, log *slog.Logger) error {
	batch := make([]events.Event, 0, publishMax)
	var last events.UnixTime
	saved := time.Now()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := p.Publish(ctx, batch...); err != nil {
			return fmt.Errorf("dev: simulate: %w", err)
		}
		*published += len(batch)
		total.Add(int64(len(batch)))
		batch = batch[:0]
		if time.Since(saved) >= stateEvery {
			saved = time.Now()
			if err := writeSimState(statePath, simState{Next: int64(last) + 1}); err != nil {
				log.Warn("dev: simulate: record progress", "err", err)
			}
		}
		return nil
	}
	for {
		it, ok := <-items
		if !ok {
			return flush()
		}
		batch = append(batch, it.Event)
		last = max(last, it.Arrival)
		timer := time.NewTimer(publishWait)
	fill:
		for len(batch) < publishMax {
			select {
			case it, ok := <-items:
				if !ok {
					break fill
				}
				batch = append(batch, it.Event)
				last = max(last, it.Arrival)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		if err := flush(); err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
