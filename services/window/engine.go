package window

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/convmeter/convmeter/events"
)

// Config configures one partition's engine.
type Config struct {
	Partition int32
	// Lateness is how late an event may arrive and still change the outcome (A11). Default 72 h.
	Lateness time.Duration
	// Retention is how long a settled message is remembered, so a status arriving weeks later
	// (a read receipt, a retried webhook) is recognised. Default 35 days (TTL is at most 30).
	Retention time.Duration
	// Timeline is the pricing timeline; DefaultTimeline() when nil.
	Timeline *Timeline
	// NonOpeningTypes are inbound message types that do not open the CSW (A8). Default: system,
	// unsupported.
	NonOpeningTypes []string
	// EntryPointSources are referral source_type values that start FEP eligibility (A9).
	// Default: ad.
	EntryPointSources []string
	// CachePairs is how many pairs the engine keeps decoded (rounded up to a power of two; default
	// DefaultCachePairs). Each costs a few hundred bytes while cached; a pair not cached is decoded
	// from its record in the table when an event needs it and encoded again when it leaves the
	// cache. A live service keeps the default; a batch job over many pairs, such as a replay,
	// buys CPU with more (see pairCache).
	CachePairs int
}

func (c *Config) defaults() {
	if c.Lateness == 0 {
		c.Lateness = 72 * time.Hour
	}
	if c.Retention == 0 {
		c.Retention = 35 * 24 * time.Hour
	}
	if c.Timeline == nil {
		c.Timeline = DefaultTimeline()
	}
	if c.NonOpeningTypes == nil {
		c.NonOpeningTypes = []string{"system", "unsupported"}
	}
	if c.EntryPointSources == nil {
		c.EntryPointSources = []string{"ad"}
	}
	if c.CachePairs <= 0 {
		c.CachePairs = DefaultCachePairs
	}
}

// Stats counts what the engine did; the shell exports them as metrics.
type Stats struct {
	Inputs      uint64
	Outputs     uint64
	Duplicates  uint64
	SetAside    uint64 // too late (A11)
	Recomputes  uint64 // out-of-order facts that recomputed a pair
	Corrections uint64
	Evicted     uint64
	// Maintained counts the pairs given attention because stream time reached their deadline (an
	// expiry, facts to fold, messages to forget, an eviction).
	Maintained uint64
	// Replayed counts the facts recomputes replayed quiet to reach the late fact's place: from the
	// pair's checkpoint when it holds, else from its base.
	Replayed uint64
}

// Engine is the window engine of one partition: a pure, deterministic state machine over the
// partition's input events in log order. It reads no clock: stream time is the largest event time
// seen (pair events and clock ticks). It is not safe for concurrent use.
type Engine struct {
	partition  int32
	lateness   int64
	retention  int64
	timeline   *Timeline
	nonOpening map[string]bool
	entryPoint map[string]bool

	accounts *accounts
	settled  *settled
	pairs    pairTable
	due      deadlines
	stream   int64
	stats    Stats

	cache   pairCache // pairs kept decoded (cache.go)
	scratch pair      // a restore's record check
	buf     []byte    // a pair's encoding
	dueKeys []string  // keys of the pairs due at one deadline
	keyBuf  []byte    // a pair key being looked up

	// per Apply
	out    []events.Event
	first  int // len(out) when Apply began: cause indexes count from there
	in     *events.Event
	input  events.Event // what in points to: a copy of Apply's argument, which then stays on the stack
	offset int64
	live   live           // the sink of in-order processing, passed by pointer (no allocation)
	causes []events.Cause // outputs' causes are carved from this block, one allocation per many
	// A recompute's sinks, kept between recomputes with their storage.
	shared  quietSink
	derived [2]collector // old and new
	fresh   []events.Event
}

// pair is one (business number, user) pair: its state at the fold cut, the facts since, and its
// current state (base + facts, advanced to cur.at). base is nil while it is the empty state at the
// cut, which it is for every pair whose facts are all within the lateness. Pairs rest encoded in
// the pair table; the ones being worked on are decoded in the pair cache.
type pair struct {
	key      string
	base     *pairState
	cut      int64
	pending  []fact
	cur      pairState
	deadline int64
	// ck is where the last recompute's quiet replay ended, for the next to start from; only
	// while the pair stays decoded (never encoded: a pair read from the table has none).
	ck *checkpoint
}

// checkpoint is the state the facts before pending[n] derive from the base, quiet: a recompute
// at or after n replays the facts from there rather than from the base. Late facts mostly land
// among the pair's last few, so a pair with many recent facts (up to the lateness of them)
// replays a few instead of all. A checkpoint holds while the derivation it skips would give the
// same state: the same base and cut (maintain folds and forgets into a new base), no fact
// inserted before n, the same account versions, and the same answers from the partition's
// settled messages (the only other state the rules read). Recomputing from it gives what
// recomputing from the base gives, so outputs do not depend on which pairs had one (the tests
// check every recompute against the full derivation from the base).
type checkpoint struct {
	n         int
	st        pairState
	base      *pairState // p.base when made: a new base is a new pointer
	cut       int64
	accounts  uint64          // accounts.gen when made
	lookups   []settledLookup // what the derivation asked settled, and the answers
	retracted bool            // the derivation retracted an output (recompute then derives all)
}

// settledLookup is a question rules.message asked the settled messages, and the answer.
type settledLookup struct {
	h       uint64
	settled bool
}

// of reports that ck was made from p's present base and cut.
func (ck *checkpoint) of(p *pair) bool { return ck.base == p.base && ck.cut == p.cut }

// valid reports that ck can start a recompute of p's facts at pos.
func (e *Engine) valid(ck *checkpoint, p *pair, pos int) bool {
	if ck.n > pos || !ck.of(p) || ck.accounts != e.accounts.gen {
		return false
	}
	for _, l := range ck.lookups {
		if e.settled.hasHash(l.h) != l.settled {
			return false
		}
	}
	return true
}

// rules returns the rule context of p: its number and user are slices of the key.
func (e *Engine) rules(p *pair) rules {
	pnid, user, _ := events.SplitPairKey(p.key)
	return rules{e: e, key: p.key, pnid: pnid, user: user}
}

// baseState returns a copy of p's base state to replay from.
func (p *pair) baseState() pairState {
	if p.base == nil {
		return pairState{at: p.cut}
	}
	return p.base.clone()
}

// New returns an engine for one partition.
func New(cfg Config) (*Engine, error) {
	cfg.defaults()
	if cfg.Lateness < 0 || cfg.Retention < cfg.Lateness {
		return nil, fmt.Errorf("window: lateness %v must be >= 0 and <= retention %v", cfg.Lateness, cfg.Retention)
	}
	e := &Engine{
		partition:  cfg.Partition,
		lateness:   int64(cfg.Lateness / time.Second),
		retention:  int64(cfg.Retention / time.Second),
		timeline:   cfg.Timeline,
		nonOpening: set(cfg.NonOpeningTypes),
		entryPoint: set(cfg.EntryPointSources),
		accounts:   newAccounts(),
		settled:    newSettled(),
		cache:      newPairCacheOf(ceilPow2(cfg.CachePairs)),
		pairs:      newPairTable(),
	}
	return e, nil
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// StreamTime is the partition's stream time (Unix seconds).
func (e *Engine) StreamTime() int64 { return e.stream }

// Pairs is the number of live pairs: those in the table and the cached ones not written yet. It
// writes nothing back, so a metrics gauge read after every batch does not turn the write-back
// cache into a write-through one.
func (e *Engine) Pairs() int {
	return e.pairs.Len() + e.cache.fresh()
}

// Stats returns the counters.
func (e *Engine) Stats() Stats { return e.stats }

// ErrUnsupported is returned for an event the engine does not take as input.
var ErrUnsupported = errors.New("window: not an input event")

// Apply applies one input event read at offset and appends the derived events to out, each with
// its cause (partition, offset, index); the index counts this input's outputs from 0, whatever out
// already held. Equal input sequences give byte-identical outputs.
func (e *Engine) Apply(in events.Event, offset int64, out []events.Event) ([]events.Event, error) {
	e.input = in
	e.out, e.first, e.in, e.offset = out, len(out), &e.input, offset
	defer func() { e.out, e.in, e.input = nil, nil, events.Event{} }()
	e.stats.Inputs++
	t := int64(in.Time)
	switch p := in.Data.(type) {
	case *events.InboundMessage:
		f := fact{t: int64(p.Timestamp), kind: factInbound, wamid: p.WAMID}
		if e.opensCSW(p) {
			f.flags |= flagOpensCSW
			if p.Referral != nil && e.entryPoint[p.Referral.SourceType] {
				f.flags |= flagEntryPoint
			}
		}
		e.pairFact(in, p.PhoneNumberID, events.UserIdentity(p.WaID, p.UserID), f)
	case *events.OutboundSend:
		f := fact{t: int64(p.Timestamp), kind: factSend, wamid: p.WAMID}
		if p.Kind == events.KindTemplate {
			f.flags |= flagTemplate
			f.cat = catOf(events.NormalizeCategory(string(p.TemplateCategory)))
		} else {
			f.flags |= flagFreeForm
		}
		e.pairFact(in, p.PhoneNumberID, events.UserIdentity(p.WaID, p.UserID), f)
	case *events.StatusUpdate:
		if !p.Status.Valid() {
			return e.out, fmt.Errorf("window: status %q of %s: %w", p.Status, p.WAMID, ErrUnsupported)
		}
		f := fact{t: int64(p.Timestamp), kind: statusFact(p.Status), wamid: p.WAMID}
		if p.Pricing != nil || p.Conversation != nil {
			f.meta = newMetaFacts(p.Pricing, p.Conversation, p.Status.Rank())
		}
		for _, er := range p.Errors {
			if er.Code == 131047 {
				f.flags |= flag131047
			}
		}
		e.pairFact(in, p.PhoneNumberID, events.UserIdentity(p.RecipientID, p.RecipientUserID), f)
	case *events.Tick:
		// Only moves stream time.
	case *events.AccountConfig:
		if err := e.accounts.put(p); err != nil {
			return e.out, err
		}
		e.passThrough(in)
		return e.out, nil
	case *events.LimitUpdate, *events.VolumeTier, *events.TemplateCategory:
		e.passThrough(in)
		return e.out, nil
	default:
		return e.out, fmt.Errorf("window: %s: %w", in.Type, ErrUnsupported)
	}
	if t > e.stream {
		e.stream = t
	}
	e.runDue()
	return e.out, nil
}

func (e *Engine) opensCSW(p *events.InboundMessage) bool {
	if e.nonOpening[p.MessageType] {
		return false
	}
	// An errors-only payload is not a user message (A8).
	return len(p.ErrorCodes) == 0 || (p.MessageType != "" && p.MessageType != "unsupported")
}

// emit appends an output with the next cause index of the current input.
func (e *Engine) emit(ev events.Event) {
	if len(e.causes) == 0 {
		e.causes = make([]events.Cause, 256)
	}
	c := &e.causes[0]
	e.causes = e.causes[1:]
	*c = events.Cause{Partition: e.partition, Offset: e.offset, Index: int32(len(e.out) - e.first)}
	ev.Cause = c
	e.out = append(e.out, ev)
	e.stats.Outputs++
}

func (e *Engine) passThrough(in events.Event) {
	out := in
	out.ID = events.InputID("passthrough", in.ID)
	e.emit(out)
}

// live is the sink of in-order processing: outputs go straight out.
type live struct {
	e   *Engine
	key string
}

func (l *live) emit(ev events.Event) { l.e.emit(ev) }

func (l *live) retract(id string) {
	l.e.stats.Corrections++
	l.e.emit(l.e.correction(l.key, []string{id}, "superseded"))
}

func (e *Engine) correction(key string, ids []string, reason string) events.Event {
	id := events.InputID(string(events.TypeCorrection), e.in.ID, itoa(int64(len(e.out)-e.first)))
	return events.Event{ID: id, Type: events.TypeCorrection, Key: key, Time: e.in.Time, Data: &events.Correction{
		Key: key, Retracts: ids, Reason: reason, CausedBy: e.in.ID,
	}}
}

// pairFact routes a fact to its pair: set aside when too late, ignored when a duplicate, applied
// in place when it comes after everything the pair has seen, otherwise the pair is recomputed in
// canonical order and the difference is emitted as a correction plus replacements.
func (e *Engine) pairFact(in events.Event, pnid, user string, f fact) {
	if f.t < e.stream-e.lateness {
		e.stats.SetAside++
		e.emit(events.Event{
			ID: events.InputID(string(events.TypeEventSetAside), in.ID), Type: events.TypeEventSetAside, Key: in.Key, Time: in.Time,
			Data: &events.EventSetAside{Reason: events.SetAsideTooLate, InputID: in.ID, InputType: in.Type, InputTime: in.Time, StreamTime: events.UnixTime(e.stream)},
		})
		return
	}
	// The pair key, events.PairKey(pnid, user, ""), is only made when the pair is not cached.
	e.keyBuf = append(append(append(e.keyBuf[:0], pnid...), '/'), user...)
	p, key, slot := e.loadKey(e.keyBuf)
	if p == nil {
		p = e.freshIn(slot, key)
	}
	pos := sort.Search(len(p.pending), func(i int) bool { return f.less(&p.pending[i]) })
	for i := pos - 1; i >= 0 && p.pending[i].t == f.t; i-- {
		if p.pending[i].same(&f) {
			e.stats.Duplicates++
			return
		}
	}
	if f.kind <= factSend { // inbound/send duplicates may carry another timestamp
		for i := range p.pending {
			if p.pending[i].same(&f) {
				e.stats.Duplicates++
				return
			}
		}
	}
	// The pair keeps a wamid of its own: the event's strings share one buffer, which the pair
	// would keep alive for as long as it stays decoded (newMetaFacts copies Meta's fields).
	f.wamid = strings.Clone(f.wamid)
	if pos == len(p.pending) && f.t >= p.cur.at {
		p.pending = append(p.pending, f)
		e.live = live{e: e, key: key}
		l := &e.live
		r := e.rules(p)
		r.advance(&p.cur, f.t, l)
		r.step(&p.cur, &p.pending[len(p.pending)-1], l)
		e.schedule(p)
		slot.dirty = true // e.save(p): p is still slot's pair
		return
	}
	e.recompute(p, pos, f)
	slot.dirty = true
}

// recompute inserts an out-of-order fact and re-derives the pair from its base, emitting a
// correction for what no longer holds and the outputs that are new.
//
// The facts before pos derive the same state and outputs either way, so they are replayed once,
// quiet (no outputs built), and the two derivations, without f and with it, go on from a copy of
// that point: a late fact usually lands just before the last one or two, so this replays about
// half as many facts as deriving both from the base, and builds the outputs of only those. The
// shared outputs are the same in both, so they cancel in the difference, as long as no output
// id repeats within a derivation (ids name what an output is about: a pair's message is
// dispatched, delivered and charged once) and nothing is retracted; a retraction may name a
// shared output, so then both derivations are made again with every output (deriveAll).
func (e *Engine) recompute(p *pair, pos int, f fact) {
	e.stats.Recomputes++
	to := max(p.cur.at, f.t)
	p.pending = slices.Insert(p.pending, pos, f)
	r := e.rules(p)
	st := e.prefix(&r, p, pos)
	old, now := e.derived[0].reset(), e.derived[1].reset()
	oldSt := st.clone()
	r.derive(&oldSt, p.pending[pos+1:], old)
	r.advance(&oldSt, to, old)
	r.derive(&st, p.pending[pos:], now)
	r.advance(&st, to, now)
	before, after := old.evs, now.evs
	if e.shared.retracted || old.gone != nil || now.gone != nil {
		before, after, st = e.deriveAll(&r, p, pos, to)
	} else if verifyRecompute != nil {
		verifyRecompute(e, &r, p, pos, to, &st, before, after)
	}
	p.cur = st
	gone, fresh := e.difference(before, after)
	if len(gone) > 0 {
		e.stats.Corrections++
		e.emit(e.correction(p.key, gone, "late_event"))
	}
	for _, ev := range fresh {
		e.emit(ev)
	}
	clear(fresh)
	e.fresh = fresh[:0]
	e.schedule(p)
}

// prefix returns the state the facts before pos derive from p's base, quiet (e.shared notes a
// retraction). It derives in the checkpoint's storage, from where the checkpoint is when it
// holds, else from the base, and leaves the checkpoint at pos.
func (e *Engine) prefix(r *rules, p *pair, pos int) pairState {
	from := 0
	ck := p.ck
	switch {
	case ck != nil && e.valid(ck, p, pos):
		from = ck.n
		e.shared = quietSink{retracted: ck.retracted}
	default:
		if ck == nil {
			ck = &checkpoint{}
			p.ck = ck
		}
		base := pairState{at: p.cut} // as baseState, in the checkpoint's storage
		if p.base != nil {
			base = *p.base
		}
		base.into(&ck.st)
		ck.lookups = ck.lookups[:0]
		e.shared = quietSink{}
	}
	e.stats.Replayed += uint64(pos - from)
	r.quiet, r.lookups = true, &ck.lookups
	r.derive(&ck.st, p.pending[from:pos], &e.shared)
	r.quiet, r.lookups = false, nil
	ck.n, ck.base, ck.cut, ck.accounts, ck.retracted = pos, p.base, p.cut, e.accounts.gen, e.shared.retracted
	return ck.st.clone()
}

// verifyRecompute, set by tests, checks each quiet recompute against deriveAll.
var verifyRecompute func(e *Engine, r *rules, p *pair, pos int, to int64, st *pairState, before, after []events.Event)

// deriveAll is recompute's derivation with every output built: the facts before pos once, then
// the rest without the fact at pos (old) and with it (new). It returns both derivations' net
// outputs (retractions applied) and the new state advanced to to.
func (e *Engine) deriveAll(r *rules, p *pair, pos int, to int64) (before, after []events.Event, st pairState) {
	st, now := p.baseState(), &collector{}
	r.derive(&st, p.pending[:pos], now)
	oldSt, old := st.clone(), now.clone()
	r.derive(&oldSt, p.pending[pos+1:], old)
	r.advance(&oldSt, to, old)
	r.derive(&st, p.pending[pos:], now)
	r.advance(&st, to, now)
	return old.list(), now.list(), st
}

// difference compares the outputs of a pair's old and new derivation. An output whose content
// changed keeps its id (ids name what an output is about, not what it says): it is retracted and
// emitted again with the new content, in that order. gone lists the ids to retract; fresh, in
// e.fresh's storage, the outputs to emit.
func (e *Engine) difference(before, after []events.Event) (gone []string, fresh []events.Event) {
	b, a := indexByID(before), indexByID(after)
	for _, ev := range b.evs {
		if n, ok := a.get(ev.ID); !ok || !sameContent(ev, n) {
			gone = append(gone, ev.ID)
		}
	}
	fresh = e.fresh[:0]
	for _, ev := range a.evs {
		if o, ok := b.get(ev.ID); !ok || !sameContent(o, ev) {
			fresh = append(fresh, ev)
		}
	}
	return gone, fresh
}

// derive applies facts to st in order, each after advancing st to its time.
func (r *rules) derive(st *pairState, facts []fact, c sink) {
	for i := range facts {
		r.advance(st, facts[i].t, c)
		r.step(st, &facts[i], c)
	}
}

// quietSink takes a quiet derivation (outputs not built) and notes whether it retracted anything.
type quietSink struct{ retracted bool }

func (*quietSink) emit(events.Event) {}
func (q *quietSink) retract(string)  { q.retracted = true }

// collector is the sink of a derivation (recompute): the net outputs, retractions applied.
type collector struct {
	evs  []events.Event
	gone map[string]bool
}

func (c *collector) emit(ev events.Event) { c.evs = append(c.evs, ev) }

func (c *collector) retract(id string) {
	if c.gone == nil {
		c.gone = map[string]bool{}
	}
	c.gone[id] = true
}

// reset empties c for another derivation, keeping its storage.
func (c *collector) reset() *collector {
	clear(c.evs)
	c.evs, c.gone = c.evs[:0], nil
	return c
}

// clone is a copy of c that emits and retracts on its own.

func (c *collector) clone() *collector {
	return &collector{evs: slices.Clip(c.evs), gone: maps.Clone(c.gone)}
}

func (c *collector) list() []events.Event {
	out := c.evs[:0:0]
	for _, ev := range c.evs {
		if !c.gone[ev.ID] {
			out = append(out, ev)
		}
	}
	return out
}

// byID finds a derivation's outputs by id (the last one with it). A derivation usually emits a
// handful of outputs, scanned faster than a map is built; a long one gets a map.
type byID struct {
	evs []events.Event
	m   map[string]int
}

// byIDScan is the most outputs searched by scanning.
const byIDScan = 16

func indexByID(evs []events.Event) byID {
	x := byID{evs: evs}
	if len(evs) > byIDScan {
		x.m = make(map[string]int, len(evs))
		for i, ev := range evs {
			x.m[ev.ID] = i
		}
	}
	return x
}

func (x byID) get(id string) (events.Event, bool) {
	if x.m != nil {
		i, ok := x.m[id]
		if !ok {
			return events.Event{}, false
		}
		return x.evs[i], true
	}
	for i := len(x.evs) - 1; i >= 0; i-- {
		if x.evs[i].ID == id {
			return x.evs[i], true
		}
	}
	return events.Event{}, false
}

type discard struct{}

func (discard) emit(events.Event) {}
func (discard) retract(string)    {}

// schedule computes when the pair next needs attention (an expiry, a fact becoming foldable, a
// message to forget) and queues it.
func (e *Engine) schedule(p *pair) {
	next := p.cur.nextExpiry()
	take := func(t int64) {
		if next == 0 || t < next {
			next = t
		}
	}
	if len(p.pending) > 0 {
		take(p.pending[0].t + e.lateness + 1)
	}
	for i := range p.cur.msgs {
		take(e.forgetAt(&p.cur.msgs[i]))
	}
	if next == 0 && p.base != nil {
		// Nothing of the current state is due, but the base (the state at the cut, which a late
		// event replays from) still holds something that expires: the pair can be evicted once
		// the cut passes it. Without this it would be maintained at every stream advance until
		// then, for up to the lateness (on a month of traffic, 2.6 maintains per input event).
		if t := p.base.nextExpiry(); t != 0 {
			next = t + e.lateness
		}
	}
	if next <= e.stream {
		// Nothing left (evict at the next stream advance), or something came due that cannot be
		// handled before stream time moves on.
		next = e.stream + 1
	}
	// Only an earlier deadline is queued; a later one is found when the queued one comes due and
	// maintain reschedules, so the queue does not grow with every fact.
	if p.deadline == 0 || next < p.deadline {
		p.deadline = next
		e.due.push(due{t: next, h: hashKey(p.key)})
	}
}

// forgetAt is when a message's record can be dropped: once settled and past the lateness, or,
// undelivered, past the retention (Meta's TTL is at most 30 days).
func (e *Engine) forgetAt(m *msg) int64 {
	if m.settled() {
		return m.settledAt() + e.lateness + 1
	}
	return m.sentAt + e.retention + 1
}

// runDue gives attention to every pair whose deadline stream time has reached, in (time, key)
// order.
func (e *Engine) runDue() {
	for len(e.due) > 0 && e.due[0].t <= e.stream {
		t := e.due[0].t
		keys := e.dueKeys[:0]
		for len(e.due) > 0 && e.due[0].t == t {
			keys = e.keysOf(e.due.pop().h, keys)
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		for _, k := range keys {
			p := e.load(k)
			if p == nil || p.deadline != t {
				continue
			}
			p.deadline = 0
			e.stats.Maintained++
			e.maintain(p)
		}
		clear(keys)
		e.dueKeys = keys[:0]
	}
	e.settled.sweep(e.stream - e.retention)
}

// maintain advances a pair to stream time, folds facts that can no longer be preceded by a late
// event into its base, forgets settled messages, and evicts the pair when nothing is left.
func (e *Engine) maintain(p *pair) {
	r := e.rules(p)
	e.live = live{e: e, key: p.key}
	r.advance(&p.cur, e.stream, &e.live)
	cut := e.stream - e.lateness
	if cut > p.cut {
		n := sort.Search(len(p.pending), func(i int) bool { return p.pending[i].t >= cut })
		base := p.baseState()
		r.quiet = true
		r.derive(&base, p.pending[:n], discard{})
		r.advance(&base, cut, discard{})
		p.pending = append(p.pending[:0], p.pending[n:]...)
		p.cut = cut
		p.setBase(base)
	}
	if gone := e.forget(&p.cur, p.cut); len(gone) > 0 && p.base != nil {
		drop(p.base, gone)
		p.setBase(*p.base)
	}
	if p.ck != nil && !p.ck.of(p) {
		p.ck = nil // no longer holds: its memory goes now, not at the next recompute
	}
	if len(p.pending) == 0 && p.cur.empty() && (p.base == nil || p.base.empty()) {
		e.evict(p)
		e.stats.Evicted++
		return
	}
	e.schedule(p)
	e.save(p)
}

// setBase keeps st as the base, or no base when st is the empty state at the cut.
func (p *pair) setBase(st pairState) {
	if st.empty() {
		p.base = nil
		return
	}
	p.base = &st
}

// forget drops the current state's messages that nothing can change any more, remembering settled
// ones partition-wide, and returns their wamids so the base forgets the same ones.
func (e *Engine) forget(st *pairState, cut int64) []string {
	var gone []string
	kept := st.msgs[:0]
	for _, m := range st.msgs {
		if e.forgetAt(&m) <= cut+e.lateness {
			if m.settled() {
				e.settled.add(m.wamid, m.settledAt())
			}
			gone = append(gone, m.wamid)
			continue
		}
		kept = append(kept, m)
	}
	st.msgs = kept
	return gone
}

func drop(st *pairState, wamids []string) {
	kept := st.msgs[:0]
	for _, m := range st.msgs {
		if !slices.Contains(wamids, m.wamid) {
			kept = append(kept, m)
		}
	}
	st.msgs = kept
}

// due is a pair's queued deadline: the pair is named by the hash of its key (pairTable.keysOf),
// so the queue holds no strings.
type due struct {
	t int64
	h uint64
}

// deadlines is a binary min-heap of due by time (then hash, so its layout is deterministic too).
type deadlines []due

func (d due) less(o due) bool { return d.t < o.t || (d.t == o.t && d.h < o.h) }

func (q *deadlines) push(x due) {
	*q = append(*q, x)
	h := *q
	for i := len(h) - 1; i > 0; {
		up := (i - 1) / 2
		if !h[i].less(h[up]) {
			break
		}
		h[i], h[up] = h[up], h[i]
		i = up
	}
}

func (q *deadlines) pop() due {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	h.down(0)
	*q = h
	return top
}

func (q deadlines) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(q) {
			return
		}
		m := l
		if r := l + 1; r < len(q) && q[r].less(q[l]) {
			m = r
		}
		if !q[m].less(q[i]) {
			return
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
}

// init orders q as a heap.
func (q deadlines) init() {
	for i := len(q)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

// settled remembers settled messages by a 64-bit hash of their wamid for the retention period, so a
// read receipt weeks after delivery is a no-op rather than a new delivery.
type settled struct {
	at        map[uint64]int64
	nextSweep int64
}

func newSettled() *settled { return &settled{at: map[uint64]int64{}} }

func wamidHash(w string) uint64 { return hashKey(w) }

func (s *settled) has(w string) bool { return len(s.at) > 0 && s.hasHash(wamidHash(w)) }

func (s *settled) hasHash(h uint64) bool {
	if len(s.at) == 0 {
		return false
	}
	_, ok := s.at[h]
	return ok
}

func (s *settled) add(w string, t int64) { s.at[wamidHash(w)] = t }

func (s *settled) sweep(before int64) {
	if before < s.nextSweep {
		return
	}
	for k, t := range s.at {
		if t < before {
			delete(s.at, k)
		}
	}
	s.nextSweep = before + 6*3600
}
