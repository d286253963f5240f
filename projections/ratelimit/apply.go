package ratelimit

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/convmeter/convmeter/events"
)

// Durations in seconds.
const (
	Hour = events.UnixTime(3600)
	Day  = 24 * Hour
)

// Config holds the windows the projection serves. Zero fields take the defaults.
type Config struct {
	// LimitWindow is the moving window of the messaging limit (24 h).
	LimitWindow events.UnixTime
	// UsageWindow is the window of upgrade eligibility (7 days); counted deliveries are kept for
	// it, which also bounds how far back a retraction can be undone exactly.
	UsageWindow events.UnixTime
	// ThroughputWindow is how long per-second message counts are kept (1 h): peaks are over it.
	ThroughputWindow events.UnixTime
	// HitWindow is how long would-be 131056 records are kept (7 days).
	HitWindow events.UnixTime
	// UndoWindow is how long the undo record of an output is kept: at least the engine's allowed
	// lateness (72 h), after which no correction can retract it.
	UndoWindow events.UnixTime
}

func (c Config) withDefaults() Config {
	if c.LimitWindow <= 0 {
		c.LimitWindow = Day
	}
	if c.UsageWindow <= 0 {
		c.UsageWindow = 7 * Day
	}
	if c.ThroughputWindow <= 0 {
		c.ThroughputWindow = Hour
	}
	if c.HitWindow <= 0 {
		c.HitWindow = 7 * Day
	}
	if c.UndoWindow <= 0 {
		c.UndoWindow = 96 * Hour
	}
	return c
}

// View is the part of one partition's state a batch reads: loaded by the store before Reduce and
// updated by Reduce as it goes (write-through), so later events of the batch see earlier ones.
type View struct {
	HW     events.Cause
	HasHW  bool
	Stream events.UnixTime
	// Buckets holds the token bucket of every pair the batch touches (absent = full).
	Buckets map[string]Bucket
	// Fields holds the pair-state fields the batch touches (absent = closed).
	Fields map[string]string
	// Undo holds the undo records of retracted ids found in the store; Reduce adds those of the
	// batch's own outputs that a correction of the batch retracts.
	Undo map[string]undoRecord
	// Deliveries holds, for each "scope|user" whose delivery is retracted, every counted delivery
	// member of that user kept in the store (the usage window), so the latest can be recomputed.
	Deliveries map[string]map[string]bool
}

// NewView returns an empty view (a fresh partition).
func NewView() *View {
	return &View{
		Buckets: map[string]Bucket{}, Fields: map[string]string{},
		Undo: map[string]undoRecord{}, Deliveries: map[string]map[string]bool{},
	}
}

// undoRecord is what the projection remembers about an applied output so a correction can undo it.
type undoRecord struct {
	Kind string `json:"k"` // "d" counted delivery, "s" dispatched, "i" inbound, "f" pair field
	// Delivery: the dlx member.
	Member string `json:"m,omitempty"`
	// Throughput: number and second counted.
	PN  string          `json:"pn,omitempty"`
	Sec events.UnixTime `json:"s,omitempty"`
	// Dispatched: pair, bucket before and after, and the hit member when it would have hit 131056.
	Pair string `json:"p,omitempty"`
	Pre  string `json:"b0,omitempty"`
	Post string `json:"b1,omitempty"`
	Hit  string `json:"h,omitempty"`
	// Pair field: field, value before and after ("" = absent).
	Field string `json:"f,omitempty"`
	FPre  string `json:"v0,omitempty"`
	FPost string `json:"v1,omitempty"`
	// Time is the event time, which the trim index uses.
	Time events.UnixTime `json:"t"`
}

// undoSep separates the fields of an encoded undo record; no id, key or value contains it.
const undoSep = "\x1e"

// Undo records are written for most events, so their value is kept short. Two forms are read:
//
//	v1 (the first form): the 12 fields joined by undoSep, in declaration order, times in decimal;
//	v2: undoV2, the kind, the event time as a varint (encoding/binary.AppendVarint), then the
//	    kind's fields joined by undoSep: "d" Member; "s" Pair, Pre, Post, Hit (PN is the pair's
//	    number, Sec the time); "f" Field, FPre, FPost, PN (Sec the time when PN is set).
//
// encode writes v2 when the record has that shape (every record Reduce makes), else v1.
const undoV2 = 0x02

func (u undoRecord) encode() string {
	var fs [4]string
	var n int
	switch {
	case u.Kind == "d" && u.PN == "" && u.Sec == 0 && u.Pair == "" && u.Pre == "" && u.Post == "" && u.Hit == "" &&
		u.Field == "" && u.FPre == "" && u.FPost == "":
		fs[0], n = u.Member, 1
	case u.Kind == "s" && u.Member == "" && u.Sec == u.Time && u.PN != "" && strings.IndexByte(u.Pair, '/') == len(u.PN) &&
		u.Pair[:len(u.PN)] == u.PN && u.Field == "" && u.FPre == "" && u.FPost == "":
		fs, n = [4]string{u.Pair, u.Pre, u.Post, u.Hit}, 4
	case u.Kind == "f" && u.Member == "" && u.Pair == "" && u.Pre == "" && u.Post == "" && u.Hit == "" &&
		((u.PN == "" && u.Sec == 0) || (u.PN != "" && u.Sec == u.Time)):
		fs, n = [4]string{u.Field, u.FPre, u.FPost, u.PN}, 4
	default:
		return u.encodeV1()
	}
	size := 2 + binary.MaxVarintLen64 + n - 1
	for _, f := range fs[:n] {
		size += len(f)
	}
	var sb strings.Builder
	sb.Grow(size)
	var tb [binary.MaxVarintLen64]byte
	sb.WriteByte(undoV2)
	sb.WriteByte(u.Kind[0])
	sb.Write(tb[:binary.PutVarint(tb[:], int64(u.Time))])
	for i, f := range fs[:n] {
		if i > 0 {
			sb.WriteByte(undoSep[0])
		}
		sb.WriteString(f)
	}
	return sb.String()
}

// encodeV1 is the first form of the record.
func (u undoRecord) encodeV1() string {
	return strings.Join([]string{u.Kind, u.Member, u.PN, strconv.FormatInt(int64(u.Sec), 10), u.Pair, u.Pre, u.Post,
		u.Hit, u.Field, u.FPre, u.FPost, strconv.FormatInt(int64(u.Time), 10)}, undoSep)
}

func decodeUndo(s string) (undoRecord, error) {
	if len(s) > 0 && s[0] == undoV2 {
		return decodeUndoV2(s)
	}
	p := strings.Split(s, undoSep)
	if len(p) != 12 {
		return undoRecord{}, fmt.Errorf("undo record has %d fields, want 12", len(p))
	}
	sec, err1 := strconv.ParseInt(p[3], 10, 64)
	t, err2 := strconv.ParseInt(p[11], 10, 64)
	if err1 != nil || err2 != nil {
		return undoRecord{}, fmt.Errorf("undo record: bad time")
	}
	return undoRecord{Kind: p[0], Member: p[1], PN: p[2], Sec: events.UnixTime(sec), Pair: p[4], Pre: p[5], Post: p[6],
		Hit: p[7], Field: p[8], FPre: p[9], FPost: p[10], Time: events.UnixTime(t)}, nil
}

func decodeUndoV2(s string) (undoRecord, error) {
	if len(s) < 3 {
		return undoRecord{}, fmt.Errorf("undo record v2 of %d bytes", len(s))
	}
	kind := s[1]
	t, n := binary.Varint([]byte(s[2:min(len(s), 2+binary.MaxVarintLen64)]))
	if n <= 0 {
		return undoRecord{}, fmt.Errorf("undo record v2: bad time")
	}
	rest := s[2+n:]
	u := undoRecord{Time: events.UnixTime(t)}
	switch kind {
	case 'd':
		u.Kind, u.Member = "d", rest
	case 's', 'f':
		p := strings.SplitN(rest, undoSep, 4)
		if len(p) != 4 {
			return undoRecord{}, fmt.Errorf("undo record v2 %q has %d fields, want 4", kind, len(p))
		}
		if kind == 's' {
			pn, _, ok := strings.Cut(p[0], "/")
			if !ok {
				return undoRecord{}, fmt.Errorf("undo record v2: bad pair %q", p[0])
			}
			u.Kind, u.PN, u.Sec, u.Pair, u.Pre, u.Post, u.Hit = "s", pn, u.Time, p[0], p[1], p[2], p[3]
		} else {
			u.Kind, u.Field, u.FPre, u.FPost, u.PN = "f", p[0], p[1], p[2], p[3]
			if u.PN != "" {
				u.Sec = u.Time
			}
		}
	default:
		return undoRecord{}, fmt.Errorf("undo record v2: unknown kind %q", kind)
	}
	return u, nil
}

// Changes is the net effect of a batch on one partition, element by element, so the store can
// write it in any order inside one atomic unit.
type Changes struct {
	HW     events.Cause
	HasHW  bool
	Stream events.UnixTime
	// Z: sorted-set key → member → operation; H: hash key → field → operation; Tput: throughput
	// hash key → unix second → delta (added to the minutes the store read, a count never below 0).
	Z    map[string]map[string]ZOp
	H    map[string]map[string]HOp
	Tput map[string]map[events.UnixTime]int64
	// HLog: hash key → fields set in this order (HSET; of a field set twice the later value
	// stands), none of them in H under the same key. Reduce logs here the undo records of the
	// outputs no correction of the batch retracts: they are most of a batch's writes and are never
	// read back, so appending them costs less than a map of the batch's size.
	HLog  map[string][]FieldVal
	Stats Stats
}

// FieldVal is a hash field and its value.
type FieldVal struct{ Field, Val string }

// Operation kinds of ZOp and HOp.
const (
	OpSet = 's' // ZADD / HSET
	OpMax = 'g' // ZADD GT: keep the greater score
	OpDel = 'd' // ZREM / HDEL
)

// ZOp is the net operation on one sorted-set member.
type ZOp struct {
	Kind  byte
	Score events.UnixTime
}

// HOp is the net operation on one hash field.
type HOp struct {
	Kind byte
	Val  string
}

// Stats counts what a batch did.
type Stats struct {
	Applied, Skipped, NoCause         int
	Counted, Dispatched, Inbound      int
	PairRateHits, Retracted, Unknown  int
	WindowEvents, ConversationEvents  int
	AccountEvents, IgnoredEventsTypes int
}

func newChanges() *Changes {
	return &Changes{Z: map[string]map[string]ZOp{}, H: map[string]map[string]HOp{}, Tput: map[string]map[events.UnixTime]int64{},
		HLog: map[string][]FieldVal{}}
}

// freeLogs keeps the slices of HLog between batches, like freeMaps.
var freeLogs struct {
	mu sync.Mutex
	l  [][]FieldVal
}

// getLog returns an empty slice, recycled when one is free, else made with room for hint.
func getLog(hint int) []FieldVal {
	freeLogs.mu.Lock()
	defer freeLogs.mu.Unlock()
	if n := len(freeLogs.l); n > 0 {
		l := freeLogs.l[n-1]
		freeLogs.l[n-1] = nil
		freeLogs.l = freeLogs.l[:n-1]
		return l
	}
	return make([]FieldVal, 0, hint)
}

func putLog(l []FieldVal) {
	clear(l)
	freeLogs.mu.Lock()
	defer freeLogs.mu.Unlock()
	if len(freeLogs.l) < maxFree {
		freeLogs.l = append(freeLogs.l, l[:0])
	}
}

// freeMaps is a free list of the inner maps of Changes: the store recycles a batch's maps once
// they are written, so the next batch clears maps of batch size rather than allocating them (and
// the GC scanning the garbage). Maps that held many elements are kept apart from small ones, so a
// small key never takes a big map (clearing costs its capacity).
type freeMaps[V any] struct {
	mu         sync.Mutex
	big, small []map[string]V
}

const (
	bigMap  = 256 // elements from which a map counts as big
	maxFree = 32  // maps kept per list
)

var (
	freeZ freeMaps[ZOp]
	freeH freeMaps[HOp]
)

// get returns an empty map, recycled when one of its class is free, else made with room for hint.
func (f *freeMaps[V]) get(hint int) map[string]V {
	f.mu.Lock()
	l := &f.small
	if hint >= bigMap {
		l = &f.big
	}
	if n := len(*l); n > 0 {
		m := (*l)[n-1]
		(*l)[n-1] = nil
		*l = (*l)[:n-1]
		f.mu.Unlock()
		return m
	}
	f.mu.Unlock()
	return make(map[string]V, hint)
}

// put clears m and keeps it for reuse (while its list has room).
func (f *freeMaps[V]) put(m map[string]V) {
	big := len(m) >= bigMap
	clear(m)
	f.mu.Lock()
	l := &f.small
	if big {
		l = &f.big
	}
	if len(*l) < maxFree {
		*l = append(*l, m)
	}
	f.mu.Unlock()
}

// recycle hands c's sorted-set and hash maps to the free lists; c must not be used afterwards.
func (c *Changes) recycle() {
	for _, m := range c.Z {
		freeZ.put(m)
	}
	for _, m := range c.H {
		freeH.put(m)
	}
	for _, l := range c.HLog {
		putLog(l)
	}
	c.Z, c.H, c.HLog = nil, nil, nil
}

func (c *Changes) zkey(key string) map[string]ZOp {
	m, ok := c.Z[key]
	if !ok {
		m = freeZ.get(0)
		c.Z[key] = m
	}
	return m
}

func (c *Changes) zset(key, m string, s events.UnixTime) { c.zkey(key)[m] = ZOp{OpSet, s} }

func (c *Changes) zmax(key, m string, s events.UnixTime) {
	z := c.zkey(key)
	if cur, ok := z[m]; ok && cur.Kind != OpDel {
		if s > cur.Score {
			z[m] = ZOp{cur.Kind, s}
		}
		return
	}
	z[m] = ZOp{OpMax, s}
}

func (c *Changes) zdel(key, m string) { c.zkey(key)[m] = ZOp{Kind: OpDel} }

// sizedH creates the map of a key one batch fills with many elements (the pair fields) at the
// batch's size, so it does not grow step by step.
func (r *reducer) sizedH(key string) {
	if _, ok := r.c.H[key]; !ok {
		r.c.H[key] = freeH.get(r.hint / 2)
	}
}

func (c *Changes) hkey(key string) map[string]HOp {
	m, ok := c.H[key]
	if !ok {
		m = freeH.get(0)
		c.H[key] = m
	}
	return m
}

func (c *Changes) hset(key, f, v string) { c.hkey(key)[f] = HOp{OpSet, v} }

func (c *Changes) hdel(key, f string) { c.hkey(key)[f] = HOp{Kind: OpDel} }

// Reduce applies the events of one partition's batch to the view and returns the net changes.
// It is pure: no clock, no I/O. Events at or below the view's high-water cause are skipped.
func Reduce(cfg Config, v *View, evs []events.Event) *Changes { return reduce(cfg, v, evs, false) }

// reduce is Reduce; with noLog, undo records go through H, never HLog (tests compare the two).
func reduce(cfg Config, v *View, evs []events.Event, noLog bool) *Changes {
	cfg = cfg.withDefaults()
	r := reducer{cfg: cfg, v: v, c: newChanges(), hint: len(evs), tputs: map[tputAt]*tputEntry{}, noLog: noLog}
	for i := range evs {
		if d, ok := evs[i].Data.(*events.Correction); ok {
			// The undo records of this batch that a correction in it may need: only these go
			// into the view (most of a batch's outputs are never retracted within it).
			if r.retracted == nil {
				r.retracted = map[string]bool{}
			}
			for _, id := range d.Retracts {
				r.retracted[id] = true
			}
		}
	}
	r.c.HW, r.c.HasHW, r.c.Stream = v.HW, v.HasHW, v.Stream
	for i := range evs {
		r.event(&evs[i])
	}
	r.flushUndoLog()
	v.HW, v.HasHW, v.Stream = r.c.HW, r.c.HasHW, r.c.Stream
	return r.c
}

type reducer struct {
	cfg       Config
	v         *View
	c         *Changes
	hint      int             // batch size, to size the undo map once
	retracted map[string]bool // the ids the batch's corrections retract

	// Per-batch caches. Event time mostly advances, so consecutive events share a second, an
	// hour and a day: these keep the key strings and maps last used instead of building the same
	// strings and looking up the same maps per event, and set each time-bucket index member once.
	undoTK, bktTK timeKey[HOp]
	undoLog       struct { // the hour whose undo records are being logged
		ok  bool
		at  int64
		key string
		l   []FieldVal
	}
	noLog bool // tests: every undo record goes through H, as before HLog
	dlxTK timeKey[ZOp]
	tputs map[tputAt]*tputEntry
}

// timeKey is the hash (or sorted set) of the changes for the hour or day last used.
type timeKey[V any] struct {
	ok bool
	at int64
	m  map[string]V
}

// get returns the changes map of time bucket at; on a change of bucket it builds the key with
// key, creates its map at size hint and calls indexed (to set the bucket's index member).
func getTimeKey[V any](tk *timeKey[V], all map[string]map[string]V, free *freeMaps[V], at int64, hint int, key func(int64) string, indexed func(int64)) map[string]V {
	if tk.ok && tk.at == at {
		return tk.m
	}
	k := key(at)
	m, ok := all[k]
	if !ok {
		m = free.get(hint)
		all[k] = m
	}
	tk.ok, tk.at, tk.m = true, at, m
	indexed(at)
	return m
}

type tputAt struct {
	pn string
	h  int64
}

type tputEntry struct {
	m       map[events.UnixTime]int64
	indexed bool
}

func (r *reducer) event(e *events.Event) {
	if e.Cause == nil {
		r.c.Stats.NoCause++
		return
	}
	if r.c.HasHW && !e.Cause.After(r.c.HW) {
		r.c.Stats.Skipped++
		return
	}
	r.c.HW, r.c.HasHW = *e.Cause, true
	r.c.Stats.Applied++
	switch d := e.Data.(type) {
	case *events.MessageDelivered:
		r.advance(d.DeliveredAt)
		r.delivered(e.ID, d)
	case *events.MessageDispatched:
		r.advance(d.SentAt)
		r.dispatched(e.ID, d)
	case *events.WindowOpened:
		r.advance(d.OpenedAt)
		r.windowOpened(e.ID, d)
	case *events.WindowExpired:
		r.advance(d.ExpiredAt)
		r.windowExpired(e.ID, d)
	case *events.ConversationOpened:
		r.advance(d.OpenedAt)
		r.conversationOpened(e.ID, d)
	case *events.ConversationClosed:
		r.advance(d.ClosedAt)
		r.conversationClosed(e.ID, d)
	case *events.Correction:
		r.correction(d)
	case *events.AccountConfig:
		r.accountConfig(d)
	case *events.LimitUpdate:
		r.limitUpdate(d)
	default:
		r.c.Stats.IgnoredEventsTypes++
	}
}

// advance moves stream time; only pair events do (account events carry effective times that
// may lie anywhere).
func (r *reducer) advance(t events.UnixTime) {
	if t > r.c.Stream {
		r.c.Stream = t
	}
}

func (r *reducer) remember(id string, u undoRecord) {
	if id == "" {
		return
	}
	if !r.retracted[id] && !r.noLog {
		// Not retracted in this batch, so never forgotten in it: logged (see Changes.HLog).
		h := hourOf(u.Time)
		if lg := &r.undoLog; !lg.ok || lg.at != h {
			r.flushUndoLog()
			lg.ok, lg.at, lg.key = true, h, kUndo+itoa(h)
			if lg.l = r.c.HLog[lg.key]; lg.l == nil {
				lg.l = getLog(r.hint)
			}
			r.c.zset(kUndoIdx, itoa(h), hourEnd(h))
		}
		r.undoLog.l = append(r.undoLog.l, FieldVal{id, u.encode()})
		return
	}
	hint := len(r.retracted) // the records not logged
	if r.noLog {
		hint = r.hint
	}
	m := getTimeKey(&r.undoTK, r.c.H, &freeH, hourOf(u.Time), hint, func(h int64) string { return kUndo + itoa(h) },
		func(h int64) { r.c.zset(kUndoIdx, itoa(h), hourEnd(h)) })
	m[id] = HOp{OpSet, u.encode()}
	if r.retracted[id] {
		r.v.Undo[id] = u
	}
}

// flushUndoLog stores the log of the current hour in the changes.
func (r *reducer) flushUndoLog() {
	if lg := &r.undoLog; lg.ok {
		r.c.HLog[lg.key] = lg.l
		lg.ok, lg.l = false, nil
	}
}

func (r *reducer) forget(id string, u undoRecord) {
	r.c.hdel(undoKey(u.Time), id)
	delete(r.v.Undo, id)
}

func pairOf(a events.Account) string { return events.PairKey(a.PhoneNumberID, a.User, "") }

// delivered counts a delivery outside the service window toward its messaging-limit scope.
func (r *reducer) delivered(id string, d *events.MessageDelivered) {
	if d.InsideCSW || d.User == "" {
		return
	}
	r.c.Stats.Counted++
	s := ScopeFor(d.Account, d.DeliveredAt)
	m := deliveryMember(s, d.User, d.DeliveredAt, id)
	su := string(s) + sep + d.User
	dm := getTimeKey(&r.dlxTK, r.c.Z, &freeZ, dayOf(d.DeliveredAt), r.hint/2, func(day int64) string { return kDeliveries + itoa(day) },
		func(day int64) { r.c.zset(kDeliveryIdx, itoa(day), events.UnixTime((day+1)*int64(Day)-1)) })
	dm[m] = ZOp{OpSet, 0}
	r.c.zmax(kLimitIdx, string(s), d.DeliveredAt)
	if set, ok := r.v.Deliveries[su]; ok {
		// The user's deliveries are loaded (a retraction in this batch concerns them): keep the
		// latest exact rather than by ZADD GT, since an undo may lower it.
		set[m] = true
		r.setLatest(s, d.User, set)
	} else {
		r.c.zmax(kLimitPrefix+string(s), d.User, d.DeliveredAt)
	}
	r.remember(id, undoRecord{Kind: "d", Member: m, Time: d.DeliveredAt})
}

// setLatest writes a user's latest counted delivery from the full set of their deliveries.
func (r *reducer) setLatest(s Scope, user string, set map[string]bool) {
	var latest events.UnixTime
	found := false
	for m := range set {
		if _, _, t, _, ok := parseDeliveryMember(m); ok && t > r.c.Stream-r.cfg.UsageWindow && (!found || t > latest) {
			latest, found = t, true
		}
	}
	if found {
		r.c.zset(kLimitPrefix+string(s), user, latest)
	} else {
		r.c.zdel(kLimitPrefix+string(s), user)
	}
}

func (r *reducer) countSecond(pn string, t events.UnixTime, d int64) {
	h := hourOf(t)
	e := r.tputs[tputAt{pn, h}]
	if e == nil {
		k := tputKey(pn, h)
		m, ok := r.c.Tput[k]
		if !ok {
			m = map[events.UnixTime]int64{}
			r.c.Tput[k] = m
		}
		e = &tputEntry{m: m}
		r.tputs[tputAt{pn, h}] = e
	}
	if n := e.m[t] + d; n != 0 {
		e.m[t] = n
	} else {
		delete(e.m, t)
	}
	if d > 0 && !e.indexed {
		r.c.zset(kTputIdx, pn+sep+itoa(h), hourEnd(h))
		e.indexed = true
	}
}

// dispatched counts a business message toward throughput and takes a token from its pair.
func (r *reducer) dispatched(id string, d *events.MessageDispatched) {
	r.c.Stats.Dispatched++
	r.countSecond(d.PhoneNumberID, d.SentAt, 1)
	pair := pairOf(d.Account)
	pre := r.bucket(pair)
	post, ok := pre.Take(d.SentAt)
	u := undoRecord{Kind: "s", PN: d.PhoneNumberID, Sec: d.SentAt, Pair: pair, Pre: pre.encode(),
		Post: r.setBucket(pair, post), Time: d.SentAt}
	if !ok {
		r.c.Stats.PairRateHits++
		hm := d.User + sep + d.WAMID + sep + id
		r.c.zset(kHitPrefix+d.PhoneNumberID, hm, d.SentAt)
		r.c.zset(kHitIdx, d.PhoneNumberID+sep+hm, d.SentAt)
		u.Hit = hm
	}
	r.remember(id, u)
}

// The state a batch reads is normalised by stream time so that the outcome never depends on
// whether a trim already ran (i.e. on how the log was cut into batches): a bucket full by now, a
// pair field expired by now, an undo record or a delivery older than its window read as absent,
// exactly as if the trim had run after every event.

func (r *reducer) bucket(pair string) Bucket {
	b := r.v.Buckets[pair]
	if b.Set && b.FullAt() <= r.c.Stream {
		return Bucket{}
	}
	return b
}

func (r *reducer) field(f string) string {
	v := r.v.Fields[f]
	if v != "" && fieldExpiry(f, v) <= r.c.Stream {
		return ""
	}
	return v
}

func (r *reducer) undoRecord(id string) (undoRecord, bool) {
	u, ok := r.v.Undo[id]
	if !ok || u.Time <= r.c.Stream-r.cfg.UndoWindow {
		return undoRecord{}, false
	}
	return u, true
}

// setBucket writes a pair's bucket into the hourly key of its time; a pair has at most one
// entry over all hourly keys, so a move to another hour deletes the old one. It returns the
// bucket's encoding.
func (r *reducer) setBucket(pair string, b Bucket) string {
	prev := r.v.Buckets[pair]
	r.v.Buckets[pair] = b
	if prev.Set && (!b.Set || hourOf(prev.At) != hourOf(b.At)) {
		r.c.hdel(bucketKey(hourOf(prev.At)), pair)
	}
	if b.Set {
		m := getTimeKey(&r.bktTK, r.c.H, &freeH, hourOf(b.At), r.hint/2, bucketKey,
			func(h int64) { r.c.zset(kBucketIdx, itoa(h), hourEnd(h)+pairCapacity) })
		enc := b.encode()
		m[pair] = HOp{OpSet, enc}
		return enc
	}
	return ""
}

// setField writes a pair-state field; "" deletes it. The store indexes it for trimming by the
// hour of its expiry (fieldExpiry), from the batch's net changes (Store.write).
func (r *reducer) setField(f, val string) {
	if val == "" {
		delete(r.v.Fields, f)
		r.c.hdel(kPairs, f)
		return
	}
	r.v.Fields[f] = val
	r.sizedH(kPairs)
	r.c.hset(kPairs, f, val)
}

func (r *reducer) changeField(id, f, val string, t events.UnixTime, pn string, inbound bool) {
	pre := r.field(f)
	r.setField(f, val)
	u := undoRecord{Kind: "f", Field: f, FPre: pre, FPost: val, Time: t}
	if inbound {
		u.PN, u.Sec = pn, t
	}
	r.remember(id, u)
}

func (r *reducer) windowOpened(id string, d *events.WindowOpened) {
	r.c.Stats.WindowEvents++
	r.c.Stats.Inbound++
	r.countSecond(d.PhoneNumberID, d.OpenedAt, 1)
	f := windowField(pairOf(d.Account))
	w, _ := decodeWindow(r.field(f))
	w.OpenedAt, w.ExpiresAt = d.OpenedAt, d.ExpiresAt
	if d.EntryPoint {
		w.EntryAt = d.OpenedAt
	}
	r.changeField(id, f, w.encode(), d.OpenedAt, d.PhoneNumberID, true)
}

func (r *reducer) windowExpired(id string, d *events.WindowExpired) {
	r.c.Stats.WindowEvents++
	f := windowField(pairOf(d.Account))
	w, ok := decodeWindow(r.field(f))
	if !ok || w.ExpiresAt > d.ExpiredAt {
		return // already gone, or refreshed since
	}
	r.changeField(id, f, "", d.ExpiredAt, "", false)
}

func (r *reducer) conversationOpened(id string, d *events.ConversationOpened) {
	r.c.Stats.ConversationEvents++
	c := Conversation{ID: d.ConversationID, Category: d.Category, OpenedAt: d.OpenedAt, ExpiresAt: d.ExpiresAt}
	r.changeField(id, convField(pairOf(d.Account), d.Category), c.encode(), d.OpenedAt, "", false)
}

func (r *reducer) conversationClosed(id string, d *events.ConversationClosed) {
	r.c.Stats.ConversationEvents++
	f := convField(pairOf(d.Account), d.Category)
	c, ok := decodeConversation(d.Category, r.field(f))
	if !ok || (c.ID != "" && c.ID != d.ConversationID) {
		return // a newer conversation of the category is open
	}
	r.changeField(id, f, "", d.ClosedAt, "", false)
}

// correction undoes retracted outputs, newest first (an undo stack). Ids never applied here are
// ignored.
func (r *reducer) correction(d *events.Correction) {
	for i := len(d.Retracts) - 1; i >= 0; i-- {
		id := d.Retracts[i]
		u, ok := r.undoRecord(id)
		if !ok {
			r.c.Stats.Unknown++
			continue
		}
		r.c.Stats.Retracted++
		r.undo(u)
		r.forget(id, u)
	}
}

func (r *reducer) undo(u undoRecord) {
	switch u.Kind {
	case "d":
		s, user, _, _, ok := parseDeliveryMember(u.Member)
		if !ok {
			return
		}
		_, _, t, _, _ := parseDeliveryMember(u.Member)
		r.c.zdel(deliveryKey(t), u.Member)
		su := string(s) + sep + user
		set, loaded := r.v.Deliveries[su]
		if !loaded {
			// The store loads every retracted user's deliveries; without them, drop the user only
			// if this was their latest (conservative, and never reached through Store.Apply).
			set = map[string]bool{}
			r.v.Deliveries[su] = set
		}
		delete(set, u.Member)
		r.setLatest(s, user, set)
	case "s":
		r.countSecond(u.PN, u.Sec, -1)
		cur := r.bucket(u.Pair)
		if cur.encode() == u.Post {
			r.setBucket(u.Pair, decodeBucket(u.Pre)) // exact: nothing after it touched the bucket
		} else if u.Hit == "" {
			r.setBucket(u.Pair, cur.Refund()) // later messages used the bucket: give the token back
		}
		if u.Hit != "" {
			r.c.zdel(kHitPrefix+u.PN, u.Hit)
			r.c.zdel(kHitIdx, u.PN+sep+u.Hit)
		}
	case "f":
		if u.PN != "" {
			r.countSecond(u.PN, u.Sec, -1)
		}
		if r.field(u.Field) != u.FPost {
			return // changed since by an output that was not retracted: it stands
		}
		r.setField(u.Field, u.FPre)
	}
}

// fieldExpiry is the trim time of a pair field value: after it the value is as good as absent
// (reducer.field). apply.lua's expiry is the same function, for the trim.
func fieldExpiry(field, val string) events.UnixTime {
	if len(field) > 2 && field[len(field)-2:] == sep+"w" {
		if w, ok := decodeWindow(val); ok {
			return max(w.ExpiresAt, w.EntryAt+Day)
		}
	}
	c, _ := decodeConversation("", val)
	return c.ExpiresAt
}
