package ratelimit

import (
	"strings"

	"github.com/convmeter/convmeter/events"
)

// Tier is a messaging-limit tier as Meta spells it in messaging_limit_tier,
// whatsapp_business_manager_messaging_limit and business_capability_update (domain §4.1, §4.2).
type Tier string

// Tiers. The list is only appended to.
const (
	TierNotSet    Tier = "TIER_NOT_SET"
	Tier50        Tier = "TIER_50"
	Tier250       Tier = "TIER_250"
	Tier1K        Tier = "TIER_1K"
	Tier2K        Tier = "TIER_2K"
	Tier10K       Tier = "TIER_10K"
	Tier100K      Tier = "TIER_100K"
	TierUnlimited Tier = "TIER_UNLIMITED"
)

// DefaultTier is the tier a scope has when no account event set one: new numbers and new
// portfolios start at 250 (§4.1, §4.2).
const DefaultTier = Tier250

// PortfolioSwitch is when messaging limits moved from phone numbers to business portfolios
// (2025-10-07, §4.2). A delivery counts toward its number before it and toward its portfolio from
// it on, chosen by the delivery's own time.
var PortfolioSwitch = events.UnixTime(1759795200) // 2025-10-07T00:00:00Z

// Era is the messaging-limit regime in force at a moment.
type Era string

// Eras.
const (
	EraPhoneNumber Era = "phone_number" // before PortfolioSwitch
	EraPortfolio   Era = "portfolio"    // from PortfolioSwitch on
)

// EraAt is the era in force at t.
func EraAt(t events.UnixTime) Era {
	if t < PortfolioSwitch {
		return EraPhoneNumber
	}
	return EraPortfolio
}

// Ladders: the tiers automatic upgrades climb, per era (§4.1: 250 → 1K → 10K → 100K → unlimited;
// §4.2: 250 → 2K → 10K → 100K → unlimited).
var (
	phoneLadder     = []Tier{Tier50, Tier250, Tier1K, Tier10K, Tier100K, TierUnlimited}
	portfolioLadder = []Tier{Tier50, Tier250, Tier2K, Tier10K, Tier100K, TierUnlimited}
)

// ParseTier normalises a tier string: case, a missing "TIER_" prefix, and business_capability_update's
// "-1" for unlimited. Unknown values are TierNotSet.
func ParseTier(s string) Tier {
	s = strings.ToUpper(strings.TrimSpace(s))
	switch s {
	case "":
		return TierNotSet
	case "-1", "UNLIMITED":
		return TierUnlimited
	}
	if !strings.HasPrefix(s, "TIER_") {
		s = "TIER_" + s
	}
	t := Tier(s)
	if _, ok := tierLimits[t]; ok || t == TierUnlimited || t == TierNotSet {
		return t
	}
	return TierNotSet
}

var tierLimits = map[Tier]int64{
	Tier50: 50, Tier250: 250, Tier1K: 1000, Tier2K: 2000, Tier10K: 10000, Tier100K: 100000,
}

// Limit is the number of distinct users t allows in a moving 24 h; unlimited reports false.
// TierNotSet has DefaultTier's limit.
func (t Tier) Limit() (n int64, limited bool) {
	if t == TierUnlimited {
		return 0, false
	}
	if n, ok := tierLimits[t]; ok {
		return n, true
	}
	return tierLimits[DefaultTier], true
}

// rank orders tiers by limit; TierNotSet ranks as DefaultTier.
func (t Tier) rank() int64 {
	if t == TierUnlimited {
		return 1 << 62
	}
	n, _ := t.Limit()
	return n
}

// Next is the tier an automatic upgrade from t reaches in era e, and false when t is unlimited.
func (t Tier) Next(e Era) (Tier, bool) {
	ladder := phoneLadder
	if e == EraPortfolio {
		ladder = portfolioLadder
	}
	r := t.rank()
	for _, x := range ladder {
		if x.rank() > r {
			return x, true
		}
	}
	return "", false
}

// MaxTier returns the higher of a and b.
func MaxTier(a, b Tier) Tier {
	if a == "" || a == TierNotSet {
		return b
	}
	if b == "" || b == TierNotSet {
		return a
	}
	if b.rank() > a.rank() {
		return b
	}
	return a
}
