package window

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// pairTable keeps every live pair of a partition as one record in a byte arena, found through an
// open-addressing index of arena offsets. A record is the pair's compact encoding (codec.go),
// prefixed with its length. Nothing in it is a Go pointer, so a million live pairs cost the
// garbage collector three slices, and a pair costs its encoded bytes plus a slot of the index
// instead of a struct, a map entry, slice headers and separately allocated strings.
//
// A pair is decoded when an event or a deadline touches it and encoded again afterwards. An
// update appends the new record and leaves the old one as garbage; the arena is compacted when
// garbage passes a quarter of it, so it stays within 4/3 of the live bytes.
type pairTable struct {
	arena   []byte
	garbage int
	// slots: 0 = empty, else tag<<40 | (offset+1), tag being the top 24 bits of the key's hash.
	// Linear probing, at most 3/4 full, deletion by backward shift (no tombstones).
	slots []uint64
	n     int
}

const (
	slotOffBits = 40
	slotOffMask = 1<<slotOffBits - 1
	maxArena    = slotOffMask - 1 // 1 TiB of records
)

// hashKey is FNV-1a 64 of s, without allocating.
func hashKey(s string) uint64 {
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
	n, k := binary.Uvarint(t.arena[off:])
	return t.arena[off+k : off+k+int(n)]
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
func (t *pairTable) get(key string) []byte {
	i, ok := t.find(key, hashKey(key))
	if !ok {
		return nil
	}
	return t.record(int(t.slots[i]&slotOffMask) - 1)
}

// put stores body (a record body starting with key) as key's record.
func (t *pairTable) put(key string, body []byte) {
	if len(t.arena)+len(body)+binary.MaxVarintLen64 > maxArena {
		panic(fmt.Sprintf("window: pair table arena over %d bytes", maxArena))
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(max(len(t.slots)*2, 1024))
	}
	h := hashKey(key)
	i, ok := t.find(key, h)
	if ok {
		old := int(t.slots[i]&slotOffMask) - 1
		t.garbage += t.recordLen(old)
	} else {
		t.n++
	}
	if need := len(body) + binary.MaxVarintLen64; len(t.arena)+need > cap(t.arena) {
		t.compact(need) // growing is compacting: the copy append would make anyway, minus garbage
	}
	off := len(t.arena)
	t.arena = binary.AppendUvarint(t.arena, uint64(len(body)))
	t.arena = append(t.arena, body...)
	t.slots[i] = slotTag(h)<<slotOffBits | uint64(off+1)
	t.maybeCompact()
}

// recordLen is the length of the record at off, prefix included.
func (t *pairTable) recordLen(off int) int {
	n, k := binary.Uvarint(t.arena[off:])
	return k + int(n)
}

// del removes key's record, if any.
func (t *pairTable) del(key string) {
	i, ok := t.find(key, hashKey(key))
	if !ok {
		return
	}
	t.garbage += t.recordLen(int(t.slots[i]&slotOffMask) - 1)
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
	if t.n == 0 {
		t.arena, t.garbage = t.arena[:0], 0
		return
	}
	t.maybeCompact()
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

// maybeCompact compacts the arena once garbage passes a quarter of it.
func (t *pairTable) maybeCompact() {
	if t.garbage*4 > len(t.arena) && len(t.arena) >= 1<<16 {
		t.compact(0)
	}
}

// compact copies the live records into a new arena with room for a quarter more (and need bytes).
func (t *pairTable) compact(need int) {
	live := len(t.arena) - t.garbage
	arena := make([]byte, 0, max(live+live/4+need, 1<<12))
	for i, s := range t.slots {
		if s == 0 {
			continue
		}
		off := int(s&slotOffMask) - 1
		n := t.recordLen(off)
		t.slots[i] = s&^slotOffMask | uint64(len(arena)+1)
		arena = append(arena, t.arena[off:off+n]...)
	}
	t.arena, t.garbage = arena, 0
}

// each calls fn with every record body, in index order (not a deterministic order: callers that
// need one sort).
func (t *pairTable) each(fn func(body []byte)) {
	for _, s := range t.slots {
		if s != 0 {
			fn(t.record(int(s&slotOffMask) - 1))
		}
	}
}

// reserve sizes the index for n pairs and the arena for bytes, before a restore.
func (t *pairTable) reserve(n, bytes int) {
	size := 1024
	for size*3 < n*4 {
		size *= 2
	}
	if size > len(t.slots) {
		t.resize(size)
	}
	if cap(t.arena)-len(t.arena) < bytes {
		a := make([]byte, len(t.arena), len(t.arena)+bytes)
		copy(a, t.arena)
		t.arena = a
	}
}

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
