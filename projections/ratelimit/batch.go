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
// counter's ZCOUNT and the number's throughput fields, and the users of one counter are scored by
// one ZMSCORE.
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

// group is the reads of several admissions from one key, or from the same key in every partition:
// one HMGET or ZMSCORE of the union of their fields (per partition when partitioned).
type group struct {
	key    string // without the partition prefix when partitioned
	fields []string
	index  map[string]int // field → position, once there are many
	cmds   []redis.Cmder  // per partition, or the one
}

func (g *group) add(field string) int {
	if g.index == nil { // a handful of fields: look them up in the list
		for i, f := range g.fields {
			if f == field {
				return i
			}
		}
		if len(g.fields) >= 16 {
			g.index = make(map[string]int, 2*len(g.fields))
			for i, f := range g.fields {
				g.index[f] = i
			}
		}
	} else if i, ok := g.index[field]; ok {
		return i
	}
	if g.index != nil {
		g.index[field] = len(g.fields)
	}
	g.fields = append(g.fields, field)
	return len(g.fields) - 1
}

// value is field i of the answer of command c (partition c, or 0).
func (g *group) value(c, i int) any {
	var vs []any
	switch cmd := g.cmds[c].(type) {
	case *redis.SliceCmd:
		vs = cmd.Val()
	case *redis.Cmd:
		vs, _ = cmd.Val().([]any)
	}
	if i < len(vs) {
		return vs[i]
	}
	return nil
}

type groups map[string]*group

func (gs groups) get(key string) *group {
	g, ok := gs[key]
	if !ok {
		g = &group{key: key}
		gs[key] = g
	}
	return g
}

type countKey struct{ limKey, from string }

// readMerged reads the admissions of q in one pipeline, the reads of each key merged.
func (s *Store) readMerged(ctx context.Context, q []*admRead) error {
	counts := map[countKey][]*redis.IntCmd{}
	scores, seconds, hashes := groups{}, groups{}, groups{}
	type ref struct {
		g *group
		i int
	}
	type refs struct {
		score, minute, second ref
		buckets               []ref
		fields                []ref
	}
	plan := make([]refs, len(q))
	for i, r := range q {
		pl := &plan[i]
		counts[countKey{r.limKey, r.from}] = nil
		g := scores.get(r.limKey)
		pl.score = ref{g, g.add(r.user)}
		g = seconds.get(r.tpKey)
		pl.minute, pl.second = ref{g, g.add(r.minute)}, ref{g, g.add(r.sec)}
		for _, k := range r.bucketKeys {
			g := hashes.get(k)
			pl.buckets = append(pl.buckets, ref{g, g.add(r.pair)})
		}
		g = hashes.get(r.pairsKey)
		pl.fields = make([]ref, len(r.fields))
		for j, f := range r.fields {
			pl.fields[j] = ref{g, g.add(f)}
		}
	}
	n := len(q[0].counts) // every admission reads the same partitions
	pipe := s.rdb.Pipeline()
	for _, r := range q { // in the order of the admissions, for a stable command order
		k := countKey{r.limKey, r.from}
		if counts[k] == nil && n > 0 {
			cmds, keys := make([]*redis.IntCmd, n), s.partKeys(k.limKey)
			for p := range n {
				cmds[p] = pipe.ZCount(ctx, keys[p], k.from, "+inf")
			}
			counts[k] = cmds
		}
	}
	for _, r := range q {
		if g := scores[r.limKey]; g.cmds == nil && n > 0 {
			g.cmds = make([]redis.Cmder, n)
			keys := s.partKeys(g.key)
			for p := range n {
				args := make([]any, 2, 2+len(g.fields)) // the command keeps it
				args[0], args[1] = "zmscore", keys[p]
				for _, f := range g.fields {
					args = append(args, f)
				}
				g.cmds[p] = pipe.Do(ctx, args...)
			}
		}
		if g := seconds[r.tpKey]; g.cmds == nil && n > 0 {
			g.cmds = make([]redis.Cmder, n)
			keys := s.partKeys(g.key)
			for p := range n {
				g.cmds[p] = pipe.HMGet(ctx, keys[p], g.fields...)
			}
		}
		for j := range len(r.bucketKeys) + 1 {
			k := r.pairsKey
			if j < len(r.bucketKeys) {
				k = r.bucketKeys[j]
			}
			if g := hashes[k]; g.cmds == nil {
				g.cmds = []redis.Cmder{pipe.HMGet(ctx, k, g.fields...)}
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("ratelimit: read admission state: %w", err)
	}
	for i, r := range q {
		pl := plan[i]
		cs := counts[countKey{r.limKey, r.from}]
		for p := range n {
			r.counts[p] = cs[p].Val()
			r.scores[p] = pl.score.g.value(p, pl.score.i)
			r.seconds[p] = []any{pl.minute.g.value(p, pl.minute.i), pl.second.g.value(p, pl.second.i)}
		}
		for j, f := range pl.buckets {
			r.buckets[j] = f.g.value(0, f.i)
		}
		r.values = make([]any, len(pl.fields))
		for j, f := range pl.fields {
			r.values[j] = f.g.value(0, f.i)
		}
	}
	return nil
}

// partKeys returns key under every partition's prefix, remembered: an admission reads its
// scope's counter and its number's hour of seconds in every partition. The memory is dropped
// whole once it holds 4,096 keys (numbers times hours in use, and scopes).
func (s *Store) partKeys(key string) []string {
	s.keysMu.RLock()
	ks, ok := s.keys[key]
	s.keysMu.RUnlock()
	if ok {
		return ks
	}
	ks = make([]string, s.partitions)
	for p := range ks {
		ks[p] = s.prefix(int32(p)) + key
	}
	s.keysMu.Lock()
	if s.keys == nil || len(s.keys) >= 4096 {
		s.keys = map[string][]string{}
	}
	s.keys[key] = ks
	s.keysMu.Unlock()
	return ks
}
