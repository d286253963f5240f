package replay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/projections/redistest"
)

// The rate-limit comparison, key by key, reports what diffing every entry of both sides as
// strings reports (the oracle below, how Compare used to do it): over random hashes, sorted
// sets, sets and strings, with random changes, additions and removals on the rebuilt side.
func TestCompareCountersMatchesEntryDiff(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		live := &Namespace{Prefix: prefix + strconv.FormatUint(seed, 10) + "l:"}
		rebuilt := &Namespace{Prefix: prefix + strconv.FormatUint(seed, 10) + "r:"}
		lp, rp := live.Prefix+ratelimit.Name+":", rebuilt.Prefix+ratelimit.Name+":"
		for k := range 40 + rng.IntN(400) {
			name := fmt.Sprintf("{rl.p%d}:%s:%d", k%4, []string{"pr", "lim", "dlxk", "meta"}[k%4], k)
			mutate := rng.IntN(4) == 0
			for side, p := range []string{lp, rp} {
				if side == 1 && mutate && rng.IntN(5) == 0 {
					continue // the rebuilt side lacks the key
				}
				if side == 0 && mutate && rng.IntN(5) == 0 {
					continue // only the rebuilt side has it
				}
				r := rand.New(rand.NewPCG(seed, uint64(k))) // both sides alike…
				n := 1 + r.IntN(30)
				change := func(i int) bool { return side == 1 && mutate && (i*7+k)%5 == 0 } // …but for these
				var err error
				switch k % 4 {
				case 0: // hash
					args := []any{}
					for i := range n {
						v := strconv.Itoa(r.IntN(100))
						if change(i) {
							v += "x"
						}
						args = append(args, "f"+strconv.Itoa(i), v)
					}
					err = rdb.HSet(ctx, p+name, args...).Err()
				case 1: // sorted set
					zs := []redis.Z{}
					for i := range n {
						sc := float64(r.IntN(1000)) / 4
						if change(i) {
							sc++
						}
						zs = append(zs, redis.Z{Member: "m" + strconv.Itoa(i), Score: sc})
					}
					err = rdb.ZAdd(ctx, p+name, zs...).Err()
				case 2: // set
					ms := []any{}
					for i := range n {
						if change(i) {
							continue
						}
						ms = append(ms, "m"+strconv.Itoa(i))
					}
					if len(ms) == 0 {
						ms = append(ms, "only")
					}
					err = rdb.SAdd(ctx, p+name, ms...).Err()
				case 3: // string
					v := strconv.Itoa(n)
					if change(0) || change(3) {
						v += "!"
					}
					err = rdb.Set(ctx, p+name, v, 0).Err()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		var r Report
		if err := r.compareCounters(ctx, rdb, live, rebuilt); err != nil {
			t.Fatal(err)
		}
		a, b := oracleEntries(t, rdb, lp), oracleEntries(t, rdb, rp)
		var want []string
		fams := map[string]int{}
		for _, x := range []struct {
			sign     string
			from, in map[string]bool
		}{{"-", a, b}, {"+", b, a}} {
			var d []string
			for e := range x.from {
				if !x.in[e] {
					d = append(d, e)
				}
			}
			sort.Strings(d)
			for _, e := range d {
				fams[family(e)]++
				want = append(want, x.sign+" "+e)
			}
		}
		got := r.RateLimit
		if got.EntriesLive != len(a) || got.EntriesRebuilt != len(b) || got.Differences != len(want) {
			t.Fatalf("seed %d: entries %d/%d, %d differences; the entry diff has %d/%d, %d", seed,
				got.EntriesLive, got.EntriesRebuilt, got.Differences, len(a), len(b), len(want))
		}
		if len(want) > MaxExamples {
			want = want[:MaxExamples]
		}
		if !slices.Equal(got.Examples, want) || len(fams) != len(got.ByFamily) {
			t.Fatalf("seed %d:\n got %q %v\nwant %q %v", seed, got.Examples, got.ByFamily, want, fams)
		}
		for f, n := range fams {
			if got.ByFamily[f] != n {
				t.Fatalf("seed %d: family %s: %d differences, want %d", seed, f, got.ByFamily[f], n)
			}
		}
	}
}

// oracleEntries renders every entry under prefix as a string, as Compare used to.
func oracleEntries(t *testing.T, rdb redis.UniversalClient, prefix string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	keys, err := scanKeys(ctx, rdb, prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range keys {
		short := strings.TrimPrefix(k, prefix)
		switch rdb.Type(ctx, k).Val() {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				out[short+" "+f+"="+v] = true
			}
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				out[fmt.Sprintf("%s %v=%v", short, z.Member, z.Score)] = true
			}
		case "set":
			for _, m := range rdb.SMembers(ctx, k).Val() {
				out[short+" "+m] = true
			}
		case "string":
			v, err := rdb.Get(ctx, k).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			out[short+" ="+v] = true
		}
	}
	return out
}

// Throughput hashes compare per second: a live store still holding seconds in the form from
// before the minute fields equals a rebuilt one holding the same counts in minute fields; a
// count that differs is one difference, in family "tp", named by its second.
func TestCompareCountersThroughputPerSecond(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	const key = "{rl.p0}:tp:n1:488832"
	const minute = 1_759_795_200 // hour 488832's first minute
	for _, c := range []struct {
		name        string
		live        []any
		differences int
		example     string
	}{
		{"same counts", []any{"1759795200", "3", "1759795202", "1", "m1759795260", ",2"}, 0, ""},
		{"one count differs", []any{"1759795200", "3", "1759795202", "2", "m1759795260", ",2"}, 2, "1759795202=2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			live := &Namespace{Prefix: prefix + strings.ReplaceAll(c.name, " ", "") + "l:"}
			rebuilt := &Namespace{Prefix: prefix + strings.ReplaceAll(c.name, " ", "") + "r:"}
			if err := rdb.HSet(ctx, live.Prefix+ratelimit.Name+":"+key, c.live...).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.HSet(ctx, rebuilt.Prefix+ratelimit.Name+":"+key, "m"+strconv.Itoa(minute), "3,,1", "m"+strconv.Itoa(minute+60), ",2").Err(); err != nil {
				t.Fatal(err)
			}
			r := &Report{}
			if err := r.compareCounters(ctx, rdb, live, rebuilt); err != nil {
				t.Fatal(err)
			}
			d := r.RateLimit
			if d.Differences != c.differences || d.ByFamily["tp"] != c.differences {
				t.Fatalf("differences %d by family %v, want %d in tp: %q", d.Differences, d.ByFamily, c.differences, d.Examples)
			}
			if c.example != "" && !slices.ContainsFunc(d.Examples, func(e string) bool { return strings.HasSuffix(e, c.example) }) {
				t.Errorf("examples %q, want one ending %q", d.Examples, c.example)
			}
		})
	}
}

// Undo records compare by hour, whatever holds them: a live namespace holding an hour's records
// in its hash equals a rebuilt one holding them in logs and hash, however the entries were
// batched; a record that differs is reported under the hour's key.
func TestCompareUndoRecordsByHour(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	live, rebuilt, lp, rp := counterNamespaces(prefix, "u")
	entry := func(id, rec string) string { return string(appendEntry(nil, id, rec)) }
	rdb.HSet(ctx, lp+"{rl.p0}:fx:10", "a", "\x02ra", "b", "\x02rb")
	rdb.RPush(ctx, lp+"{rl.p0}:fx:11:4", entry("z", "\x02rz"))
	// Rebuilt: a and b in two logs over two batches, c logged then deleted, a's newest record in
	// the hour's hash (which stands over the logs); z in the hash alone.
	rdb.RPush(ctx, rp+"{rl.p0}:fx:10:3", entry("a", "\x02old")+entry("c", "\x02rc"), entry("a", "\x02older"))
	rdb.RPush(ctx, rp+"{rl.p0}:fx:10:7", entry("b", "\x02rb")+entry("c", ""))
	rdb.HSet(ctx, rp+"{rl.p0}:fx:10", "a", "\x02ra")
	rdb.HSet(ctx, rp+"{rl.p0}:fx:11", "z", "\x02rz")
	if d := countersOf(t, rdb, live, rebuilt); d.Differences != 0 || d.EntriesLive != 3 || d.EntriesRebuilt != 3 {
		t.Fatalf("equal records compared as %+v", d)
	}
	rdb.HSet(ctx, rp+"{rl.p0}:fx:10", "a", "\x02changed")
	wantOneChange(t, "a changed record", countersOf(t, rdb, live, rebuilt), "{rl.p0}:fx:10 a=\x02ra", "{rl.p0}:fx:10 a=\x02changed")
}

// appendEntry is an undo log entry as the store writes it (ratelimit's undolog.go): the id's and
// the record's lengths as uvarints, the record's plus one; "" is a deletion.
func appendEntry(dst []byte, id, rec string) []byte {
	dst = append(dst, byte(len(id)))
	dst = append(dst, id...)
	if rec == "" {
		return append(dst, 0)
	}
	dst = append(dst, byte(len(rec)+1))
	return append(dst, rec...)
}

// TestComparePairFieldsAsLive: pair fields compare as what they hold at each side's stream time
// (an expired value waits for its hour's trim, and the store before the hour lists trimmed it at
// once), and the trim index is not compared; a live value that differs is a difference.
func TestComparePairFieldsAsLive(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	live, rebuilt, lp, rp := counterNamespaces(prefix, "p")
	const st = 1_760_000_000
	for _, p := range []string{lp, rp} {
		rdb.HSet(ctx, p+"{rl.p0}:meta", "st", st)
		rdb.HSet(ctx, p+"{rl.p0}:pr", "n1/u1|w", "1759900000 1760086400 0") // open
	}
	// Live as written before the hour lists: the expired window trimmed, the sorted set.
	rdb.ZAdd(ctx, lp+"{rl.p0}:prt", redis.Z{Score: 1760086400, Member: "n1/u1|w"})
	// Rebuilt: u2's expired window still there, the fields listed by hour.
	rdb.HSet(ctx, rp+"{rl.p0}:pr", "n1/u2|w", "1759900000 1759990000 0")
	rdb.RPush(ctx, rp+"{rl.p0}:prt:488913", "n1/u1|w", "n1/u1|w")
	rdb.RPush(ctx, rp+"{rl.p0}:prt:488886", "n1/u2|w")
	rdb.ZAdd(ctx, rp+"{rl.p0}:prtk", redis.Z{Score: 1760086799, Member: "488913"}, redis.Z{Score: 1759993199, Member: "488886"})
	if d := countersOf(t, rdb, live, rebuilt); d.Differences != 0 {
		t.Fatalf("the same live pair state compared as %+v", d)
	}
	rdb.HSet(ctx, rp+"{rl.p0}:pr", "n1/u1|w", "1759900000 1760086401 0")
	wantOneChange(t, "a changed window", countersOf(t, rdb, live, rebuilt),
		"{rl.p0}:pr n1/u1|w=1759900000 1760086400 0", "{rl.p0}:pr n1/u1|w=1759900000 1760086401 0")
}

// counterNamespaces returns a live and a rebuilt namespace under prefix+tag and the key prefixes of
// their rate limits.
func counterNamespaces(prefix, tag string) (live, rebuilt *Namespace, lp, rp string) {
	live, rebuilt = &Namespace{Prefix: prefix + tag + "l:"}, &Namespace{Prefix: prefix + tag + "r:"}
	return live, rebuilt, live.Prefix + ratelimit.Name + ":", rebuilt.Prefix + ratelimit.Name + ":"
}

// countersOf compares the rate limits of live and rebuilt.
func countersOf(t *testing.T, rdb redis.UniversalClient, live, rebuilt *Namespace) CounterDiff {
	t.Helper()
	r := &Report{}
	if err := r.compareCounters(context.Background(), rdb, live, rebuilt); err != nil {
		t.Fatal(err)
	}
	return r.RateLimit
}

// wantOneChange fails unless d is exactly the two entries of one changed value: was on the live
// side, now on the rebuilt.
func wantOneChange(t *testing.T, what string, d CounterDiff, was, now string) {
	t.Helper()
	if want := []string{"- " + was, "+ " + now}; d.Differences != 2 || !slices.Equal(d.Examples, want) {
		t.Fatalf("%s: %d differences %q, want %q", what, d.Differences, d.Examples, want)
	}
}
