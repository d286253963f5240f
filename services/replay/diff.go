package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratelimit"
)

// MaxExamples bounds the differences a report lists one by one; the counts are always complete.
const MaxExamples = 200

// Report is the comparison of a rebuilt namespace with the live one.
type Report struct {
	Live    string `json:"live"`
	Rebuilt string `json:"rebuilt"`
	// Compared is false when only a rebuild was asked for.
	Compared bool `json:"compared"`
	// From and To, when set, restrict the comparison to ledger lines delivered in [From, To);
	// totals and counters are then not compared (the live ones cover all time).
	From events.UnixTime `json:"from,omitempty"`
	To   events.UnixTime `json:"to,omitempty"`

	Billing   BillingDiff `json:"billing"`
	RateLimit CounterDiff `json:"ratelimit"`
	// Positions are the high-water causes of each side per projection and partition: when they
	// differ, the two sides did not apply the same events and differences are expected.
	Positions []Position `json:"positions,omitempty"`
	// Replay is what the replay did (set by Run).
	Replay *Stats `json:"replay,omitempty"`
}

// Position is one projection's high-water cause in one partition on both sides.
type Position struct {
	Projection string `json:"projection"`
	Partition  int32  `json:"partition"`
	Live       string `json:"live"`    // "offset:index", "" when none
	Rebuilt    string `json:"rebuilt"` // idem
}

// BillingDiff compares the ledgers: settled totals per WABA-month and every settled line.
type BillingDiff struct {
	WABAMonths   int         `json:"waba_months"`
	LinesLive    int64       `json:"lines_live"`
	LinesRebuilt int64       `json:"lines_rebuilt"`
	Totals       []TotalDiff `json:"totals,omitempty"`
	LineDiffs    int64       `json:"line_diffs"`
	Lines        []LineDiff  `json:"lines,omitempty"` // the first MaxExamples
	// Reconciliation lists WABA-months whose counts of Meta-verdict differences differ.
	Reconciliation []ReconDiff `json:"reconciliation,omitempty"`
}

// TotalDiff is a WABA-month whose settled totals differ.
type TotalDiff struct {
	WABA    string         `json:"waba"`
	Month   string         `json:"month"`
	Live    billing.Bucket `json:"live"`
	Rebuilt billing.Bucket `json:"rebuilt"`
}

// LineDiff is one ledger line that differs: missing from the rebuilt ledger, extra in it, or
// changed (the fields that differ).
type LineDiff struct {
	Kind   string      `json:"kind"` // missing, extra, changed
	WABA   string      `json:"waba"`
	Month  string      `json:"month"`
	ID     string      `json:"id"`
	WAMID  string      `json:"wamid"`
	Fields []FieldDiff `json:"fields,omitempty"`
}

// FieldDiff is one field of a changed line.
type FieldDiff struct {
	Field   string `json:"field"`
	Live    string `json:"live"`
	Rebuilt string `json:"rebuilt"`
}

// ReconDiff is a WABA-month whose reconciliation counts differ.
type ReconDiff struct {
	WABA    string           `json:"waba"`
	Month   string           `json:"month"`
	Live    map[string]int64 `json:"live"`
	Rebuilt map[string]int64 `json:"rebuilt"`
}

// CounterDiff compares the rate-limit state entry by entry (every hash field and sorted-set
// member under the namespace, the namespace stripped), which the projection keeps independent of
// how the log was cut into batches.
type CounterDiff struct {
	Compared       bool           `json:"compared"`
	EntriesLive    int            `json:"entries_live"`
	EntriesRebuilt int            `json:"entries_rebuilt"`
	Differences    int            `json:"differences"`
	ByFamily       map[string]int `json:"by_family,omitempty"` // differing entries per key family (meta, lim, tp, pr, …)
	Examples       []string       `json:"examples,omitempty"`  // "- entry" only live, "+ entry" only rebuilt
}

// Equal reports whether the rebuilt namespace matches the live one.
func (r *Report) Equal() bool {
	return len(r.Billing.Totals) == 0 && r.Billing.LineDiffs == 0 && len(r.Billing.Reconciliation) == 0 &&
		r.RateLimit.Differences == 0
}

// Compare diffs the rebuilt namespace against the live one. from/to (0 = open) restrict the
// comparison to ledger lines delivered in [from, to).
func Compare(ctx context.Context, rdb redis.UniversalClient, live, rebuilt *Namespace, partitions int, from, to events.UnixTime) (*Report, error) {
	r := &Report{Live: live.Prefix, Rebuilt: rebuilt.Prefix, Compared: true, From: from, To: to}
	ranged := from != 0 || to != 0
	if err := r.positions(ctx, live, rebuilt, partitions); err != nil {
		return nil, err
	}
	wms, err := wabaMonths(ctx, rdb, live, rebuilt)
	if err != nil {
		return nil, err
	}
	r.Billing.WABAMonths = len(wms)
	for _, wm := range wms {
		waba, month, _ := strings.Cut(wm, "|")
		if !ranged {
			if err := r.compareTotals(ctx, live, rebuilt, waba, month); err != nil {
				return nil, err
			}
		}
		if err := r.compareLines(ctx, live, rebuilt, waba, month, from, to); err != nil {
			return nil, err
		}
	}
	if !ranged {
		if err := r.compareCounters(ctx, rdb, live, rebuilt); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Report) positions(ctx context.Context, live, rebuilt *Namespace, partitions int) error {
	for i, lp := range live.Projections() {
		rp := rebuilt.Projections()[i]
		for p := int32(0); p < int32(partitions); p++ {
			a, aok, err := lp.HighWater(ctx, p)
			if err != nil {
				return err
			}
			b, bok, err := rp.HighWater(ctx, p)
			if err != nil {
				return err
			}
			pos := Position{Projection: lp.Name(), Partition: p}
			if aok {
				pos.Live = strconv.FormatInt(a.Offset, 10) + ":" + strconv.Itoa(int(a.Index))
			}
			if bok {
				pos.Rebuilt = strconv.FormatInt(b.Offset, 10) + ":" + strconv.Itoa(int(b.Index))
			}
			if aok || bok {
				r.Positions = append(r.Positions, pos)
			}
		}
	}
	return nil
}

// wabaMonths lists the WABA-months either side has totals for ("<waba>|<month>", sorted).
func wabaMonths(ctx context.Context, rdb redis.UniversalClient, nss ...*Namespace) ([]string, error) {
	set := map[string]bool{}
	for _, ns := range nss {
		keys, err := scanKeys(ctx, rdb, ns.Prefix+billing.Name+":{p")
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if _, wm, ok := strings.Cut(k, "}:t:"); ok {
				set[wm] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for wm := range set {
		out = append(out, wm)
	}
	sort.Strings(out)
	return out, nil
}

func (r *Report) compareTotals(ctx context.Context, live, rebuilt *Namespace, waba, month string) error {
	a, err := live.Billing.Totals(ctx, waba, month)
	if err != nil {
		return fmt.Errorf("replay: live totals of %s %s: %w", waba, month, err)
	}
	b, err := rebuilt.Billing.Totals(ctx, waba, month)
	if err != nil {
		return fmt.Errorf("replay: rebuilt totals of %s %s: %w", waba, month, err)
	}
	if a.Total != b.Total || !sameBuckets(a.ByCategory, b.ByCategory) || !sameBuckets(a.ByPricingType, b.ByPricingType) ||
		!sameBuckets(a.ByNumber, b.ByNumber) || !sameBuckets(a.ByMarket, b.ByMarket) {
		r.Billing.Totals = append(r.Billing.Totals, TotalDiff{WABA: waba, Month: month, Live: a.Total, Rebuilt: b.Total})
	}
	ra, err := live.Billing.Reconciliation(ctx, waba, month, "", 1)
	if err != nil {
		return err
	}
	rb, err := rebuilt.Billing.Reconciliation(ctx, waba, month, "", 1)
	if err != nil {
		return err
	}
	if !sameCounts(ra.Counts, rb.Counts) {
		r.Billing.Reconciliation = append(r.Billing.Reconciliation, ReconDiff{WABA: waba, Month: month, Live: ra.Counts, Rebuilt: rb.Counts})
	}
	return nil
}

func sameBuckets(a, b map[string]billing.Bucket) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sameCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (r *Report) compareLines(ctx context.Context, live, rebuilt *Namespace, waba, month string, from, to events.UnixTime) error {
	in := func(l billing.Settled) bool { return (from == 0 || l.At >= from) && (to == 0 || l.At < to) }
	nLive, nRebuilt, err := diffLines(ctx,
		&lineStream{side: "live", next: live.Billing.LineReader(waba, month).Next},
		&lineStream{side: "rebuilt", next: rebuilt.Billing.LineReader(waba, month).Next},
		in, func(d LineDiff) {
			d.WABA, d.Month = waba, month
			r.lineDiff(d)
		})
	if err != nil {
		return fmt.Errorf("replay: lines of %s %s: %w", waba, month, err)
	}
	r.Billing.LinesLive += nLive
	r.Billing.LinesRebuilt += nRebuilt
	return nil
}

// lineStream is one side's lines in (time, id) order, read a page at a time.
type lineStream struct {
	side string
	next func(context.Context) ([]billing.Settled, error)
	buf  []billing.Settled
	done bool
}

// head returns the next line, nil at the end.
func (s *lineStream) head(ctx context.Context) (*billing.Settled, error) {
	for len(s.buf) == 0 && !s.done {
		ls, err := s.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.side, err)
		}
		s.buf, s.done = ls, len(ls) == 0
	}
	if len(s.buf) == 0 {
		return nil, nil
	}
	return &s.buf[0], nil
}

// diffLines merges the two sides' lines in (time, id) order and emits a LineDiff for every line
// that differs: changed (same id, some field differs, delivered_at included), missing (live
// only) or extra (rebuilt only). Lines in step are compared as they are read, so memory holds
// only the lines not matched yet, not a side's month: a line whose time changed waits for its
// other side, matched by id at the end. Emitted in order: changed lines in step, changed lines
// whose time moved (by rebuilt time), missing, extra (each by time). It returns how many lines
// each side has in range.
func diffLines(ctx context.Context, live, rebuilt *lineStream, in func(billing.Settled) bool, emit func(LineDiff)) (nLive, nRebuilt int64, err error) {
	onlyLive := map[string]billing.Settled{}
	var onlyRebuilt []billing.Settled
	changed := func(a, b billing.Settled) {
		if fs := lineFields(a, b); len(fs) > 0 {
			emit(LineDiff{Kind: "changed", ID: b.ID, WAMID: b.WAMID, Fields: fs})
		}
	}
merge:
	for {
		a, err := live.head(ctx)
		if err != nil {
			return 0, 0, err
		}
		b, err := rebuilt.head(ctx)
		if err != nil {
			return 0, 0, err
		}
		switch {
		case a == nil && b == nil:
			break merge
		case a != nil && !in(*a):
			live.buf = live.buf[1:]
		case b != nil && !in(*b):
			rebuilt.buf = rebuilt.buf[1:]
		case b == nil || a != nil && a.Key().Less(b.Key()):
			nLive++
			onlyLive[a.ID] = *a
			live.buf = live.buf[1:]
		case a == nil || b.Key().Less(a.Key()):
			nRebuilt++
			onlyRebuilt = append(onlyRebuilt, *b)
			rebuilt.buf = rebuilt.buf[1:]
		default:
			nLive++
			nRebuilt++
			changed(*a, *b)
			live.buf, rebuilt.buf = live.buf[1:], rebuilt.buf[1:]
		}
	}
	extra := onlyRebuilt[:0]
	for _, l := range onlyRebuilt {
		if old, ok := onlyLive[l.ID]; ok {
			delete(onlyLive, l.ID)
			changed(old, l)
			continue
		}
		extra = append(extra, l)
	}
	missing := make([]billing.Settled, 0, len(onlyLive))
	for _, l := range onlyLive {
		missing = append(missing, l)
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].Key().Less(missing[j].Key()) })
	for _, l := range missing {
		emit(LineDiff{Kind: "missing", ID: l.ID, WAMID: l.WAMID})
	}
	for _, l := range extra {
		emit(LineDiff{Kind: "extra", ID: l.ID, WAMID: l.WAMID})
	}
	return nLive, nRebuilt, nil
}

func (r *Report) lineDiff(d LineDiff) {
	r.Billing.LineDiffs++
	if len(r.Billing.Lines) < MaxExamples {
		r.Billing.Lines = append(r.Billing.Lines, d)
	}
}

// lineFields lists the fields of two settled versions of a line that differ.
func lineFields(a, b billing.Settled) []FieldDiff {
	var out []FieldDiff
	f := func(name, x, y string) {
		if x != y {
			out = append(out, FieldDiff{Field: name, Live: x, Rebuilt: y})
		}
	}
	f("amount", a.Amount.String(), b.Amount.String())
	f("list", a.List.String(), b.List.String())
	f("settled_pricing_type", string(a.SettledType), string(b.SettledType))
	f("tier", a.Tier, b.Tier)
	f("category", string(a.Category), string(b.Category))
	f("pricing_model", string(a.Model), string(b.Model))
	f("pricing_type", string(a.PricingType), string(b.PricingType))
	f("billable", strconv.FormatBool(a.Billable), strconv.FormatBool(b.Billable))
	f("reason", a.Reason, b.Reason)
	f("market", a.Market, b.Market)
	f("currency", a.Currency, b.Currency)
	f("card", a.CardID, b.CardID)
	f("unpriced", a.Unpriced, b.Unpriced)
	f("delivered_at", a.At.String(), b.At.String())
	f("number", a.Number, b.Number)
	f("conversation_id", a.ConversationID, b.ConversationID)
	return out
}

func (r *Report) compareCounters(ctx context.Context, rdb redis.UniversalClient, live, rebuilt *Namespace) error {
	lp, rp := live.Prefix+ratelimit.Name+":", rebuilt.Prefix+ratelimit.Name+":"
	keys, err := unionKeys(ctx, rdb, lp, rp)
	if err != nil {
		return err
	}
	// The pair fields' trim index is derived from the fields, and how it lists them depends on
	// how the outputs were batched (ratelimit.PairTrimIndex): not compared.
	keys = slices.DeleteFunc(keys, ratelimit.PairTrimIndex)
	d := &r.RateLimit
	d.Compared = true
	var minus, plus []string // entries only live has, only rebuilt has
	// Undo records are compared by hour, whatever holds them: the hash written before the logs,
	// or the logs, whose bytes depend on how the outputs were batched (ratelimit.UndoLog).
	undoLive, undoRebuilt := undoHours{}, undoHours{}
	const chunk = 256
	for i := 0; i < len(keys); i += chunk {
		ks := keys[i:min(i+chunk, len(keys))]
		a, err := readEntries(ctx, rdb, lp, ks)
		if err != nil {
			return err
		}
		b, err := readEntries(ctx, rdb, rp, ks)
		if err != nil {
			return err
		}
		for j, k := range ks {
			if family(k) == "meta" { // the live consumer's log position is not state; a replay has none
				delete(a[j].hash, ratelimit.PositionField)
				delete(b[j].hash, ratelimit.PositionField)
			}
			if family(k) == "tp" { // minute fields, or seconds as stored before them: compared per second
				a[j].hash, b[j].hash = perSecond(a[j].hash), perSecond(b[j].hash)
			}
			if ratelimit.PairFields(k) { // the values live at each side's stream time: an expired one waits for its hour's trim
				if err := livePairFields(ctx, rdb, lp+k, a[j]); err != nil {
					return err
				}
				if err := livePairFields(ctx, rdb, rp+k, b[j]); err != nil {
					return err
				}
			}
			if hour, _, ok := ratelimit.UndoHour(k); ok {
				if err := undoLive.add(hour, a[j]); err != nil {
					return fmt.Errorf("replay: live %s: %w", k, err)
				}
				if err := undoRebuilt.add(hour, b[j]); err != nil {
					return fmt.Errorf("replay: rebuilt %s: %w", k, err)
				}
				continue
			}
			d.EntriesLive += a[j].len()
			d.EntriesRebuilt += b[j].len()
			minus = a[j].missingFrom(b[j], k, minus)
			plus = b[j].missingFrom(a[j], k, plus)
		}
	}
	for _, h := range unionKeysOf(undoLive, undoRebuilt) {
		a, b := keyContent{hash: undoLive.records(h)}, keyContent{hash: undoRebuilt.records(h)}
		d.EntriesLive += a.len()
		d.EntriesRebuilt += b.len()
		minus = a.missingFrom(b, h, minus)
		plus = b.missingFrom(a, h, plus)
	}
	sort.Strings(minus)
	sort.Strings(plus)
	if len(minus)+len(plus) > 0 {
		d.ByFamily = map[string]int{}
	}
	for _, x := range []struct {
		sign    string
		entries []string
	}{{"-", minus}, {"+", plus}} {
		for _, e := range x.entries {
			d.Differences++
			d.ByFamily[family(e)]++
			if len(d.Examples) < MaxExamples {
				d.Examples = append(d.Examples, x.sign+" "+e)
			}
		}
	}
	return nil
}

// livePairFields keeps in c, the content of the pair-state hash key, the values that have not
// expired at its partition's stream time (ratelimit.LivePairFields).
func livePairFields(ctx context.Context, rdb redis.UniversalClient, key string, c keyContent) error {
	if c.hash == nil {
		return nil
	}
	st, err := ratelimit.PairFieldsStream(ctx, rdb, key)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	ratelimit.LivePairFields(c.hash, st)
	return nil
}

// undoHours holds a namespace's undo records by hour key ("{rl.pN}:fx:<hour>"): those of its
// logs and those of its hash, which stand over the logs' (ratelimit.ApplyUndoLog).
type undoHours map[string]*undoHour

type undoHour struct{ logs, hash map[string]string }

// add takes what a key of hour holds: the hour's hash, or one of its logs.
func (u undoHours) add(hour string, c keyContent) error {
	if c.len() == 0 {
		return nil
	}
	h := u[hour]
	if h == nil {
		h = &undoHour{map[string]string{}, map[string]string{}}
		u[hour] = h
	}
	switch {
	case c.hash != nil:
		maps.Copy(h.hash, c.hash)
	case c.list != nil:
		for _, e := range c.list {
			if err := ratelimit.ApplyUndoLog(e, h.logs); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("neither a hash nor a log (%s)", c.broken)
	}
	return nil
}

// records returns the hour's records: the logs', the hash's over them.
func (u undoHours) records(hour string) map[string]string {
	h := u[hour]
	if h == nil {
		return nil
	}
	maps.Copy(h.logs, h.hash)
	return h.logs
}

// perSecond turns a throughput hash into one entry per second with messages, so a store holding
// seconds in the form from before the minute fields compares equal to its replay; a field neither
// form reads stays as it is (a difference).
func perSecond(h map[string]string) map[string]string {
	if len(h) == 0 {
		return h
	}
	secs, out := map[events.UnixTime]int64{}, map[string]string{}
	for f, v := range h {
		if err := ratelimit.AddThroughput(secs, f, v); err != nil {
			out[f] = v
		}
	}
	for sec, n := range secs {
		if n != 0 {
			out[strconv.FormatInt(int64(sec), 10)] = strconv.FormatInt(n, 10)
		}
	}
	return out
}

// family is the key family of a dumped entry: "{rl.p3}:tp:pn:123 …" → "tp".
func family(e string) string {
	_, rest, ok := strings.Cut(e, "}:")
	if !ok {
		rest = e
	}
	if i := strings.IndexAny(rest, ": "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// unionKeys returns the keys under either prefix, the prefix stripped, sorted.
func unionKeys(ctx context.Context, rdb redis.UniversalClient, prefixes ...string) ([]string, error) {
	set := map[string]struct{}{}
	for _, p := range prefixes {
		keys, err := scanKeys(ctx, rdb, p)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			set[strings.TrimPrefix(k, p)] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// keyContent is what one key holds: the fields of a hash, the members of a sorted set or a set
// (with their scores), the elements of a list, or a string; nothing for a missing key.
type keyContent struct {
	hash   map[string]string
	zset   map[string]float64
	set    map[string]struct{}
	list   []string
	str    *string
	broken string // a type the comparison does not know
}

func (c keyContent) len() int {
	n := len(c.hash) + len(c.zset) + len(c.set) + len(c.list)
	if c.str != nil || c.broken != "" {
		n++
	}
	return n
}

// missingFrom appends to out the entries of c that o does not hold, rendered as "key field=value"
// ("key member=score" for a sorted set, "key member" for a set, "key #i=element" for a list,
// "key =value" for a string).
func (c keyContent) missingFrom(o keyContent, key string, out []string) []string {
	for f, v := range c.hash {
		if w, ok := o.hash[f]; !ok || w != v {
			out = append(out, key+" "+f+"="+v)
		}
	}
	for m, sc := range c.zset {
		if w, ok := o.zset[m]; !ok || w != sc {
			out = append(out, fmt.Sprintf("%s %v=%v", key, m, sc))
		}
	}
	for m := range c.set {
		if _, ok := o.set[m]; !ok {
			out = append(out, key+" "+m)
		}
	}
	for i, e := range c.list {
		if i >= len(o.list) || o.list[i] != e {
			out = append(out, key+" #"+strconv.Itoa(i)+"="+e)
		}
	}
	if c.str != nil && (o.str == nil || *o.str != *c.str) {
		out = append(out, key+" ="+*c.str)
	}
	if c.broken != "" && o.broken != c.broken {
		out = append(out, key+" ("+c.broken+")")
	}
	return out
}

// readEntries reads the keys prefix+k of keys, pipelined: their types, then their contents.
func readEntries(ctx context.Context, rdb redis.UniversalClient, prefix string, keys []string) ([]keyContent, error) {
	pipe := rdb.Pipeline()
	types := make([]*redis.StatusCmd, len(keys))
	for j, k := range keys {
		types[j] = pipe.Type(ctx, prefix+k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("replay: key types under %s: %w", prefix, err)
	}
	pipe = rdb.Pipeline()
	cmds := make([]redis.Cmder, len(keys))
	out := make([]keyContent, len(keys))
	for j, k := range keys {
		switch t := types[j].Val(); t {
		case "hash":
			cmds[j] = pipe.HGetAll(ctx, prefix+k)
		case "zset":
			cmds[j] = pipe.ZRangeWithScores(ctx, prefix+k, 0, -1)
		case "set":
			cmds[j] = pipe.SMembers(ctx, prefix+k)
		case "list":
			cmds[j] = pipe.LRange(ctx, prefix+k, 0, -1)
		case "string":
			cmds[j] = pipe.Get(ctx, prefix+k)
		case "none":
		default:
			out[j].broken = "type " + t
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("replay: read keys under %s: %w", prefix, err)
	}
	for j := range keys {
		switch c := cmds[j].(type) {
		case *redis.MapStringStringCmd:
			out[j].hash = c.Val()
		case *redis.ZSliceCmd:
			zs := c.Val()
			out[j].zset = make(map[string]float64, len(zs))
			for _, z := range zs {
				m, ok := z.Member.(string)
				if !ok {
					m = fmt.Sprint(z.Member)
				}
				out[j].zset[m] = z.Score
			}
		case *redis.StringSliceCmd:
			ms := c.Val()
			if types[j].Val() == "list" {
				out[j].list = ms
				continue
			}
			out[j].set = make(map[string]struct{}, len(ms))
			for _, m := range ms {
				out[j].set[m] = struct{}{}
			}
		case *redis.StringCmd:
			if v, err := c.Result(); err == nil {
				out[j].str = &v
			}
		}
	}
	return out, nil
}
