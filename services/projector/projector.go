// Package projector is the generic projection consumer: it reads the conversation-events topic
// in a consumer group, hands each partition's run of events to a projections.Projection as one
// Batch, and commits the partition's offset only after Apply returned. Exactly-once effect comes
// from the projection: Apply writes its state and the partition's high-water cause atomically and
// skips what is at or below it, so a crash between Apply and the commit, or a rebalance, only
// replays events the projection then ignores.
//
// Records that do not decode are logged with topic, partition and offset and counted; they stay in
// the log (the source of truth) for the audit, and the partition moves on (architecture rule 6).
//
// Committed offsets alone would trust Redis never to lose what it acknowledged. It does when it
// is restored from a backup, fails over to a replica that lagged, or loses the last second of an
// append-only file fsynced every second (or everything since the last RDB snapshot). So each batch
// carries the log offsets it spans, and the stores record the position after it with its effect,
// in the same atomic unit, and check it first: a store whose position is behind the batch refuses
// it (projections.GapError), and Run reads the records in between from the log again, applies them,
// then the batch. With nothing to read, it compares the stores' positions with the group's
// committed offsets every CheckEvery (catchUp), so a store restored while no record flows catches
// up too. Records retention has deleted meanwhile cannot be had again: they are logged and
// counted (convmeter_projector_lost_records_total), and only a replay restores the projection.
// TestRedisRestoredFromOlderState kills a Redis server that persists by snapshots and checks that
// the ledger ends equal to an uninterrupted apply.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/projections"
)

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	Brokers []string
	Topic   string // default kafkax.ConversationEvents
	Group   string // default "convmeter.<projection name>.v1" (kafkax.GroupBilling for billing)
	// MaxBatch bounds the records fetched per round (all partitions together); default 10000.
	MaxBatch int
	// MaxWait bounds how long a round waits for MaxBatch records; default 200ms.
	MaxWait time.Duration
	// RetryMin and RetryMax bound the backoff of a failing Apply or commit; defaults 100ms, 10s.
	RetryMin, RetryMax time.Duration
	// ReaderOptions adjust the group reader (session timeout, dialer, ...).
	ReaderOptions []kafkax.ReaderOption
	// Parallel is how many partitions of one round are applied at once; default 1. Apply of one
	// partition never overlaps another Apply of the same partition, and a round is committed only
	// after all its partitions are applied. Use more than 1 only with a projection whose Apply is
	// safe to call concurrently for different partitions (billing's and ratelimit's are; `convmeter
	// project` runs 2).
	Parallel int
	// CheckEvery is how often a projector with nothing to read compares the store's log
	// positions (projections.Positioned) with the group's committed offsets, so that a store
	// restored from an older state catches up even when no new record comes to show it (the
	// first idle round checks at once); default 1 minute, negative: never.
	CheckEvery time.Duration
	// OnBatch, when set, is called after each round is applied and committed (metrics, tests).
	OnBatch func(Stats)
	// Metrics, when set, counts rounds, lag and failures and tells readiness (serve its Handler).
	Metrics *Metrics
}

// Stats describes one committed round.
type Stats struct {
	Records   int // records fetched
	Events    int // records decoded and handed to Apply
	Undecoded int // records that did not decode (logged, skipped)
	Apply     time.Duration
}

func (c *Config) defaults(name string) error {
	if len(c.Brokers) == 0 {
		return errors.New("projector: no brokers")
	}
	if c.Topic == "" {
		c.Topic = kafkax.ConversationEvents
	}
	if c.Group == "" {
		c.Group = "convmeter." + name + ".v1"
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 10000
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 200 * time.Millisecond
	}
	if c.Parallel <= 0 {
		c.Parallel = 1
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 10 * time.Second
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = time.Minute
	}
	return nil
}

// Run consumes until ctx ends, then returns nil (or the first error that is not retried).
func Run(ctx context.Context, cfg Config, p projections.Projection, log *slog.Logger) error {
	if p == nil {
		return errors.New("projector: nil projection")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.defaults(p.Name()); err != nil {
		return err
	}
	log = log.With("projection", p.Name(), "topic", cfg.Topic, "group", cfg.Group)
	opts := append([]kafkax.ReaderOption{kafkax.WithReaderLogger(log)}, cfg.ReaderOptions...)
	r, err := kafkax.NewGroupReader(cfg.Brokers, cfg.Group, cfg.Topic, opts...)
	if err != nil {
		return fmt.Errorf("projector %s: %w", p.Name(), err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			log.Warn("projector: close reader", "err", err)
		}
	}()
	log.Info("projector: started")
	var checked time.Time
	for {
		b, err := kafkax.FetchBatch(ctx, r, cfg.MaxBatch, cfg.MaxWait)
		if ctx.Err() != nil {
			log.Info("projector: stopped")
			return nil // fetched but unapplied records are redelivered to the next owner
		}
		if err != nil {
			return fmt.Errorf("projector %s: %w", p.Name(), err)
		}
		cfg.Metrics.fetchedOK()
		if b.Len() == 0 {
			if cfg.CheckEvery > 0 && time.Since(checked) >= cfg.CheckEvery {
				checked = time.Now()
				if err := retry(ctx, cfg, log, "check positions", func() error { return catchUp(ctx, cfg, p, log) }); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
			continue
		}
		st, err := applyBatch(ctx, cfg, p, b, log)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := retry(ctx, cfg, log, "commit", func() error { return kafkax.Commit(ctx, r, b) }); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if cfg.Metrics != nil {
			lag := make(map[int]int64, len(b.Partitions))
			for _, pb := range b.Partitions {
				last := pb.Last()
				lag[pb.Partition] = max(0, last.HighWaterMark-last.Offset-1)
			}
			cfg.Metrics.committed(st, lag)
		}
		if cfg.OnBatch != nil {
			cfg.OnBatch(st)
		}
	}
}

// Decode turns one partition's records into a projection batch, skipping (and reporting) records
// that do not decode.
func Decode(pb kafkax.PartitionBatch, log *slog.Logger) (projections.Batch, int) {
	out := projections.Batch{Partition: int32(pb.Partition), Events: make([]events.Event, 0, len(pb.Messages))}
	if len(pb.Messages) > 0 {
		out.First, out.Next = pb.Messages[0].Offset, pb.Last().Offset+1
	}
	bad := 0
	for _, m := range pb.Messages {
		e, err := kafkax.FromMessage(m)
		if err != nil {
			bad++
			log.Warn("projector: undecodable record skipped", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		out.Events = append(out.Events, e)
	}
	return out, bad
}

func applyBatch(ctx context.Context, cfg Config, p projections.Projection, b kafkax.Batch, log *slog.Logger) (Stats, error) {
	st := Stats{Records: b.Len()}
	start := time.Now()
	type job struct {
		batch projections.Batch
		last  int64
	}
	jobs := make([]job, 0, len(b.Partitions))
	for _, pb := range b.Partitions {
		batch, bad := Decode(pb, log)
		st.Undecoded += bad
		st.Events += len(batch.Events)
		// Applied even when nothing decoded: a store records how far the log was read.
		jobs = append(jobs, job{batch, pb.Last().Offset})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Parallel)
	for _, j := range jobs {
		plog := log.With("partition", j.batch.Partition, "offset", j.last)
		g.Go(func() error {
			return retry(gctx, cfg, plog, "apply", func() error { return applyFromLog(gctx, cfg, p, j.batch, plog) })
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}
	st.Apply = time.Since(start)
	return st, nil
}

// applyFromLog applies a batch read from the log. When the store lacks the effect of records
// before it (projections.GapError: it was restored from an older state), it reads them from the
// log again and applies them first, so nothing the group has committed is missing from the store.
func applyFromLog(ctx context.Context, cfg Config, p projections.Projection, b projections.Batch, log *slog.Logger) error {
	err := p.Apply(ctx, b)
	var gap *projections.GapError
	if !errors.As(err, &gap) {
		return err
	}
	log.Warn("projector: the store lacks records it had applied (restored from an older state?); reading them again",
		"from", gap.From, "to", gap.To, "records", gap.To-gap.From)
	if err := refill(ctx, cfg, p, *gap, log); err != nil {
		return err
	}
	return p.Apply(ctx, b)
}

// catchUp compares, for every partition, the log position the store recorded with the offset the
// group committed, and reads again what the store lacks. The committed offsets are read first:
// a store's position only grows, and is recorded before the offset is committed, so a position
// behind an offset read before it is a loss, not a race with another instance.
func catchUp(ctx context.Context, cfg Config, p projections.Projection, log *slog.Logger) error {
	pp, ok := p.(projections.Positioned)
	if !ok {
		return nil
	}
	n, err := kafkax.PartitionCount(ctx, cfg.Brokers, cfg.Topic)
	if err != nil {
		return err
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: cfg.Group, Topics: map[string][]int{cfg.Topic: parts}})
	if err != nil {
		return fmt.Errorf("projector %s: committed offsets of %s: %w", p.Name(), cfg.Group, err)
	}
	if res.Error != nil {
		return fmt.Errorf("projector %s: committed offsets of %s: %w", p.Name(), cfg.Group, res.Error)
	}
	for _, po := range res.Topics[cfg.Topic] {
		if po.Error != nil {
			return fmt.Errorf("projector %s: committed offset of %s/%d: %w", p.Name(), cfg.Topic, po.Partition, po.Error)
		}
		if po.CommittedOffset <= 0 {
			continue // nothing committed
		}
		part := int32(po.Partition)
		pos, err := pp.Position(ctx, part)
		if err != nil {
			return err
		}
		_, hasHW, err := pp.HighWater(ctx, part)
		if err != nil {
			return err
		}
		// As if the next batch started at the committed offset.
		_, _, err = projections.CheckPosition(projections.Batch{Partition: part, First: po.CommittedOffset, Next: po.CommittedOffset}, pos, hasHW)
		var gap *projections.GapError
		if !errors.As(err, &gap) {
			continue
		}
		log.Warn("projector: the store lacks records the group committed (restored from an older state?); reading them again",
			"partition", part, "from", gap.From, "to", gap.To, "records", gap.To-gap.From)
		if err := refill(ctx, cfg, p, *gap, log); err != nil {
			return err
		}
	}
	return nil
}

// refill reads partition gap.Partition from gap.From up to gap.To with a reader of its own and
// applies it in batches of at most cfg.MaxBatch records. Each batch says it follows gap.From, the
// position the store holds: the records in between are read by this loop, or were deleted by
// retention (before the partition's first offset, where the reader starts) and cannot be had from
// anywhere.
func refill(ctx context.Context, cfg Config, p projections.Projection, gap projections.GapError, log *slog.Logger) error {
	first, _, err := kafkax.PartitionBounds(ctx, cfg.Brokers, cfg.Topic, int(gap.Partition))
	if err != nil {
		return fmt.Errorf("projector %s: %w", p.Name(), err)
	}
	if first > gap.From {
		log.Error("projector: records deleted by retention before the store had their effect; the projection lacks them until a replay rebuilds it",
			"from", gap.From, "to", min(first, gap.To))
		cfg.Metrics.lost(min(first, gap.To) - gap.From)
	}
	r, err := kafkax.NewPartitionReader(kafkax.PartitionReaderConfig{Brokers: cfg.Brokers, Topic: cfg.Topic,
		Partition: int(gap.Partition), ErrorLogger: kafkax.ErrorLogger(log)}, max(first, gap.From))
	if err != nil {
		return fmt.Errorf("projector %s: read again %s/%d from %d: %w", p.Name(), cfg.Topic, gap.Partition, gap.From, err)
	}
	defer r.Close()
	at := max(first, gap.From)
	for at < gap.To {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		msgs, err := r.FetchMessages(fctx, cfg.MaxBatch)
		cancel()
		if err != nil {
			return fmt.Errorf("projector %s: read again %s/%d at %d: %w", p.Name(), cfg.Topic, gap.Partition, at, err)
		}
		n := 0
		for n < len(msgs) && msgs[n].Offset < gap.To {
			n++
		}
		if n == 0 {
			break
		}
		b, bad := Decode(kafkax.PartitionBatch{Topic: cfg.Topic, Partition: int(gap.Partition), Messages: msgs[:n]}, log)
		b.First = gap.From
		if err := p.Apply(ctx, b); err != nil {
			return err
		}
		cfg.Metrics.refilled(n, bad)
		at = b.Next
	}
	if at < gap.To {
		// Nothing left to read before gap.To (deleted, or offsets without records): the store
		// records that it has read that far.
		return p.Apply(ctx, projections.Batch{Partition: gap.Partition, First: gap.From, Next: gap.To})
	}
	return nil
}

// retry runs fn until it succeeds or ctx ends, backing off exponentially between failures: Redis
// or Kafka being away is transient, and committing past an unapplied batch would lose it.
func retry(ctx context.Context, cfg Config, log *slog.Logger, what string, fn func() error) error {
	wait := cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			cfg.Metrics.succeeded()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cfg.Metrics.failed()
		log.Warn("projector: "+what+" failed, retrying", "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, cfg.RetryMax)
	}
}
