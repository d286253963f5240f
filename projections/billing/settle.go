package billing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

// Settled is a ledger line with its final amount: list price, free tier or volume-tier price.
type Settled struct {
	Line
	Partition     int32              `json:"partition"`
	Amount        ratecard.Micros    `json:"amount_micros"`
	AmountDecimal string             `json:"amount"`
	SettledType   events.PricingType `json:"settled_pricing_type"`
	Tier          string             `json:"tier,omitempty"`
}

// settler computes group cuts once per query: the order key of the B-th member of a group merged
// over all partitions. Lines at or before the cut are inside the first B.
type settler struct {
	s     *Store
	parts []int32
	cuts  map[string]*OrderKey // group+"#"+B → cut, nil when the group has at most B members
	sizes map[string]int64
	gkeys map[string][]string // group → its sorted sets over all partitions
}

func (s *Store) newSettler(parts []int32) *settler {
	return &settler{s: s, parts: parts, cuts: map[string]*OrderKey{}, sizes: map[string]int64{}, gkeys: map[string][]string{}}
}

// partitions lists the partitions the store has written.
func (s *Store) partitions(ctx context.Context) ([]int32, error) {
	ms, err := s.rdb.SMembers(ctx, s.partitionsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("billing: list partitions: %w", err)
	}
	out := make([]int32, 0, len(ms))
	for _, m := range ms {
		p, err := strconv.Atoi(m)
		if err != nil {
			return nil, fmt.Errorf("billing: bad partition %q in registry", m)
		}
		out = append(out, int32(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// ErrOldLayout: a partition holds volume-group members in the layout before member counters (a
// set of members and a sorted set per member); settling it needs a replay into a fresh namespace.
var ErrOldLayout = errors.New("billing: partition stored in the layout before member counters; rebuild it with a replay")

// keys returns a group's per-partition zsets (all its members, every WABA and number), on which
// cuts and ranks are computed.
func (st *settler) keys(_ context.Context, group string) ([]string, error) {
	if ks, ok := st.gkeys[group]; ok {
		return ks, nil
	}
	ks := make([]string, len(st.parts))
	for i, p := range st.parts {
		ks[i] = kGroup(st.s.tag(p), group)
	}
	st.gkeys[group] = ks
	return ks, nil
}

func (st *settler) size(ctx context.Context, group string) (int64, error) {
	if n, ok := st.sizes[group]; ok {
		return n, nil
	}
	ks, err := st.keys(ctx, group)
	if err != nil || len(ks) == 0 {
		return 0, err
	}
	pipe := st.s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(ks))
	for i, k := range ks {
		cmds[i] = pipe.ZCard(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("billing: size of group %s: %w", group, err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	st.sizes[group] = n
	return n, nil
}

func (st *settler) countAtOrBelow(ctx context.Context, group string, max string) (int64, error) {
	ks, err := st.keys(ctx, group)
	if err != nil {
		return 0, err
	}
	pipe := st.s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(ks))
	for i, k := range ks {
		cmds[i] = pipe.ZCount(ctx, k, "-inf", max)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("billing: count group %s: %w", group, err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// cut returns the key of the b-th (1-based) member of group in (time, id) order over all
// partitions, or nil when the group has at most b members. It binary-searches the time with
// pipelined ZCOUNTs, then orders the members sharing that second by id.
func (st *settler) cut(ctx context.Context, group string, b int64) (*OrderKey, error) {
	ck := group + "#" + strconv.FormatInt(b, 10)
	if c, ok := st.cuts[ck]; ok {
		return c, nil
	}
	n, err := st.size(ctx, group)
	if err != nil {
		return nil, err
	}
	if n <= b {
		st.cuts[ck] = nil
		return nil, nil
	}
	ks, err := st.keys(ctx, group)
	if err != nil {
		return nil, err
	}
	pipe := st.s.rdb.Pipeline()
	first := make([]*redis.ZSliceCmd, len(ks))
	last := make([]*redis.ZSliceCmd, len(ks))
	for i, k := range ks {
		first[i] = pipe.ZRangeWithScores(ctx, k, 0, 0)
		last[i] = pipe.ZRangeWithScores(ctx, k, -1, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("billing: bounds of group %s: %w", group, err)
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range ks {
		for _, z := range first[i].Val() {
			lo = min(lo, int64(z.Score))
		}
		for _, z := range last[i].Val() {
			hi = max(hi, int64(z.Score))
		}
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		c, err := st.countAtOrBelow(ctx, group, strconv.FormatInt(mid, 10))
		if err != nil {
			return nil, err
		}
		if c >= b {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	below, err := st.countAtOrBelow(ctx, group, "("+strconv.FormatInt(lo, 10))
	if err != nil {
		return nil, err
	}
	ties, err := st.membersAt(ctx, group, lo)
	if err != nil {
		return nil, err
	}
	i := b - below - 1
	if i < 0 || i >= int64(len(ties)) {
		return nil, fmt.Errorf("billing: group %s changed while settling", group)
	}
	c := &OrderKey{At: lo, ID: ties[i]}
	st.cuts[ck] = c
	return c, nil
}

func (st *settler) membersAt(ctx context.Context, group string, at int64) ([]string, error) {
	ks, err := st.keys(ctx, group)
	if err != nil {
		return nil, err
	}
	pipe := st.s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(ks))
	t := strconv.FormatInt(at, 10)
	for i, k := range ks {
		cmds[i] = pipe.ZRangeByScore(ctx, k, &redis.ZRangeBy{Min: t, Max: t})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("billing: members of group %s at %d: %w", group, at, err)
	}
	var out []string
	for _, c := range cmds {
		out = append(out, c.Val()...)
	}
	sort.Strings(out)
	return out, nil
}

// groupRate parses a volume group and returns its rate from the card the lines were priced on.
func (s *Store) groupRate(group string) (ratecard.Rate, bool) {
	f := strings.Split(group, "|")
	if len(f) != 6 || f[0] != "vt" {
		return ratecard.Rate{}, false
	}
	return s.book.CardRate(f[5], f[3], events.Category(f[4]))
}

// settle computes the final amount of a line: the settlement rule of the package doc.
func (st *settler) settle(ctx context.Context, l Line, p int32) (Settled, error) {
	out := Settled{Line: l, Partition: p, Amount: l.List, SettledType: l.PricingType}
	switch {
	case strings.HasPrefix(l.Group, "ft|"), strings.HasPrefix(l.Group, "fa|"):
		limit, ok := st.s.groupLimit(l.Group)
		if !ok {
			break
		}
		c, err := st.cut(ctx, l.Group, limit)
		if err != nil {
			return out, err
		}
		if c == nil || !c.Less(l.Key()) {
			out.Amount, out.SettledType, out.Unpriced = 0, freeType(l.Group), ""
		}
	case strings.HasPrefix(l.Group, "vt|"):
		r, ok := st.s.groupRate(l.Group)
		if !ok {
			break
		}
		tier := 0
		for k := 0; k < len(r.Tiers)-1; k++ {
			c, err := st.cut(ctx, l.Group, r.Tiers[k].Upper)
			if err != nil {
				return out, err
			}
			if c == nil || !c.Less(l.Key()) {
				break
			}
			tier = k + 1
		}
		out.Amount, out.Tier = r.Tiers[tier].Price, r.Tiers[tier].String()
	}
	out.AmountDecimal = out.Amount.String()
	return out, nil
}

// fetchLines reads lines by partition and id.
func (s *Store) fetchLines(ctx context.Context, ids map[int32][]string) (map[int32][]Line, error) {
	pipe := s.rdb.Pipeline()
	cmds := map[int32]*redis.SliceCmd{}
	for p, is := range ids {
		if len(is) > 0 {
			cmds[p] = pipe.HMGet(ctx, kLines(s.tag(p)), is...)
		}
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("billing: read lines: %w", err)
	}
	out := map[int32][]Line{}
	for p, c := range cmds {
		for i, v := range c.Val() {
			str, ok := v.(string)
			if !ok {
				continue // removed since it was listed
			}
			l, err := decodeLine(ids[p][i], str)
			if err != nil {
				return nil, fmt.Errorf("billing: decode line %s: %w", ids[p][i], err)
			}
			out[p] = append(out[p], l)
		}
	}
	return out, nil
}

// settleRanked settles a page of lines by ranking each one directly: its 1-based position in its
// group is one plus the members before it in (time, id) order, counted over the group's zsets
// with ZCOUNT below its second and the ties at its second, all in one pipeline. For a page this
// is cheaper than finding the group's cuts; EachLine, which walks whole months, uses the cuts.
func (st *settler) settleRanked(ctx context.Context, ls []Line, parts []int32) ([]Settled, error) {
	out := make([]Settled, len(ls))
	type q struct {
		below []*redis.IntCmd
		ties  []*redis.StringSliceCmd
	}
	qs := make([]*q, len(ls))
	pipe := st.s.rdb.Pipeline()
	n := 0
	for i, l := range ls {
		out[i] = Settled{Line: l, Partition: parts[i], Amount: l.List, SettledType: l.PricingType}
		if l.Group == "" {
			continue
		}
		ks, err := st.keys(ctx, l.Group)
		if err != nil {
			return nil, err
		}
		qq := &q{}
		at := strconv.FormatInt(int64(l.At), 10)
		for _, k := range ks {
			qq.below = append(qq.below, pipe.ZCount(ctx, k, "-inf", "("+at))
			qq.ties = append(qq.ties, pipe.ZRangeByScore(ctx, k, &redis.ZRangeBy{Min: at, Max: at}))
			n++
		}
		qs[i] = qq
	}
	if n > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("billing: rank lines: %w", err)
		}
	}
	for i := range out {
		l := &out[i]
		if qs[i] != nil {
			var before int64
			for _, c := range qs[i].below {
				before += c.Val()
			}
			for _, c := range qs[i].ties {
				for _, id := range c.Val() {
					if id < l.ID {
						before++
					}
				}
			}
			rank := before + 1
			switch {
			case strings.HasPrefix(l.Group, "ft|"), strings.HasPrefix(l.Group, "fa|"):
				if limit, ok := st.s.groupLimit(l.Group); ok && rank <= limit {
					l.Amount, l.SettledType, l.Unpriced = 0, freeType(l.Group), ""
				}
			case strings.HasPrefix(l.Group, "vt|"):
				if r, ok := st.s.groupRate(l.Group); ok {
					t := r.Tiers[r.TierAt(rank)]
					l.Amount, l.Tier = t.Price, t.String()
				}
			}
		}
		l.AmountDecimal = l.Amount.String()
	}
	return out, nil
}
