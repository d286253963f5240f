package ratelimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections"
)

// Name is the projection's stable name: consumer-group suffix and default key namespace.
const Name = "ratelimit"

//go:embed apply.lua
var applyLua string

//go:embed load.lua
var loadLua string

var loadScript = redis.NewScript(loadLua)

// ErrConflict means another writer moved a partition's high-water mark while a batch was being
// computed, more often than the store retries.
var ErrConflict = errors.New("ratelimit: concurrent writer moved the high-water mark")

// Store is the rate-limit projection over Redis. It implements projections.Projection and
// answers the status and admission queries.
type Store struct {
	rdb        redis.UniversalClient
	ns         string
	cfg        Config
	partitions int
	prefixes   []string // prefix(p) of the partitions queries merge
	acctTTL    time.Duration
	now        func() time.Time // the shell's clock, for the account cache only

	mu      sync.Mutex
	cache   map[string]acctEntry
	acctGen uint64             // counts the cache's replaced entries
	tiers   map[Scope]tierMemo // see TierOf

	keysMu sync.RWMutex
	keys   map[string][]string // see partKeys

	batching bool // admissions batch their reads (WithAdmissionBatching)
	batch    admBatcher

	sharedTTL time.Duration
	sc        sharedCache
}

type acctEntry struct {
	facts  *acctFacts
	loaded time.Time
}

// Option configures a Store.
type Option func(*Store) error

// WithNamespace sets the key namespace, a prefix of every key (default "convmeter:ratelimit:");
// replay builds into a fresh one and compares.
func WithNamespace(ns string) Option {
	return func(s *Store) error {
		if ns == "" || strings.ContainsAny(ns, "{}") {
			return fmt.Errorf("ratelimit: bad namespace %q", ns)
		}
		s.ns = ns
		return nil
	}
}

// WithConfig sets the windows.
func WithConfig(c Config) Option {
	return func(s *Store) error { s.cfg = c.withDefaults(); return nil }
}

// WithPartitions sets the number of partitions of the conversation-events topic, which queries
// merge (default 1).
func WithPartitions(n int) Option {
	return func(s *Store) error {
		if n <= 0 {
			return fmt.Errorf("ratelimit: partitions must be positive, got %d", n)
		}
		s.partitions = n
		return nil
	}
}

// WithAccountCache sets how long queries reuse account facts read from Redis (default 1 s;
// 0 reads them every time). clock is the wall clock; nil means time.Now.
func WithAccountCache(ttl time.Duration, clock func() time.Time) Option {
	return func(s *Store) error {
		s.acctTTL = ttl
		if clock != nil {
			s.now = clock
		}
		return nil
	}
}

// WithAdmissionBatching sets whether admissions that arrive while another admission's read is
// in flight share the next round trip (default true; see admBatcher). Off, every admission
// sends its own pipeline.
func WithAdmissionBatching(on bool) Option {
	return func(s *Store) error { s.batching = on; return nil }
}

// NewStore returns a Store over rdb.
func NewStore(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("ratelimit: nil redis client")
	}
	s := &Store{rdb: rdb, ns: "convmeter:" + Name + ":", cfg: Config{}.withDefaults(), partitions: 1,
		acctTTL: time.Second, now: time.Now, cache: map[string]acctEntry{}, batching: true}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.prefixes = make([]string, s.partitions)
	for p := range s.prefixes {
		s.prefixes[p] = s.ns + "{rl.p" + strconv.Itoa(p) + "}:"
	}
	return s, nil
}

// Name implements projections.Projection.
func (s *Store) Name() string { return Name }

// Partitions is the number of partitions queries merge.
func (s *Store) Partitions() int { return s.partitions }

// prefix is the key prefix of partition p: every key of a partition shares the hash tag
// "{rl.p<N>}", so one batch's atomic write lands in one Redis Cluster slot.
func (s *Store) prefix(p int32) string {
	if p >= 0 && int(p) < len(s.prefixes) {
		return s.prefixes[p]
	}
	return s.ns + "{rl.p" + strconv.Itoa(int(p)) + "}:"
}

func encodeCause(c events.Cause) string {
	return strconv.FormatInt(c.Offset, 10) + ":" + strconv.Itoa(int(c.Index))
}

func decodeCause(p int32, s string) (events.Cause, bool) {
	o, i, ok := strings.Cut(s, ":")
	if !ok {
		return events.Cause{}, false
	}
	off, err1 := strconv.ParseInt(o, 10, 64)
	idx, err2 := strconv.ParseInt(i, 10, 32)
	if err1 != nil || err2 != nil {
		return events.Cause{}, false
	}
	return events.Cause{Partition: p, Offset: off, Index: int32(idx)}, true
}

// HighWater implements projections.Projection.
func (s *Store) HighWater(ctx context.Context, p int32) (events.Cause, bool, error) {
	v, err := s.rdb.HGet(ctx, s.prefix(p)+kMeta, "hw").Result()
	if errors.Is(err, redis.Nil) {
		return events.Cause{}, false, nil
	}
	if err != nil {
		return events.Cause{}, false, fmt.Errorf("ratelimit: read high-water of partition %d: %w", p, err)
	}
	c, ok := decodeCause(p, v)
	if !ok {
		return events.Cause{}, false, fmt.Errorf("ratelimit: partition %d: bad high-water %q", p, v)
	}
	return c, true, nil
}

// Apply implements projections.Projection: under WATCH of the partition's meta hash, one read
// round trip (two when a correction retracts counted deliveries), the pure Reduce, and one
// MULTI/EXEC that writes the net changes with variadic commands, runs the trim script and sets
// the new high-water mark. Another writer moving the mark in between aborts the EXEC (WATCH),
// and the batch is recomputed.
func (s *Store) Apply(ctx context.Context, b projections.Batch) error {
	_, err := s.ApplyStats(ctx, b)
	return err
}

// ApplyStats is Apply returning what the batch did.
func (s *Store) ApplyStats(ctx context.Context, b projections.Batch) (Stats, error) {
	meta := s.prefix(b.Partition) + kMeta
	// On one Redis server the WATCH goes out with the first read (a round trip less); a cluster
	// client needs the key up front to pick the node.
	var keys []string
	if _, single := s.rdb.(*redis.Client); !single {
		keys = []string{meta}
	}
	for attempt := 0; attempt < 5; attempt++ {
		var stats Stats
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			w := &watchState{key: meta, pending: keys == nil}
			defer w.release(ctx, tx)
			v, secs, pos, err := s.load(ctx, tx, b, w)
			if err != nil {
				return err
			}
			next, record, err := projections.CheckPosition(b, pos, v.HasHW)
			if err != nil {
				return err
			}
			if !record {
				next = 0
			}
			ch := Reduce(s.cfg, v, b.Events)
			defer ch.recycle() // nothing keeps the changes once written
			stats = ch.Stats
			if ch.Stats.Applied == 0 && next == 0 {
				return nil
			}
			w.exec = true // EXEC ends the WATCH, committed or aborted
			if ch.Stats.Applied == 0 {
				_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
					return pipe.HSet(ctx, meta, PositionField, next).Err()
				})
				return err
			}
			return s.write(ctx, tx, b.Partition, ch, secs, len(b.Events), next)
		}, keys...)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return Stats{}, err
		}
		return stats, nil
	}
	return Stats{}, fmt.Errorf("partition %d: %w", b.Partition, ErrConflict)
}

// watchState tracks a WATCH that load sends itself (pipelined with its first read), which
// go-redis does not know about: without an EXEC it must be released before the connection goes
// back to the pool, or the connection's next transaction could abort on it.
type watchState struct {
	key     string
	pending bool // the WATCH is still to be sent
	sent    bool // load sent it in a pipeline
	exec    bool // an EXEC was sent
}

// watch returns the key to WATCH in the next pipeline ("" when done) and marks it sent.
func (w *watchState) watch() string {
	if w == nil || !w.pending {
		return ""
	}
	w.pending, w.sent = false, true
	return w.key
}

func (w *watchState) release(ctx context.Context, tx *redis.Tx) {
	if w.sent && !w.exec {
		_ = tx.Unwatch(ctx).Err()
	}
}

// tputMinutes holds the throughput minutes a batch touches, read before it (tput.go): hash key
// → the minute's first second → its counts (nil until read; zero when absent). Under the WATCH
// of the meta hash nothing else changes them before the EXEC, so write adds the batch's
// increments and writes the minutes whole.
type tputMinutes map[string]map[events.UnixTime]*minuteCounts

// PositionField is the meta hash's field holding the log position of the partition's last batch
// from the log (projections.CheckPosition): where the consumer had read, not projection state,
// so a comparison of two namespaces leaves it out.
const PositionField = "next"

// Position implements projections.Positioned.
func (s *Store) Position(ctx context.Context, p int32) (projections.Position, error) {
	n, err := s.rdb.HGet(ctx, s.prefix(p)+kMeta, PositionField).Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return projections.Position{}, nil
	case err != nil:
		return projections.Position{}, fmt.Errorf("ratelimit: read log position of partition %d: %w", p, err)
	}
	return projections.Position{Next: n, Known: true}, nil
}

// load reads the state the batch needs: one round trip, two when a correction retracts outputs
// whose state lies beyond the batch. It returns the View, the throughput minutes the batch
// touches and the partition's log position (read by the WATCHed path that applies; absent from
// the script's).
// w, when not nil, holds the WATCH still to be sent before the first read.
func (s *Store) load(ctx context.Context, rdb redis.Scripter, b projections.Batch, w *watchState) (*View, tputMinutes, projections.Position, error) {
	secs := tputMinutes{}
	// Consecutive events mostly share a number's hour: keep each number's hour map rather than
	// building the key per event.
	hours := map[tputAt]map[events.UnixTime]*minuteCounts{}
	second := func(pn string, t events.UnixTime) {
		h := hourOf(t)
		m, ok := hours[tputAt{pn, h}]
		if !ok {
			k := tputKey(pn, h)
			if m, ok = secs[k]; !ok {
				m = map[events.UnixTime]*minuteCounts{}
				secs[k] = m
			}
			hours[tputAt{pn, h}] = m
		}
		if _, ok := m[minuteOf(t)]; !ok {
			m[minuteOf(t)] = nil
		}
	}
	sc := loadPool.Get().(*loadScratch)
	defer sc.put()
	if sc.pairs == nil {
		sc.pairs, sc.fields = make(map[string]bool, len(b.Events)/2), make(map[string]bool, len(b.Events)/2)
	}
	pairs, fields := sc.pairs, sc.fields
	var retracted []string
	var sentMin, sentMax events.UnixTime // the dispatches' times, to guess the buckets' hours
	var counted []int                    // the batch's deliveries outside the window
	var firstRetract map[string]int      // retracted id → the first correction of it
	for i := range b.Events {
		e := &b.Events[i]
		switch d := e.Data.(type) {
		case *events.MessageDispatched:
			pairs[pairOf(d.Account)] = true
			second(d.PhoneNumberID, d.SentAt)
			if len(pairs) == 1 || d.SentAt < sentMin {
				sentMin = d.SentAt
			}
			sentMax = max(sentMax, d.SentAt)
		case *events.WindowOpened:
			fields[windowField(pairOf(d.Account))] = true
			second(d.PhoneNumberID, d.OpenedAt)
		case *events.WindowExpired:
			fields[windowField(pairOf(d.Account))] = true
		case *events.ConversationOpened:
			fields[convField(pairOf(d.Account), d.Category)] = true
		case *events.ConversationClosed:
			fields[convField(pairOf(d.Account), d.Category)] = true
		case *events.MessageDelivered:
			if !d.InsideCSW {
				counted = append(counted, i)
			}
		case *events.Correction:
			retracted = append(retracted, d.Retracts...)
			if firstRetract == nil {
				firstRetract = map[string]int{}
			}
			for _, id := range d.Retracts {
				if _, ok := firstRetract[id]; !ok {
					firstRetract[id] = i
				}
			}
			if pn, user, ok := events.SplitPairKey(d.Key); ok {
				pair := events.PairKey(pn, user, "")
				pairs[pair] = true
				fields[windowField(pair)] = true
				for _, c := range ConvCategories {
					fields[convField(pair, c)] = true
				}
			}
		}
	}
	own := ownOutputs(b.Events, firstRetract)
	if len(own) > 0 {
		retracted = slices.DeleteFunc(retracted, func(id string) bool { _, ok := own[id]; return ok })
	}
	// The replies are matched by position: no need to sort.
	sc.pairList, sc.fieldList = appendKeys(sc.pairList[:0], pairs), appendKeys(sc.fieldList[:0], fields)
	pairList, fieldList := sc.pairList, sc.fieldList
	var res readResult
	var err error
	tx, isTx := rdb.(*redis.Tx)
	switch {
	case isTx:
		res, err = s.readDirect(ctx, tx, b.Partition, pairList, fieldList, retracted, secs, guessHours(sentMin, sentMax), w.watch())
	default:
		res, err = s.read(ctx, rdb, b.Partition, pairList, fieldList, retracted, nil, secs)
	}
	if err != nil {
		return nil, nil, projections.Position{}, err
	}
	v := NewView()
	v.Buckets, v.Fields = make(map[string]Bucket, len(pairList)), make(map[string]string, len(fieldList))
	if res.hw != "" {
		c, ok := decodeCause(b.Partition, res.hw)
		if !ok {
			return nil, nil, projections.Position{}, fmt.Errorf("ratelimit: partition %d: bad high-water %q", b.Partition, res.hw)
		}
		v.HW, v.HasHW = c, true
	}
	if res.st != "" {
		n, _ := strconv.ParseInt(res.st, 10, 64)
		v.Stream = events.UnixTime(n)
	}
	var pos projections.Position
	if res.next != "" {
		n, err := strconv.ParseInt(res.next, 10, 64)
		if err != nil {
			return nil, nil, projections.Position{}, fmt.Errorf("ratelimit: partition %d: bad log position %q", b.Partition, res.next)
		}
		pos = projections.Position{Next: n, Known: true}
	}
	for i, x := range res.buckets {
		if x != "" {
			v.Buckets[pairList[i]] = decodeBucket(x)
		}
	}
	for i, x := range res.fields {
		if x != "" {
			v.Fields[fieldList[i]] = x
		}
	}
	users := map[string]bool{}
	moreFields, morePairs := map[string]bool{}, map[string]bool{}
	moreSecs := tputMinutes{} // the minutes of retracted messages that the batch did not read
	retractedSecond := func(pn string, t events.UnixTime) {
		k, m := tputKey(pn, hourOf(t)), minuteOf(t)
		if _, ok := secs[k][m]; ok {
			return
		}
		if moreSecs[k] == nil {
			moreSecs[k] = map[events.UnixTime]*minuteCounts{}
		}
		moreSecs[k][m] = nil
	}
	// An output of the batch below the high-water mark is not applied again, so the record of
	// its id is the one stored: read those too (a batch applied again in part; rare).
	var unstored map[string]bool // retracted ids without a stored undo record
	for id, c := range own {
		if v.HasHW && !c.After(v.HW) {
			retracted = append(retracted, id)
			continue
		}
		if unstored == nil {
			unstored = map[string]bool{}
		}
		unstored[id] = true
	}
	if n := len(res.undo); len(retracted) > n {
		more, err := s.read(ctx, rdb, b.Partition, nil, nil, retracted[n:], nil, tputMinutes{})
		if err != nil {
			return nil, nil, projections.Position{}, err
		}
		res.undo = append(res.undo, more.undo...)
	}
	for i, x := range res.undo {
		if x == "" {
			if unstored == nil {
				unstored = map[string]bool{}
			}
			unstored[retracted[i]] = true
			continue
		}
		u, err := decodeUndo(x)
		if err != nil {
			return nil, nil, projections.Position{}, fmt.Errorf("ratelimit: partition %d: undo record of %s: %w", b.Partition, retracted[i], err)
		}
		v.Undo[retracted[i]] = u
		switch u.Kind {
		case "d":
			if sc, user, _, _, ok := parseDeliveryMember(u.Member); ok {
				users[string(sc)+sep+user] = true
			}
		case "s":
			if !pairs[u.Pair] {
				morePairs[u.Pair] = true
			}
			retractedSecond(u.PN, u.Sec)
		case "f":
			if !fields[u.Field] {
				moreFields[u.Field] = true
			}
			if u.PN != "" {
				retractedSecond(u.PN, u.Sec)
			}
		}
	}
	if len(unstored) > 0 {
		// A retracted delivery of this batch itself: its user's deliveries are needed. Of an id
		// delivered twice the last delivery counts.
		batchDeliveries := map[string]string{} // id → "scope|user"
		for _, i := range counted {
			e := &b.Events[i]
			if unstored[e.ID] {
				d := e.Data.(*events.MessageDelivered)
				batchDeliveries[e.ID] = string(ScopeFor(d.Account, d.DeliveredAt)) + sep + d.User
			}
		}
		for _, su := range batchDeliveries {
			users[su] = true
		}
	}
	if len(users) == 0 && len(moreFields) == 0 && len(morePairs) == 0 && len(moreSecs) == 0 {
		return v, secs, pos, nil
	}
	// Second round, for corrections only: what the retracted outputs touched beyond this batch's
	// own pairs and seconds, and every counted delivery of the users whose deliveries are retracted.
	ul, fl, pl := sortedKeys(users), sortedKeys(moreFields), sortedKeys(morePairs)
	res, err = s.read(ctx, rdb, b.Partition, pl, fl, nil, ul, moreSecs)
	if err != nil {
		return nil, nil, projections.Position{}, err
	}
	for k, ms := range moreSecs {
		if secs[k] == nil {
			secs[k] = ms
			continue
		}
		for m, c := range ms {
			secs[k][m] = c
		}
	}
	for i, su := range ul {
		set := map[string]bool{}
		for _, m := range res.deliveries[i] {
			set[m] = true
		}
		v.Deliveries[su] = set
	}
	for i, x := range res.fields {
		if x != "" {
			v.Fields[fl[i]] = x
		}
	}
	for i, x := range res.buckets {
		if x != "" {
			v.Buckets[pl[i]] = decodeBucket(x)
		}
	}
	return v, secs, pos, nil
}

type readResult struct {
	hw, st, next          string
	buckets, fields, undo []string
	deliveries            [][]string
	secs                  []string // the load script's throughput values, until read parses them
}

// loadScratch holds load's sets of the batch's pairs and pair fields and their lists between
// batches (cleared, not rebuilt: they were a good part of the garbage of a batch).
type loadScratch struct {
	pairs, fields       map[string]bool
	pairList, fieldList []string
}

var loadPool = sync.Pool{New: func() any { return new(loadScratch) }}

func (sc *loadScratch) put() {
	clear(sc.pairs)
	clear(sc.fields)
	clear(sc.pairList[:cap(sc.pairList)])
	clear(sc.fieldList[:cap(sc.fieldList)])
	loadPool.Put(sc)
}

// appendKeys appends m's keys to l in map order.
func appendKeys[V any](l []string, m map[string]V) []string {
	for k := range m {
		l = append(l, k)
	}
	return l
}

// listSeconds lists secs as the load script's groups: keys and each key's field names, with the
// minutes they name (in map order: the reply is matched against the same lists).
func listSeconds(secs tputMinutes) (keys []string, names [][]string, minutes [][]events.UnixTime) {
	keys, names, minutes = make([]string, 0, len(secs)), make([][]string, 0, len(secs)), make([][]events.UnixTime, 0, len(secs))
	for k, ms := range secs {
		l, ml := make([]string, 0, len(ms)), make([]events.UnixTime, 0, len(ms))
		for m := range ms {
			l, ml = append(l, minuteField(m)), append(ml, m)
		}
		keys, names, minutes = append(keys, k), append(names, l), append(minutes, ml)
	}
	return keys, names, minutes
}

// read runs the load script: one round trip.
// It fills secs with the stored counts of its minutes.
func (s *Store) read(ctx context.Context, rdb redis.Scripter, p int32, pairs, fields, ids, users []string, secs tputMinutes) (readResult, error) {
	keys, names, minutes := listSeconds(secs)
	raw, err := loadScript.Run(ctx, rdb, []string{s.prefix(p) + kMeta}, loadArgs(s.prefix(p), pairs, fields, ids, users, keys, names)...).Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return readResult{}, fmt.Errorf("ratelimit: load state of partition %d: %w", p, err)
	}
	r, err := loadReply(raw, ids)
	if err != nil {
		return readResult{}, fmt.Errorf("ratelimit: load state of partition %d: %w", p, err)
	}
	vals, j := r.secs, 0
	for i, k := range keys {
		for x, f := range names[i] {
			if j >= len(vals) {
				return readResult{}, fmt.Errorf("ratelimit: load state of partition %d: %d throughput minutes read, want more", p, len(vals))
			}
			c, err := decodeMinute(vals[j])
			if err != nil {
				return readResult{}, fmt.Errorf("ratelimit: partition %d: throughput %s %s: %w", p, k, f, err)
			}
			secs[k][minutes[i][x]] = &c
			j++
		}
	}
	r.secs = nil
	return r, nil
}

// loadArgs lists the load script's arguments. Elements go in as pointers into their lists: no
// allocation per boxed string.
func loadArgs(pfx string, pairs, fields, ids, users, keys []string, names [][]string) []any {
	logs := undoLookup(ids)
	args := make([]any, 0, 7+len(pairs)+len(fields)+len(ids)+len(users)+len(logs)+3*len(keys))
	args = append(args, pfx)
	for _, l := range [][]string{pairs, fields, ids, users, logs} {
		args = append(args, len(l))
		for i := range l {
			args = append(args, &l[i])
		}
	}
	args = append(args, len(keys))
	for i := range keys {
		args = append(args, &keys[i], len(names[i]))
		for j := range names[i] {
			args = append(args, &names[i][j])
		}
	}
	return args
}

// loadReply parses the load script's reply to a read of the undo records of ids (among the
// rest); secs holds the throughput values in group order.
func loadReply(raw []any, ids []string) (readResult, error) {
	if len(raw) != 7 {
		return readResult{}, fmt.Errorf("reply has %d parts", len(raw))
	}
	str := func(x any) string { v, _ := x.(string); return v }
	strs := func(x any) []string {
		xs, _ := x.([]any)
		out := make([]string, len(xs))
		for i, y := range xs {
			out[i] = str(y)
		}
		return out
	}
	r := readResult{hw: str(raw[0]), st: str(raw[1]), buckets: strs(raw[2]), fields: strs(raw[3]), secs: strs(raw[6])}
	var err error
	if r.undo, err = resolveUndo(raw[4], ids, undoLookup(ids)); err != nil {
		return readResult{}, err
	}
	ds, _ := raw[5].([]any)
	for _, x := range ds {
		r.deliveries = append(r.deliveries, strs(x))
	}
	return r, nil
}

// readDirect is read (without users) for a batch on the WATCHed connection, mostly without the
// load script: plain HMGETs pipelined, in one or two round trips: the meta hash, the pair fields,
// the throughput minutes, the bucket index and the buckets of the guessed hours, then the pairs'
// buckets in every indexed hour not guessed, oldest first so the newest wins (as load.lua does).
// In Lua, converting the arguments and the reply cost Redis more than the reads themselves (about
// 0.7 µs per event). Only the undo records of the retracted ids, when there are any, are read by
// the load script (given no other list), in the first pipeline: their hours are only known from
// the undo index, and the ids are few.
// The reads are not atomic together, but a writer changing any of these keys also moves the
// WATCHed high-water mark, so a view read across its EXEC is never written: the EXEC aborts and
// the batch is recomputed.
// watch, when not "", is WATCHed first in the same pipeline.
func (s *Store) readDirect(ctx context.Context, tx *redis.Tx, p int32, pairs, fields, ids []string, secs tputMinutes, guess []string, watch string) (readResult, error) {
	pfx := s.prefix(p)
	keys, names, minutes := listSeconds(secs)
	n := len(fields)
	for _, l := range names {
		n += len(l)
	}
	// Elements go in as pointers into their lists (no allocation per boxed string); each
	// command's arguments are a sub-slice of one arena (a grown arena leaves earlier ones valid).
	args := make([]any, 0, n+2*len(keys)+16)
	hmget := func(pipe redis.Pipeliner, key string, l []string) []*redis.Cmd {
		var out []*redis.Cmd
		for len(l) > 0 {
			k := min(len(l), maxArgs)
			start := len(args)
			args = append(args, "hmget", key)
			for i := range l[:k] {
				args = append(args, &l[i])
			}
			out = append(out, pipe.Do(ctx, args[start:len(args):len(args)]...))
			l = l[k:]
		}
		return out
	}
	// fill copies the values of cmds (chunks of one list) into out at their positions; only
	// values present overwrite.
	fill := func(cmds []*redis.Cmd, out []string) error {
		j := 0
		for _, c := range cmds {
			vs, err := c.Slice()
			if err != nil {
				return err
			}
			for _, v := range vs {
				if j >= len(out) {
					return fmt.Errorf("%d values for %d names", j+1, len(out))
				}
				if str, ok := v.(string); ok {
					out[j] = str
				}
				j++
			}
		}
		if j != len(out) {
			return fmt.Errorf("%d values for %d names", j, len(out))
		}
		return nil
	}
	var meta *redis.SliceCmd
	var idx *redis.StringSliceCmd
	var undo *redis.Cmd
	var fieldCmds []*redis.Cmd
	secCmds := make([][]*redis.Cmd, len(keys))
	bktCmds := map[string][]*redis.Cmd{} // hour → its HMGETs of the pairs' buckets
	if _, err := tx.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		if watch != "" {
			pipe.Do(ctx, "watch", watch)
		}
		meta = pipe.HMGet(ctx, pfx+kMeta, "hw", "st", PositionField)
		if len(ids) > 0 {
			// EVAL, not EVALSHA: a pipeline cannot resend a missing script (Redis caches it by
			// its SHA1 either way).
			undo = pipe.Eval(ctx, loadLua, []string{pfx + kMeta}, loadArgs(pfx, nil, nil, ids, nil, nil, nil)...)
		}
		if len(pairs) > 0 {
			idx = pipe.ZRangeByScore(ctx, pfx+kBucketIdx, &redis.ZRangeBy{Min: "-inf", Max: "+inf"})
			for _, h := range guess {
				bktCmds[h] = hmget(pipe, pfx+kBuckets+h, pairs)
			}
		}
		fieldCmds = hmget(pipe, pfx+kPairs, fields)
		for i, k := range keys {
			secCmds[i] = hmget(pipe, pfx+k, names[i])
		}
		return nil
	}); err != nil {
		return readResult{}, fmt.Errorf("ratelimit: load state of partition %d: %w", p, err)
	}
	var r readResult
	mv := meta.Val()
	if len(mv) != 3 {
		return readResult{}, fmt.Errorf("ratelimit: load state of partition %d: meta reply has %d parts", p, len(mv))
	}
	r.hw, _ = mv[0].(string)
	r.st, _ = mv[1].(string)
	r.next, _ = mv[2].(string)
	if undo != nil {
		raw, _ := undo.Val().([]any)
		u, err := loadReply(raw, ids)
		if err != nil {
			return readResult{}, fmt.Errorf("ratelimit: load undo records of partition %d: %w", p, err)
		}
		if len(u.undo) != len(ids) {
			return readResult{}, fmt.Errorf("ratelimit: load undo records of partition %d: %d for %d ids", p, len(u.undo), len(ids))
		}
		r.undo = u.undo
	}
	r.fields = make([]string, len(fields))
	if err := fill(fieldCmds, r.fields); err != nil {
		return readResult{}, fmt.Errorf("ratelimit: load pair fields of partition %d: %w", p, err)
	}
	for i, k := range keys {
		vals := make([]string, len(names[i]))
		if err := fill(secCmds[i], vals); err != nil {
			return readResult{}, fmt.Errorf("ratelimit: load throughput of partition %d: %w", p, err)
		}
		for j, f := range names[i] {
			c, err := decodeMinute(vals[j])
			if err != nil {
				return readResult{}, fmt.Errorf("ratelimit: partition %d: throughput %s %s: %w", p, k, f, err)
			}
			secs[k][minutes[i][j]] = &c
		}
	}
	r.buckets = make([]string, len(pairs))
	if idx == nil || len(idx.Val()) == 0 {
		return r, nil
	}
	// Only the indexed hours count, as in the load script; those not guessed take a round trip.
	hours := idx.Val()
	missing := 0
	for _, h := range hours {
		if _, ok := bktCmds[h]; !ok {
			missing++
		}
	}
	if missing > 0 {
		if _, err := tx.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, h := range hours {
				if _, ok := bktCmds[h]; !ok {
					bktCmds[h] = hmget(pipe, pfx+kBuckets+h, pairs)
				}
			}
			return nil
		}); err != nil {
			return readResult{}, fmt.Errorf("ratelimit: load buckets of partition %d: %w", p, err)
		}
	}
	for _, h := range hours { // oldest first: the newest wins
		if err := fill(bktCmds[h], r.buckets); err != nil {
			return readResult{}, fmt.Errorf("ratelimit: load buckets of partition %d: %w", p, err)
		}
	}
	return r, nil
}

// guessHours lists the hours whose bucket keys a batch with dispatches from lo to hi most likely
// finds in the bucket index, so readDirect reads them in its first round trip: the trim drops an
// hour once every bucket of it is full (its end + pairCapacity), and a bucket's time is never past
// the stream time, which is usually close to the batch's first dispatch. At most three hours.
func guessHours(lo, hi events.UnixTime) []string {
	if hi == 0 {
		return nil
	}
	last := hourOf(hi)
	first := max(hourOf(lo-pairCapacity), last-2)
	out := make([]string, 0, last-first+1)
	for h := first; h <= last; h++ {
		out = append(out, itoa(h))
	}
	return out
}

// writeScratch holds write's arenas between batches: a batch of 10,000 events fills about half a
// megabyte of them, which made most of the garbage of a batch.
type writeScratch struct {
	args, all          []any
	cmds               [][]any
	strs               []string
	ints               []int64
	zs, zg, zr, hs, hd []any
	blob               []byte // the undo logs' entries, batch after batch
	undo               undoWriter
	pairHours          map[int64][]any // pair fields set, by the hour of their expiry
}

var writePool = sync.Pool{New: func() any { return &writeScratch{pairHours: map[int64][]any{}} }}

// put clears the arenas (so they keep no strings of the batch alive) and returns them to the pool.
func (sc *writeScratch) put() {
	for _, l := range [][]any{sc.args, sc.all, sc.zs, sc.zg, sc.zr, sc.hs, sc.hd} {
		clear(l[:cap(l)])
	}
	clear(sc.cmds[:cap(sc.cmds)])
	clear(sc.strs[:cap(sc.strs)])
	clear(sc.pairHours)
	writePool.Put(sc)
}

// grow returns l emptied, with room for n elements.
func grow[T any](l []T, n int) []T {
	if cap(l) < n {
		return make([]T, 0, n)
	}
	return l[:0]
}

// maxArgs bounds the arguments of one command (the trim script's Lua unpack limit; also keeps
// each variadic command short).
const maxArgs = 6000

// write queues the batch's net changes, the trims and the new high-water mark in one MULTI/EXEC
// on tx, whose WATCH of the meta hash guards the mark.
// The throughput increments go into the minutes in secs, read by load.
func (s *Store) write(ctx context.Context, tx *redis.Tx, p int32, ch *Changes, secs tputMinutes, batchLen int, next int64) error {
	pfx := s.prefix(p)
	st := ch.Stream
	cut := func(w events.UnixTime) string { return strconv.FormatInt(int64(st-w), 10) }
	// The trim script's arguments.
	sc := writePool.Get().(*writeScratch)
	defer sc.put()
	args := sc.args[:0]
	args = append(args, pfx, cut(s.cfg.UsageWindow), cut(s.cfg.UndoWindow), cut(s.cfg.ThroughputWindow), cut(0), cut(0),
		cut(s.cfg.HitWindow), strconv.Itoa(2*batchLen+10000))
	cmds := sc.cmds[:0]
	// Arguments are boxed as pointers into arenas (go-redis writes *string and *int64 as their
	// values): a pointer fits an interface without an allocation, where a string or a large
	// int64 would take one each. An arena that grows leaves the earlier pointers valid (they keep
	// the old array). Each command's arguments are a sub-slice of one argument arena.
	n := 0
	for _, ops := range ch.Z {
		n += len(ops)
	}
	for _, ops := range ch.H {
		n += len(ops)
	}
	for _, ops := range ch.Tput {
		n += len(ops)
	}
	nLog := 0
	for _, l := range ch.HLog {
		nLog += len(l)
	}
	strs, ints, all := grow(sc.strs, 2*n), grow(sc.ints, n), grow(sc.all, 2*n+2*nLog+64)
	str := func(v string) any { strs = append(strs, v); return &strs[len(strs)-1] }
	num := func(v int64) any { ints = append(ints, v); return &ints[len(ints)-1] }
	// command queues cmd key kv... in chunks of at most maxArgs elements of kv (step per element).
	command := func(cmd []any, key string, kv []any, step int) {
		for len(kv) > 0 {
			n := min(len(kv), maxArgs/step*step)
			start := len(all)
			all = append(all, cmd[0], pfx+key)
			all = append(all, cmd[1:]...)
			all = append(all, kv[:n]...)
			cmds = append(cmds, all[start:len(all):len(all)])
			kv = kv[n:]
		}
	}
	zadd, zaddGT, zrem, hset, hdel, rpush := []any{"zadd"}, []any{"zadd", "gt"}, []any{"zrem"}, []any{"hset"}, []any{"hdel"}, []any{"rpush"}
	// Net changes are disjoint per element, so their order does not matter: no sorting.
	zs, zg, zr, hs, hd := sc.zs, sc.zg, sc.zr, sc.hs, sc.hd
	for key, ops := range ch.Z {
		zs, zg, zr = zs[:0], zg[:0], zr[:0]
		for m, op := range ops {
			switch op.Kind {
			case OpSet:
				zs = append(zs, num(int64(op.Score)), str(m))
			case OpMax:
				zg = append(zg, num(int64(op.Score)), str(m))
			default:
				zr = append(zr, str(m))
			}
		}
		command(zadd, key, zs, 2)
		command(zaddGT, key, zg, 2)
		command(zrem, key, zr, 1)
	}
	for key, ops := range ch.H {
		// An undo record set or deleted here (its output retracted in this batch) goes to the
		// hour's logs, and leaves the hour's hash, which would stand over them (undolog.go).
		undo, pairs := isUndoHour(key), key == kPairs
		hs, hd = hs[:0], hd[:0]
		for f, op := range ops {
			switch {
			case op.Kind == OpSet && pairs:
				// A pair field is indexed for the trim by the hour of its expiry (the lists
				// keep it there after it changes: the trim reads the value it then has).
				fp := str(f)
				hs = append(hs, fp, str(op.Val))
				h := hourOf(fieldExpiry(f, op.Val))
				sc.pairHours[h] = append(sc.pairHours[h], fp)
			case op.Kind == OpSet && !undo:
				hs = append(hs, str(f), str(op.Val))
			default:
				hd = append(hd, str(f))
			}
		}
		command(hset, key, hs, 2)
		command(hdel, key, hd, 1)
	}
	if len(sc.pairHours) > 0 {
		zs = zs[:0]
		for h, fields := range sc.pairHours {
			command(rpush, kPairHour+itoa(h), fields, 1)
			zs = append(zs, num(int64(hourEnd(h))), str(itoa(h)))
		}
		command(zadd, kPairHourIdx, zs, 2)
	}
	for key, l := range ch.HLog {
		if logsNew(key, l) {
			continue // written as logs: undoWriter.appendLogs
		}
		hs = hs[:0]
		for i := range l { // in order: of a field logged twice the later value stands
			hs = append(hs, &l[i].Field, &l[i].Val)
		}
		command(hset, key, hs, 2)
	}
	// Undo records of the hours that take logs: pushed to their buckets' logs (undolog.go).
	var blob []byte
	blob, cmds = sc.undo.appendLogs(ch, pfx, sc.blob[:0], cmds)
	// Throughput: the increments go into the minutes load read, written whole (tput.go).
	touched := map[events.UnixTime]bool{}
	for key, ops := range ch.Tput {
		hs, hd = hs[:0], hd[:0]
		minutes := secs[key]
		clear(touched)
		for t, d := range ops {
			c := minutes[minuteOf(t)]
			if c == nil {
				// load reads every minute the batch's events and retractions touch.
				return fmt.Errorf("ratelimit: partition %d: throughput minute %s of %s was not read", p, minuteField(t), key)
			}
			c[t%60] = max(0, c[t%60]+d)
			touched[minuteOf(t)] = true
		}
		for m := range touched {
			if v := minutes[m].encode(); v != "" {
				hs = append(hs, str(minuteField(m)), str(v))
			} else {
				hd = append(hd, str(minuteField(m)))
			}
		}
		command(hset, key, hs, 2)
		command(hdel, key, hd, 1)
	}
	// The arenas go back to the pool (at their grown sizes) once the EXEC is done with them.
	defer func() {
		sc.args, sc.cmds, sc.strs, sc.ints, sc.all = args, cmds, strs, ints, all
		sc.zs, sc.zg, sc.zr, sc.hs, sc.hd = zs, zg, zr, hs, hd
		sc.blob = blob
	}()
	meta := pfx + kMeta
	_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, c := range cmds {
			pipe.Do(ctx, c...)
		}
		// EVAL, not EVALSHA: inside MULTI a missing script would only fail its own command.
		pipe.Eval(ctx, applyLua, []string{meta}, args...)
		if next > 0 {
			pipe.HSet(ctx, meta, "hw", encodeCause(ch.HW), "st", strconv.FormatInt(int64(st), 10), PositionField, next)
		} else {
			pipe.HSet(ctx, meta, "hw", encodeCause(ch.HW), "st", strconv.FormatInt(int64(st), 10))
		}
		return nil
	})
	if errors.Is(err, redis.TxFailedErr) {
		return err
	}
	if err != nil {
		return fmt.Errorf("ratelimit: apply batch to partition %d: %w", p, err)
	}
	return nil
}
