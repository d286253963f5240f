package ratelimit

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
)

// TestPairFieldsTrimByHour: a pair field is deleted once the hour of its expiry is past, not
// before (expired, it reads as absent meanwhile), and not when it was set again since with a
// later expiry; the hour's list and its entry in the hours go with it.
func TestPairFieldsTrimByHour(t *testing.T) {
	r := newPairFieldsRig(t)
	ctx := context.Background()
	t0 := events.UnixTime(hourOf(tPFEra)+1)*Hour + 600 // 10 minutes into an hour
	r.l.inbound("n1", "pf1", "u1", t0)
	r.l.inbound("n1", "pf1", "u2", t0)
	r.apply()
	r.l.inbound("n1", "pf1", "u2", t0+2*Hour) // set again, expiring two hours later
	r.apply()
	h1 := hourOf(t0 + Day)
	f1, f2 := windowField(events.PairKey("n1", "u1", "")), windowField(events.PairKey("n1", "u2", ""))
	hours := func() []string {
		t.Helper()
		hs, err := r.rdb.ZRange(ctx, r.pfx+kPairHourIdx, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	if hs := hours(); !slices.Equal(hs, []string{itoa(h1), itoa(h1 + 2)}) {
		t.Fatalf("hours indexed %v, want %d and %d", hs, h1, h1+2)
	}

	r.advance(t0 + Day + 60) // u1's window has expired; its hour has not ended
	if !r.stored(f1) {
		t.Fatal("u1's field was trimmed before the hour of its expiry ended")
	}
	live, err := r.rdb.HGetAll(ctx, r.pfx+kPairs).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := LivePairFields(live, t0+Day+60)[f1]; ok {
		t.Error("LivePairFields keeps u1's expired window")
	}

	r.advance(hourEnd(h1) + 1)
	if r.stored(f1) {
		t.Error("u1's field outlived the hour of its expiry")
	}
	if !r.stored(f2) {
		t.Error("u2's field, set again with a later expiry, was trimmed with the hour it was first listed under")
	}
	if n, _ := r.rdb.Exists(ctx, r.pfx+kPairHour+itoa(h1)).Result(); n != 0 {
		t.Error("the hour's list outlived it")
	}
	if hs := hours(); !slices.Equal(hs, []string{itoa(h1 + 2)}) {
		t.Errorf("hours indexed %v after the first one passed, want %d", hs, h1+2)
	}

	r.advance(hourEnd(h1+2) + 1)
	if r.stored(f2) {
		t.Error("u2's field outlived the hour of its expiry")
	}
	if hs := hours(); len(hs) != 0 {
		t.Errorf("hours indexed %v after all passed", hs)
	}
}

// TestPairFieldsOldIndex: a store written before the hour lists keeps its sorted set of fields by
// expiry, which the trim still reads: a field expired there is deleted, one set again since (the
// set's entry is stale: the lists index it now) is not.
func TestPairFieldsOldIndex(t *testing.T) {
	r := newPairFieldsRig(t)
	ctx := context.Background()
	t0 := tPFEra
	r.l.inbound("n1", "pf1", "u1", t0)
	r.apply()
	f1, old := windowField(events.PairKey("n1", "u1", "")), windowField(events.PairKey("n1", "u7", ""))
	// As the store before the lists left them: u1 indexed at an expiry since moved, u7 expired.
	oldExpiry := t0 - Hour
	if err := r.rdb.HSet(ctx, r.pfx+kPairs, old, Window{OpenedAt: oldExpiry - Day, ExpiresAt: oldExpiry}.encode()).Err(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{f1, old} {
		if err := r.rdb.ZAdd(ctx, r.pfx+kPairIdx, redisZ(oldExpiry, f)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r.advance(t0 + 60)
	if !r.stored(f1) {
		t.Error("the old index's stale entry deleted u1's live window")
	}
	if r.stored(old) {
		t.Error("the old index's expired field was not trimmed")
	}
	if n, _ := r.rdb.ZCard(ctx, r.pfx+kPairIdx).Result(); n != 0 {
		t.Errorf("%d entries left in the old index", n)
	}
}

// TestPairFieldExpiryInTheTrimScript: the trim script's expiry of a value is fieldExpiry's, on
// the values the store writes and on malformed ones, and a budget smaller than an hour's list
// leaves the rest of it for the next call.
func TestPairFieldExpiryInTheTrimScript(t *testing.T) {
	rdb, ns := client(t)
	ctx := context.Background()
	pfx := ns + "{rl.p0}:"
	const cut = 1_760_000_000
	w, c := "n1/u1"+sep+"w", "n1/u1"+sep+"c"+sep+"marketing"
	values := []struct{ field, val string }{
		{w, "1759900000 1760000000 0"},          // expires at the cutoff
		{w, "1759900000 1760000001 0"},          // a second after it
		{w, "1759900000 1759990000 1759913601"}, // entry point: a day after it rules
		{w, "1759900000 1759990000 1759913599"},
		{w, "1759900000 1759990000 1759913601 "}, // trailing space: still a window
		{w, "1759900000 1760000001"},             // no entry: read as a conversation
		{w, "+1759900000 +1760000001 -5"},
		{w, "1759900000  1760000001 0"}, // two spaces: no number
		{c, "1759900000 1760000001 conv-1"},
		{c, "1759900000 1760000000 conv-1"},
		{c, "1759900000 1760000001"},
		{c, "1759900000 1760000001x conv"},
		{c, "garbage"},
		{c, ""},
	}
	args := func(budget int) []any {
		return []any{pfx, "0", "0", "0", "0", strconv.Itoa(cut), "0", strconv.Itoa(budget)}
	}
	for i, v := range values {
		f := fmt.Sprintf("%s#%d", v.field, i) // distinct fields, same suffix rules
		if v.field == w {
			f = fmt.Sprintf("p%d/u", i) + sep + "w"
		}
		if err := rdb.HSet(ctx, pfx+kPairs, f, v.val).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.RPush(ctx, pfx+kPairHour+"1", f).Err(); err != nil {
			t.Fatal(err)
		}
		values[i].field = f
	}
	if err := rdb.ZAdd(ctx, pfx+kPairHourIdx, redisZ(cut, "1")).Err(); err != nil {
		t.Fatal(err)
	}
	// A budget of 5 takes the list in three calls.
	for call := 1; call <= 3; call++ {
		if err := rdb.Eval(ctx, applyLua, []string{pfx + kMeta}, args(5)...).Err(); err != nil {
			t.Fatal(err)
		}
		left, _ := rdb.LLen(ctx, pfx+kPairHour+"1").Result()
		hours, _ := rdb.ZCard(ctx, pfx+kPairHourIdx).Result()
		if want := max(0, int64(len(values)-5*call)); left != want || (hours == 0) != (want == 0) {
			t.Fatalf("after call %d: %d fields left listed (want %d), %d hours indexed", call, left, want, hours)
		}
	}
	for _, v := range values {
		ok, err := rdb.HExists(ctx, pfx+kPairs, v.field).Result()
		if err != nil {
			t.Fatal(err)
		}
		exp := fieldExpiry(v.field, v.val)
		if want := exp > cut; ok != want {
			t.Errorf("%s=%q: kept %v, want %v (fieldExpiry %d, cutoff %d)", v.field, v.val, ok, want, exp, cut)
		}
	}
}

// pairFieldsRig is a store of one partition with n1 configured in portfolio pf1, and the log it
// is applied from.
type pairFieldsRig struct {
	t   *testing.T
	rdb *redis.Client
	s   *Store
	pfx string // the partition's key prefix
	l   *log
}

func newPairFieldsRig(t *testing.T) *pairFieldsRig {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	r := &pairFieldsRig{t: t, rdb: rdb, s: s, pfx: s.prefix(0), l: &log{}}
	r.l.config("n1", "pf1", "TIER_250", 0)
	return r
}

// apply applies the events logged since the last apply, as one batch.
func (r *pairFieldsRig) apply() {
	r.t.Helper()
	apply(r.t, r.s, r.l.batch())
	r.l.evs = nil
}

// advance moves the stream time to `to`, with a delivery to a user of its own.
func (r *pairFieldsRig) advance(to events.UnixTime) {
	r.t.Helper()
	r.l.delivered("n1", "pf1", "u9", to, false)
	r.apply()
}

// stored reports whether the pair-state hash holds field f.
func (r *pairFieldsRig) stored(f string) bool {
	r.t.Helper()
	ok, err := r.rdb.HExists(context.Background(), r.pfx+kPairs, f).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	return ok
}

func redisZ[T ~int64 | ~int](score T, member string) redis.Z {
	return redis.Z{Score: float64(score), Member: member}
}
