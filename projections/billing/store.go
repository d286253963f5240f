package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/ratecard"
)

// Name is the projection's stable name: key prefix and consumer-group suffix.
const Name = "billing"

// ErrConflict: another writer moved the partition's high-water mark while a batch was planned.
var ErrConflict = errors.New("billing: high-water mark moved during apply")

// Store is the billing projection over Redis. It implements projections.Projection.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	book   *ratecard.Book
	pricer *Pricer
	log    *slog.Logger
	// freeTier is FreeTierSize; tests lower it to exercise the boundary with few lines.
	freeTier int64
}

var _ projections.Projection = (*Store)(nil)

// NewStore returns a billing store writing keys under prefix (for example "convmeter:").
func NewStore(rdb redis.UniversalClient, prefix string, book *ratecard.Book, log *slog.Logger) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("billing: nil redis client")
	}
	pr, err := NewPricer(book)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{rdb: rdb, prefix: prefix, book: book, pricer: pr, log: log, freeTier: FreeTierSize}, nil
}

// Name implements projections.Projection.
func (s *Store) Name() string { return Name }

// Book returns the rate book the store prices with.
func (s *Store) Book() *ratecard.Book { return s.book }

func (s *Store) tag(p int32) string {
	return s.prefix + Name + ":{p" + strconv.Itoa(int(p)) + "}"
}

func (s *Store) partitionsKey() string { return s.prefix + Name + ":partitions" }

// Key names inside one partition's hash tag.
func kHW(tag string) string                   { return tag + ":hw" }
func kLines(tag string) string                { return tag + ":l" }
func kIndex(tag, wm string) string            { return tag + ":wm:" + wm }
func kTotals(tag, wm string) string           { return tag + ":t:" + wm }
func kGroup(tag, g string) string             { return tag + ":g:" + g }
func kGroupSet(tag, g string) string          { return tag + ":gs:" + g }
func kGroupWABA(tag, member, g string) string { return tag + ":gw:" + member + "#" + g }

// groupMember names a line's member zset within its group: the WABA and number, "W#N". All lines
// of one member zset share their totals key, so settlement can move them by counts.
func groupMember(l Line) string         { return l.WABA + "#" + l.Number }
func kDiffs(tag string) string          { return tag + ":d" }
func kDiffIndex(tag, wm string) string  { return tag + ":dz:" + wm }
func kDiffCounts(tag, wm string) string { return tag + ":dc:" + wm }
func kBad(tag string) string            { return tag + ":bad" }

// HighWater implements projections.Projection.
func (s *Store) HighWater(ctx context.Context, p int32) (events.Cause, bool, error) {
	v, err := s.rdb.HGet(ctx, kHW(s.tag(p)), strconv.Itoa(int(p))).Result()
	if errors.Is(err, redis.Nil) {
		return events.Cause{}, false, nil
	}
	if err != nil {
		return events.Cause{}, false, fmt.Errorf("billing: read high-water of partition %d: %w", p, err)
	}
	c, err := parseCause(p, v)
	return c, err == nil, err
}

func parseCause(p int32, v string) (events.Cause, error) {
	o, i, ok := strings.Cut(v, ":")
	off, err1 := strconv.ParseInt(o, 10, 64)
	idx, err2 := strconv.ParseInt(i, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return events.Cause{}, fmt.Errorf("billing: bad high-water %q of partition %d", v, p)
	}
	return events.Cause{Partition: p, Offset: off, Index: int32(idx)}, nil
}

// Apply implements projections.Projection: WATCH the partition's high-water hash, one read round
// trip for the prior state (high-water marks and the stored versions of retracted ids), the pure
// Apply, then one MULTI/EXEC that writes the plan and the new marks atomically. A conflict
// (another writer moved a mark) is retried a few times. Safe for concurrent use on different
// partitions.
func (s *Store) Apply(ctx context.Context, b projections.Batch) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.apply(ctx, b); !errors.Is(err, ErrConflict) {
			return err
		}
		s.log.Warn("billing: high-water conflict, retrying", "partition", b.Partition, "attempt", attempt)
	}
	return err
}

func (s *Store) apply(ctx context.Context, b projections.Batch) error {
	if len(b.Events) == 0 {
		return nil
	}
	tag := s.tag(b.Partition)
	var plan Plan
	// WATCH the high-water hash, read the prior state, plan, then MULTI/EXEC the plan with the new
	// marks: EXEC fails if another writer moved a mark in between (optimistic lock).
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		prior, err := s.readPrior(ctx, tx, tag, b.Events)
		if err != nil {
			return err
		}
		plan = Apply(s.pricer, b.Events, prior)
		if len(plan.HW) == 0 && len(plan.Bad) == 0 {
			return nil // everything at or below the mark: a replay after a crash
		}
		ops := s.ops(tag, plan)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, o := range ops {
				o.queue(ctx, p)
			}
			return nil
		})
		return err
	}, kHW(tag))
	if errors.Is(err, redis.TxFailedErr) {
		return fmt.Errorf("partition %d: %w", b.Partition, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("billing: apply batch of %d events to partition %d: %w", len(b.Events), b.Partition, err)
	}
	if len(plan.HW) == 0 && len(plan.Bad) == 0 {
		return nil
	}
	if err := s.rdb.SAdd(ctx, s.partitionsKey(), b.Partition).Err(); err != nil {
		return fmt.Errorf("billing: register partition %d: %w", b.Partition, err)
	}
	for _, bad := range plan.Bad {
		s.log.Warn("billing: event recorded as bad", "partition", b.Partition, "event_id", bad.ID, "event_type", bad.Type, "reason", bad.Reason)
	}
	return nil
}

func (s *Store) readPrior(ctx context.Context, rc redis.Cmdable, tag string, evs []events.Event) (Prior, error) {
	var fields []string
	seen := map[int32]bool{}
	var retracted []string
	for _, e := range evs {
		if e.Cause != nil && !seen[e.Cause.Partition] {
			seen[e.Cause.Partition] = true
			fields = append(fields, strconv.Itoa(int(e.Cause.Partition)))
		}
		if c, ok := e.Data.(*events.Correction); ok {
			retracted = append(retracted, c.Retracts...)
		}
	}
	prior := Prior{HW: map[int32]events.Cause{}, Lines: map[string]Line{}, Diffs: map[string]Diff{}}
	pipe := rc.Pipeline()
	var hw, ls, ds *redis.SliceCmd
	if len(fields) > 0 {
		hw = pipe.HMGet(ctx, kHW(tag), fields...)
	}
	if len(retracted) > 0 {
		ls = pipe.HMGet(ctx, kLines(tag), retracted...)
		ds = pipe.HMGet(ctx, kDiffs(tag), retracted...)
	}
	if hw == nil && ls == nil {
		return prior, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return prior, fmt.Errorf("billing: read prior state of %s: %w", tag, err)
	}
	if hw != nil {
		for i, v := range hw.Val() {
			str, _ := v.(string)
			if str == "" {
				continue
			}
			p, _ := strconv.Atoi(fields[i])
			c, err := parseCause(int32(p), str)
			if err != nil {
				return prior, err
			}
			prior.HW[int32(p)] = c
		}
	}
	if ls != nil {
		for i, v := range ls.Val() {
			if str, ok := v.(string); ok {
				l, err := decodeLine(str)
				if err != nil {
					return prior, fmt.Errorf("billing: decode stored line %s: %w", retracted[i], err)
				}
				prior.Lines[retracted[i]] = l
			}
		}
		for i, v := range ds.Val() {
			if str, ok := v.(string); ok {
				var d Diff
				if err := json.Unmarshal([]byte(str), &d); err != nil {
					return prior, fmt.Errorf("billing: decode stored diff %s: %w", retracted[i], err)
				}
				prior.Diffs[retracted[i]] = d
			}
		}
	}
	return prior, nil
}

// op is one write of a plan: a variadic command on one key.
type op struct {
	code  byte // H=HSET D=HDEL Z=ZADD R=ZREM S=SADD I=HINCRBY pairs
	key   string
	strs  []string // fields / members
	vals  []any    // HSET values, parallel to strs
	zs    []redis.Z
	incrs []int64 // HINCRBY deltas, parallel to strs
}

func (o *op) queue(ctx context.Context, p redis.Pipeliner) {
	switch o.code {
	case 'H':
		args := make([]any, 0, 2*len(o.strs))
		for i, f := range o.strs {
			args = append(args, f, o.vals[i])
		}
		p.HSet(ctx, o.key, args...)
	case 'D':
		p.HDel(ctx, o.key, o.strs...)
	case 'Z':
		p.ZAdd(ctx, o.key, o.zs...)
	case 'R':
		args := make([]any, len(o.strs))
		for i, m := range o.strs {
			args[i] = m
		}
		p.ZRem(ctx, o.key, args...)
	case 'S':
		args := make([]any, len(o.strs))
		for i, m := range o.strs {
			args[i] = m
		}
		p.SAdd(ctx, o.key, args...)
	case 'I':
		for i, f := range o.strs {
			p.HIncrBy(ctx, o.key, f, o.incrs[i])
		}
	}
}

type opList struct {
	byKey map[[2]string]*op
	list  []*op
}

func (l *opList) get(code byte, key string) *op {
	k := [2]string{string(code), key}
	if o, ok := l.byKey[k]; ok {
		return o
	}
	o := &op{code: code, key: key}
	l.byKey[k] = o
	l.list = append(l.list, o)
	return o
}

// ops turns a plan into writes: the high-water marks, deletes (retracted or replaced lines and
// records), puts, then counter increments. MULTI/EXEC runs them in this order.
func (s *Store) ops(tag string, plan Plan) []*op {
	l := &opList{byKey: map[[2]string]*op{}}
	hw := l.get('H', kHW(tag))
	hwFields := make([]int32, 0, len(plan.HW))
	for p := range plan.HW {
		hwFields = append(hwFields, p)
	}
	sort.Slice(hwFields, func(i, j int) bool { return hwFields[i] < hwFields[j] })
	for _, p := range hwFields {
		hw.strs = append(hw.strs, strconv.Itoa(int(p)))
		hw.vals = append(hw.vals, causeString(plan.HW[p]))
	}
	del := func(code byte, key, m string) { o := l.get(code, key); o.strs = append(o.strs, m) }
	for _, ln := range plan.Del {
		del('D', kLines(tag), ln.ID)
		del('R', kIndex(tag, ln.WM()), ln.ID)
		if ln.Group != "" {
			del('R', kGroup(tag, ln.Group), ln.ID)
			del('R', kGroupWABA(tag, groupMember(ln), ln.Group), ln.ID)
		}
	}
	for _, d := range plan.DelDiffs {
		del('D', kDiffs(tag), d.ID)
		del('R', kDiffIndex(tag, d.WM()), d.ID)
	}
	lines := l.get('H', kLines(tag))
	zadd := func(key string, at events.UnixTime, m string) {
		o := l.get('Z', key)
		o.zs = append(o.zs, redis.Z{Score: float64(at), Member: m})
	}
	inSet := map[[2]string]bool{}
	for _, ln := range plan.Put {
		lines.strs = append(lines.strs, ln.ID)
		lines.vals = append(lines.vals, appendLine(nil, ln))
		zadd(kIndex(tag, ln.WM()), ln.At, ln.ID)
		if ln.Group != "" {
			zadd(kGroup(tag, ln.Group), ln.At, ln.ID)
			zadd(kGroupWABA(tag, groupMember(ln), ln.Group), ln.At, ln.ID)
			if k := [2]string{ln.Group, groupMember(ln)}; !inSet[k] {
				inSet[k] = true
				del('S', kGroupSet(tag, ln.Group), groupMember(ln))
			}
		}
	}
	for _, d := range plan.PutDiffs {
		b, _ := json.Marshal(d) // a Diff always marshals
		o := l.get('H', kDiffs(tag))
		o.strs, o.vals = append(o.strs, d.ID), append(o.vals, b)
		zadd(kDiffIndex(tag, d.WM()), d.At, d.ID)
	}
	for _, bad := range plan.Bad {
		b, _ := json.Marshal(bad)
		o := l.get('H', kBad(tag))
		o.strs, o.vals = append(o.strs, bad.ID), append(o.vals, b)
	}
	incr := func(key string, m map[string]int64) {
		o := l.get('I', key)
		for _, f := range sortedKeys(m) {
			o.strs, o.incrs = append(o.strs, f), append(o.incrs, m[f])
		}
	}
	for _, wm := range sortedKeys(plan.Totals) {
		incr(kTotals(tag, wm), plan.Totals[wm])
	}
	for _, wm := range sortedKeys(plan.Counts) {
		incr(kDiffCounts(tag, wm), plan.Counts[wm])
	}
	// Deletes first, then puts, then increments.
	var out []*op
	for _, code := range []byte{'D', 'R', 'H', 'Z', 'S', 'I'} {
		for _, o := range l.list {
			if o.code == code && len(o.strs)+len(o.zs) > 0 {
				out = append(out, o)
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
