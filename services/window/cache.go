package window

// pairCache keeps recently touched pairs decoded, so a burst of events of one pair (a send, its
// sent, delivered and read statuses; an inbound message and the reply) decodes and encodes the
// pair once rather than once per event. It is direct-mapped by key hash and write-back: a slot's
// pair is encoded into the table when another pair takes the slot, or on flush. While a pair is
// cached and dirty, its record in the table (if any) is stale; everything that reads the table
// for pairs (load, keysOf, Pairs, Snapshot) goes through the cache or flushes it first.
type pairCache struct {
	slots []cacheSlot
}

type cacheSlot struct {
	p       pair
	used    bool // p is a live pair
	dirty   bool // p changed since it was last written to the table
	inTable bool // p has a record in the table (stale while dirty)
}

// cacheSlots is the number of pairs kept decoded: about 0.5 MB at a few hundred bytes each.
const cacheSlots = 2048

func newPairCache() pairCache { return pairCache{slots: make([]cacheSlot, cacheSlots)} }

func (c *pairCache) slot(key string) *cacheSlot { return c.slotOf(hashKey(key)) }

// slotOf is slot for a key whose hash is h.
func (c *pairCache) slotOf(h uint64) *cacheSlot { return &c.slots[h&uint64(len(c.slots)-1)] }

// load returns key's pair, decoding it from the table into its cache slot when it is not
// cached, or nil when the pair has no state (the slot is then free for a new pair).
func (e *Engine) load(key string) *pair { return e.loadHashed(key, hashKey(key)) }

// loadHashed is load for a key whose hash is h.
func (e *Engine) loadHashed(key string, h uint64) *pair {
	s := e.cache.slotOf(h)
	if s.used && s.p.key == key {
		return &s.p
	}
	e.writeBack(s)
	body := e.pairs.getHashed(key, h)
	if body == nil {
		return nil
	}
	d := reader{b: body}
	d.pair(&s.p, key)
	if d.err != nil {
		// Records are written by this engine and never change: a bad one is a bug, not input.
		panic("window: pair " + key + ": undecodable record: " + d.err.Error())
	}
	s.used, s.dirty, s.inTable = true, false, true
	return &s.p
}

// loadKey is load for a key given as bytes, returning the key and its cache slot too (the pair's
// while it is worked on): a pair found in the cache costs no key string.
func (e *Engine) loadKey(kb []byte) (*pair, string, *cacheSlot) {
	h := hashKey(kb)
	s := e.cache.slotOf(h)
	if s.used && s.p.key == string(kb) {
		return &s.p, s.p.key, s
	}
	key := string(kb)
	return e.loadHashed(key, h), key, s
}

// freshIn returns a new, empty pair for key in its cache slot s; load(key) has just returned nil.
func (e *Engine) freshIn(s *cacheSlot, key string) *pair {
	s.p = pair{key: key, cut: e.stream - e.lateness, pending: s.p.pending[:0]}
	s.p.cur.at = s.p.cut
	s.used, s.dirty, s.inTable = true, true, false
	return &s.p
}

// save marks p (a cached pair) changed.
func (e *Engine) save(p *pair) { e.cache.slot(p.key).dirty = true }

// evict forgets p: from the cache and from the table.
func (e *Engine) evict(p *pair) {
	s := e.cache.slot(p.key)
	e.pairs.del(p.key)
	s.used, s.dirty, s.inTable = false, false, false
}

// writeBack writes a dirty slot's pair to the table and frees the slot.
func (e *Engine) writeBack(s *cacheSlot) {
	if s.used && s.dirty {
		e.buf = appendPair(e.buf[:0], &s.p)
		e.pairs.put(s.p.key, e.buf)
	}
	s.used, s.dirty, s.inTable = false, false, false
}

// flush writes every dirty cached pair to the table; they stay cached.
func (e *Engine) flush() {
	for i := range e.cache.slots {
		s := &e.cache.slots[i]
		if s.used && s.dirty {
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
		if s := &c.slots[i]; s.used && !s.inTable {
			n++
		}
	}
	return n
}

// keysOf appends the keys of the live pairs whose key hashes to h, cached or in the table (a key
// may be appended twice; runDue removes duplicates).
func (e *Engine) keysOf(h uint64, keys []string) []string {
	keys = e.pairs.keysOf(h, keys)
	if s := &e.cache.slots[h&uint64(len(e.cache.slots)-1)]; s.used && hashKey(s.p.key) == h {
		keys = append(keys, s.p.key)
	}
	return keys
}

// resizeCache writes the cache back and replaces it with one of n slots (a power of two). Tests
// use it to run every pair through the write-back path.
func (e *Engine) resizeCache(n int) {
	for i := range e.cache.slots {
		e.writeBack(&e.cache.slots[i])
	}
	e.cache = pairCache{slots: make([]cacheSlot, n)}
}
