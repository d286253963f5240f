package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
)

func TestMessagingLimit250thAnd251stUser(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	l := &log{}
	l.config("n1", "pf1", "TIER_250", 0)
	for i := range 249 {
		l.delivered("n1", "pf1", fmt.Sprintf("u%03d", i), tPFEra+events.UnixTime(i), false)
	}
	apply(t, s, l.batch())
	at := tPFEra + 1000

	snap, err := s.Admission(ctx, "n1", "u249", at)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Used != 249 || snap.UserCounted || snap.Tier != Tier250 || snap.Scope != PortfolioScope("pf1") {
		t.Fatalf("before the 250th: used %d counted %v tier %s scope %s", snap.Used, snap.UserCounted, snap.Tier, snap.Scope)
	}

	l2 := &log{off: l.off}
	l2.delivered("n1", "pf1", "u249", tPFEra+500, false) // the 250th distinct user
	apply(t, s, l2.batch())
	st, err := s.Limit(ctx, PortfolioScope("pf1"), at)
	if err != nil {
		t.Fatal(err)
	}
	if st.Used != 250 || st.Headroom != 0 || st.HeadroomAt != tPFEra+Day {
		t.Fatalf("after the 250th: used %d headroom %d returns %s; want 250, 0, %s", st.Used, st.Headroom, st.HeadroomAt, tPFEra+Day)
	}
	snap, _ = s.Admission(ctx, "n1", "u250", at)
	if snap.Used != 250 || snap.UserCounted {
		t.Errorf("251st user: used %d counted %v, want 250 and not counted", snap.Used, snap.UserCounted)
	}
	snap, _ = s.Admission(ctx, "n1", "u007", at)
	if !snap.UserCounted {
		t.Error("a user already reached is not reported as counted")
	}
}

func TestSameUserTwiceCountsOnceAndInsideWindowNotAtAll(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	l := &log{}
	l.delivered("n1", "pf1", "u1", tPFEra, false)
	l.delivered("n1", "pf1", "u1", tPFEra+10*Hour, false)
	l.delivered("n1", "pf1", "u2", tPFEra+Hour, true) // inside the service window
	apply(t, s, l.batch())
	st, err := s.Limit(ctx, PortfolioScope("pf1"), tPFEra+11*Hour)
	if err != nil {
		t.Fatal(err)
	}
	if st.Used != 1 {
		t.Errorf("used %d, want 1", st.Used)
	}
	// u1 counts until their latest delivery + 24 h (half-open).
	for _, c := range []struct {
		at   events.UnixTime
		used int64
	}{{tPFEra + 34*Hour - 1, 1}, {tPFEra + 34*Hour, 0}} {
		st, _ := s.Limit(ctx, PortfolioScope("pf1"), c.at)
		if st.Used != c.used {
			t.Errorf("at latest+24h%+d s: used %d, want %d", c.at-(tPFEra+34*Hour), st.Used, c.used)
		}
	}
}

// TestPortfolioSwitch: two numbers of one portfolio, in two partitions, count apart before
// 2025-10-07 and share one counter from then on; a user reached through both counts once.
func TestPortfolioSwitch(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 2)
	ctx := context.Background()
	before := PortfolioSwitch - 2*Hour
	a, b := &log{p: 0}, &log{p: 1}
	for _, l := range []*log{a, b} {
		l.config("nA", "pf1", "TIER_1K", 0)
		l.config("nB", "pf1", "TIER_250", 0)
	}
	a.delivered("nA", "pf1", "u1", before, false)
	b.delivered("nB", "pf1", "u1", before, false)
	b.delivered("nB", "pf1", "u2", before, false)
	after := PortfolioSwitch + Hour
	a.delivered("nA", "pf1", "u1", after, false)
	b.delivered("nB", "pf1", "u1", after+1, false)
	b.delivered("nB", "pf1", "u3", after+2, false)
	apply(t, s, a.batch())
	apply(t, s, b.batch())

	stA, _ := s.Limit(ctx, PhoneScope("nA"), PortfolioSwitch-1)
	stB, _ := s.Limit(ctx, PhoneScope("nB"), PortfolioSwitch-1)
	if stA.Used != 1 || stB.Used != 2 || stA.Tier != Tier1K || stB.Tier != Tier250 {
		t.Errorf("phone era: nA used %d tier %s, nB used %d tier %s; want 1 TIER_1K, 2 TIER_250", stA.Used, stA.Tier, stB.Used, stB.Tier)
	}
	st, err := s.Limit(ctx, PortfolioScope("pf1"), after+10)
	if err != nil {
		t.Fatal(err)
	}
	if st.Used != 2 {
		t.Errorf("portfolio era: used %d, want 2 (u1 through both numbers once, u3)", st.Used)
	}
	if st.Tier != Tier1K || st.Era != EraPortfolio {
		t.Errorf("portfolio tier %s era %s, want the highest of its numbers (TIER_1K) and portfolio", st.Tier, st.Era)
	}
	sc, _, _, _ := s.ScopeOf(ctx, "nB", after)
	if sc != PortfolioScope("pf1") {
		t.Errorf("scope of nB after the switch = %s", sc)
	}
	// A portfolio limit event wins over the inherited one.
	c := &log{p: 0, off: a.off}
	c.add(&events.LimitUpdate{Scope: "portfolio", ID: "pf1", Tier: "TIER_2K", EffectiveFrom: after + 5}, after+5)
	apply(t, s, c.batch())
	st, _ = s.Limit(ctx, PortfolioScope("pf1"), after+10)
	if st.Tier != Tier2K || st.Limit != 2000 || st.NextTier != Tier10K {
		t.Errorf("after the limit update: tier %s limit %d next %s", st.Tier, st.Limit, st.NextTier)
	}
	// Admission for nA merges both partitions exactly when near the limit.
	snap, err := s.Admission(ctx, "nA", "u9", after+10)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Used > 3 || snap.Used < 2 {
		t.Errorf("admission used %d, want the exact 2 or the bound 3", snap.Used)
	}
}

func TestUpgradeEligibilityAtExactlyHalf(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	l := &log{}
	l.config("n1", "pf1", "TIER_250", 0)
	for i := range 125 {
		l.delivered("n1", "pf1", fmt.Sprintf("u%d", i), tPFEra+events.UnixTime(i)*Hour, false) // over ~5 days
	}
	apply(t, s, l.batch())
	at := tPFEra + 6*Day
	st, err := s.Limit(ctx, PortfolioScope("pf1"), at)
	if err != nil {
		t.Fatal(err)
	}
	if st.Used7d != 125 || !st.UpgradeEligible || st.UpgradeThreshold != 125 || st.NextTier != Tier2K {
		t.Fatalf("7-day usage %d eligible %v threshold %d next %s", st.Used7d, st.UpgradeEligible, st.UpgradeThreshold, st.NextTier)
	}
	// A day later the first deliveries have left the 7 days.
	st, _ = s.Limit(ctx, PortfolioScope("pf1"), tPFEra+7*Day+Hour)
	if st.Used7d != 123 || st.UpgradeEligible {
		t.Errorf("later: 7-day usage %d eligible %v, want 123 and false", st.Used7d, st.UpgradeEligible)
	}
}

func TestPairBurstAndThroughputPeak(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 2)
	ctx := context.Background()
	a, b := &log{p: 0}, &log{p: 1}
	u1, u2 := userIn("n1", 0, 2), userIn("n1", 1, 2) // pairs in partitions 0 and 1
	var wamid46 string
	for i := range 46 {
		a.dispatched("n1", "pf1", u1, tPFEra)
		if i == 45 {
			wamid46 = a.evs[len(a.evs)-1].Data.(*events.MessageDispatched).WAMID
		}
	}
	a.inbound("n1", "pf1", u1, tPFEra)
	for range 30 {
		b.dispatched("n1", "pf1", u2, tPFEra) // another pair, another partition, same number
	}
	b.dispatched("n1", "pf1", u2, tPFEra+1)
	st := apply(t, s, a.batch())
	if st.PairRateHits != 1 {
		t.Errorf("pair-rate hits %d, want 1", st.PairRateHits)
	}
	apply(t, s, b.batch())
	hits, err := s.PairRateHits(ctx, "n1", tPFEra-Day, tPFEra+Day)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].User != u1 || hits[0].WAMID != wamid46 || hits[0].At != tPFEra {
		t.Errorf("hits = %+v, want the 46th message to u1", hits)
	}
	tp, err := s.Throughput(ctx, "n1", tPFEra+1, DefaultMPS)
	if err != nil {
		t.Fatal(err)
	}
	if tp.Peak != 46+1+30 || tp.PeakAt != tPFEra || tp.Current != 1 || tp.SecondsOver != 0 {
		t.Errorf("throughput %+v, want peak 77 at %d, current 1", tp, tPFEra)
	}
	snap, _ := s.Admission(ctx, "n1", u1, tPFEra)
	if snap.Pair.Bucket.Tokens(tPFEra) != 0 || snap.Second != 77 {
		t.Errorf("admission: tokens %d second %d", snap.Pair.Bucket.Tokens(tPFEra), snap.Second)
	}
	if !snap.Pair.WindowKnown || !snap.Pair.Window.OpenAt(tPFEra) {
		t.Errorf("service window not open: %+v", snap.Pair.Window)
	}
}

func TestApplyTwiceChangesNothing(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	l := randomLog(0, 1, 400)
	apply(t, s, l.batch())
	before := dump(t, rdb, ns)
	st := apply(t, s, l.batch())
	if st.Applied != 0 || st.Skipped != len(l.evs) {
		t.Errorf("second apply: applied %d skipped %d", st.Applied, st.Skipped)
	}
	if d := diff(before, dump(t, rdb, ns)); d != "" {
		t.Errorf("state changed:\n%s", d)
	}
}

func TestCorrectionsUndo(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	l := &log{}
	d1 := l.delivered("n1", "pf1", "u1", tPFEra, false)
	d2 := l.delivered("n1", "pf1", "u1", tPFEra+5*Hour, false)
	x1 := l.dispatched("n1", "pf1", "u1", tPFEra)
	apply(t, s, l.batch())
	empty := dump(t, rdb, ns)

	l2 := &log{off: l.off}
	l2.add(&events.Correction{Key: "n1/u1", Retracts: []string{d2}}, tPFEra+6*Hour)
	apply(t, s, l2.batch())
	// u1's latest counted delivery is back to d1: gone at tPFEra+24h.
	st, _ := s.Limit(ctx, PortfolioScope("pf1"), tPFEra+Day)
	if st.Used != 0 {
		t.Errorf("after retracting the later delivery: used %d at +24h, want 0", st.Used)
	}
	st, _ = s.Limit(ctx, PortfolioScope("pf1"), tPFEra+Day-1)
	if st.Used != 1 {
		t.Errorf("used %d at +24h-1s, want 1", st.Used)
	}
	l3 := &log{off: l2.off}
	l3.add(&events.Correction{Key: "n1/u1", Retracts: []string{d1, x1, "never-seen"}}, tPFEra+6*Hour)
	st2 := apply(t, s, l3.batch())
	if st2.Retracted != 2 || st2.Unknown != 1 {
		t.Errorf("retracted %d unknown %d", st2.Retracted, st2.Unknown)
	}
	st, _ = s.Limit(ctx, PortfolioScope("pf1"), tPFEra+Hour)
	if st.Used != 0 {
		t.Errorf("after retracting both deliveries: used %d", st.Used)
	}
	tp, _ := s.Throughput(ctx, "n1", tPFEra, DefaultMPS)
	if tp.Peak != 0 {
		t.Errorf("throughput after retracting the dispatch: %+v", tp)
	}
	// Only the meta hash and the indexes of time-bucketed keys (dropped by time) remain:
	// everything else was undone.
	var rest []string
	for _, x := range dump(t, rdb, ns) {
		idx := false
		for _, k := range []string{"}:meta ", "}:dlxk ", "}:fxk ", "}:limk ", "}:pbk ", "}:tpk "} {
			idx = idx || strings.Contains(x, k)
		}
		if !idx {
			rest = append(rest, x)
		}
	}
	if len(rest) != 0 {
		t.Errorf("state left after undoing everything:\n%s", strings.Join(rest, "\n"))
	}
	_ = empty
}

// TestSharedStateIsBoundedStale: with WithSharedState the scope counter is reused for its TTL of
// wall time and re-read after it, while the pair's own state is always fresh.
func TestSharedStateIsBoundedStale(t *testing.T) {
	rdb, ns := client(t)
	now := time.Unix(0, 0)
	s, err := NewStore(rdb, WithNamespace(ns), WithPartitions(2), WithSharedState(time.Second),
		WithAccountCache(0, func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := &log{p: 0}
	a.config("n1", "pf1", "TIER_250", 0)
	a.delivered("n1", "pf1", "u1", tPFEra, false)
	apply(t, s, a.batch())
	snap, err := s.Admission(ctx, "n1", "u2", tPFEra+10)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Shared || snap.Used != 1 || !snap.Exact {
		t.Fatalf("first read: %+v", snap)
	}
	b := &log{p: 1}
	b.delivered("n1", "pf1", "u2", tPFEra+5, false)
	apply(t, s, b.batch())
	if snap, _ = s.Admission(ctx, "n1", "u2", tPFEra+10); snap.Used != 1 || snap.UserCounted {
		t.Errorf("within the TTL the shared counter is reused: used %d counted %v", snap.Used, snap.UserCounted)
	}
	now = now.Add(time.Second)
	if snap, _ = s.Admission(ctx, "n1", "u2", tPFEra+10); snap.Used != 2 || !snap.UserCounted {
		t.Errorf("after the TTL: used %d counted %v, want 2 and true", snap.Used, snap.UserCounted)
	}
}
