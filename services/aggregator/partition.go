package aggregator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/window"
	"github.com/segmentio/kafka-go"
)

// partition runs input partition p until ctx ends (revoked or stopping). A session that fails
// (a write, the snapshot store, the reader) is started again from the snapshot after a backoff:
// restoring is the one recovery path, and it is exactly-once by construction.
func (a *aggregator) partition(ctx context.Context, p int, commit func(p int, next int64) error) {
	delay := a.cfg.RetryMin
	for ctx.Err() == nil {
		err := a.session(ctx, p, commit)
		a.m.running(p, false)
		if err == nil {
			return
		}
		a.log.Error("partition failed; restarting from its snapshot", "topic", a.cfg.Topics.MessageEvents, "partition", p, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, a.cfg.RetryMax)
	}
}

// state is one partition session: the engine, where it stands, and the last causes already in
// the output and dead-letter partitions.
type state struct {
	p        int
	proc     Processor
	next     int64         // next input offset to apply; -1 before the first record when there was no snapshot
	lastOut  *events.Cause // last cause written or being written
	lastDead *events.Cause
	since    int // input records since the last snapshot
	snapAt   time.Time
}

// restore loads p's snapshot (or starts a fresh engine) and reads where the previous run stopped
// writing.
func (a *aggregator) restore(ctx context.Context, p int) (*state, error) {
	start := time.Now()
	ecfg := a.cfg.Engine
	ecfg.Partition = int32(p)
	st := &state{p: p, next: -1, snapAt: start}
	snap, ok, err := a.cfg.Store.Load(ctx, p)
	if err != nil {
		return nil, err
	}
	var eng *window.Engine
	if ok {
		eng, err = window.RestoreBytes(snap.Data, ecfg)
		if errors.Is(err, window.ErrSnapshotVersion) {
			// A snapshot of another format (an upgrade): only a cache of the log, so the
			// partition is rebuilt from the log's start, like a partition without one.
			a.log.Warn("snapshot of another format version: replaying the partition from the log", "partition", p, "offset", snap.NextOffset, "err", err)
			ok = false
		} else if err != nil {
			return nil, fmt.Errorf("restore partition %d from snapshot at offset %d: %w", p, snap.NextOffset, err)
		}
	}
	if ok {
		st.next = snap.NextOffset
		st.snapAt = snap.TakenAt
		a.m.snapshotTaken(p, snap.TakenAt)
	} else if eng, err = window.New(ecfg); err != nil {
		return nil, err
	}
	st.proc = Processor{Engine: eng, Topic: a.cfg.Topics.MessageEvents, Partition: int32(p)}
	if st.lastOut, err = lastCause(ctx, a.client, a.cfg.Topics.ConversationEvents, p); err != nil {
		return nil, err
	}
	if st.lastDead, err = lastCause(ctx, a.client, a.cfg.Topics.DeadLetter, p); err != nil {
		return nil, err
	}
	a.m.restores.Observe(time.Since(start).Seconds())
	a.log.Info("partition restored", "topic", a.cfg.Topics.MessageEvents, "partition", p, "offset", st.next,
		"snapshot", ok, "pairs", eng.Pairs(), "last_output", st.lastOut, "last_dead_letter", st.lastDead, "took", time.Since(start))
	return st, nil
}

// session restores p and applies batches until ctx ends; then it finishes the batch in hand,
// snapshots and commits. It returns nil only when ctx ended and that went well.
//
// It is a pipeline of depth 1: while batch N's outputs are being written (one write in flight,
// chunk after chunk, in cause order), batch N+1 is fetched, applied and encoded; N+1's write
// starts only once N's is acknowledged, and a failed write ends the session (the partition
// restarts from its snapshot). Snapshots wait for the write in flight, so they are taken at a
// batch boundary with every output before it acknowledged. session never returns with a write
// in flight: a restarted session reads the log's last causes, and nothing may land after that.
func (a *aggregator) session(ctx context.Context, p int, commit func(p int, next int64) error) (err error) {
	st, err := a.restore(ctx, p)
	if err != nil {
		return err
	}
	from := st.next
	if from < 0 {
		from = kafka.FirstOffset
	}
	r, err := kafkax.NewPartitionReader(kafkax.PartitionReaderConfig{
		Brokers: a.cfg.Brokers, Topic: a.cfg.Topics.MessageEvents, Partition: p,
		MaxWait: a.cfg.MaxWait, ErrorLogger: kafkax.ErrorLogger(a.log),
	}, from)
	if err != nil {
		return fmt.Errorf("partition %d: %w", p, err)
	}
	defer r.Close()
	a.m.running(p, true)
	var (
		jobs      [2]job
		cur       int
		inflight  *job
		acked     = st.next // input offset whose outputs are all acknowledged
		committed = st.next
	)
	// wait waits for the write in flight, if any, and accounts for it.
	wait := func() error {
		if inflight == nil {
			return nil
		}
		j := inflight
		inflight = nil
		<-j.done
		if j.err != nil {
			return j.err
		}
		a.written(j)
		acked = j.next
		return nil
	}
	defer func() {
		if werr := wait(); err == nil {
			err = werr
		}
	}()
	var out, dead []events.Event
	var b kafkax.Batch // refilled by each fetch: prepare is done with it before the next
	for {
		ferr := kafkax.FetchInto(ctx, r, &b, a.cfg.MaxBatch, a.cfg.MaxWait)
		stopping := ctx.Err() != nil
		if ferr != nil && !stopping {
			return fmt.Errorf("partition %d: %w", p, ferr)
		}
		// From here on the batch is finished even when ctx has ended.
		j := &jobs[cur] // not in flight: the write in flight, if any, is the other one
		cur ^= 1
		caughtUp, err := a.prepare(st, b, &out, &dead, j)
		if err != nil {
			return err
		}
		if err := wait(); err != nil {
			return err
		}
		if j.out.n+j.dead.n > 0 {
			inflight = j
			go a.flush(ctx, st.p, j)
		} else {
			acked = j.next
		}
		due := st.since > 0 && (stopping || st.since >= a.cfg.SnapshotEvery || time.Since(st.snapAt) >= a.cfg.SnapshotInterval)
		if due || caughtUp || stopping {
			if err := wait(); err != nil {
				return err
			}
		}
		if due {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
			err := a.snapshot(sctx, st)
			cancel()
			if err != nil {
				// A snapshot is a cache of the log: without it a restart replays more, nothing
				// else. Keep going and try again after SnapshotInterval.
				a.m.snapshotErrors.Inc()
				a.log.Error("snapshot failed; continuing", "topic", a.cfg.Topics.MessageEvents, "partition", st.p, "offset", st.next, "err", err)
				st.snapAt = time.Now()
			}
		}
		if acked > committed {
			// The acknowledged offset, while the next batch's write is in flight. The commit only
			// informs lag tooling: restores start from the snapshot. A failed commit (the
			// generation ended) is logged, not fatal.
			if err := commit(st.p, acked); err != nil {
				a.log.Warn("commit", "topic", a.cfg.Topics.MessageEvents, "partition", st.p, "offset", acked, "err", err)
			}
			committed = acked
		}
		if stopping {
			return nil
		}
	}
}

// job is one batch on its way to the log: its outputs and dead letters encoded as record batches
// (chunks that each go out in one produce request), and what to account for once they are
// acknowledged. A session has two, one being written while the other is prepared.
type job struct {
	out, dead chunks
	value     []byte // scratch: one event's envelope
	next      int64  // the input offset after the batch
	outTypes  map[events.Type]int
	deadKinds map[string]int
	err       error
	done      chan struct{}
}

// chunks is a sequence of sealed record batches, in cause order, and the first cause offset of
// each (for errors). The batches are kept across jobs for their memory: batches[:n] are in use.
type chunks struct {
	batches []*kafkax.RecordBatch
	first   []int64
	n       int
}

// prepare applies batch b to st's engine, suppresses the outputs a previous run already wrote,
// and encodes the rest into j. caughtUp reports that the batch reached the partition's end.
func (a *aggregator) prepare(st *state, b kafkax.Batch, outBuf, deadBuf *[]events.Event, j *job) (caughtUp bool, err error) {
	topic := a.cfg.Topics.MessageEvents
	out, dead := (*outBuf)[:0], (*deadBuf)[:0]
	var last kafka.Message
	inTypes := map[events.Type]int{}
	for _, pb := range b.Partitions {
		for _, m := range pb.Messages {
			if m.Partition != st.p {
				return false, fmt.Errorf("partition %d: got a record of partition %d at offset %d", st.p, m.Partition, m.Offset)
			}
			if st.next >= 0 && m.Offset < st.next {
				continue // a reader that went back: already applied
			}
			nd := len(dead)
			var typ events.Type
			out, dead, typ = st.proc.Record(m, out, dead)
			inTypes[typ]++
			if len(dead) > nd {
				de := dead[nd].Data.(*events.DeadLetter)
				a.log.Warn("dead letter", "topic", topic, "partition", st.p, "offset", m.Offset, "event_type", typ, "kind", de.ErrorKind, "reason", de.Reason)
			}
			st.next = m.Offset + 1
			st.since++
			last = m
		}
	}
	for typ, n := range inTypes {
		a.m.in.WithLabelValues(string(typ)).Add(float64(n))
	}
	if b.Len() > 0 {
		a.m.batches.Observe(float64(b.Len()))
	}
	var n1, n2 int
	out, n1 = suppress(out, st.lastOut)
	dead, n2 = suppress(dead, st.lastDead)
	if dropped := n1 + n2; dropped > 0 {
		a.m.suppressed.Add(float64(dropped))
	}
	if j.outTypes == nil {
		j.outTypes, j.deadKinds = map[events.Type]int{}, map[string]int{}
	}
	clear(j.outTypes)
	clear(j.deadKinds)
	j.next, j.err, j.done = st.next, nil, make(chan struct{}) // the job is not in flight: its chunks are free
	if err := j.encode(a.out, st.p, out, &j.out); err != nil {
		return false, err
	}
	if err := j.encode(a.dead, st.p, dead, &j.dead); err != nil {
		return false, err
	}
	for _, e := range out {
		j.outTypes[e.Type]++
	}
	for _, e := range dead {
		j.deadKinds[e.Data.(*events.DeadLetter).ErrorKind]++
	}
	if len(out) > 0 {
		st.lastOut = out[len(out)-1].Cause
	}
	if len(dead) > 0 {
		st.lastDead = dead[len(dead)-1].Cause
	}
	clear(out) // the records hold what the log needs; drop the events
	clear(dead)
	*outBuf, *deadBuf = out[:0], dead[:0]
	a.m.pairs.WithLabelValues(pl(st.p)).Set(float64(st.proc.Engine.Pairs()))
	if last.HighWaterMark > 0 {
		a.m.lag.WithLabelValues(pl(st.p)).Set(float64(last.HighWaterMark - st.next))
		caughtUp = st.next >= last.HighWaterMark
	}
	return caughtUp, nil
}

// encode writes evs, in cause order, as records into c's record batches (reusing their memory),
// cut so that each batch's records stay within w.maxBytes uncompressed, and seals the batches.
func (j *job) encode(w sink, p int, evs []events.Event, c *chunks) error {
	c.n, c.first = 0, c.first[:0]
	var cur *kafkax.RecordBatch
	now := time.Now()
	for _, e := range evs {
		var err error
		if j.value, err = events.Encode(j.value[:0], e); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		if cur == nil || (cur.Len() > 0 && cur.Size()+cur.EventSize(e, len(j.value)) > w.maxBytes) {
			if cur != nil {
				if err := cur.Seal(now); err != nil {
					return fmt.Errorf("partition %d: %s: %w", p, w.topic, err)
				}
			}
			if c.n == len(c.batches) {
				c.batches = append(c.batches, kafkax.NewRecordBatch(w.compression))
			}
			cur = c.batches[c.n]
			cur.Reset(w.compression)
			c.n++
			var first int64 = -1
			if e.Cause != nil {
				first = e.Cause.Offset
			}
			c.first = append(c.first, first)
		}
		if err := cur.AppendEvent(e, j.value); err != nil {
			return fmt.Errorf("partition %d: %s: %w", p, w.topic, err)
		}
	}
	if cur != nil {
		if err := cur.Seal(now); err != nil {
			return fmt.Errorf("partition %d: %s: %w", p, w.topic, err)
		}
	}
	return nil
}

// flush writes j's outputs, then its dead letters, chunk after chunk, one synchronous produce
// request at a time with a single attempt: a chunk is appended whole or not at all, so after a
// failure the partition's last record is the last cause written, with nothing missing before
// it. It runs with a bounded context of its own (a stopping partition still finishes its batch)
// and closes j.done.
func (a *aggregator) flush(ctx context.Context, p int, j *job) {
	defer close(j.done)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if j.err = writeChunks(ctx, a.out, p, &j.out); j.err != nil {
		return
	}
	j.err = writeChunks(ctx, a.dead, p, &j.dead)
}

func writeChunks(ctx context.Context, w sink, p int, c *chunks) error {
	for i, b := range c.batches[:c.n] {
		if err := w.w.WriteBatch(ctx, p, b); err != nil {
			return fmt.Errorf("write %d records to %s/%d, first caused by offset %d: %w", b.Len(), w.topic, p, c.first[i], err)
		}
	}
	return nil
}

// written accounts for j's acknowledged records.
func (a *aggregator) written(j *job) {
	for typ, n := range j.outTypes {
		a.m.out.WithLabelValues(string(typ)).Add(float64(n))
	}
	a.m.setAside.Add(float64(j.outTypes[events.TypeEventSetAside]))
	for kind, n := range j.deadKinds {
		a.m.deadLetters.WithLabelValues(kind).Add(float64(n))
	}
}

// snapshot stores the engine's state as of st.next. It runs only after the outputs of every
// input before st.next are acknowledged, so a restore never skips an output.
func (a *aggregator) snapshot(ctx context.Context, st *state) error {
	start := time.Now()
	a.log.Debug("snapshot start", "topic", a.cfg.Topics.MessageEvents, "partition", st.p, "offset", st.next)
	var buf bytes.Buffer
	if err := st.proc.Engine.Snapshot(&buf); err != nil {
		return fmt.Errorf("snapshot partition %d at offset %d: %w", st.p, st.next, err)
	}
	s := Snapshot{NextOffset: st.next, StreamTime: st.proc.Engine.StreamTime(), Pairs: st.proc.Engine.Pairs(), TakenAt: start, Data: buf.Bytes()}
	if err := a.cfg.Store.Save(ctx, st.p, s); err != nil {
		return err
	}
	st.since, st.snapAt = 0, start
	a.m.snapshotTaken(st.p, start)
	a.m.snapSeconds.Observe(time.Since(start).Seconds())
	a.log.Debug("snapshot done", "topic", a.cfg.Topics.MessageEvents, "partition", st.p, "offset", st.next, "pairs", s.Pairs, "bytes", len(s.Data), "took", time.Since(start))
	return nil
}
