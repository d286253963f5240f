package redistest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/projections/redistest"
)

// TestMiniredisSortedSetsMatchRedis checks the patched miniredis (third_party/miniredis keeps a
// sorted set's order between reads and splices the writes since into it, instead of sorting the
// whole set on every range read) against a real Redis: the same random sequence of sorted-set
// writes (ZADD with and without GT, ZREM, ZINCRBY, ZREMRANGEBYSCORE, DEL, RENAME, in and out of
// MULTI/EXEC and Lua) and reads (ranges by score, by lex and by rank, ZCOUNT, ZRANK), every reply
// compared. Score keys draw scores from a small domain so ties between members are common; lex
// keys keep every score 0, the layout lex ranges are defined for.
func TestMiniredisSortedSetsMatchRedis(t *testing.T) {
	real, prefix := redistest.Client(t)
	mr := miniredis.RunT(t)
	mini := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = mini.Close() })
	ctx := context.Background()
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			h := &zsetHarness{t: t, ctx: ctx, rng: rand.New(rand.NewPCG(seed, 7)),
				sides: [2]zsetSide{{"redis", real, prefix + fmt.Sprint(seed) + ":"}, {"miniredis", mini, fmt.Sprint(seed) + ":"}}}
			for step := 0; step < 2500; step++ {
				h.step(step)
			}
		})
	}
}

type zsetSide struct {
	name   string
	rdb    *redis.Client
	prefix string
}

type zsetHarness struct {
	t     *testing.T
	ctx   context.Context
	rng   *rand.Rand
	sides [2]zsetSide
}

var (
	scoreKeys = []string{"s0", "s1", "s2"}
	lexKeys   = []string{"l0", "l1"}
)

func (h *zsetHarness) member() string { return "m" + strconv.Itoa(h.rng.IntN(80)) }

func (h *zsetHarness) score() float64 { return float64(h.rng.IntN(12) - 2) }

// bound is a score range bound: inclusive, exclusive or infinite.
func (h *zsetHarness) bound(inf string) string {
	switch h.rng.IntN(6) {
	case 0:
		return inf
	case 1:
		return "(" + strconv.Itoa(int(h.score()))
	default:
		return strconv.Itoa(int(h.score()))
	}
}

// lexBound is a lex range bound: "[m", "(m", or the open end.
func (h *zsetHarness) lexBound(open string) string {
	switch h.rng.IntN(6) {
	case 0:
		return open
	case 1:
		return "(" + h.member()
	default:
		return "[" + h.member()
	}
}

// write is one random write: its command, keys as "\x00name" (prefixed per side).
func (h *zsetHarness) write() []any {
	lex := h.rng.IntN(3) == 0
	keys := scoreKeys
	if lex {
		keys = lexKeys
	}
	k := "\x00" + keys[h.rng.IntN(len(keys))]
	score := func() float64 {
		if lex {
			return 0
		}
		return h.score()
	}
	switch r := h.rng.IntN(20); {
	case r < 9:
		cmd := []any{"zadd", k}
		if !lex && h.rng.IntN(3) == 0 {
			cmd = append(cmd, "gt")
		}
		// Distinct members: of a member given twice, upstream miniredis keeps the last score
		// even under GT, where Redis compares them in turn (not what this test is about).
		seen := map[string]bool{}
		for n := 1 + h.rng.IntN(12); n > 0; n-- {
			if m := h.member(); !seen[m] {
				seen[m] = true
				cmd = append(cmd, score(), m)
			}
		}
		return cmd
	case r < 13:
		cmd := []any{"zrem", k}
		for n := 1 + h.rng.IntN(4); n > 0; n-- {
			cmd = append(cmd, h.member())
		}
		return cmd
	case r < 15 && !lex:
		return []any{"zincrby", k, h.score(), h.member()}
	case r < 17 && !lex:
		return []any{"zremrangebyscore", k, h.bound("-inf"), h.bound("+inf")}
	case r == 17:
		return []any{"del", k}
	case r == 18:
		return []any{"rename", k, "\x00" + keys[h.rng.IntN(len(keys))]}
	default:
		return []any{"zadd", k, score(), h.member()}
	}
}

// read is one random range read.
func (h *zsetHarness) read() []any {
	if h.rng.IntN(3) == 0 {
		k := "\x00" + lexKeys[h.rng.IntN(len(lexKeys))]
		lo, hi := h.lexBound("-"), h.lexBound("+")
		cmd := []any{"zrangebylex", k, lo, hi}
		if h.rng.IntN(2) == 0 {
			cmd = []any{"zrevrangebylex", k, hi, lo}
		}
		if h.rng.IntN(3) == 0 {
			cmd = append(cmd, "limit", h.rng.IntN(5), h.rng.IntN(8)-1)
		}
		return cmd
	}
	k := "\x00" + scoreKeys[h.rng.IntN(len(scoreKeys))]
	lo, hi := h.bound("-inf"), h.bound("+inf")
	switch h.rng.IntN(6) {
	case 0:
		return []any{"zcount", k, lo, hi}
	case 1:
		return []any{"zrange", k, 0, -1, "withscores"}
	case 2:
		return []any{"zrank", k, h.member()}
	case 3:
		return []any{"zrevrangebyscore", k, hi, lo, "withscores"}
	default:
		cmd := []any{"zrangebyscore", k, lo, hi, "withscores"}
		if h.rng.IntN(2) == 0 {
			cmd = append(cmd, "limit", h.rng.IntN(6), h.rng.IntN(10)-1)
		}
		return cmd
	}
}

// on renders cmd for side s: "\x00name" keys get the side's prefix.
func on(s zsetSide, cmd []any) []any {
	out := make([]any, len(cmd))
	for i, a := range cmd {
		if str, ok := a.(string); ok && len(str) > 0 && str[0] == 0 {
			a = s.prefix + str[1:]
		}
		out[i] = a
	}
	return out
}

// luaRangeAfterWrite adds a member and reads a score range inside one script, as the
// projections' scripts do.
const luaRangeAfterWrite = `redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[4])`

func (h *zsetHarness) step(step int) {
	h.t.Helper()
	var cmds [][]any
	tx := false
	switch r := h.rng.IntN(10); {
	case r < 4:
		cmds = [][]any{h.write()}
	case r < 8:
		cmds = [][]any{h.read()}
	case r < 9:
		tx = true
		for n := 2 + h.rng.IntN(6); n > 0; n-- {
			if h.rng.IntN(2) == 0 {
				cmds = append(cmds, h.write())
			} else {
				cmds = append(cmds, h.read())
			}
		}
	default:
		cmds = [][]any{{"eval", luaRangeAfterWrite, 1, "\x00" + scoreKeys[h.rng.IntN(len(scoreKeys))],
			h.score(), h.member(), h.bound("-inf"), h.bound("+inf")}}
	}
	var got [2][]string
	for i, s := range h.sides {
		var out []*redis.Cmd
		run := func(p redis.Pipeliner) error {
			for _, c := range cmds {
				out = append(out, p.Do(h.ctx, on(s, c)...))
			}
			return nil
		}
		var err error
		if tx {
			_, err = s.rdb.TxPipelined(h.ctx, run)
		} else {
			_, err = s.rdb.Pipelined(h.ctx, run)
		}
		if err != nil && err != redis.Nil && !isRenameOfMissingKey(err) {
			h.t.Fatalf("step %d on %s: %v (%v)", step, s.name, err, cmds)
		}
		for _, c := range out {
			got[i] = append(got[i], fmt.Sprintf("%v %v", flatten(c.Val()), errText(c.Err())))
		}
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		h.t.Fatalf("step %d: %v\n%s: %q\n%s: %q", step, cmds, h.sides[0].name, got[0], h.sides[1].name, got[1])
	}
}

// errText is the outcome of a reply: no error, no value, or an error of any wording (the two
// servers word errors differently).
func errText(err error) string {
	switch err {
	case nil:
		return "ok"
	case redis.Nil:
		return "nil"
	default:
		return "error"
	}
}

func isRenameOfMissingKey(err error) bool {
	return err != nil && err.Error() == "ERR no such key"
}

// flatten renders a reply as a flat list: Redis 7 answers WITHSCORES in RESP3 as member-score
// pairs, miniredis in RESP2 as one list.
func flatten(v any) any {
	l, ok := v.([]any)
	if !ok {
		return v
	}
	var out []any
	for _, x := range l {
		if f, ok := flatten(x).([]any); ok {
			out = append(out, f...)
		} else {
			out = append(out, x)
		}
	}
	return out
}
