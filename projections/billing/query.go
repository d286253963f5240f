package billing

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/projections/ratecard"
)

// Bucket is one row of a totals breakdown. AmountMicros is settled (free tier and volume tiers
// applied); Amount is the same as a decimal string.
type Bucket struct {
	Lines        int64           `json:"lines"`
	Billable     int64           `json:"billable"`
	Unpriced     int64           `json:"unpriced"`
	AmountMicros ratecard.Micros `json:"amount_micros"`
	Amount       string          `json:"amount"`
}

// FreeTierUsage is the CBP free tier of a WABA-month.
type FreeTierUsage struct {
	Eligible int64 `json:"eligible"` // conversations that count toward it
	Used     int64 `json:"used"`     // conversations it made free
	Limit    int64 `json:"limit"`
}

// VolumeTierUsage is one volume group the WABA-month has lines in.
type VolumeTierUsage struct {
	Group         string           `json:"group"`
	GroupMessages int64            `json:"group_messages"` // whole portfolio, all partitions
	WABAMessages  int64            `json:"waba_messages"`
	ByTier        map[string]int64 `json:"by_tier"` // this WABA's messages per tier "lower:upper"
}

// Totals of one WABA and month (in the WABA's time zone), settled.
type Totals struct {
	WABA          string            `json:"waba"`
	Month         string            `json:"month"`
	Total         Bucket            `json:"total"`
	ByNumber      map[string]Bucket `json:"by_number"`
	ByMarket      map[string]Bucket `json:"by_market"`
	ByCategory    map[string]Bucket `json:"by_category"`
	ByPricingType map[string]Bucket `json:"by_pricing_type"`
	ByModel       map[string]Bucket `json:"by_model"`
	ByCurrency    map[string]Bucket `json:"by_currency"`
	Unpriced      map[string]int64  `json:"unpriced"` // lines per unpriced reason
	FreeTier      *FreeTierUsage    `json:"free_tier,omitempty"`
	// FreeAllowances: per number, the UNCONFIRMED PMP-2026 allowance of free service messages,
	// when the operator's timeline switches it on.
	FreeAllowances map[string]FreeTierUsage `json:"free_allowances,omitempty"`
	VolumeTiers    []VolumeTierUsage        `json:"volume_tiers,omitempty"`
}

// Totals merges the per-partition totals of a WABA-month and settles them: the free-tier
// conversations and the messages above the first volume tier are moved from their list price to
// their final one.
func (s *Store) Totals(ctx context.Context, waba, month string) (Totals, error) {
	wm := waba + "|" + month
	parts, err := s.partitions(ctx)
	if err != nil {
		return Totals{}, err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(parts))
	for i, p := range parts {
		cmds[i] = pipe.HGetAll(ctx, kTotals(s.tag(p), wm))
	}
	if len(parts) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return Totals{}, fmt.Errorf("billing: read totals of %s: %w", wm, err)
		}
	}
	f := map[string]int64{}
	for _, c := range cmds {
		for k, v := range c.Val() {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Totals{}, fmt.Errorf("billing: totals field %s of %s: %w", k, wm, err)
			}
			f[k] += n
		}
	}
	add := func(k string, v int64) { f[k] += v }
	st := s.newSettler(parts)
	t := Totals{WABA: waba, Month: month}

	// Free tier and allowances: the first lines of each group, by delivery time then id, are free.
	freeGroup := func(group string, eligible int64) (FreeTierUsage, error) {
		limit, _ := s.groupLimit(group)
		cut, err := st.cut(ctx, group, limit)
		if err != nil {
			return FreeTierUsage{}, err
		}
		ids, err := s.groupMembers(ctx, st, group, nil, cut)
		if err != nil {
			return FreeTierUsage{}, err
		}
		free, err := s.fetchLines(ctx, ids)
		if err != nil {
			return FreeTierUsage{}, err
		}
		u := FreeTierUsage{Eligible: eligible, Limit: limit}
		for _, ls := range free {
			for _, l := range ls {
				Contribute(l, l.List, l.PricingType, l.Unpriced, -1, add)
				Contribute(l, 0, freeType(group), "", +1, add)
				u.Used++
			}
		}
		return u, nil
	}
	ftGroup := "ft|" + wm
	if n := f["group:"+ftGroup]; n > 0 {
		u, err := freeGroup(ftGroup, n)
		if err != nil {
			return Totals{}, err
		}
		t.FreeTier = &u
	}
	for _, k := range sortedKeys(f) {
		group, ok := strings.CutPrefix(k, "group:fa|")
		if !ok || f[k] <= 0 {
			continue
		}
		// "fa|<allowance>|<waba>|<number>|<month>"
		parts := strings.Split(group, "|")
		if len(parts) != 4 || parts[1] != waba || parts[3] != month {
			continue
		}
		u, err := freeGroup("fa|"+group, f[k])
		if err != nil {
			return Totals{}, err
		}
		if t.FreeAllowances == nil {
			t.FreeAllowances = map[string]FreeTierUsage{}
		}
		t.FreeAllowances[parts[2]] = u
	}

	// Volume tiers. The WABA's numbers name its member counters.
	var numbers []string
	for _, k := range sortedKeys(f) {
		if n, ok := strings.CutPrefix(k, DimNumber+":"); ok && f[k] > 0 && strings.HasSuffix(n, "|"+mLines) {
			numbers = append(numbers, strings.TrimSuffix(n, "|"+mLines))
		}
	}
	for _, k := range sortedKeys(f) {
		group, ok := strings.CutPrefix(k, "group:vt|")
		if !ok || f[k] <= 0 {
			continue
		}
		group = "vt|" + group
		u := VolumeTierUsage{Group: group, WABAMessages: f[k], ByTier: map[string]int64{}}
		if u.GroupMessages, err = st.size(ctx, group); err != nil {
			return Totals{}, err
		}
		r, ok := s.groupRate(group)
		if !ok {
			t.VolumeTiers = append(t.VolumeTiers, u)
			continue
		}
		if err := s.settleVolume(ctx, st, waba, numbers, group, r, &u, add); err != nil {
			return Totals{}, err
		}
		t.VolumeTiers = append(t.VolumeTiers, u)
	}
	fillBuckets(&t, f)
	return t, nil
}

func fillBuckets(t *Totals, f map[string]int64) {
	t.ByNumber, t.ByMarket, t.ByCategory = map[string]Bucket{}, map[string]Bucket{}, map[string]Bucket{}
	t.ByPricingType, t.ByModel, t.ByCurrency = map[string]Bucket{}, map[string]Bucket{}, map[string]Bucket{}
	t.Unpriced = map[string]int64{}
	for k, v := range f {
		if v == 0 {
			continue
		}
		dim, rest, ok := strings.Cut(k, ":")
		if !ok || dim == "group" {
			continue
		}
		i := strings.LastIndexByte(rest, '|')
		if i < 0 {
			continue
		}
		val, m := rest[:i], rest[i+1:]
		if dim == DimUnpriced {
			t.Unpriced[val] += v
			continue
		}
		var dst map[string]Bucket
		switch dim {
		case DimAll:
		case DimNumber:
			dst = t.ByNumber
		case DimMarket:
			dst = t.ByMarket
		case DimCategory:
			dst = t.ByCategory
		case DimPricingType:
			dst = t.ByPricingType
		case DimModel:
			dst = t.ByModel
		case DimCurrency:
			dst = t.ByCurrency
		default:
			continue
		}
		b := t.Total
		if dst != nil {
			b = dst[val]
		}
		switch m {
		case mLines:
			b.Lines += v
		case mBillable:
			b.Billable += v
		case mUnpriced:
			b.Unpriced += v
		case mAmount:
			b.AmountMicros += ratecard.Micros(v)
		}
		b.Amount = b.AmountMicros.String()
		if dst != nil {
			dst[val] = b
		} else {
			t.Total = b
		}
	}
	for _, m := range []map[string]Bucket{t.ByNumber, t.ByMarket, t.ByCategory, t.ByPricingType, t.ByModel, t.ByCurrency} {
		for k, b := range m {
			b.Amount = b.AmountMicros.String()
			if b.Lines == 0 && b.AmountMicros == 0 {
				delete(m, k)
				continue
			}
			m[k] = b
		}
	}
	t.Total.Amount = t.Total.AmountMicros.String()
}

// groupMembers lists, per partition, the members of a group with order key strictly after from
// (nil: from the start) and at or before to (nil: to the end).
func (s *Store) groupMembers(ctx context.Context, st *settler, group string, from, to *OrderKey) (map[int32][]string, error) {
	min, max := "-inf", "+inf"
	if from != nil {
		min = strconv.FormatInt(from.At, 10)
	}
	if to != nil {
		max = strconv.FormatInt(to.At, 10)
	}
	type src struct {
		p   int32
		cmd *redis.ZSliceCmd
	}
	var srcs []src
	pipe := s.rdb.Pipeline()
	for _, p := range st.parts {
		srcs = append(srcs, src{p, pipe.ZRangeByScoreWithScores(ctx, kGroup(s.tag(p), group), &redis.ZRangeBy{Min: min, Max: max})})
	}
	if len(srcs) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("billing: members of %s: %w", group, err)
	}
	out := map[int32][]string{}
	for _, sc := range srcs {
		for _, z := range sc.cmd.Val() {
			k := OrderKey{At: int64(z.Score), ID: z.Member.(string)}
			if from != nil && !from.Less(k) {
				continue
			}
			if to != nil && to.Less(k) {
				continue
			}
			out[sc.p] = append(out[sc.p], k.ID)
		}
	}
	return out, nil
}

// Cursor is an opaque position in a (time, id)-ordered listing.
func encodeCursor(k OrderKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(k.At, 10) + "|" + k.ID))
}

// ErrBadCursor: the cursor was not produced by this API.
var ErrBadCursor = errors.New("billing: bad cursor")

func decodeCursor(c string) (*OrderKey, error) {
	if c == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, ErrBadCursor
	}
	at, id, ok := strings.Cut(string(b), "|")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		return nil, ErrBadCursor
	}
	return &OrderKey{At: n, ID: id}, nil
}

type member struct {
	p int32
	k OrderKey
}

// page merges the (time, id)-ordered index zsets of all partitions and returns up to limit
// members after the cursor, and whether more follow. Two pipelined round trips.
func (s *Store) page(ctx context.Context, parts []int32, index func(tag string) string, after *OrderKey, limit int) ([]member, bool, error) {
	ties := make([]int64, len(parts))
	if after != nil {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(parts))
		at := strconv.FormatInt(after.At, 10)
		for i, p := range parts {
			cmds[i] = pipe.ZCount(ctx, index(s.tag(p)), at, at)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, false, fmt.Errorf("billing: page: %w", err)
		}
		for i, c := range cmds {
			ties[i] = c.Val()
		}
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(parts))
	min := "-inf"
	if after != nil {
		min = strconv.FormatInt(after.At, 10)
	}
	for i, p := range parts {
		cmds[i] = pipe.ZRangeByScoreWithScores(ctx, index(s.tag(p)), &redis.ZRangeBy{Min: min, Max: "+inf", Count: int64(limit) + 1 + ties[i]})
	}
	if len(parts) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, false, fmt.Errorf("billing: page: %w", err)
		}
	}
	var all []member
	for i, c := range cmds {
		for _, z := range c.Val() {
			k := OrderKey{At: int64(z.Score), ID: z.Member.(string)}
			if after != nil && !after.Less(k) {
				continue
			}
			all = append(all, member{parts[i], k})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].k.Less(all[j].k) })
	more := len(all) > limit
	if more {
		all = all[:limit]
	}
	return all, more, nil
}

// LinePage is one page of settled ledger lines in (delivery time, id) order.
type LinePage struct {
	Lines []Settled `json:"lines"`
	Next  string    `json:"next,omitempty"` // cursor of the next page; empty at the end
}

// Lines returns up to limit settled ledger lines of a WABA-month after cursor.
func (s *Store) Lines(ctx context.Context, waba, month, cursor string, limit int) (LinePage, error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return LinePage{}, err
	}
	parts, err := s.partitions(ctx)
	if err != nil {
		return LinePage{}, err
	}
	return s.linesPage(ctx, s.newSettler(parts), waba+"|"+month, after, limit, true)
}

// linesPage reads a page of lines; ranked settles them by direct ranks (API pages), otherwise by
// the settler's cached cuts (whole-month walks).
func (s *Store) linesPage(ctx context.Context, st *settler, wm string, after *OrderKey, limit int, ranked bool) (LinePage, error) {
	ms, more, err := s.page(ctx, st.parts, func(tag string) string { return kIndex(tag, wm) }, after, limit)
	if err != nil {
		return LinePage{}, err
	}
	out := LinePage{}
	if out.Lines, err = s.settleMembers(ctx, st, ms, ranked); err != nil {
		return LinePage{}, err
	}
	if more && len(ms) > 0 {
		out.Next = encodeCursor(ms[len(ms)-1].k)
	}
	return out, nil
}

// settleMembers reads the lines of index members and settles them, in the members' order.
func (s *Store) settleMembers(ctx context.Context, st *settler, ms []member, ranked bool) ([]Settled, error) {
	ids := map[int32][]string{}
	for _, m := range ms {
		ids[m.p] = append(ids[m.p], m.k.ID)
	}
	got, err := s.fetchLines(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]Line, len(ms))
	for _, ls := range got {
		for _, l := range ls {
			byID[l.ID] = l
		}
	}
	if ranked {
		var ls []Line
		var ps []int32
		for _, m := range ms {
			if l, ok := byID[m.k.ID]; ok {
				ls, ps = append(ls, l), append(ps, m.p)
			}
		}
		return st.settleRanked(ctx, ls, ps)
	}
	out := make([]Settled, 0, len(ms))
	for _, m := range ms {
		l, ok := byID[m.k.ID]
		if !ok {
			continue
		}
		sl, err := st.settle(ctx, l, m.p)
		if err != nil {
			return nil, err
		}
		out = append(out, sl)
	}
	return out, nil
}

// eachLineChunk is how many index members EachLine reads from a partition at a time.
var eachLineChunk = 1000

// EachLine calls fn for every settled line of a WABA-month in order, a page at a time.
func (s *Store) EachLine(ctx context.Context, waba, month string, fn func(Settled) error) error {
	r := s.LineReader(waba, month)
	for {
		ls, err := r.Next(ctx)
		if err != nil || len(ls) == 0 {
			return err
		}
		for _, l := range ls {
			if err := fn(l); err != nil {
				return err
			}
		}
	}
}

// LineReader reads the settled lines of a WABA-month in (time, id) order, a page at a time.
//
// The partitions' index zsets are merged as they are read: each is read in chunks after its own
// last member, so every member is read once. (Paging with Lines reads up to a page from every
// partition for each page: with 4 partitions, 4 members for each line.)
type LineReader struct {
	s     *Store
	wm    string
	st    *settler
	walk  *indexWalk
	ready bool
}

// LineReader returns a reader of the WABA-month's lines; it reads nothing until Next.
func (s *Store) LineReader(waba, month string) *LineReader {
	return &LineReader{s: s, wm: waba + "|" + month}
}

// Next returns the next page of lines (up to 1,000); none at the end. The slice is the caller's.
func (r *LineReader) Next(ctx context.Context) ([]Settled, error) {
	if !r.ready {
		parts, err := r.s.partitions(ctx)
		if err != nil {
			return nil, err
		}
		r.st = r.s.newSettler(parts)
		r.walk = newIndexWalk(r.s, parts, func(tag string) string { return kIndex(tag, r.wm) }, eachLineChunk)
		r.ready = true
	}
	ms, err := r.walk.next(ctx, 1000)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	return r.s.settleMembers(ctx, r.st, ms, false)
}

// indexWalk merges the (time, id)-ordered index zsets of the partitions, reading each in chunks
// after its last member read.
type indexWalk struct {
	s     *Store
	index func(tag string) string
	chunk int
	parts []partWalk
}

type partWalk struct {
	p    int32
	buf  []member // read, not yet taken, in order
	last *OrderKey
	done bool
}

func newIndexWalk(s *Store, parts []int32, index func(tag string) string, chunk int) *indexWalk {
	w := &indexWalk{s: s, index: index, chunk: max(chunk, 1), parts: make([]partWalk, len(parts))}
	for i, p := range parts {
		w.parts[i].p = p
	}
	return w
}

// next returns up to n members in (time, id) order over all partitions; none at the end.
func (w *indexWalk) next(ctx context.Context, n int) ([]member, error) {
	out := make([]member, 0, n)
	for len(out) < n {
		if err := w.fill(ctx); err != nil {
			return nil, err
		}
		best := -1
		for i := range w.parts {
			if len(w.parts[i].buf) > 0 && (best < 0 || w.parts[i].buf[0].k.Less(w.parts[best].buf[0].k)) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		pw := &w.parts[best]
		// Take the run of this partition's members that come before every other partition's head.
		take := 1
		for take < len(pw.buf) && len(out)+take < n && w.beforeOthers(best, pw.buf[take].k) {
			take++
		}
		out = append(out, pw.buf[:take]...)
		pw.buf = pw.buf[take:]
	}
	return out, nil
}

// beforeOthers reports whether k comes before the head of every other partition's buffer.
func (w *indexWalk) beforeOthers(i int, k OrderKey) bool {
	for j := range w.parts {
		if j != i && len(w.parts[j].buf) > 0 && !k.Less(w.parts[j].buf[0].k) {
			return false
		}
	}
	return true
}

// fill reads the next chunk of every partition whose buffer is empty and which has more, in one
// pipeline: after the last member read, the members tied with it on time and with a greater id,
// then a chunk of the members at later times.
func (w *indexWalk) fill(ctx context.Context) error {
	type read struct {
		i          int
		ties, rest *redis.ZSliceCmd
	}
	var reads []read
	pipe := w.s.rdb.Pipeline()
	for i := range w.parts {
		pw := &w.parts[i]
		if len(pw.buf) > 0 || pw.done {
			continue
		}
		key := w.index(w.s.tag(pw.p))
		r := read{i: i}
		if pw.last == nil {
			r.rest = pipe.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: "-inf", Max: "+inf", Count: int64(w.chunk)})
		} else {
			at := strconv.FormatInt(pw.last.At, 10)
			r.ties = pipe.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: at, Max: at})
			r.rest = pipe.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: "(" + at, Max: "+inf", Count: int64(w.chunk)})
		}
		reads = append(reads, r)
	}
	if len(reads) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("billing: read the line index: %w", err)
	}
	for _, r := range reads {
		pw := &w.parts[r.i]
		if r.ties != nil {
			for _, z := range r.ties.Val() {
				if k := (OrderKey{At: int64(z.Score), ID: z.Member.(string)}); pw.last.Less(k) {
					pw.buf = append(pw.buf, member{pw.p, k})
				}
			}
		}
		rest := r.rest.Val()
		for _, z := range rest {
			pw.buf = append(pw.buf, member{pw.p, OrderKey{At: int64(z.Score), ID: z.Member.(string)}})
		}
		pw.done = len(rest) < w.chunk
		if len(pw.buf) > 0 {
			last := pw.buf[len(pw.buf)-1].k
			pw.last = &last
		}
	}
	return nil
}

// Reconciliation is the differences between Meta's verdicts and ours for a WABA-month.
type Reconciliation struct {
	WABA   string           `json:"waba"`
	Month  string           `json:"month"`
	Counts map[string]int64 `json:"counts"` // "messages" with any difference, and per kind
	Diffs  []Diff           `json:"diffs"`
	Next   string           `json:"next,omitempty"`
}

// Reconciliation returns the difference counts and a page of difference records.
func (s *Store) Reconciliation(ctx context.Context, waba, month, cursor string, limit int) (Reconciliation, error) {
	wm := waba + "|" + month
	after, err := decodeCursor(cursor)
	if err != nil {
		return Reconciliation{}, err
	}
	parts, err := s.partitions(ctx)
	if err != nil {
		return Reconciliation{}, err
	}
	out := Reconciliation{WABA: waba, Month: month, Counts: map[string]int64{}, Diffs: []Diff{}}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(parts))
	for i, p := range parts {
		cmds[i] = pipe.HGetAll(ctx, kDiffCounts(s.tag(p), wm))
	}
	if len(parts) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return out, fmt.Errorf("billing: read reconciliation counts of %s: %w", wm, err)
		}
	}
	for _, c := range cmds {
		for k, v := range c.Val() {
			n, _ := strconv.ParseInt(v, 10, 64)
			if out.Counts[k] += n; out.Counts[k] == 0 {
				delete(out.Counts, k)
			}
		}
	}
	ms, more, err := s.page(ctx, parts, func(tag string) string { return kDiffIndex(tag, wm) }, after, limit)
	if err != nil {
		return out, err
	}
	pipe = s.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(ms))
	for i, m := range ms {
		gets[i] = pipe.HGet(ctx, kDiffs(s.tag(m.p)), m.k.ID)
	}
	if len(ms) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return out, fmt.Errorf("billing: read differences of %s: %w", wm, err)
		}
	}
	for _, g := range gets {
		var d Diff
		if err := json.Unmarshal([]byte(g.Val()), &d); err == nil {
			out.Diffs = append(out.Diffs, d)
		}
	}
	if more && len(ms) > 0 {
		out.Next = encodeCursor(ms[len(ms)-1].k)
	}
	return out, nil
}

// settleVolume moves the WABA's messages of a volume group that fall above the first tier from
// the list price to their tier's price. Every member (one per partition, WABA and number) holds
// lines with one totals key, so it counts the member's lines after each cut and moves them by
// count: the member's hour counters after the cut's hour, plus its lines in the cut's hour that
// come after the cut, read exactly from the group's sorted set (or, when the cut is in the first
// half of its hour, the counter of the cut's hour less its lines at or before the cut). After the
// cuts, two round trips: the members with their sample lines, the counters of the WABA's numbers
// and the cuts' hours; then the members of the lines read in those hours.
func (s *Store) settleVolume(ctx context.Context, st *settler, waba string, numbers []string, group string, r ratecard.Rate, u *VolumeTierUsage, add func(string, int64)) error {
	var cuts []*OrderKey
	for k := 0; k < len(r.Tiers)-1; k++ {
		c, err := st.cut(ctx, group, r.Tiers[k].Upper)
		if err != nil {
			return err
		}
		if c == nil {
			break
		}
		cuts = append(cuts, c)
	}
	u.ByTier[r.Tiers[0].String()] = u.WABAMessages
	if len(cuts) == 0 || len(st.parts) == 0 {
		return nil
	}
	// The group's month (groupRate checked its six fields) fixes the slots of its counters.
	base := slotBase(strings.Split(group, "|")[2])
	// Per cut, the side of the cut in its hour that is read exactly: the lines after the cut when
	// the cut is in the second half of its hour (or its hour is the first slot), else those at or
	// before it, whose count is taken from the member's counter of that hour.
	slots := make([]int64, len(cuts))
	los, his := make([]string, len(cuts)), make([]string, len(cuts))
	afterSide := make([]bool, len(cuts))
	for k, c := range cuts {
		slots[k] = hourSlot(base, c.At)
		at := strconv.FormatInt(c.At, 10)
		lo, hi := slotRange(base, slots[k])
		switch {
		case slots[k] == 0:
			afterSide[k] = true
		case slots[k] < hourSlots-1:
			afterSide[k] = c.At-(base+slots[k]*3600) >= base+(slots[k]+1)*3600-1-c.At
		}
		if afterSide[k] {
			los[k], his[k] = at, hi
		} else {
			los[k], his[k] = lo, at
		}
	}
	type part struct {
		gm     *redis.MapStringStringCmd
		old    *redis.IntCmd
		counts map[string]*redis.StringCmd // member → its counters
		hours  []*redis.ZSliceCmd          // per cut: the group's lines on the read side of the cut in its hour
	}
	ps := make([]part, len(st.parts))
	pipe := s.rdb.Pipeline()
	for i, p := range st.parts {
		tag := s.tag(p)
		ps[i] = part{gm: pipe.HGetAll(ctx, kGroupMembers(tag, group)), old: pipe.Exists(ctx, kGroupSet(tag, group)), counts: map[string]*redis.StringCmd{}}
		for _, n := range numbers {
			m := waba + "#" + n
			ps[i].counts[m] = pipe.Get(ctx, kGroupCount(tag, m, group))
		}
		for k := range cuts {
			ps[i].hours = append(ps[i].hours, pipe.ZRangeByScoreWithScores(ctx, kGroup(tag, group), &redis.ZRangeBy{Min: los[k], Max: his[k]}))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("billing: count tiers of %s: %w", group, err)
	}
	type mem struct {
		p      int
		member string
		sample Line
		counts *redis.StringCmd
	}
	var mems []mem
	pipe = s.rdb.Pipeline()
	after := make([][][]string, len(ps)) // partition, cut → ids on the read side of the cut in its hour
	lines := make([]*redis.SliceCmd, len(ps))
	for i, pt := range ps {
		if pt.old.Val() > 0 {
			return fmt.Errorf("partition %d, group %s: %w", st.parts[i], group, ErrOldLayout)
		}
		m := pt.gm.Val()
		for _, w := range sortedKeys(m) {
			if !strings.HasPrefix(w, waba+"#") {
				continue
			}
			l, err := decodeLine("", m[w])
			if err != nil {
				return fmt.Errorf("billing: sample line of %s in group %s: %w", w, group, err)
			}
			c, ok := pt.counts[w]
			if !ok { // a number without lines in the totals: read its counters now
				c = pipe.Get(ctx, kGroupCount(s.tag(st.parts[i]), w, group))
			}
			mems = append(mems, mem{i, w, l, c})
		}
		after[i] = make([][]string, len(cuts))
		var ids []string
		for k, c := range cuts {
			for _, z := range pt.hours[k].Val() {
				if key := (OrderKey{At: int64(z.Score), ID: z.Member.(string)}); c.Less(key) == afterSide[k] {
					after[i][k] = append(after[i][k], key.ID)
					ids = append(ids, key.ID)
				}
			}
		}
		if len(ids) > 0 {
			lines[i] = pipe.HMGet(ctx, kLines(s.tag(st.parts[i])), ids...)
		}
	}
	if len(mems) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("billing: lines at the cuts of %s: %w", group, err)
	}
	// resid[partition, member][k]: the member's lines on the read side of cut k in its hour.
	type pm struct {
		p int
		m string
	}
	resid := map[pm][]int64{}
	for i := range ps {
		if lines[i] == nil {
			continue
		}
		vals, j := lines[i].Val(), 0
		for k := range cuts {
			for range after[i][k] {
				str, _ := vals[j].(string)
				j++
				m, ok := memberOfStored(str)
				if !ok {
					continue // removed since it was listed
				}
				rs := resid[pm{i, m}]
				if rs == nil {
					rs = make([]int64, len(cuts))
					resid[pm{i, m}] = rs
				}
				rs[k]++
			}
		}
	}
	for _, m := range mems {
		cnt := slotCounts(m.counts.Val())
		for sl := hourSlots - 2; sl >= 0; sl-- {
			cnt[sl] += cnt[sl+1] // cnt[sl]: lines in slot sl and after
		}
		// above[k]: members strictly after cut k.
		above := make([]int64, len(cuts))
		rs := resid[pm{m.p, m.member}]
		for k := range cuts {
			var read int64
			if rs != nil {
				read = rs[k]
			}
			switch {
			case !afterSide[k]: // the hour and after, less its lines at or before the cut
				above[k] = cnt[slots[k]] - read
			case slots[k]+1 < hourSlots:
				above[k] = cnt[slots[k]+1] + read
			default:
				above[k] = read
			}
		}
		key := keyOf(&m.sample, m.sample.PricingType, m.sample.Unpriced)
		for k := range cuts {
			n := above[k]
			if k+1 < len(cuts) {
				n -= above[k+1]
			}
			if n == 0 {
				continue
			}
			t := r.Tiers[k+1]
			u.ByTier[r.Tiers[0].String()] -= n
			u.ByTier[t.String()] += n
			contributeKey(key, -n, -n*int64(m.sample.List), add)
			contributeKey(key, n, n*int64(t.Price), add)
		}
	}
	return nil
}
