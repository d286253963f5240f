package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// admBatcher coalesces the state reads of admissions: while one read is in flight, the
// admissions that arrive queue, and when it returns they all go out in one pipeline. A lone
// admission goes out at once, as before. Each admission is still read after it arrived, by plain
// commands in one round trip, so its answer is what it would have read alone at that moment; the
// batch only saves round trips (one write and one read per batch instead of per admission, in
// this process and in Redis) and commands: admissions of one scope, number and second share the
// counter's ZCOUNT and the second's field, and the users of one counter are scored by one ZMSCORE.
// maxBatch bounds the admissions read in one pipeline (about 40 commands each).
const maxBatch = 64

type admBatcher struct {
	mu    sync.Mutex
	busy  bool // a read is in flight
	queue []*admRead
}

// batchedRead reads r, in a batch with the admissions that arrive while another read is in
// flight, and fills snap.
func (s *Store) batchedRead(ctx context.Context, snap *Snapshot, r *admRead) error {
	b := &s.batch
	b.mu.Lock()
	if b.busy {
		r.done = make(chan struct{})
		b.queue = append(b.queue, r)
		b.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("ratelimit: read admission state: %w", ctx.Err())
		}
		if r.err != nil {
			return r.err
		}
		r.fill(snap, s.cfg)
		return nil
	}
	b.busy = true
	b.mu.Unlock()
	err := s.fetch(ctx, r)
	s.drain()
	if err != nil {
		return err
	}
	r.fill(snap, s.cfg)
	return nil
}

// drain reads the queued admissions, batch after batch, on a goroutine of its own (so the caller
// that finished a read answers at once), until the queue is empty.
func (s *Store) drain() {
	b := &s.batch
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.busy = false
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go func() {
		for {
			b.mu.Lock()
			q := b.queue
			if len(q) > maxBatch {
				q, b.queue = q[:maxBatch:maxBatch], q[maxBatch:]
			} else {
				b.queue = nil
			}
			if len(q) == 0 {
				b.busy = false
				b.mu.Unlock()
				return
			}
			b.mu.Unlock()
			// The batch outlives any one caller's cancellation; the client's timeouts bound it.
			s.readBatch(context.WithoutCancel(q[0].ctx), q)
			for _, r := range q {
				close(r.done)
			}
		}
	}()
}

// readBatch reads the answers of the admissions of q in one pipeline and sets each one's err.
func (s *Store) readBatch(ctx context.Context, q []*admRead) {
	var err error
	if len(q) == 1 {
		err = s.fetch(ctx, q[0])
	} else {
		err = s.readMerged(ctx, q)
	}
	for _, r := range q {
		r.err = err
	}
}

// multiRead is one HMGET or ZMSCORE that several admissions share: the union of their fields.
type multiRead struct {
	zset   bool
	key    string
	fields []string
	index  map[string]int // field → position, once there are many
	cmd    redis.Cmder
}

func (m *multiRead) add(field string) int {
	if m.index == nil { // a handful of fields: look them up in the list
		for i, f := range m.fields {
			if f == field {
				return i
			}
		}
		if len(m.fields) >= 16 {
			m.index = make(map[string]int, 2*len(m.fields))
			for i, f := range m.fields {
				m.index[f] = i
			}
		}
	} else if i, ok := m.index[field]; ok {
		return i
	}
	if m.index != nil {
		m.index[field] = len(m.fields)
	}
	m.fields = append(m.fields, field)
	return len(m.fields) - 1
}

func (m *multiRead) value(i int) any {
	var vs []any
	switch c := m.cmd.(type) {
	case *redis.SliceCmd:
		vs = c.Val()
	case *redis.Cmd:
		vs, _ = c.Val().([]any)
	}
	if i < len(vs) {
		return vs[i]
	}
	return nil
}

type fieldRef struct {
	m *multiRead
	i int
}

type countKey struct{ key, from string }

// readMerged reads the admissions of q in one pipeline, each key's reads merged.
func (s *Store) readMerged(ctx context.Context, q []*admRead) error {
	counts := map[countKey]*redis.IntCmd{}
	type multiKey struct {
		zset bool
		key  string
	}
	multis := map[multiKey]*multiRead{}
	var order []*multiRead
	multi := func(zset bool, key string) *multiRead {
		m, ok := multis[multiKey{zset, key}]
		if !ok {
			m = &multiRead{zset: zset, key: key}
			multis[multiKey{zset, key}] = m
			order = append(order, m)
		}
		return m
	}
	type refs struct {
		counts          []countKey
		scores, seconds []fieldRef
		buckets, values []fieldRef
	}
	plan := make([]refs, len(q))
	for i, r := range q {
		n := len(r.counts)
		pl := refs{counts: make([]countKey, n), scores: make([]fieldRef, n), seconds: make([]fieldRef, n)}
		for p := range n {
			pfx := s.prefix(int32(p))
			lim := pfx + r.limKey
			pl.counts[p] = countKey{lim, r.from}
			counts[pl.counts[p]] = nil
			m := multi(true, lim)
			pl.scores[p] = fieldRef{m, m.add(r.user)}
			m = multi(false, pfx+r.tpKey)
			pl.seconds[p] = fieldRef{m, m.add(r.sec)}
		}
		for _, k := range r.bucketKeys {
			m := multi(false, k)
			pl.buckets = append(pl.buckets, fieldRef{m, m.add(r.pair)})
		}
		m := multi(false, r.pairsKey)
		for _, f := range r.fields {
			pl.values = append(pl.values, fieldRef{m, m.add(f)})
		}
		plan[i] = pl
	}
	pipe := s.rdb.Pipeline()
	for _, pl := range plan { // in the order of the admissions, for a stable command order
		for _, k := range pl.counts {
			if counts[k] == nil {
				counts[k] = pipe.ZCount(ctx, k.key, k.from, "+inf")
			}
		}
	}
	for _, m := range order {
		if m.zset {
			args := make([]any, 0, 2+len(m.fields))
			args = append(args, "zmscore", m.key)
			for _, f := range m.fields {
				args = append(args, f)
			}
			m.cmd = pipe.Do(ctx, args...)
		} else {
			m.cmd = pipe.HMGet(ctx, m.key, m.fields...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("ratelimit: read admission state: %w", err)
	}
	for i, r := range q {
		pl := plan[i]
		for p := range r.counts {
			r.counts[p] = counts[pl.counts[p]].Val()
			r.scores[p] = pl.scores[p].m.value(pl.scores[p].i)
			r.seconds[p] = pl.seconds[p].m.value(pl.seconds[p].i)
		}
		for j, f := range pl.buckets {
			r.buckets[j] = f.m.value(f.i)
		}
		r.values = make([]any, len(pl.values))
		for j, f := range pl.values {
			r.values[j] = f.m.value(f.i)
		}
	}
	return nil
}
