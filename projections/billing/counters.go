package billing

import (
	"encoding/binary"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Member counters of volume groups (see the package doc, "Member counters"): per partition, group
// and member ("WABA#number") one Redis string holding an array of signed 32-bit counters (BITFIELD
// i32), one per hour slot of the group's month, counting the member's lines delivered in that
// hour. They replace a sorted set per member: settlement only needs, per member, how many of its
// lines fall after each tier cut, which is the sum of the slots after the cut's slot plus the
// member's lines in the cut's slot that come after the cut (read exactly from the group's sorted
// set, kGroup, by score range). A batch writes one BITFIELD per member with one INCRBY per
// distinct hour, instead of one sorted-set member per line.

// hourSlots is the length of a member counter array: the month plus two days either side (time
// zones), clamped at both ends so the slot is monotone in time for any instant.
const hourSlots = 36 * 24

// slotBase is the first instant (Unix seconds) of slot 1 minus one hour, for the group month
// "YYYY-MM": two days before the month's first instant in UTC. An unparseable month gives 0: every
// line then falls in the last slot, which is still exact (the whole slot is read at settlement).
func slotBase(month string) int64 {
	t, err := time.Parse("2006-01", month)
	if err != nil {
		return 0
	}
	return t.Unix() - 2*86400
}

// hourSlot is the counter slot of an instant: non-decreasing in at.
func hourSlot(base, at int64) int64 {
	d := at - base
	if d < 0 {
		return 0
	}
	if s := d / 3600; s < hourSlots {
		return s
	}
	return hourSlots - 1
}

// slotRange is the score range (inclusive, for ZRANGEBYSCORE) of the instants of slot s.
func slotRange(base, s int64) (lo, hi string) {
	lo, hi = "-inf", "+inf"
	if s > 0 {
		lo = strconv.FormatInt(base+s*3600, 10)
	}
	if s < hourSlots-1 {
		hi = strconv.FormatInt(base+(s+1)*3600-1, 10)
	}
	return lo, hi
}

// slotCounts decodes a member counter string (GET): counter i at bytes [4i, 4i+4), big-endian;
// missing bytes are zero.
func slotCounts(b string) []int64 {
	out := make([]int64, hourSlots)
	for i := 0; i+4 <= len(b) && i/4 < hourSlots; i += 4 {
		out[i/4] = int64(int32(binary.BigEndian.Uint32([]byte(b[i : i+4]))))
	}
	return out
}

// volumeGroup reports whether a group is a volume-tier group (the only ones with member counters).
func volumeGroup(g string) bool { return strings.HasPrefix(g, "vt|") }

// memberCounts aggregates the counter increments of one batch: per member counter key, per slot.
type memberCounts struct {
	idx   map[gwKey]int
	keys  []gwKey
	slots []map[int64]int64
	bases map[string]int64 // slotBase per month
}

func (c *memberCounts) add(l *Line, n int64) {
	k := gwKey{l.WABA, l.Number, l.Group}
	i, ok := c.idx[k]
	if !ok {
		if c.idx == nil {
			c.idx = map[gwKey]int{}
		}
		i = len(c.keys)
		c.idx[k] = i
		c.keys = append(c.keys, k)
		c.slots = append(c.slots, map[int64]int64{})
	}
	base, ok := c.bases[l.Month]
	if !ok {
		if c.bases == nil {
			c.bases = map[string]int64{}
		}
		base = slotBase(l.Month)
		c.bases[l.Month] = base
	}
	c.slots[i][hourSlot(base, int64(l.At))] += n
}

// cmds returns one BITFIELD per member key (first-touch order), slots ascending, zero nets left out.
func (c *memberCounts) cmds(tag string) [][]any {
	var out [][]any
	for i, k := range c.keys {
		ss := make([]int64, 0, len(c.slots[i]))
		for s, n := range c.slots[i] {
			if n != 0 {
				ss = append(ss, s)
			}
		}
		if len(ss) == 0 {
			continue
		}
		sort.Slice(ss, func(a, b int) bool { return ss[a] < ss[b] })
		cmd := make([]any, 0, 2+4*len(ss))
		cmd = append(cmd, "bitfield", kGroupCount(tag, k.waba+"#"+k.number, k.group))
		for _, s := range ss {
			cmd = append(cmd, "incrby", "i32", "#"+strconv.FormatInt(s, 10), c.slots[i][s])
		}
		out = append(out, cmd)
	}
	return out
}
