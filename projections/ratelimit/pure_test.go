package ratelimit

import (
	"math/rand/v2"
	"testing"

	"github.com/convmeter/convmeter/events"
)

func TestTierLadders(t *testing.T) {
	cases := []struct {
		tier Tier
		era  Era
		next Tier
		lim  int64
	}{
		{Tier250, EraPhoneNumber, Tier1K, 250},
		{Tier1K, EraPhoneNumber, Tier10K, 1000},
		{Tier250, EraPortfolio, Tier2K, 250},
		{Tier2K, EraPortfolio, Tier10K, 2000},
		{Tier1K, EraPortfolio, Tier2K, 1000}, // a number's 1K inherited by its portfolio
		{Tier100K, EraPortfolio, TierUnlimited, 100000},
		{TierNotSet, EraPortfolio, Tier2K, 250},
		{Tier50, EraPhoneNumber, Tier250, 50},
	}
	for _, c := range cases {
		got, ok := c.tier.Next(c.era)
		if !ok || got != c.next {
			t.Errorf("%s.Next(%s) = %s, %v; want %s", c.tier, c.era, got, ok, c.next)
		}
		if n, limited := c.tier.Limit(); !limited || n != c.lim {
			t.Errorf("%s.Limit() = %d, %v; want %d", c.tier, n, limited, c.lim)
		}
	}
	if _, ok := TierUnlimited.Next(EraPortfolio); ok {
		t.Error("unlimited has a next tier")
	}
	for in, want := range map[string]Tier{"-1": TierUnlimited, "tier_2k": Tier2K, "10K": Tier10K, "bogus": TierNotSet, "": TierNotSet} {
		if got := ParseTier(in); got != want {
			t.Errorf("ParseTier(%q) = %s, want %s", in, got, want)
		}
	}
	if EraAt(PortfolioSwitch-1) != EraPhoneNumber || EraAt(PortfolioSwitch) != EraPortfolio {
		t.Error("era boundary is not 2025-10-07T00:00:00Z")
	}
}

func TestBucketBurstThenPairRate(t *testing.T) {
	var b Bucket
	t0 := events.UnixTime(1_760_000_000)
	for i := range PairBurst {
		var ok bool
		if b, ok = b.Take(t0); !ok {
			t.Fatalf("message %d of the burst refused", i+1)
		}
	}
	if _, ok := b.Take(t0); ok {
		t.Fatal("46th message in the same second allowed")
	}
	if got := b.RetryAfter(t0); got != PairInterval {
		t.Errorf("RetryAfter = %d, want %d", got, PairInterval)
	}
	if _, ok := b.Take(t0 + PairInterval - 1); ok {
		t.Error("a token came back before 6 s")
	}
	b2, ok := b.Take(t0 + PairInterval)
	if !ok {
		t.Fatal("no token 6 s after the burst")
	}
	if _, ok := b2.Take(t0 + PairInterval); ok {
		t.Error("two tokens 6 s after the burst")
	}
	if full := b.FullAt(); full != t0+PairBurst*PairInterval {
		t.Errorf("FullAt = %d, want %d", full, t0+PairBurst*PairInterval)
	}
}

// TestBucketMatchesSlidingModel checks the integer bucket against a direct simulation in
// fractional tokens, over random message times.
func TestBucketMatchesSlidingModel(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 7))
		var b Bucket
		tokens, last := float64(PairBurst), events.UnixTime(0)
		now := events.UnixTime(1_700_000_000)
		last = now
		for range 300 {
			now += events.UnixTime(r.IntN(8))
			tokens = min(float64(PairBurst), tokens+float64(now-last)/PairInterval)
			last = now
			want := tokens >= 1-1e-9
			if want {
				tokens--
			}
			var got bool
			b, got = b.Take(now)
			if got != want {
				t.Fatalf("seed %d at %d: bucket says %v, model says %v", seed, now, got, want)
			}
		}
	}
}

func TestUsageHeadroomAndUpgrade(t *testing.T) {
	at := events.UnixTime(1_760_000_000)
	latest := map[string]events.UnixTime{}
	// 250 users: the oldest reached 20 h ago, then one per minute.
	for i := range 250 {
		latest[string(rune('a'+i%26))+string(rune('A'+i/26))] = at - 20*Hour + events.UnixTime(60*i)
	}
	st := Usage(Config{}, PortfolioScope("p"), Tier250, true, latest, at)
	if st.Used != 250 || st.Headroom != 0 {
		t.Fatalf("used %d headroom %d, want 250 and 0", st.Used, st.Headroom)
	}
	if want := at - 20*Hour + Day; st.HeadroomAt != want {
		t.Errorf("headroom returns at %s, want %s (oldest counted user + 24 h)", st.HeadroomAt, want)
	}
	// 251 users: two must leave, the second oldest at +60 s.
	latest["zz"] = at
	st = Usage(Config{}, PortfolioScope("p"), Tier250, true, latest, at)
	if want := at - 20*Hour + 60 + Day; st.Used != 251 || st.HeadroomAt != want {
		t.Errorf("used %d headroom at %s, want 251 and %s", st.Used, st.HeadroomAt, want)
	}
	// Upgrade: exactly half of 250 over 7 days is eligible, one less is not.
	week := map[string]events.UnixTime{}
	for i := range 125 {
		week[string(rune(0x100+i))] = at - events.UnixTime(i)*Hour // spread over ~5 days
	}
	if st := Usage(Config{}, PortfolioScope("p"), Tier250, true, week, at); !st.UpgradeEligible || st.Used7d != 125 || st.NextTier != Tier2K {
		t.Errorf("125 of 250 in 7 days: eligible %v used7d %d next %s", st.UpgradeEligible, st.Used7d, st.NextTier)
	}
	delete(week, string(rune(0x100)))
	if st := Usage(Config{}, PortfolioScope("p"), Tier250, true, week, at); st.UpgradeEligible {
		t.Error("124 of 250 in 7 days is eligible")
	}
	// A user older than 7 days does not count toward usage.
	week["old"] = at - 7*Day
	if st := Usage(Config{}, PortfolioScope("p"), Tier250, true, week, at); st.Used7d != 124 {
		t.Errorf("used7d %d, want 124 (a delivery exactly 7 days old is out)", st.Used7d)
	}
}
