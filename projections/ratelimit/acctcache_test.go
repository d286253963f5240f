package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
)

// TestAccountCacheReloadsAhead: an account fact is reused within half the TTL; past half of it
// the next caller reloads it; past the TTL nothing cached is served.
func TestAccountCacheReloadsAhead(t *testing.T) {
	rdb, ns := client(t)
	now := time.Unix(0, 0)
	s, err := NewStore(rdb, WithNamespace(ns), WithPartitions(2), WithAccountCache(time.Second, func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pf := func() string {
		t.Helper()
		nc, ok, err := s.NumberConfig(ctx, "n1", tPFEra+10)
		if err != nil || !ok {
			t.Fatalf("config: %v %v", ok, err)
		}
		return nc.PortfolioID
	}
	a := &log{p: 0}
	a.config("n1", "pf1", "TIER_250", tPFEra)
	apply(t, s, a.batch())
	if got := pf(); got != "pf1" {
		t.Fatalf("first read %q", got)
	}
	b := &log{p: 1}
	b.config("n1", "pf2", "TIER_250", tPFEra+5)
	apply(t, s, b.batch())
	now = now.Add(400 * time.Millisecond)
	if got := pf(); got != "pf1" {
		t.Errorf("within half the TTL: %q, want the cached pf1", got)
	}
	now = now.Add(200 * time.Millisecond)
	if got := pf(); got != "pf2" {
		t.Errorf("past half the TTL: %q, want the reloaded pf2", got)
	}
	if got := pf(); got != "pf2" {
		t.Errorf("after the reload: %q, want pf2", got)
	}
	c := &log{p: 0, off: a.off}
	c.config("n1", "pf3", "TIER_250", tPFEra+6)
	apply(t, s, c.batch())
	now = now.Add(time.Second)
	if got := pf(); got != "pf3" {
		t.Errorf("past the TTL: %q, want pf3", got)
	}
}

// TestAccountFactsMatchMembers: a config, tier or portfolio's numbers resolved from the facts
// parsed once per load equal ConfigAt, TierAt and PortfolioNumbers over the same members, at
// every time, ties and undecodable values included.
func TestAccountFactsMatchMembers(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	tiers := []string{"TIER_250", "TIER_2K", "TIER_10K", "UNLIMITED", "bogus", ""}
	for round := range 300 {
		var ms []string
		for range rng.IntN(6) {
			at := events.UnixTime(rng.IntN(5) * 100)
			cfg := fmt.Sprintf(`{"waba_id":"w%d","portfolio_id":"pf%d","throughput_mps":%d}`, rng.IntN(3), rng.IntN(3), rng.IntN(3)*40)
			if rng.IntN(6) == 0 {
				cfg = `{"waba_id":` // does not decode
			}
			ms = append(ms, acctMember(cfgPrefix("n1"), at, cfg))
			ms = append(ms, acctMember(tierPrefix(PhoneScope("n1")), at, tiers[rng.IntN(len(tiers))]))
			ms = append(ms, memberPrefix("pf1")+fmt.Sprintf("n%d", rng.IntN(4)))
		}
		cfg, tier, pfn := newAcctFacts(cfgPrefix("n1"), ms), newAcctFacts(tierPrefix(PhoneScope("n1")), ms), newAcctFacts(memberPrefix("pf1"), ms)
		for at := events.UnixTime(-50); at <= 500; at += 50 {
			wantNC, wantOK := ConfigAt("n1", ms, at)
			if nc, ok := cfg.config("n1", at); nc != wantNC || ok != wantOK {
				t.Fatalf("round %d at %d: config %+v %v, want %+v %v (members %q)", round, at, nc, ok, wantNC, wantOK, ms)
			}
			if got, want := tier.tier(at), TierAt(PhoneScope("n1"), ms, at); got != want {
				t.Fatalf("round %d at %d: tier %q, want %q (members %q)", round, at, got, want, ms)
			}
		}
		if got, want := pfn.numbers, PortfolioNumbers("pf1", ms); !slices.Equal(got, want) {
			t.Fatalf("round %d: numbers %q, want %q", round, got, want)
		}
	}
}

// TestTierMemoAnswersAsTheFacts: with the account cache on, a remembered tier answers at every
// time as resolving it from the facts does (tiers of numbers, portfolio and WABA set at different
// times, a number moving to another WABA), before and after more facts arrive and the cache
// reloads them.
func TestTierMemoAnswersAsTheFacts(t *testing.T) {
	rdb, ns := client(t)
	now := time.Unix(0, 0)
	cached, err := NewStore(rdb, WithNamespace(ns), WithPartitions(2), WithAccountCache(time.Second, func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	fresh := newStore(t, rdb, ns, 2)
	ctx := context.Background()
	scopes := []Scope{PortfolioScope("pf1"), PortfolioScope("pf2"), PhoneScope("n1"), PhoneScope("n2"), PhoneScope("n3"), WABAScope("w-pf1")}
	var times []events.UnixTime // around every effective time below
	for _, e := range []events.UnixTime{tPhoneEra, tPhoneEra + 100, tPFEra, tPFEra + 150} {
		times = append(times, e-1, e, e+1, e+40)
	}
	check := func(stage string) {
		t.Helper()
		for round := range 2 { // the second round answers from the memo
			for _, sc := range scopes {
				for _, at := range times {
					got, gotSet, err := cached.TierOf(ctx, sc, at)
					if err != nil {
						t.Fatal(err)
					}
					want, wantSet, err := fresh.TierOf(ctx, sc, at)
					if err != nil {
						t.Fatal(err)
					}
					if got != want || gotSet != wantSet {
						t.Fatalf("%s, round %d, %s at %d: %s %v, want %s %v", stage, round, sc, at, got, gotSet, want, wantSet)
					}
				}
			}
		}
	}
	a, b := &log{p: 0}, &log{p: 1}
	for _, l := range []*log{a, b} {
		l.config("n1", "pf1", "TIER_250", tPhoneEra)
		l.config("n2", "pf1", "", tPhoneEra)
		l.config("n3", "pf2", "", tPhoneEra)
		l.add(&events.LimitUpdate{Scope: "waba", ID: "w-pf1", Tier: "TIER_2K", EffectiveFrom: tPhoneEra + 100}, tPhoneEra+100)
		l.config("n2", "pfx", "", tPFEra) // moves to another WABA and portfolio
	}
	apply(t, cached, a.batch())
	apply(t, cached, b.batch())
	check("first facts")
	c := &log{p: 0, off: a.off}
	c.add(&events.LimitUpdate{Scope: "portfolio", ID: "pf1", Tier: "TIER_100K", EffectiveFrom: tPFEra + 150}, tPFEra+150)
	c.add(&events.LimitUpdate{Scope: "phone_number", ID: "n3", Tier: "TIER_10K", EffectiveFrom: tPhoneEra}, tPhoneEra)
	apply(t, cached, c.batch())
	now = now.Add(time.Second) // past the TTL: nothing cached is served
	check("more facts")
}
