package window

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// pairTable keeps every live pair of a partition as one record in a byte arena, found through an
// open-addressing index of arena offsets. A record is the pair's compact encoding (codec.go),
// prefixed with its length. Nothing in it is a Go pointer, so a million live pairs cost the
// garbage collector a few slices, and a pair costs its encoded bytes plus a slot of the index
// instead of a struct, a map entry, slice headers and separately allocated strings.
//
// The arena is a list of chunks (4 MiB) written like a log: an update appends the new record to
// the active chunk and leaves the old one as garbage, counted per chunk. When garbage passes a
// quarter of the arena, the chunks with the most garbage are cleaned: their live records are
// appended again and the chunk is freed. Records of pairs that change together die together, so
// the cleaned chunks are mostly garbage and cleaning copies little; the arena stays within 4/3 of
// the live bytes plus two chunks.
type pairTable struct {
	chunks   [][]byte // nil = freed
	garbage  []int    // dead bytes per chunk
	spare    []byte   // one freed chunk kept for reuse
	active   int      // chunk appended to; -1 before the first
	used     int      // bytes of all chunks
	dead     int      // dead bytes of all chunks
	chunkCap int      // bytes per chunk (at most 1<<chunkBits; tests use small ones)
	// slots: 0 = empty, else tag<<40 | (offset+1), tag being the top 24 bits of the key's hash
	// and offset chunk<<chunkBits | position. Linear probing, at most 3/4 full, deletion by
	// backward shift (no tombstones).
	slots []uint64
	n     int
}

const (
	slotOffBits = 40
	slotOffMask = 1<<slotOffBits - 1
	chunkBits   = 22 // positions within a chunk; 2^18 chunks
	maxChunks   = 1 << (slotOffBits - chunkBits)
)

func newPairTable() pairTable { return pairTable{active: -1, chunkCap: 1 << chunkBits} }

// hashKey is FNV-1a 64 of s, without allocating.
func hashKey[S ~string | ~[]byte](s S) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func slotTag(h uint64) uint64 { return h >> slotOffBits }

// Len is the number of pairs stored.
func (t *pairTable) Len() int { return t.n }

// record returns the record body at arena offset off.
func (t *pairTable) record(off int) []byte {
	c := t.chunks[off>>chunkBits]
	pos := off & (1<<chunkBits - 1)
	n, k := binary.Uvarint(c[pos:])
	return c[pos+k : pos+k+int(n)]
}

// recordLen is the length of the record at off, prefix included.
func (t *pairTable) recordLen(off int) int {
	c := t.chunks[off>>chunkBits]
	n, k := binary.Uvarint(c[off&(1<<chunkBits-1):])
	return k + int(n)
}

// recordKey returns the key of a record body without allocating: the body starts with it.
func recordKey(body []byte) []byte {
	n, k := binary.Uvarint(body)
	return body[k : k+int(n)]
}

// find returns the slot index holding key, or the empty slot where it would go, and whether it
// was found.
func (t *pairTable) find(key string, h uint64) (int, bool) {
	if len(t.slots) == 0 {
		return -1, false
	}
	mask := len(t.slots) - 1
	tag := slotTag(h)
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return i, false
		}
		if s>>slotOffBits == tag && string(recordKey(t.record(int(s&slotOffMask)-1))) == key {
			return i, true
		}
	}
}

// get returns the record body of key, or nil. The slice is valid until the next put or del.
func (t *pairTable) get(key string) []byte { return t.getHashed(key, hashKey(key)) }

// getHashed is get for a key whose hash is h.
func (t *pairTable) getHashed(key string, h uint64) []byte {
	i, ok := t.find(key, h)
	if !ok {
		return nil
	}
	return t.record(int(t.slots[i]&slotOffMask) - 1)
}

// put stores body (a record body starting with key) as key's record.
func (t *pairTable) put(key string, body []byte) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(max(len(t.slots)*2, 1024))
	}
	h := hashKey(key)
	i, ok := t.find(key, h)
	if ok {
		t.kill(int(t.slots[i]&slotOffMask) - 1)
	} else {
		t.n++
	}
	t.slots[i] = slotTag(h)<<slotOffBits | uint64(t.write(body)+1)
	t.clean()
}

// write appends a record of body to the arena and returns its offset.
func (t *pairTable) write(body []byte) int {
	size := uvarintLen(uint64(len(body))) + len(body)
	c := t.active
	if size > t.chunkCap {
		c = t.newChunk(size) // a record larger than a chunk gets one of its own
	} else if c < 0 || len(t.chunks[c])+size > t.chunkCap {
		c = t.newChunk(t.chunkCap)
		t.active = c
	}
	pos := len(t.chunks[c])
	t.chunks[c] = append(binary.AppendUvarint(t.chunks[c], uint64(len(body))), body...)
	t.used += size
	return c<<chunkBits | pos
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// newChunk returns the index of an empty chunk of capacity size.
func (t *pairTable) newChunk(size int) int {
	var b []byte
	if size == t.chunkCap && t.spare != nil {
		b, t.spare = t.spare[:0], nil
	} else {
		b = make([]byte, 0, size)
	}
	for i, c := range t.chunks {
		if c == nil {
			t.chunks[i], t.garbage[i] = b, 0
			return i
		}
	}
	if len(t.chunks) == maxChunks {
		panic(fmt.Sprintf("window: pair table over %d chunks", maxChunks))
	}
	t.chunks = append(t.chunks, b)
	t.garbage = append(t.garbage, 0)
	return len(t.chunks) - 1
}

// kill counts the record at off as garbage.
func (t *pairTable) kill(off int) {
	n := t.recordLen(off)
	t.garbage[off>>chunkBits] += n
	t.dead += n
}

// clean frees the chunks with the most garbage while garbage is over a quarter of the arena.
func (t *pairTable) clean() {
	for t.dead*4 > t.used && t.used > 2*t.chunkCap {
		worst := -1
		for c := range t.chunks {
			if c != t.active && t.chunks[c] != nil && (worst < 0 || t.garbage[c] > t.garbage[worst]) {
				worst = c
			}
		}
		if worst < 0 || t.garbage[worst] == 0 {
			return
		}
		t.evacuate(worst)
	}
}

// evacuate moves chunk c's live records to the active chunk and frees c.
func (t *pairTable) evacuate(c int) {
	chunk := t.chunks[c]
	for pos := 0; pos < len(chunk); {
		n, k := binary.Uvarint(chunk[pos:])
		body := chunk[pos+k : pos+k+int(n)]
		key := recordKey(body)
		if i, ok := t.find(string(key), hashKey(string(key))); ok && int(t.slots[i]&slotOffMask)-1 == c<<chunkBits|pos {
			t.slots[i] = t.slots[i]&^slotOffMask | uint64(t.write(body)+1)
		}
		pos += k + int(n)
	}
	t.used -= len(chunk)
	t.dead -= t.garbage[c]
	if cap(chunk) == t.chunkCap {
		t.spare = chunk
	}
	t.chunks[c], t.garbage[c] = nil, 0
}

// del removes key's record, if any.
func (t *pairTable) del(key string) {
	i, ok := t.find(key, hashKey(key))
	if !ok {
		return
	}
	t.kill(int(t.slots[i]&slotOffMask) - 1)
	t.n--
	// Backward-shift deletion: move later members of the probe run into the hole when their home
	// slot does not lie cyclically in (hole, j].
	mask := len(t.slots) - 1
	hole := i
	for j := (i + 1) & mask; t.slots[j] != 0; j = (j + 1) & mask {
		home := int(hashKey(string(recordKey(t.record(int(t.slots[j]&slotOffMask)-1))))) & mask
		if (j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j) {
			t.slots[hole] = t.slots[j]
			hole = j
		}
	}
	t.slots[hole] = 0
	t.clean()
}

func (t *pairTable) resize(size int) {
	old := t.slots
	t.slots = make([]uint64, size)
	mask := size - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		h := hashKey(string(recordKey(t.record(int(s&slotOffMask) - 1))))
		i := int(h) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// reserve sizes the index for n pairs, before a restore.
func (t *pairTable) reserve(n int) {
	size := 1024
	for size*3 < n*4 {
		size *= 2
	}
	if size > len(t.slots) {
		t.resize(size)
	}
}

// liveBytes is the size of the live records.
func (t *pairTable) liveBytes() int { return t.used - t.dead }

// keysOf appends the keys of the pairs whose key hashes to h (almost always one; none when the
// pair is gone).
func (t *pairTable) keysOf(h uint64, keys []string) []string {
	if len(t.slots) == 0 {
		return keys
	}
	mask := len(t.slots) - 1
	tag := slotTag(h)
	for i := int(h) & mask; t.slots[i] != 0; i = (i + 1) & mask {
		s := t.slots[i]
		if s>>slotOffBits != tag {
			continue
		}
		if k := recordKey(t.record(int(s&slotOffMask) - 1)); hashKey(string(k)) == h {
			keys = append(keys, string(k))
		}
	}
	return keys
}

// recordRef names a record by the hash of its key and its arena offset.
type recordRef struct {
	h   uint64
	off uint64
}

// sorted returns every record ordered by the FNV-64 hash of its key, then by key: the snapshot
// order. A radix sort on the hash (four 16-bit digits) sorts 10M records in a fraction of what a
// comparison sort takes; equal hashes (rare) are ordered by key afterwards.
func (t *pairTable) sorted() []recordRef {
	refs := make([]recordRef, 0, t.n)
	for _, s := range t.slots {
		if s != 0 {
			off := int(s&slotOffMask) - 1
			refs = append(refs, recordRef{hashKey(string(recordKey(t.record(off)))), uint64(off)})
		}
	}
	tmp := make([]recordRef, len(refs))
	var count [1 << 16]int
	for shift := 0; shift < 64; shift += 16 {
		clear(count[:])
		for _, r := range refs {
			count[r.h>>shift&0xffff]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, r := range refs {
			d := r.h >> shift & 0xffff
			tmp[count[d]] = r
			count[d]++
		}
		refs, tmp = tmp, refs
	}
	for i := 1; i < len(refs); i++ {
		for j := i; j > 0 && refs[j].h == refs[j-1].h &&
			bytes.Compare(recordKey(t.record(int(refs[j].off))), recordKey(t.record(int(refs[j-1].off)))) < 0; j-- {
			refs[j], refs[j-1] = refs[j-1], refs[j]
		}
	}
	return refs
}
