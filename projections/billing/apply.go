package billing

import (
	"strconv"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

// Difference kinds of reconciliation. The list is only appended to.
const (
	DiffBillable     = "billable"
	DiffCategory     = "category"
	DiffPricingType  = "pricing_type"
	DiffPricingModel = "pricing_model"
	DiffConversation = "conversation"
)

// Diff is a reconciliation record: a delivered message whose Meta verdict differs from ours.
type Diff struct {
	ID     string          `json:"id"`
	WAMID  string          `json:"wamid"`
	Pair   string          `json:"pair"`
	WABA   string          `json:"waba"`
	Number string          `json:"number"`
	Month  string          `json:"month"`
	At     events.UnixTime `json:"at"`
	Kinds  []string        `json:"kinds"`
	Ours   events.Verdict  `json:"ours"`
	Meta   events.Verdict  `json:"meta"`
}

// WM is the WABA-month the diff is counted under.
func (d Diff) WM() string { return d.WABA + "|" + d.Month }

// Compare returns the kinds in which Meta's verdict differs from ours. Categories are compared
// after normalising spellings (A6). Conversation ids differ in kind, not value: ours are derived
// ids, Meta's are its own, so a difference is one side counting the message in a conversation and
// the other not.
func Compare(ours, meta events.Verdict) []string {
	var k []string
	if ours.Billable != meta.Billable {
		k = append(k, DiffBillable)
	}
	// A field Meta did not send is no difference: CBP webhooks carry no pricing.type, v24+ omits
	// the conversation outside free-entry-point windows.
	// (Equal spellings normalise alike: most pairs are equal and need no normalising.)
	if meta.Category != "" && ours.Category != meta.Category &&
		events.NormalizeCategory(string(ours.Category)) != events.NormalizeCategory(string(meta.Category)) {
		k = append(k, DiffCategory)
	}
	if meta.PricingType != "" && ours.PricingType != meta.PricingType {
		k = append(k, DiffPricingType)
	}
	if ours.PricingModel != "" && meta.PricingModel != "" && ours.PricingModel != meta.PricingModel {
		k = append(k, DiffPricingModel)
	}
	// Conversations are compared where they bill: under CBP (under PMP, v23 gives every message an
	// id of its own).
	cbp := meta.PricingModel == "CBP" || (meta.PricingModel == "" && ours.PricingModel == "CBP")
	if cbp && (ours.ConversationID == "") != (meta.ConversationID == "") {
		k = append(k, DiffConversation)
	}
	return k
}

// Prior is what Apply needs to know of the stored state: the high-water causes per source
// partition and the stored lines and diffs of ids the batch retracts.
type Prior struct {
	HW    map[int32]events.Cause
	Lines map[string]Line
	Diffs map[string]Diff
}

// Bad is an event the projection could not use, kept with the reason.
type Bad struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// Plan is the state change of one batch: what the store writes in one atomic unit.
type Plan struct {
	HW       map[int32]events.Cause      // new high-water causes, only the ones that moved
	Put      []Line                      // lines to store (new, or replacing a deleted one)
	Del      []Line                      // stored lines to remove (retracted or replaced)
	PutDiffs []Diff                      // reconciliation records to store
	DelDiffs []Diff                      // stored records to remove
	Totals   map[string]map[string]int64 // WABA-month → totals field → delta
	Counts   map[string]map[string]int64 // WABA-month → difference kind → delta
	Bad      []Bad
	Applied  int // events after the high-water mark
	Skipped  int // events at or below it
}

// Apply computes the plan of a batch, in log order. It is pure: the same batch and prior give the
// same plan. Events at or below their partition's high-water cause are skipped; a correction
// removes the lines and diffs of the ids it retracts, whether stored or earlier in the batch.
func Apply(pr *Pricer, batch []events.Event, prior Prior) Plan {
	p := Plan{HW: map[int32]events.Cause{}, Totals: map[string]map[string]int64{}, Counts: map[string]map[string]int64{}}
	// The high-water mark of each source partition (a batch has few): the prior's, then the cause
	// of each event applied. Kept in a slice, not a map: every event reads and moves its mark.
	type mark struct {
		c            events.Cause
		known, moved bool
	}
	var (
		sources touchOrder[int32]
		marks   []mark
	)
	markOf := func(part int32) *mark {
		i, first := sources.of(part)
		if first {
			c, ok := prior.HW[part]
			marks = append(marks, mark{c: c, known: ok})
		}
		return &marks[i]
	}
	// The arena of lines holds a version per charge and the stored versions retracted: sized to
	// those, not the batch (a replay's batches are three quarters other events, and the arena of
	// lines is the plan's largest allocation).
	charges := 0
	for i := range batch {
		if _, ok := batch[i].Data.(*events.Charge); ok {
			charges++
		}
	}
	lines, diffs := newVersions[Line](charges+len(prior.Lines)), newVersions[Diff](0)
	// Lines are first aggregated by their totals key (few per batch), then expanded into fields.
	type agg struct{ lines, amount int64 }
	aggIdx := map[totalsKey]int{}
	var aggs []agg
	var aggKeys []totalsKey
	addLine := func(l *Line, sign int64) {
		k := keyOf(l, l.PricingType, l.Unpriced)
		i, ok := aggIdx[k]
		if !ok {
			i = len(aggs)
			aggIdx[k] = i
			aggs = append(aggs, agg{})
			aggKeys = append(aggKeys, k)
		}
		aggs[i].lines += sign
		aggs[i].amount += sign * int64(l.List)
	}
	addDiff := func(d *Diff, sign int64) {
		m := p.Counts[d.WM()]
		if m == nil {
			m = map[string]int64{}
			p.Counts[d.WM()] = m
		}
		m["messages"] += sign
		for _, k := range d.Kinds {
			m[k] += sign
		}
	}
	for i := range batch {
		e := &batch[i]
		if e.Cause == nil {
			p.Bad = append(p.Bad, Bad{ID: e.ID, Type: string(e.Type), Reason: "no cause: cannot be applied exactly once"})
			continue
		}
		m := markOf(e.Cause.Partition)
		if m.known && !e.Cause.After(m.c) {
			p.Skipped++
			continue
		}
		m.c, m.known, m.moved = *e.Cause, true, true
		p.Applied++
		switch d := e.Data.(type) {
		case *events.Charge:
			lines.put(e.ID, pr.Line(*e, d), prior.Lines, addLine)
		case *events.MessageDelivered:
			if d.Meta == nil {
				continue
			}
			kinds := Compare(d.Ours, *d.Meta)
			if len(kinds) == 0 {
				continue
			}
			df := Diff{ID: e.ID, WAMID: d.WAMID, Pair: e.Key, WABA: d.WABAID, Number: d.PhoneNumberID,
				Month: d.Month, At: d.DeliveredAt, Kinds: kinds, Ours: d.Ours, Meta: *d.Meta}
			if df.WABA == "" {
				df.WABA = UnconfiguredWABA
			}
			if df.Month == "" {
				df.Month = d.DeliveredAt.Time().Format("2006-01")
			}
			diffs.put(e.ID, df, prior.Diffs, addDiff)
		case *events.Correction:
			for _, id := range d.Retracts {
				lines.retract(id, prior.Lines, addLine)
				diffs.retract(id, prior.Diffs, addDiff)
			}
		}
	}
	for i, m := range marks {
		if m.moved {
			p.HW[sources.keys[i]] = m.c
		}
	}
	p.Del, p.Put = lines.changes()
	p.DelDiffs, p.PutDiffs = diffs.changes()
	// Summed by field in parts first: many totals keys share a WABA-month's fields.
	type wmField struct {
		waba, month string
		f           field
	}
	sums := map[wmField]int64{}
	for i, k := range aggKeys {
		a := aggs[i]
		if a.lines == 0 && a.amount == 0 {
			continue
		}
		contributeParts(k, a.lines, a.amount, func(f field, v int64) { sums[wmField{k.waba, k.month, f}] += v })
	}
	for k, v := range sums {
		wm := k.waba + "|" + k.month
		m := p.Totals[wm]
		if m == nil {
			m = map[string]int64{}
			p.Totals[wm] = m
		}
		m[k.f.String()] += v
	}
	for wm, m := range p.Totals {
		for f, v := range m {
			if v == 0 {
				delete(m, f)
			}
		}
		if len(m) == 0 {
			delete(p.Totals, wm)
		}
	}
	for wm, m := range p.Counts {
		for f, v := range m {
			if v == 0 {
				delete(m, f)
			}
		}
		if len(m) == 0 {
			delete(p.Counts, wm)
		}
	}
	return p
}

// Totals dimensions: a line adds to one bucket per dimension.
const (
	DimAll         = "all"
	DimNumber      = "number"
	DimMarket      = "market"
	DimCategory    = "category"
	DimPricingType = "pricing_type"
	DimModel       = "model"
	DimCurrency    = "currency"
	DimUnpriced    = "unpriced" // by unpriced reason
)

// Measures of a bucket.
const (
	mLines    = "l"
	mBillable = "b"
	mUnpriced = "u"
	mAmount   = "a"
)

// totalsKey is everything about a line that decides which totals fields it moves.
type totalsKey struct {
	waba, month, number, market, category, pt, model, currency, unpriced, group string
	billable                                                                    bool
}

func keyOf(l *Line, pt events.PricingType, unpriced string) totalsKey {
	market := l.Market
	if market == "" {
		market = "?"
	}
	return totalsKey{waba: l.WABA, month: l.Month, number: l.Number, market: market, category: string(l.Category), pt: string(pt),
		model: string(l.Model), currency: l.Currency, unpriced: unpriced, group: l.Group, billable: l.Billable}
}

// Contribute calls add for every totals field line l changes when counted (sign +1) or uncounted
// (sign -1) at the given amount, pricing type and unpriced reason. Apply counts lines at their list
// price; settlement moves free-tier and higher-tier lines by uncounting and recounting them.
func Contribute(l Line, amount ratecard.Micros, pt events.PricingType, unpriced string, sign int64, add func(field string, v int64)) {
	contributeKey(keyOf(&l, pt, unpriced), sign, sign*int64(amount), add)
}

// contributeKey adds n lines of key k with a total amount to the totals fields.
func contributeKey(k totalsKey, n, amount int64, add func(field string, v int64)) {
	contributeParts(k, n, amount, func(f field, v int64) { add(f.String(), v) })
}

// field is a totals field in parts: "dim:val|measure", or "group:val" when measure is empty.
type field struct{ dim, val, measure string }

func (f field) String() string {
	if f.measure == "" {
		return f.dim + ":" + f.val
	}
	return f.dim + ":" + f.val + "|" + f.measure
}

// contributeParts is contributeKey with the fields in parts, so a caller can sum them before
// building their names.
func contributeParts(k totalsKey, n, amount int64, add func(f field, v int64)) {
	dims := [...][2]string{
		{DimAll, ""}, {DimNumber, k.number}, {DimMarket, k.market}, {DimCategory, k.category},
		{DimPricingType, k.pt}, {DimModel, k.model}, {DimCurrency, k.currency},
	}
	for _, d := range dims {
		add(field{d[0], d[1], mLines}, n)
		if k.billable {
			add(field{d[0], d[1], mBillable}, n)
		}
		if k.unpriced != "" {
			add(field{d[0], d[1], mUnpriced}, n)
		}
		if amount != 0 {
			add(field{d[0], d[1], mAmount}, amount)
		}
	}
	if k.unpriced != "" {
		add(field{DimUnpriced, k.unpriced, mLines}, n)
	}
	if k.group != "" {
		add(field{"group", k.group, ""}, n)
	}
}

func causeString(c events.Cause) string {
	return strconv.FormatInt(c.Offset, 10) + ":" + strconv.FormatInt(int64(c.Index), 10)
}

// versions tracks the records a batch touches, by id in first-touch order: for each, the stored
// version and the version after the batch so far, as indexes into one arena (-1 = none).
type versions[T any] struct {
	idx   map[string]int32
	slots []struct{ stored, cur int32 }
	arena []T
}

func newVersions[T any](n int) *versions[T] {
	return &versions[T]{idx: make(map[string]int32, n), arena: make([]T, 0, n)}
}

func (v *versions[T]) slot(id string, prior map[string]T) *struct{ stored, cur int32 } {
	i, ok := v.idx[id]
	if !ok {
		i = int32(len(v.slots))
		v.idx[id] = i
		s := struct{ stored, cur int32 }{-1, -1}
		if x, ok := prior[id]; ok {
			s.stored, s.cur = int32(len(v.arena)), int32(len(v.arena))
			v.arena = append(v.arena, x)
		}
		v.slots = append(v.slots, s)
	}
	return &v.slots[i]
}

// put makes x the version of id; add takes the version it replaces out of the totals and x in.
func (v *versions[T]) put(id string, x T, prior map[string]T, add func(*T, int64)) {
	s := v.slot(id, prior)
	if s.cur >= 0 {
		add(&v.arena[s.cur], -1)
	}
	s.cur = int32(len(v.arena))
	v.arena = append(v.arena, x)
	add(&v.arena[s.cur], +1)
}

// retract removes the current version of id, if any, taking it out of the totals.
func (v *versions[T]) retract(id string, prior map[string]T, add func(*T, int64)) {
	if s := v.slot(id, prior); s.cur >= 0 {
		add(&v.arena[s.cur], -1)
		s.cur = -1
	}
}

// changes lists the stored versions to delete and the new ones to put, in first-touch order so
// equal inputs give equal plans. Usually every id was new and written once: the arena is then the
// list of puts as it is. Otherwise the puts are compacted into the arena itself when each one's
// current version lies at or after the index it moves to (so every write lands on a version
// already read or never to be read; ids written once, retracted, or written again all keep to
// this), and copied into a new slice when not.
func (v *versions[T]) changes() (del, put []T) {
	same, inPlace := len(v.arena) == len(v.slots), true
	j := int32(0) // the index of the next put
	for i, s := range v.slots {
		if s.stored >= 0 || s.cur != int32(i) {
			same = false
		}
		if s.cur >= 0 && s.cur != s.stored {
			if s.cur < j {
				inPlace = false
			}
			j++
		}
	}
	if same {
		return nil, v.arena
	}
	for _, s := range v.slots {
		if s.stored >= 0 && s.cur != s.stored {
			del = append(del, v.arena[s.stored])
		}
	}
	if inPlace {
		// del holds copies of the stored versions, so the arena can be overwritten now.
		put = v.arena[:0]
	} else {
		put = make([]T, 0, len(v.slots))
	}
	for _, s := range v.slots {
		if s.cur >= 0 && s.cur != s.stored {
			put = append(put, v.arena[s.cur])
		}
	}
	return del, put
}
