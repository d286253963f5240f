package window

import "math/bits"

// pairCache keeps recently touched pairs decoded, so a burst of events of one pair (a send, its
// sent, delivered and read statuses; an inbound message and the reply) decodes and encodes the
// pair once rather than once per event. It is set-associative (a key's hash picks a set of
// cacheWays slots; the least recently used slot of the set makes room) and write-back: a slot's
// pair is encoded into the table when another pair takes the slot, or on flush. While a pair is
// cached and dirty, its record in the table (if any) is stale; everything that reads the table
// for pairs (load, keysOf, Pairs, Snapshot) goes through the cache or flushes it first.
//
// On the aggregator's benchmark traffic (500,000 records over 96,000 live pairs, one engine),
// the direct-mapped cache of 2,048 slots this replaced missed on 41% of the events and wrote
// back 204,000 pairs; the same 2,048 slots in sets of 4 miss on 37% and write back 183,000.
// More slots miss less (8,192 in sets of 4: 30% and 143,000; 32,768: 25% and 92,000), but
// neither the aggregator's step nor the engine's apply benchmark got measurably faster with
// 8,192 (the apply benchmark looked 5-10% slower, within the machine's noise): the misses left
// are mostly the first event of a pair after a long pause, and a bigger cache is more memory
// to walk. Profiles of the aggregator's step (BenchmarkProcessor) with 2,048 and 32,768 slots
// say the same: loading and writing back pairs took 1.01 and 0.46 CPU-s, but the engine as a
// whole 2.12 and 2.07 (the rules' steps run slower over pairs spread across more memory).
// Replay traffic is different: hundreds of thousands of pairs take turns, so a small cache
// misses on nearly every event, and a replay gives its engines 65,536 slots each
// (Config.CachePairs, replay.DefaultCachePairs): 15% less CPU for the engine.
//
// What a lookup reads of a set, its slots' key hashes and recency, is kept apart from the pairs
// (tags, in the slots' order): a set's tags fill one cache line where its slots span eleven, so a
// lookup reads one line and then the slot it finds instead of a line of every slot of the set.
type pairCache struct {
	slots []cacheSlot
	tags  []cacheTag // tags[i] is slots[i]'s
	sets  uint64     // len(slots)/ways, a power of two
	ways  int
	clock uint64 // advances on every use of a slot: the recency order within a set
}

type cacheSlot struct {
	p       pair
	tag     *cacheTag
	dirty   bool // p changed since it was last written to the table
	inTable bool // p has a record in the table (stale while dirty)
}

// cacheTag is what a lookup reads of a slot.
type cacheTag struct {
	h    uint64 // hashKey(p.key) while used
	last uint64 // the cache's clock when the slot was last used; 0 while it holds no live pair
}

// used reports whether s holds a live pair.
func (s *cacheSlot) used() bool { return s.tag.last != 0 }

// free marks s as holding no live pair.
func (s *cacheSlot) free() { s.tag.last, s.dirty, s.inTable = 0, false, false }

// DefaultCachePairs is the number of pairs an engine keeps decoded unless Config.CachePairs says
// otherwise, in sets of cacheWays: about 0.5 MB at a few hundred bytes each, per partition.
const (
	DefaultCachePairs = 2048
	cacheWays         = 4
)

// ceilPow2 is the least power of two >= n (n >= 1).
func ceilPow2(n int) int {
	return 1 << bits.Len(uint(n-1))
}

// newPairCacheOf returns a cache of n slots (a power of two).
func newPairCacheOf(n int) pairCache {
	ways := min(cacheWays, n)
	c := pairCache{slots: make([]cacheSlot, n), tags: make([]cacheTag, n), sets: uint64(n / ways), ways: ways}
	for i := range c.slots {
		c.slots[i].tag = &c.tags[i]
	}
	return c
}

// set is the index of the first slot of the set a key whose hash is h may occupy.
func (c *pairCache) set(h uint64) int {
	return int(h&(c.sets-1)) * c.ways
}

// use marks s used now: it holds a live pair.
func (c *pairCache) use(s *cacheSlot) {
	c.clock++
	s.tag.last = c.clock
}

// find returns the slot holding key (whose hash is h), marked used now, or nil.
func find[K ~string | ~[]byte](c *pairCache, h uint64, key K) *cacheSlot {
	i := c.set(h)
	for j, t := range c.tags[i : i+c.ways] {
		if t.h == h && t.last != 0 {
			if s := &c.slots[i+j]; s.p.key == string(key) {
				c.use(s)
				return s
			}
		}
	}
	return nil
}

// victim returns the slot of h's set to put a pair in: a free one, or the least recently used.
// The caller writes it back first, and marks it used once it holds a pair.
func (c *pairCache) victim(h uint64) *cacheSlot {
	i := c.set(h)
	v := i
	for j, t := range c.tags[i : i+c.ways] {
		if t.last == 0 {
			v = i + j
			break
		}
		if t.last < c.tags[v].last {
			v = i + j
		}
	}
	return &c.slots[v]
}

// slot returns the slot of a cached pair's key.
func (c *pairCache) slot(key string) *cacheSlot {
	s := find(c, hashKey(key), key)
	if s == nil {
		panic("window: pair " + key + " is not cached") // callers only name pairs they loaded
	}
	return s
}

// load returns key's pair, decoding it from the table into a cache slot when it is not cached,
// or nil when the pair has no state.
func (e *Engine) load(key string) *pair {
	p, _ := e.loadHashed(key, hashKey(key))
	return p
}

// loadHashed is load for a key whose hash is h. It also returns the pair's slot, or, when the
// pair has no state, the free slot a new pair for key goes in (freshIn).
func (e *Engine) loadHashed(key string, h uint64) (*pair, *cacheSlot) {
	if s := find(&e.cache, h, key); s != nil {
		return &s.p, s
	}
	s := e.cache.victim(h)
	e.writeBack(s)
	s.tag.h = h
	body := e.pairs.getHashed(key, h)
	if body == nil {
		return nil, s
	}
	d := shared(body)
	d.pair(&s.p, key)
	if d.err != nil {
		// Records are written by this engine and never change: a bad one is a bug, not input.
		panic("window: pair " + key + ": undecodable record: " + d.err.Error())
	}
	s.dirty, s.inTable = false, true
	e.cache.use(s)
	return &s.p, s
}

// loadKey is load for a key given as bytes, returning the key and its cache slot too (the pair's
// while it is worked on, or the free one for a new pair): a pair found in the cache costs no key
// string.
func (e *Engine) loadKey(kb []byte) (*pair, string, *cacheSlot) {
	h := hashKey(kb)
	if s := find(&e.cache, h, kb); s != nil {
		return &s.p, s.p.key, s
	}
	key := string(kb)
	p, s := e.loadHashed(key, h)
	return p, key, s
}

// freshIn returns a new, empty pair for key in the free cache slot s that loadKey(key) has just
// returned with no pair.
func (e *Engine) freshIn(s *cacheSlot, key string) *pair {
	s.p = pair{key: key, cut: e.stream - e.lateness, pending: s.p.pending[:0]}
	s.p.cur.at = s.p.cut
	s.dirty, s.inTable = true, false
	e.cache.use(s)
	return &s.p
}

// save marks p (a cached pair) changed.
func (e *Engine) save(p *pair) { e.cache.slot(p.key).dirty = true }

// evict forgets p: from the cache and from the table.
func (e *Engine) evict(p *pair) {
	s := e.cache.slot(p.key)
	e.pairs.del(p.key)
	s.free()
}

// writeBack writes a dirty slot's pair to the table and frees the slot.
func (e *Engine) writeBack(s *cacheSlot) {
	if s.used() && s.dirty {
		e.buf = appendPair(e.buf[:0], &s.p)
		e.pairs.put(s.p.key, e.buf)
	}
	s.free()
}

// flush writes every dirty cached pair to the table; they stay cached.
func (e *Engine) flush() {
	for i := range e.cache.slots {
		s := &e.cache.slots[i]
		if s.used() && s.dirty {
			e.buf = appendPair(e.buf[:0], &s.p)
			e.pairs.put(s.p.key, e.buf)
			s.dirty, s.inTable = false, true
		}
	}
}

// fresh counts the cached pairs that have no record in the table yet.
func (c *pairCache) fresh() int {
	n := 0
	for i := range c.slots {
		if s := &c.slots[i]; s.used() && !s.inTable {
			n++
		}
	}
	return n
}

// keysOf appends the keys of the live pairs whose key hashes to h, cached or in the table (a key
// may be appended twice; runDue removes duplicates).
func (e *Engine) keysOf(h uint64, keys []string) []string {
	keys = e.pairs.keysOf(h, keys)
	i := e.cache.set(h)
	for j, t := range e.cache.tags[i : i+e.cache.ways] {
		if t.h == h && t.last != 0 {
			keys = append(keys, e.cache.slots[i+j].p.key)
		}
	}
	return keys
}
