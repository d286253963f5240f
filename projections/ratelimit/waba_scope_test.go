package ratelimit

import (
	"context"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// Meta's account webhooks name the WABA (ingest writes LimitUpdate{Scope: "waba"}): the tier
// applies to the WABA's numbers and to the portfolio the WABA belongs to.
func TestWABAScopedLimitUpdateAppliesToItsNumbersAndPortfolio(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	l := &log{}
	l.config("n1", "pf1", "", 0) // WABA w-pf1, no tier of its own
	l.add(&events.LimitUpdate{Scope: "waba", ID: "w-pf1", Tier: "TIER_10K", EffectiveFrom: tPhoneEra}, tPhoneEra)
	apply(t, s, l.batch())
	for _, sc := range []Scope{PhoneScope("n1"), PortfolioScope("pf1")} {
		tier, set, err := s.TierOf(ctx, sc, tPFEra)
		if err != nil {
			t.Fatal(err)
		}
		if !set || tier != Tier10K {
			t.Errorf("%s: tier %s (set %v), want TIER_10K from the WABA's update", sc, tier, set)
		}
	}
	// Before the update nothing was set.
	if tier, set, _ := s.TierOf(ctx, PhoneScope("n1"), tPhoneEra-1); set {
		t.Errorf("before the update: tier %s is set", tier)
	}
	// Another WABA's update does not leak.
	if tier, set, _ := s.TierOf(ctx, PortfolioScope("pf2"), tPFEra); set {
		t.Errorf("unrelated portfolio got tier %s", tier)
	}
}
