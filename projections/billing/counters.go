package billing

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Member counters of volume groups (see the package doc, "Member counters"): per partition, group
// and member ("WABA#number") one Redis string holding an array of big-endian signed 32-bit
// counters, one per hour slot of the group's month, counting the member's lines delivered in that
// hour. They replace a sorted set per member: settlement only needs, per member, how many of its
// lines fall after each tier cut, which is the sum of the slots after the cut's slot plus the
// member's lines in the cut's slot that come after the cut (read exactly from the group's sorted
// set, kGroup, by score range). A batch reads the range of slots it changes (GETRANGE, under the
// WATCH) and writes it back (SETRANGE): two commands per member, instead of one sorted-set member
// per line. (Not BITFIELD INCRBY, which needs no read: miniredis, the embedded Redis of
// `convmeter dev` and `audit`, has no BITFIELD.)

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
	order touchOrder[gwKey]
	keys  []gwKey
	slots []map[int64]int64
	bases map[string]int64 // slotBase per month
}

func (c *memberCounts) add(l *Line, n int64) {
	k := gwKey{l.WABA, l.Number, l.Group}
	i, first := c.order.of(k)
	if first {
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

// cmds reads the range of slots the batch changes of each member key (one GETRANGE per key, in
// one round trip on rc, the WATCHed connection) and returns one SETRANGE per key (first-touch
// order) writing that range back with the batch's nets added; zero nets are left out.
func (c *memberCounts) cmds(ctx context.Context, rc redis.Cmdable, tag string) ([][]any, error) {
	type member struct {
		i      int
		key    string
		lo, hi int64 // slots
		cur    *redis.StringCmd
	}
	var ms []member
	pipe := rc.Pipeline()
	for i, k := range c.keys {
		lo, hi := int64(-1), int64(-1)
		for s, n := range c.slots[i] {
			if n == 0 {
				continue
			}
			if lo < 0 || s < lo {
				lo = s
			}
			if s > hi {
				hi = s
			}
		}
		if lo < 0 {
			continue
		}
		m := member{i: i, key: kGroupCount(tag, k.waba+"#"+k.number, k.group), lo: lo, hi: hi}
		m.cur = pipe.GetRange(ctx, m.key, 4*lo, 4*hi+3)
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("billing: read member counters: %w", err)
	}
	out := make([][]any, 0, len(ms))
	for _, m := range ms {
		b := make([]byte, 4*(m.hi-m.lo+1))
		copy(b, m.cur.Val()) // a shorter string reads as zeros beyond its end
		for s, n := range c.slots[m.i] {
			if n != 0 {
				at := b[4*(s-m.lo):]
				binary.BigEndian.PutUint32(at, uint32(int32(binary.BigEndian.Uint32(at))+int32(n)))
			}
		}
		out = append(out, []any{"setrange", m.key, 4 * m.lo, b})
	}
	return out, nil
}
