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
	next     int64 // next input offset to apply; -1 before the first record when there was no snapshot
	lastOut  *events.Cause
	lastDead *events.Cause
	since    int // input records since the last snapshot
	snapAt   time.Time
	arena    []byte // encoded envelopes of the chunk being written
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
func (a *aggregator) session(ctx context.Context, p int, commit func(p int, next int64) error) error {
	st, err := a.restore(ctx, p)
	if err != nil {
		return err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: a.cfg.Brokers, Topic: a.cfg.Topics.MessageEvents, Partition: p,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: a.cfg.MaxWait, QueueCapacity: 4096,
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: time.Second,
		ErrorLogger: kafkax.ErrorLogger(a.log),
	})
	defer r.Close()
	from := st.next
	if from < 0 {
		from = kafka.FirstOffset
	}
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("partition %d: seek to %d: %w", p, from, err)
	}
	a.m.running(p, true)
	var out, dead []events.Event
	for {
		b, ferr := kafkax.FetchBatch(ctx, r, a.cfg.MaxBatch, a.cfg.MaxWait)
		stopping := ctx.Err() != nil
		if ferr != nil && !stopping {
			return fmt.Errorf("partition %d: %w", p, ferr)
		}
		// From here on the batch is finished even when ctx has ended: a bounded context of its own.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
		err := a.batch(fctx, st, b, &out, &dead, stopping, commit)
		cancel()
		if err != nil {
			return err
		}
		if stopping {
			return nil
		}
	}
}

// batch applies one batch, writes its outputs and dead letters, snapshots when due, and commits.
func (a *aggregator) batch(ctx context.Context, st *state, b kafkax.Batch, outBuf, deadBuf *[]events.Event, final bool, commit func(p int, next int64) error) error {
	topic := a.cfg.Topics.MessageEvents
	out, dead := (*outBuf)[:0], (*deadBuf)[:0]
	var last kafka.Message
	inTypes := map[events.Type]int{}
	for _, pb := range b.Partitions {
		for _, m := range pb.Messages {
			if m.Partition != st.p {
				return fmt.Errorf("partition %d: got a record of partition %d at offset %d", st.p, m.Partition, m.Offset)
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
	*outBuf, *deadBuf = out, dead
	for typ, n := range inTypes {
		a.m.in.WithLabelValues(string(typ)).Add(float64(n))
	}
	if b.Len() > 0 {
		a.m.batches.Observe(float64(b.Len()))
	}
	var dropped int
	var n1, n2 int
	out, n1 = suppress(out, st.lastOut)
	dead, n2 = suppress(dead, st.lastDead)
	dropped = n1 + n2
	if dropped > 0 {
		a.m.suppressed.Add(float64(dropped))
	}
	if err := a.write(ctx, a.out, st, out); err != nil {
		return err
	}
	if err := a.write(ctx, a.dead, st, dead); err != nil {
		return err
	}
	if len(out) > 0 {
		st.lastOut = out[len(out)-1].Cause
	}
	if len(dead) > 0 {
		st.lastDead = dead[len(dead)-1].Cause
	}
	outTypes := map[events.Type]int{}
	for _, e := range out {
		outTypes[e.Type]++
	}
	for typ, n := range outTypes {
		a.m.out.WithLabelValues(string(typ)).Add(float64(n))
	}
	a.m.setAside.Add(float64(outTypes[events.TypeEventSetAside]))
	for _, e := range dead {
		a.m.deadLetters.WithLabelValues(e.Data.(*events.DeadLetter).ErrorKind).Inc()
	}
	a.m.pairs.WithLabelValues(pl(st.p)).Set(float64(st.proc.Engine.Pairs()))
	if last.HighWaterMark > 0 {
		a.m.lag.WithLabelValues(pl(st.p)).Set(float64(last.HighWaterMark - st.next))
	}
	if st.since > 0 && (final || st.since >= a.cfg.SnapshotEvery || time.Since(st.snapAt) >= a.cfg.SnapshotInterval) {
		if err := a.snapshot(ctx, st); err != nil {
			// A snapshot is a cache of the log: without it a restart replays more, nothing
			// else. Keep going and try again after SnapshotInterval.
			a.m.snapshotErrors.Inc()
			a.log.Error("snapshot failed; continuing", "topic", topic, "partition", st.p, "offset", st.next, "err", err)
			st.snapAt = time.Now()
		}
	}
	if b.Len() > 0 {
		// The commit only informs lag tooling: restores start from the snapshot. A failed commit
		// (the generation ended) is logged, not fatal.
		if err := commit(st.p, st.next); err != nil {
			a.log.Warn("commit", "topic", topic, "partition", st.p, "offset", st.next, "err", err)
		}
	}
	return nil
}

// write writes evs to partition p in cause order, in chunks that each fit one record batch, one
// synchronous call at a time: a chunk is appended whole or not at all, so after a failure the
// partition's last record is the last cause written, with nothing missing before it. Envelopes
// are encoded into one reused arena rather than a fresh slice each; a synchronous WriteMessages
// holds no reference once it returns.
func (a *aggregator) write(ctx context.Context, w sink, st *state, evs []events.Event) error {
	p := st.p
	const maxMsgs, maxBytes = 1000, 1 << 20
	msgs := make([]kafka.Message, 0, min(len(evs), maxMsgs))
	size := 0
	var firstCause int64
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		if err := w.w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("write %d records to %s/%d, first caused by offset %d: %w", len(msgs), w.topic, p, firstCause, err)
		}
		msgs, size = msgs[:0], 0
		return nil
	}
	for _, e := range evs {
		if len(msgs) == 0 {
			st.arena = st.arena[:0] // nothing pending refers to it
		}
		start := len(st.arena)
		var err error
		if st.arena, err = events.Encode(st.arena, e); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		m := kafka.Message{Value: st.arena[start:len(st.arena):len(st.arena)], Headers: kafkax.Headers(e)}
		if e.Key != "" {
			m.Key = []byte(e.Key)
		}
		s := len(m.Key) + len(m.Value) + 256
		if len(msgs) == maxMsgs || (len(msgs) > 0 && size+s > maxBytes) {
			if err := flush(); err != nil { // m's bytes stay where they are, after the flushed ones
				return err
			}
		}
		if len(msgs) == 0 && e.Cause != nil {
			firstCause = e.Cause.Offset
		}
		msgs = append(msgs, kafkax.ToPartition(m, p))
		size += s
	}
	return flush()
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
