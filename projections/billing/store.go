package billing

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
func kHW(tag string) string                    { return tag + ":hw" }
func kLines(tag string) string                 { return tag + ":l" }
func kIndex(tag, wm string) string             { return tag + ":wm:" + wm }
func kTotals(tag, wm string) string            { return tag + ":t:" + wm }
func kGroup(tag, g string) string              { return tag + ":g:" + g }
func kGroupSet(tag, g string) string           { return tag + ":gs:" + g }
func kGroupMembers(tag, g string) string       { return tag + ":gm:" + g }
func kGroupCount(tag, member, g string) string { return tag + ":gc:" + member + "#" + g }

// groupMember names a line's member within its group: the WABA and number, "W#N". All lines of
// one member share their totals key, so settlement can move them by counts.
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
	if len(b.Events) == 0 && b.Next == 0 {
		return nil // nothing to apply, no position to record
	}
	tag := s.tag(b.Partition)
	var plan Plan
	// WATCH the high-water hash, read the prior state, plan, then MULTI/EXEC the plan with the new
	// marks: EXEC fails if another writer moved a mark in between (optimistic lock).
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		var pos projections.Position
		prior, err := s.readPrior(ctx, tx, tag, b.Events, &pos, b.Next > 0)
		if err != nil {
			return err
		}
		_, hasHW := prior.HW[b.Partition]
		next, record, err := projections.CheckPosition(b, pos, hasHW)
		if err != nil {
			return err
		}
		plan = Apply(s.pricer, b.Events, prior)
		var ops [][]any
		if record {
			ops = append(ops, []any{"hset", kHW(tag), positionField, next})
		}
		if len(plan.HW) == 0 && len(plan.Bad) == 0 {
			if !record {
				return nil // everything at or below the mark: a replay after a crash
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return p.Do(ctx, ops[0]...).Err() })
			return err
		}
		planOps, counts := s.ops(tag, plan)
		ops = append(ops, planOps...)
		// Member counters are read here, under the WATCH, and written back as values (counters.go).
		set, err := counts.cmds(ctx, tx, tag)
		if err != nil {
			return err
		}
		ops = append(ops, set...)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, args := range ops {
				p.Do(ctx, args...)
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

// positionField is the field of a partition's high-water hash that holds the log position of
// its last batch from the log (projections.CheckPosition).
const positionField = "next"

// Position implements projections.Positioned.
func (s *Store) Position(ctx context.Context, p int32) (projections.Position, error) {
	n, err := s.rdb.HGet(ctx, kHW(s.tag(p)), positionField).Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return projections.Position{}, nil
	case err != nil:
		return projections.Position{}, fmt.Errorf("billing: read log position of partition %d: %w", p, err)
	}
	return projections.Position{Next: n, Known: true}, nil
}

// readPrior reads what Apply needs of the batch's prior state, and the partition's log position
// into pos when withPos, in one round trip.
func (s *Store) readPrior(ctx context.Context, rc redis.Cmdable, tag string, evs []events.Event, pos *projections.Position, withPos bool) (Prior, error) {
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
	if withPos {
		fields = append(fields, positionField)
	}
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
	if hw != nil && withPos {
		vals := hw.Val()
		if str, _ := vals[len(vals)-1].(string); str != "" {
			n, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				return prior, fmt.Errorf("billing: bad log position %q in %s", str, kHW(tag))
			}
			*pos = projections.Position{Next: n, Known: true}
		}
		hw.SetVal(vals[:len(vals)-1])
		fields = fields[:len(fields)-1]
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
				l, err := decodeLine(retracted[i], str)
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

// touchOrder numbers keys in the order they are first seen: the batch's commands and counters
// come out in first-touch order, so equal batches give equal transactions. A batch touches few
// keys of a kind (4 WABA-months, a dozen groups per partition in a replay), which are found by
// comparing them in turn; a map indexes them only when there are more.
type touchOrder[K comparable] struct {
	keys []K
	idx  map[K]int // every key, once there are more than touchScan
}

// touchScan is how many keys are compared before a map is built: comparing a key of two strings
// costs a few nanoseconds, hashing it for a map lookup some tens.
const touchScan = 8

// of returns k's number, and whether k was seen now for the first time.
func (o *touchOrder[K]) of(k K) (i int, first bool) {
	if o.idx != nil {
		if i, ok := o.idx[k]; ok {
			return i, false
		}
	} else {
		for i, x := range o.keys {
			if x == k {
				return i, false
			}
		}
	}
	i = len(o.keys)
	o.keys = append(o.keys, k)
	switch {
	case o.idx != nil:
		o.idx[k] = i
	case len(o.keys) > touchScan:
		o.idx = make(map[K]int, 2*len(o.keys))
		for j, x := range o.keys {
			o.idx[x] = j
		}
	}
	return i, true
}

// byKey collects the arguments of one variadic command per key, keys in first-touch order.
type byKey[K comparable] struct {
	order touchOrder[K]
	cmds  [][]any
}

// add appends args to the command of key k, starting it (name, key(), first arguments) when k is
// new.
func (b *byKey[K]) add(k K, name string, key func() string, args ...any) {
	i, first := b.order.of(k)
	if first {
		b.cmds = append(b.cmds, []any{name, key()})
	}
	b.cmds[i] = append(b.cmds[i], args...)
}

type wmKey struct{ waba, month string }

type gwKey struct{ waba, number, group string }

// ops turns a plan into the commands of its transaction, in this order: deletes (retracted or
// replaced lines and records), the high-water marks and puts, index and group members, then
// counter increments; and the batch's changes to the member counters (written by the caller).
// Each command's arguments are boxed once: a line's id and score are shared by its hash field
// and zset members, as pointers (*string, *int64: no allocation) into slices of the batch; its
// encoding is a slice of one buffer per batch, as is a reconciliation record's.
func (s *Store) ops(tag string, plan Plan) ([][]any, *memberCounts) {
	var out [][]any
	// Deletes.
	var hdel, zrem byKey[string]
	counts := &memberCounts{} // member counters of volume groups, net of deletes and puts
	for i, ln := range plan.Del {
		hdel.add("l", "hdel", func() string { return kLines(tag) }, ln.ID)
		zrem.add("i"+ln.WM(), "zrem", func() string { return kIndex(tag, ln.WM()) }, ln.ID)
		if ln.Group != "" {
			zrem.add("g"+ln.Group, "zrem", func() string { return kGroup(tag, ln.Group) }, ln.ID)
			if volumeGroup(ln.Group) {
				counts.add(&plan.Del[i], -1)
			}
		}
	}
	for _, d := range plan.DelDiffs {
		hdel.add("d", "hdel", func() string { return kDiffs(tag) }, d.ID)
		zrem.add("d"+d.WM(), "zrem", func() string { return kDiffIndex(tag, d.WM()) }, d.ID)
	}
	out = append(out, hdel.cmds...)
	out = append(out, zrem.cmds...)

	// High-water marks, lines, records.
	hw := []any{"hset", kHW(tag)}
	hwFields := make([]int32, 0, len(plan.HW))
	for p := range plan.HW {
		hwFields = append(hwFields, p)
	}
	sort.Slice(hwFields, func(i, j int) bool { return hwFields[i] < hwFields[j] })
	for _, p := range hwFields {
		hw = append(hw, strconv.Itoa(int(p)), causeString(plan.HW[p]))
	}
	out = append(out, hw)
	var (
		zadd byKey[string] // group and diff index zsets
		idx  byKey[wmKey]  // WABA-month index zsets
		gm   byKey[string] // members of volume groups, with a sample line
	)
	if len(plan.Put) > 0 {
		size := 0
		for i := range plan.Put {
			size += encodedLineSize(&plan.Put[i])
		}
		buf := make([]byte, 0, size)
		// Ids and scores go in as pointers (go-redis writes *string and *int64 as their values):
		// boxing a string or an int64 allocates, a pointer does not. They point into slices in
		// the order the commands are written, as do the encodings into buf, so writing the
		// transaction reads each sequentially rather than a line of the plan per member.
		ids := make([]string, len(plan.Put))
		scores := make([]int64, len(plan.Put))
		lines := make([]any, 2, 2+2*len(plan.Put))
		lines[0], lines[1] = "hset", kLines(tag)
		inSet := map[gwKey]bool{}
		// Members go to their sorted sets in (time, id) order: successive skiplist inserts then
		// walk nearby nodes (about 10% less Redis CPU for the inserts than in arrival order).
		for j, i := range deliveryOrder(plan.Put) {
			ln := &plan.Put[i]
			from := len(buf)
			buf = appendLine(buf, ln)
			ids[j], scores[j] = ln.ID, int64(ln.At)
			id, score := any(&ids[j]), any(&scores[j])
			lines = append(lines, id, buf[from:len(buf):len(buf)])
			idx.add(wmKey{ln.WABA, ln.Month}, "zadd", func() string { return kIndex(tag, ln.WM()) }, score, id)
			if ln.Group == "" {
				continue
			}
			zadd.add(ln.Group, "zadd", func() string { return kGroup(tag, ln.Group) }, score, id)
			if !volumeGroup(ln.Group) {
				continue
			}
			counts.add(ln, +1)
			if k := (gwKey{ln.WABA, ln.Number, ln.Group}); !inSet[k] {
				inSet[k] = true
				gm.add(ln.Group, "hset", func() string { return kGroupMembers(tag, ln.Group) }, groupMember(*ln), lines[len(lines)-1])
			}
		}
		out = append(out, lines)
	}
	if len(plan.PutDiffs) > 0 {
		diffs := make([]any, 2, 2+2*len(plan.PutDiffs))
		diffs[0], diffs[1] = "hset", kDiffs(tag)
		ids := make([]string, len(plan.PutDiffs))
		scores := make([]int64, len(plan.PutDiffs))
		buf := make([]byte, 0, 512*len(plan.PutDiffs)) // a replay's records take 450-520 bytes
		for i := range plan.PutDiffs {
			d := &plan.PutDiffs[i]
			from := len(buf)
			buf = appendDiff(buf, d)
			ids[i], scores[i] = d.ID, int64(d.At)
			diffs = append(diffs, &ids[i], buf[from:len(buf):len(buf)])
			zadd.add("d"+d.WM(), "zadd", func() string { return kDiffIndex(tag, d.WM()) }, &scores[i], &ids[i])
		}
		out = append(out, diffs)
	}
	if len(plan.Bad) > 0 {
		bad := []any{"hset", kBad(tag)}
		for _, b := range plan.Bad {
			v, _ := json.Marshal(b)
			bad = append(bad, b.ID, v)
		}
		out = append(out, bad)
	}
	out = append(out, idx.cmds...)
	out = append(out, zadd.cmds...)
	out = append(out, gm.cmds...)

	// Counters.
	incr := func(key string, m map[string]int64) {
		for _, f := range sortedKeys(m) {
			out = append(out, []any{"hincrby", key, f, m[f]})
		}
	}
	for _, wm := range sortedKeys(plan.Totals) {
		incr(kTotals(tag, wm), plan.Totals[wm])
	}
	for _, wm := range sortedKeys(plan.Counts) {
		incr(kDiffCounts(tag, wm), plan.Counts[wm])
	}
	return out, counts
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// deliveryOrder returns the indexes of lines in (delivery time, id) order. The ids of a plan's puts
// are distinct, so the order is total. Sorting packed integers (time from the earliest, index)
// and then only the runs of one second by id costs a fraction of sorting with a comparison
// function; a batch whose times span 2^31 seconds or more is sorted with one.
func deliveryOrder(ls []Line) []int32 {
	out := make([]int32, len(ls))
	if len(ls) == 0 {
		return out
	}
	lo, hi := ls[0].At, ls[0].At
	for i := range ls {
		lo, hi = min(lo, ls[i].At), max(hi, ls[i].At)
	}
	byID := func(a, b int32) int { return strings.Compare(ls[a].ID, ls[b].ID) }
	if uint64(hi)-uint64(lo) >= 1<<31 || len(ls) >= 1<<31 {
		for i := range out {
			out[i] = int32(i)
		}
		slices.SortFunc(out, func(a, b int32) int {
			if c := cmp.Compare(ls[a].At, ls[b].At); c != 0 {
				return c
			}
			return byID(a, b)
		})
		return out
	}
	keys := make([]uint64, len(ls))
	for i := range ls {
		keys[i] = uint64(ls[i].At-lo)<<32 | uint64(i)
	}
	slices.Sort(keys)
	for i, k := range keys {
		out[i] = int32(uint32(k))
	}
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j]>>32 == keys[i]>>32 {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(out[i:j], byID)
		}
		i = j
	}
	return out
}
