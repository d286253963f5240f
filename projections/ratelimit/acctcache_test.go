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
