package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/internal/memlimit"
	"github.com/convmeter/convmeter/services/internal/progress"
	"github.com/convmeter/convmeter/services/window"
)

// Config configures a replay from Kafka.
type Config struct {
	Brokers []string
	Topic   string // the message-events topic
	// From and To (Unix seconds, 0 = open) restrict the replay to input events with event time in
	// [From, To). Account events (configs, limits, volume tiers, template categories) always
	// apply, whatever their time: they are facts the engine resolves by time itself.
	From, To events.UnixTime
	// Engine configures the window engines; it must match the aggregator's (Lateness above all).
	// Its CachePairs, when 0, is CachePairs split among the partitions.
	Engine window.Config
	// CachePairs is how many pairs the engines keep decoded, all partitions together (default
	// DefaultCachePairs; each engine keeps at least window.DefaultCachePairs).
	CachePairs int
	// BatchSize is the number of engine outputs per projection Apply (default DefaultBatchSize).
	BatchSize int
	// First and End, when set, are the partitions' first offsets and high-water marks to replay
	// up to (a resumed replay's, captured when it started) instead of the log's now.
	First, End []int64
	// Progress, when set, receives a progress line every ProgressEvery (default 2 s): records,
	// events/s, ETA from the high-water offsets captured at the start.
	Progress      io.Writer
	ProgressEvery time.Duration
	// ProgressBar draws the progress as one bar redrawn in place (for a terminal).
	ProgressBar bool
	// BeforeRead, when set, is called once with the number of records the replay will read,
	// before it reads any, within the time Stats.Seconds measures. `convmeter replay` uses it to
	// have the memory the replay will allocate backed in advance (memlimit.Prefault).
	BeforeRead func(records int64)
}

// Stats is what a replay did.
type Stats struct {
	Partitions  int   `json:"partitions"`
	Records     int64 `json:"records"` // input records read, up to the high-water marks captured at start
	Outputs     int64 `json:"outputs"` // engine outputs applied to each projection
	DeadLetters int64 `json:"dead_letters"`
	Skipped     int64 `json:"skipped"` // outside --from/--to
	// AlreadyApplied counts the outputs an interrupted replay had applied to every projection,
	// which a resumed one did not apply again.
	AlreadyApplied int64 `json:"already_applied,omitempty"`
	Resumed        bool  `json:"resumed,omitempty"`
	// AlreadyComplete: a resumed replay found the replay finished and ran nothing.
	AlreadyComplete bool    `json:"already_complete,omitempty"`
	Seconds         float64 `json:"seconds"`
	PerSecond       float64 `json:"records_per_second"`
	// ApplySeconds is the wall time spent in each projection's Apply, summed over partitions.
	ApplySeconds map[string]float64 `json:"apply_seconds"`
	// HighWater is the captured end offset (exclusive) of each partition; First the first offset
	// still in the log (above 0: retention deleted the start, which a replay cannot rebuild).
	HighWater []int64 `json:"high_water"`
	First     []int64 `json:"first"`
}

// ErrNotFresh is returned when the target namespace already holds projection keys.
var ErrNotFresh = errors.New("replay: target namespace is not empty")

// Run replays the message-events topic from the first offset of every partition up to the
// high-water mark captured at the start (or cfg.First and cfg.End), through one window engine per
// partition (the aggregator's Processor), into the projections of target. No Kafka writes.
//
// Run applies nothing a projection of target has applied already: outputs at or below every
// projection's high-water mark are dropped before batching, and each projection skips what it
// applied itself. Into an empty namespace that is everything; Rebuild uses it to resume an
// interrupted replay and keeps the namespace's manifest.
func Run(ctx context.Context, cfg Config, target *Namespace, log *slog.Logger) (Stats, error) {
	n, err := partitionCount(ctx, cfg)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Partitions: n}
	if st.First, st.HighWater, err = captureOffsets(ctx, cfg, n); err != nil {
		return st, err
	}
	firsts := st.First
	if cfg.End == nil {
		warnRetention(log, cfg.Topic, firsts)
	} else { // the caller captured and warned; the log must still hold what it captured
		if len(cfg.First) != n || len(cfg.End) != n {
			return st, fmt.Errorf("replay: %d first and %d end offsets given for %d partitions", len(cfg.First), len(cfg.End), n)
		}
		for p := range n {
			if firsts[p] > cfg.First[p] {
				return st, fmt.Errorf("%w: %s/%d now starts at offset %d, the replay started at %d", ErrLogTruncated, cfg.Topic, p, firsts[p], cfg.First[p])
			}
		}
		st.First, st.HighWater = cfg.First, cfg.End
		firsts = cfg.First
	}
	var total int64
	for p := range n {
		total += st.HighWater[p] - firsts[p]
	}
	applied, err := appliedMarks(ctx, target, n)
	if err != nil {
		return st, err
	}
	log.Info("replay: start", "topic", cfg.Topic, "partitions", n, "records", total, "namespace", target.Prefix)
	start := time.Now()
	if cfg.BeforeRead != nil {
		cfg.BeforeRead(total)
	}
	var done atomic.Int64
	parts := make([]*Partition, n)
	ecfg := cfg.Engine
	if ecfg.CachePairs == 0 {
		ecfg.CachePairs = cacheShare(cfg.CachePairs, n)
	}
	g, gctx := errgroup.WithContext(ctx)
	for p := range n {
		x, err := NewPartition(int32(p), cfg.Topic, ecfg, cfg.BatchSize, target.Projections()...)
		if err != nil {
			return st, err
		}
		x.Pipeline()
		x.skipApplied(applied[p])
		parts[p] = x
		g.Go(func() error {
			return readPartition(gctx, cfg, x, int32(p), firsts[p], st.HighWater[p], &done)
		})
	}
	stopProgress := progress.Start(ctx, progress.Config{Out: cfg.Progress, Every: cfg.ProgressEvery, Bar: cfg.ProgressBar,
		Job: "replay", Unit: "records", Rate: "events/s", Finishing: "all read, applying the last batches"}, total, &done)
	err = g.Wait()
	stopProgress()
	st.ApplySeconds = map[string]float64{}
	for _, x := range parts {
		s := x.Stats()
		for k, v := range s.ApplyNanos {
			st.ApplySeconds[k] += float64(v) / 1e9
		}
		st.Records += s.Records + s.Skipped
		st.Outputs += s.Outputs
		st.DeadLetters += s.DeadLetters
		st.Skipped += s.Skipped
		st.AlreadyApplied += s.AlreadyApplied
	}
	st.Seconds = time.Since(start).Seconds()
	if st.Seconds > 0 {
		st.PerSecond = float64(st.Records) / st.Seconds
	}
	if err != nil {
		return st, err
	}
	log.Info("replay: done", "records", st.Records, "outputs", st.Outputs, "already_applied", st.AlreadyApplied, "dead_letters", st.DeadLetters,
		"seconds", st.Seconds, "records_per_second", int64(st.PerSecond))
	return st, nil
}

func partitionCount(ctx context.Context, cfg Config) (int, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return 0, errors.New("replay: brokers and topic are required")
	}
	n, err := kafkax.PartitionCount(ctx, cfg.Brokers, cfg.Topic)
	if err != nil {
		return 0, fmt.Errorf("replay: partitions of %s: %w", cfg.Topic, err)
	}
	return n, nil
}

// captureOffsets returns the first offset and the high-water mark of each of the n partitions.
func captureOffsets(ctx context.Context, cfg Config, n int) (first, end []int64, err error) {
	first, end = make([]int64, n), make([]int64, n)
	for p := range n {
		if first[p], end[p], err = kafkax.PartitionBounds(ctx, cfg.Brokers, cfg.Topic, p); err != nil {
			return nil, nil, fmt.Errorf("replay: %w", err)
		}
	}
	return first, end, nil
}

// warnRetention warns of every partition whose replay starts after offset 0.
func warnRetention(log *slog.Logger, topic string, first []int64) {
	for p, f := range first {
		if f > 0 {
			log.Warn("replay: the log no longer starts at offset 0 (retention): what it deleted cannot be rebuilt",
				"topic", topic, "partition", p, "first_offset", f)
		}
	}
}

// appliedMarks returns, per partition, the cause every projection of target has applied (the
// earliest of their high-water marks), or nil when one of them has applied nothing there.
func appliedMarks(ctx context.Context, target *Namespace, n int) ([]*events.Cause, error) {
	out := make([]*events.Cause, n)
	for p := range n {
		var low *events.Cause
		for i, pr := range target.Projections() {
			c, ok, err := pr.HighWater(ctx, int32(p))
			if err != nil {
				return nil, fmt.Errorf("replay: high-water mark of %s partition %d: %w", pr.Name(), p, err)
			}
			if !ok {
				low = nil
				break
			}
			if i == 0 || low.After(c) {
				low = &c
			}
		}
		out[p] = low
	}
	return out, nil
}

// DefaultCachePairs is how many pairs a replay's engines keep decoded, all partitions together:
// a replay is a batch job, and memory buys CPU there. Over the replay benchmark's traffic, where
// almost every event is of a pair other than the last few thousand's, an engine of 65,536 cached
// pairs spent 4.2-4.7 CPU-µs per record where one of window.DefaultCachePairs spent 5.0-5.3
// (BenchmarkReplayEngineOnly, alternating). A cached pair costs a few hundred bytes: about
// 100 MB in all.
const DefaultCachePairs = 1 << 18

// cacheShare is each of n engines' share of a cache of total pairs (DefaultCachePairs when 0),
// at least window.DefaultCachePairs.
func cacheShare(total, n int) int {
	if total <= 0 {
		total = DefaultCachePairs
	}
	return max(total/max(n, 1), window.DefaultCachePairs)
}

// fetchBytes and prefetch bound a replay's read-ahead: the reader decodes up to prefetch fetch
// responses of up to fetchBytes (as stored, compressed) ahead of the engine, per partition. The
// loadgen traffic's LZ4 batches decompress about eightfold, so 4 responses of 2 MiB were 60-100 MB
// of buffers per partition: cold in the caches by the time the engine read them, marked by every
// GC, and new memory the kernel had to fault in (a third of a replay's process CPU was page
// faults, perf record). With 2 of 512 KiB, in alternating runs of the replay benchmark (dense, 1M
// records, 2026-11-25): process CPU 5.5-5.7 µs per record against 6.2-6.5 (GC 0.15-0.29 against
// 0.55-0.63), 235k-238k records/s against 176k-220k, the broker's CPU alike; `convmeter replay`
// of a million loadgen records in 12 partitions: peak RSS 1.9-2.0 GB against 2.7-3.0 GB, system
// CPU 1.8-1.9 s against 2.3-2.6 s. (Before, 16 MiB fetches had cost 3-5% more than 2 MiB.)
const (
	fetchBytes = 512 << 10
	prefetch   = 2
)

// readPartition reads partition p from first up to (excluding) end with a kafkax.PartitionReader
// (fetches decoded in one pass, read ahead while the engine runs) and runs every record
// through x. Records outside the time range are skipped before the engine sees them. If the
// records stop before end (the last offsets hold only transaction markers, or the partition was
// truncated), it fails after 10 s without a record rather than wait.
func readPartition(ctx context.Context, cfg Config, x *Partition, p int32, first, end int64, done *atomic.Int64) error {
	if first >= end {
		return nil
	}
	// Reuse: x.Record keeps nothing of a record's memory (aggregator.Processor copies what dead
	// letters and set-aside events keep), and this loop is done with a call's records when it
	// asks for more.
	r, err := kafkax.NewPartitionReader(kafkax.PartitionReaderConfig{Brokers: cfg.Brokers, Topic: cfg.Topic, Partition: int(p),
		MaxBytes: fetchBytes, Prefetch: prefetch, Reuse: true}, first)
	if err != nil {
		return fmt.Errorf("replay: read %s/%d: %w", cfg.Topic, p, err)
	}
	defer r.Close()
	next := first
	for next < end {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		msgs, err := r.FetchMessages(fctx, 4096)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("replay: %s/%d: no records at offset %d below the high-water mark %d", cfg.Topic, p, next, end)
		case err != nil:
			return fmt.Errorf("replay: fetch %s/%d at %d: %w", cfg.Topic, p, next, err)
		}
		n := 0
		for _, m := range msgs {
			if m.Offset >= end {
				break
			}
			next = m.Offset + 1
			n++
			if !inRange(cfg, m) {
				x.stats.Skipped++
				continue
			}
			if err := x.Record(ctx, m); err != nil {
				return err
			}
		}
		done.Add(int64(n))
		if n < len(msgs) {
			break
		}
	}
	return x.Flush(ctx)
}

// inRange reports whether a record is inside the replay's time range. Records that do not decode
// are kept: the engine's shell dead-letters them, as the aggregator does.
func inRange(cfg Config, m kafka.Message) bool {
	if cfg.From == 0 && cfg.To == 0 {
		return true
	}
	ev, err := kafkax.FromMessage(m)
	if err != nil {
		return true
	}
	switch ev.Type {
	case events.TypeAccountConfig, events.TypeLimitUpdate, events.TypeVolumeTier, events.TypeTemplateCategory:
		return true
	default:
	}
	return (cfg.From == 0 || ev.Time >= cfg.From) && (cfg.To == 0 || ev.Time < cfg.To)
}

// AllocPerRecord is about what a replay allocates per record read: 1.9 KB on the dense loadgen
// model (BenchmarkReplayKafka's allocation profile).
const AllocPerRecord = 2000

// Prefault returns a Config.BeforeRead for a replay that runs under memlimit.Floor(floor): it has
// the memory the replay will allocate before its first collection, up to half the floor, backed
// in advance (memlimit.Prefault). The replay then takes almost no page faults while it runs,
// and the kernel backs the pages in one call per CPU instead of one fault per page. On 1M
// records (2-core VM, `convmeter replay -compare=false`): 250k-256k records/s with the prefault
// counted, 232k-240k without it. floor <= 0: nothing.
func Prefault(floor int64, log *slog.Logger) func(records int64) {
	return func(records int64) {
		if floor <= 0 {
			return
		}
		start := time.Now()
		if b := memlimit.Prefault(min(records*AllocPerRecord, floor/2)); b.Bytes > 0 {
			log.Info("replay: memory prefaulted", "bytes", memlimit.Format(b.Bytes), "huge_pages", memlimit.Format(b.Huge),
				"probe_small_ms", b.SmallProbe.Seconds()*1e3, "probe_huge_ms", b.HugeProbe.Seconds()*1e3, "seconds", time.Since(start).Seconds())
		}
	}
}
