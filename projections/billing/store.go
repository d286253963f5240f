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

// applyScript writes one batch: it checks the high-water causes the plan was computed against
// (compare-and-set, so a second writer of the partition cannot interleave), moves them, then runs
// the plan's ops. Ops are (code, key index, n, n args): H=HSET, D=HDEL, Z=ZADD, R=ZREM, S=SADD with
// variadic args, I=HINCRBY pairs. Deletes come before puts in the stream.
var applyScript = redis.NewScript(`
local hw = KEYS[1]
local i = 1
local ncas = tonumber(ARGV[i]); i = i + 1
for j = 1, ncas do
  local have = redis.call('HGET', hw, ARGV[i]) or ''
  if have ~= ARGV[i+1] then return redis.error_reply('CONFLICT high-water of ' .. ARGV[i] .. ' is ' .. have) end
  i = i + 2
end
local nhw = tonumber(ARGV[i]); i = i + 1
for j = 1, nhw do redis.call('HSET', hw, ARGV[i], ARGV[i+1]); i = i + 2 end
local cmds = {H='HSET', D='HDEL', Z='ZADD', R='ZREM', S='SADD'}
while i <= #ARGV do
  local op, k, n = ARGV[i], KEYS[tonumber(ARGV[i+1])], tonumber(ARGV[i+2])
  i = i + 3
  if op == 'I' then
    for j = 0, n - 1, 2 do redis.call('HINCRBY', k, ARGV[i+j], ARGV[i+j+1]) end
  else
    local cmd = cmds[op]
    for s = 0, n - 1, 1000 do
      redis.call(cmd, k, unpack(ARGV, i + s, i + math.min(s + 1000, n) - 1))
    end
  end
  i = i + n
end
return 'OK'
`)

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
func kHW(tag string) string                 { return tag + ":hw" }
func kLines(tag string) string              { return tag + ":l" }
func kIndex(tag, wm string) string          { return tag + ":wm:" + wm }
func kTotals(tag, wm string) string         { return tag + ":t:" + wm }
func kGroupSet(tag, g string) string        { return tag + ":gs:" + g }
func kGroupWABA(tag, waba, g string) string { return tag + ":gw:" + waba + "#" + g }
func kDiffs(tag string) string              { return tag + ":d" }
func kDiffIndex(tag, wm string) string      { return tag + ":dz:" + wm }
func kDiffCounts(tag, wm string) string     { return tag + ":dc:" + wm }
func kBad(tag string) string                { return tag + ":bad" }

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

// Apply implements projections.Projection: one read round trip for the prior state (high-water
// marks and the stored versions of retracted ids), the pure Apply, one script call that writes
// the plan and the new marks atomically. A conflict (another writer) is retried a few times.
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
	prior, casFields, err := s.readPrior(ctx, tag, b.Events)
	if err != nil {
		return err
	}
	plan := Apply(s.pricer, b.Events, prior)
	if len(plan.HW) == 0 && len(plan.Bad) == 0 {
		return nil // everything at or below the mark: a replay after a crash
	}
	keys, args, err := s.encode(tag, plan, prior, casFields)
	if err != nil {
		return err
	}
	if err := applyScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		if strings.Contains(err.Error(), "CONFLICT") {
			return fmt.Errorf("partition %d: %w: %v", b.Partition, ErrConflict, err)
		}
		return fmt.Errorf("billing: apply batch of %d events to partition %d: %w", len(b.Events), b.Partition, err)
	}
	if err := s.rdb.SAdd(ctx, s.partitionsKey(), b.Partition).Err(); err != nil {
		return fmt.Errorf("billing: register partition %d: %w", b.Partition, err)
	}
	for _, bad := range plan.Bad {
		s.log.Warn("billing: event recorded as bad", "partition", b.Partition, "event_id", bad.ID, "event_type", bad.Type, "reason", bad.Reason)
	}
	return nil
}

func (s *Store) readPrior(ctx context.Context, tag string, evs []events.Event) (Prior, []string, error) {
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
	pipe := s.rdb.Pipeline()
	var hw, ls, ds *redis.SliceCmd
	if len(fields) > 0 {
		hw = pipe.HMGet(ctx, kHW(tag), fields...)
	}
	if len(retracted) > 0 {
		ls = pipe.HMGet(ctx, kLines(tag), retracted...)
		ds = pipe.HMGet(ctx, kDiffs(tag), retracted...)
	}
	if hw == nil && ls == nil {
		return prior, nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return prior, nil, fmt.Errorf("billing: read prior state of %s: %w", tag, err)
	}
	cas := make([]string, 0, 2*len(fields))
	if hw != nil {
		for i, v := range hw.Val() {
			str, _ := v.(string)
			cas = append(cas, fields[i], str)
			if str == "" {
				continue
			}
			p, _ := strconv.Atoi(fields[i])
			c, err := parseCause(int32(p), str)
			if err != nil {
				return prior, nil, err
			}
			prior.HW[int32(p)] = c
		}
	}
	if ls != nil {
		for i, v := range ls.Val() {
			if str, ok := v.(string); ok {
				l, err := decodeLine(str)
				if err != nil {
					return prior, nil, fmt.Errorf("billing: decode stored line %s: %w", retracted[i], err)
				}
				prior.Lines[retracted[i]] = l
			}
		}
		for i, v := range ds.Val() {
			if str, ok := v.(string); ok {
				var d Diff
				if err := json.Unmarshal([]byte(str), &d); err != nil {
					return prior, nil, fmt.Errorf("billing: decode stored diff %s: %w", retracted[i], err)
				}
				prior.Diffs[retracted[i]] = d
			}
		}
	}
	return prior, cas, nil
}

type opBuilder struct {
	keys  []string
	kidx  map[string]int
	ops   map[string]map[byte][]any // key → op → args
	order []string
}

func (o *opBuilder) key(k string) int {
	if i, ok := o.kidx[k]; ok {
		return i
	}
	o.keys = append(o.keys, k)
	o.kidx[k] = len(o.keys)
	return len(o.keys)
}

func (o *opBuilder) add(op byte, key string, args ...any) {
	o.key(key)
	m := o.ops[key]
	if m == nil {
		m = map[byte][]any{}
		o.ops[key] = m
		o.order = append(o.order, key)
	}
	m[op] = append(m[op], args...)
}

func (s *Store) encode(tag string, plan Plan, prior Prior, cas []string) ([]string, []any, error) {
	o := &opBuilder{kidx: map[string]int{}, ops: map[string]map[byte][]any{}}
	o.key(kHW(tag))
	args := []any{len(cas) / 2}
	for _, c := range cas {
		args = append(args, c)
	}
	hwFields := make([]int32, 0, len(plan.HW))
	for p := range plan.HW {
		hwFields = append(hwFields, p)
	}
	sort.Slice(hwFields, func(i, j int) bool { return hwFields[i] < hwFields[j] })
	args = append(args, len(hwFields))
	for _, p := range hwFields {
		args = append(args, strconv.Itoa(int(p)), causeString(plan.HW[p]))
	}
	for _, l := range plan.Del {
		o.add('D', kLines(tag), l.ID)
		o.add('R', kIndex(tag, l.WM()), l.ID)
		if l.Group != "" {
			o.add('R', kGroupWABA(tag, l.WABA, l.Group), l.ID)
		}
	}
	for _, d := range plan.DelDiffs {
		o.add('D', kDiffs(tag), d.ID)
		o.add('R', kDiffIndex(tag, d.WM()), d.ID)
	}
	inSet := map[string]bool{}
	for _, l := range plan.Put {
		o.add('H', kLines(tag), l.ID, appendLine(nil, l))
		o.add('Z', kIndex(tag, l.WM()), int64(l.At), l.ID)
		if l.Group != "" {
			if sk := kGroupSet(tag, l.Group); !inSet[sk+"\x00"+l.WABA] {
				inSet[sk+"\x00"+l.WABA] = true
				o.add('S', sk, l.WABA)
			}
			o.add('Z', kGroupWABA(tag, l.WABA, l.Group), int64(l.At), l.ID)
		}
	}
	for _, d := range plan.PutDiffs {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, nil, fmt.Errorf("billing: encode diff %s: %w", d.ID, err)
		}
		o.add('H', kDiffs(tag), d.ID, b)
		o.add('Z', kDiffIndex(tag, d.WM()), int64(d.At), d.ID)
	}
	for _, bad := range plan.Bad {
		b, _ := json.Marshal(bad)
		o.add('H', kBad(tag), bad.ID, b)
	}
	incr := func(key string, m map[string]int64) {
		fs := make([]string, 0, len(m))
		for f := range m {
			fs = append(fs, f)
		}
		sort.Strings(fs)
		for _, f := range fs {
			o.add('I', key, f, m[f])
		}
	}
	for _, wm := range sortedKeys(plan.Totals) {
		incr(kTotals(tag, wm), plan.Totals[wm])
	}
	for _, wm := range sortedKeys(plan.Counts) {
		incr(kDiffCounts(tag, wm), plan.Counts[wm])
	}
	// Deletes first, then puts, then increments, as the script expects.
	for _, ops := range []byte{'D', 'R', 'H', 'Z', 'S', 'I'} {
		for _, k := range o.order {
			if a := o.ops[k][ops]; len(a) > 0 {
				args = append(args, string(ops), o.kidx[k], len(a))
				args = append(args, a...)
			}
		}
	}
	return o.keys, args, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
