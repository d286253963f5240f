package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/window"
)

// Partition runs the live path of one partition in memory: the aggregator's pure Processor (the
// window engine, dead letters exactly as the aggregator makes them) and the projections, fed in
// batches of the engine's outputs with their causes. No Kafka writes: the outputs go straight
// into the projections' Apply. It is not safe for concurrent use; run one per partition.
type Partition struct {
	proc      *aggregator.Processor
	projs     []projections.Projection
	batchSize int
	pending   []events.Event
	dead      []events.Event
	stats     PartitionStats
	// pipelined: a full batch is applied in the background while the engine fills the next;
	// one batch in flight at a time, so batches still reach the projections in order.
	pipelined bool
	inflight  chan flushResult
	spare     []events.Event // the storage of the last batch applied in the background, for the next
	// applied, until the records pass it, is the cause every projection has applied already
	// (a resumed replay): outputs at or before it are dropped, not batched.
	applied *events.Cause
}

type flushResult struct {
	n     int
	took  []int64
	err   error
	batch []events.Event
}

// PartitionStats counts what a partition did.
type PartitionStats struct {
	Records     int64 // input records read
	Outputs     int64 // engine outputs applied to the projections
	DeadLetters int64 // records that did not decode or that the engine refused
	Skipped     int64 // records outside the --from/--to range
	// AlreadyApplied counts the outputs dropped because every projection had applied them.
	AlreadyApplied int64
	Batches        int64
	// ApplyNanos is the wall time spent in each projection's Apply, by projection name.
	ApplyNanos map[string]int64
}

// DefaultBatchSize is the number of engine outputs per projection Apply when none is given. A
// replay is a batch job: on the replay benchmark, batches of 50,000 cost Redis 2.6-3.3 CPU-µs
// per record where batches of 5,000 cost 4.4-4.6 (the projections merge a batch's writes to a
// key), for 124k-150k records/s instead of 108k-113k. A batch of 50,000 holds about 23 MB
// (467 bytes per output, measured on the loadgen traffic), twice per partition while one
// applies and the next fills.
const DefaultBatchSize = 50_000

// NewPartition returns the in-memory live path of partition p of topic (the input topic named in
// dead letters). batchSize is the number of outputs per projection Apply (DefaultBatchSize when
// 0).
func NewPartition(p int32, topic string, engine window.Config, batchSize int, projs ...projections.Projection) (*Partition, error) {
	engine.Partition = p
	e, err := window.New(engine)
	if err != nil {
		return nil, fmt.Errorf("replay: engine of partition %d: %w", p, err)
	}
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	return &Partition{proc: &aggregator.Processor{Engine: e, Topic: topic, Partition: p}, projs: projs, batchSize: batchSize}, nil
}

// Stats returns the counters so far.
func (x *Partition) Stats() PartitionStats { return x.stats }

// Engine is the partition's window engine.
func (x *Partition) Engine() *window.Engine { return x.proc.Engine }

// DeadLetters returns the dead letters so far (records that did not decode or that the engine
// refused), with reason, offset and original bytes.
func (x *Partition) DeadLetters() []events.Event { return x.dead }

// Record runs one input record (in offset order) and applies a batch to the projections when one
// is full.
func (x *Partition) Record(ctx context.Context, m kafka.Message) error {
	x.stats.Records++
	n, k := len(x.dead), len(x.pending)
	x.pending, x.dead, _ = x.proc.Record(m, x.pending, x.dead)
	x.stats.DeadLetters += int64(len(x.dead) - n)
	if x.applied != nil {
		x.dropApplied(m.Offset, k)
	}
	if len(x.pending) >= x.batchSize {
		if x.pipelined {
			return x.handOff(ctx)
		}
		return x.Flush(ctx)
	}
	return nil
}

// skipApplied makes the partition drop the outputs at or before c (nil: none), which every
// projection has applied already.
func (x *Partition) skipApplied(c *events.Cause) { x.applied = c }

// dropApplied drops the outputs of the record at offset from pending[k:] that are at or before
// x.applied, and stops looking once the records are past it.
func (x *Partition) dropApplied(offset int64, k int) {
	if offset > x.applied.Offset {
		x.applied = nil
		return
	}
	kept := x.pending[:k]
	for _, e := range x.pending[k:] {
		if e.Cause != nil && !e.Cause.After(*x.applied) {
			x.stats.AlreadyApplied++
			continue
		}
		kept = append(kept, e)
	}
	clear(x.pending[len(kept):])
	x.pending = kept
}

// Pipeline makes full batches apply in the background while the engine fills the next (one in
// flight). Flush waits for it.
func (x *Partition) Pipeline() { x.pipelined = true }

// wait collects the batch in flight, if any.
func (x *Partition) wait() error {
	if x.inflight == nil {
		return nil
	}
	r := <-x.inflight
	x.inflight = nil
	x.account(r)
	clear(r.batch)
	x.spare = r.batch[:0]
	return r.err
}

// handOff starts applying the pending outputs in the background, after the previous batch.
func (x *Partition) handOff(ctx context.Context) error {
	if err := x.wait(); err != nil {
		return err
	}
	b := projections.Batch{Partition: x.proc.Partition, Events: x.pending}
	x.pending, x.spare = x.spare, nil
	if x.pending == nil {
		x.pending = make([]events.Event, 0, cap(b.Events))
	}
	ch := make(chan flushResult, 1)
	x.inflight = ch
	go func() {
		r := x.apply(ctx, b)
		r.batch = b.Events
		ch <- r
	}()
	return nil
}

func (x *Partition) account(r flushResult) {
	if r.err != nil {
		return
	}
	if x.stats.ApplyNanos == nil {
		x.stats.ApplyNanos = map[string]int64{}
	}
	for i, p := range x.projs {
		x.stats.ApplyNanos[p.Name()] += r.took[i]
	}
	x.stats.Outputs += int64(r.n)
	x.stats.Batches++
}

// Flush applies the pending outputs to every projection (concurrently: they are independent),
// after any batch still in flight.
func (x *Partition) Flush(ctx context.Context) error {
	if err := x.wait(); err != nil {
		return err
	}
	if len(x.pending) == 0 {
		return nil
	}
	r := x.apply(ctx, projections.Batch{Partition: x.proc.Partition, Events: x.pending})
	x.account(r)
	if r.err != nil {
		return r.err
	}
	clear(x.pending)
	x.pending = x.pending[:0]
	return nil
}

// apply applies one batch to every projection. It touches nothing of x but its projections.
func (x *Partition) apply(ctx context.Context, b projections.Batch) flushResult {
	g, gctx := errgroup.WithContext(ctx)
	took := make([]int64, len(x.projs))
	for i, p := range x.projs {
		g.Go(func() error {
			t0 := time.Now()
			defer func() { took[i] = time.Since(t0).Nanoseconds() }()
			if err := p.Apply(gctx, b); err != nil {
				return fmt.Errorf("replay: %s: apply %d outputs of partition %d: %w", p.Name(), len(b.Events), b.Partition, err)
			}
			return nil
		})
	}
	return flushResult{n: len(b.Events), took: took, err: g.Wait()}
}
