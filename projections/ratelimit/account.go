package ratelimit

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/convmeter/convmeter/events"
)

// NumberConfig is what the projection keeps of an account.config event: the facts admission needs.
type NumberConfig struct {
	PhoneNumberID string          `json:"-"`
	EffectiveFrom events.UnixTime `json:"-"`
	WABAID        string          `json:"waba_id,omitempty"`
	PortfolioID   string          `json:"portfolio_id,omitempty"`
	TimeZone      string          `json:"time_zone,omitempty"`
	Currency      string          `json:"currency,omitempty"`
	ThroughputMPS int             `json:"throughput_mps,omitempty"`
	Coexistence   bool            `json:"coexistence,omitempty"`
}

// Throughput limits (domain §4.4): 80 mps by default, 1,000 after the upgrade, 20 for
// coexistence numbers.
const (
	DefaultMPS     = 80
	CoexistenceMPS = 20
)

// MPS is the number's throughput limit in messages per second.
func (c NumberConfig) MPS() int {
	switch {
	case c.Coexistence:
		return CoexistenceMPS
	case c.ThroughputMPS > 0:
		return c.ThroughputMPS
	}
	return DefaultMPS
}

// Account facts are kept in one lex-ordered ZSET per partition (account events are broadcast to
// every partition, so each has them, atomically with its own high-water mark):
//
//	cfg|<pn>|<effective12>|<json NumberConfig>
//	tier|pn:<pn>|<effective12>|<TIER>      (account.config tier, or account.limit scope phone_number)
//	tier|pf:<portfolio>|<effective12>|<TIER> (account.limit scope portfolio)
//	tier|waba:<waba>|<effective12>|<TIER>  (account.limit scope waba, as ingest writes Meta's webhooks)
//	pfn|<portfolio>|<pn>                    (the number belongs / belonged to the portfolio)
func cfgPrefix(pn string) string                              { return "cfg" + sep + pn + sep }
func tierPrefix(s Scope) string                               { return "tier" + sep + string(s) + sep }
func memberPrefix(pf string) string                           { return "pfn" + sep + pf + sep }
func acctMember(p string, t events.UnixTime, v string) string { return p + pad12(t) + sep + v }

func (r *reducer) accountConfig(d *events.AccountConfig) {
	r.c.Stats.AccountEvents++
	nc := NumberConfig{WABAID: d.WABAID, PortfolioID: d.PortfolioID, TimeZone: d.TimeZone,
		Currency: d.Currency, ThroughputMPS: d.ThroughputMPS, Coexistence: d.Coexistence}
	b, _ := json.Marshal(nc)
	r.c.zset(kAccounts, acctMember(cfgPrefix(d.PhoneNumberID), d.EffectiveFrom, string(b)), 0)
	if t := ParseTier(d.MessagingLimitTier); t != TierNotSet {
		r.c.zset(kAccounts, acctMember(tierPrefix(PhoneScope(d.PhoneNumberID)), d.EffectiveFrom, string(t)), 0)
	}
	if d.PortfolioID != "" {
		r.c.zset(kAccounts, memberPrefix(d.PortfolioID)+d.PhoneNumberID, 0)
	}
}

func (r *reducer) limitUpdate(d *events.LimitUpdate) {
	r.c.Stats.AccountEvents++
	t := ParseTier(d.Tier)
	if t == TierNotSet || d.ID == "" {
		return
	}
	var s Scope
	switch d.Scope {
	case "portfolio":
		s = PortfolioScope(d.ID)
	case "waba":
		s = WABAScope(d.ID)
	default:
		s = PhoneScope(d.ID)
	}
	r.c.zset(kAccounts, acctMember(tierPrefix(s), d.EffectiveFrom, string(t)), 0)
}

// dated is one value of a time series kept as lex members "<prefix><effective12>|<value>".
type dated struct {
	at  events.UnixTime
	val string
}

// series parses the members that share prefix (already filtered by the caller's lex range).
func series(prefix string, members []string) []dated {
	out := make([]dated, 0, len(members))
	for _, m := range members {
		rest, ok := strings.CutPrefix(m, prefix)
		if !ok {
			continue
		}
		ts, val, ok := strings.Cut(rest, sep)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, dated{events.UnixTime(n), val})
	}
	return out
}

// at returns the value in force at t: the one with the latest effective time not after t. Ties
// take the greatest value, so the answer does not depend on which partition was read first.
func at(ds []dated, t events.UnixTime) (dated, bool) {
	var best dated
	found := false
	for _, d := range ds {
		if d.at > t {
			continue
		}
		if !found || d.at > best.at || (d.at == best.at && d.val > best.val) {
			best, found = d, true
		}
	}
	return best, found
}

// ConfigAt resolves a number's configuration at t from its cfg members. Before the first config
// the earliest one is used (facts rarely change; an unknown number is reported unconfigured).
func ConfigAt(pn string, members []string, t events.UnixTime) (NumberConfig, bool) {
	ds := series(cfgPrefix(pn), members)
	d, ok := at(ds, t)
	if !ok {
		return NumberConfig{PhoneNumberID: pn}, false
	}
	var nc NumberConfig
	if err := json.Unmarshal([]byte(d.val), &nc); err != nil {
		return NumberConfig{PhoneNumberID: pn}, false
	}
	nc.PhoneNumberID, nc.EffectiveFrom = pn, d.at
	return nc, true
}

// TierAt resolves a scope's tier at t from its tier members; TierNotSet when none applies.
func TierAt(s Scope, members []string, t events.UnixTime) Tier {
	d, ok := at(series(tierPrefix(s), members), t)
	if !ok {
		return TierNotSet
	}
	return ParseTier(d.val)
}

// PortfolioNumbers lists the numbers recorded as members of portfolio pf.
func PortfolioNumbers(pf string, members []string) []string {
	var out []string
	p := memberPrefix(pf)
	for _, m := range members {
		if n, ok := strings.CutPrefix(m, p); ok {
			out = append(out, n)
		}
	}
	return out
}

// acctFacts is the account members under one prefix, merged over partitions and parsed once when
// loaded, so a query resolves a config or tier without decoding the members again.
type acctFacts struct {
	members []string
	series  []dated        // cfg and tier prefixes: the members as a dated series
	configs []NumberConfig // cfg prefixes: series[i] decoded
	cfgOK   []bool         // cfg prefixes: series[i] decoded without error
	tiers   []Tier         // tier prefixes: series[i] parsed
	numbers []string       // pfn prefixes: the portfolio's numbers
}

func newAcctFacts(prefix string, members []string) *acctFacts {
	f := &acctFacts{members: members}
	switch {
	case strings.HasPrefix(prefix, "cfg"+sep):
		f.series = series(prefix, members)
		f.configs, f.cfgOK = make([]NumberConfig, len(f.series)), make([]bool, len(f.series))
		for i, d := range f.series {
			f.cfgOK[i] = json.Unmarshal([]byte(d.val), &f.configs[i]) == nil
		}
	case strings.HasPrefix(prefix, "tier"+sep):
		f.series = series(prefix, members)
		f.tiers = make([]Tier, len(f.series))
		for i, d := range f.series {
			f.tiers[i] = ParseTier(d.val)
		}
	case strings.HasPrefix(prefix, "pfn"+sep):
		for _, m := range members {
			if n, ok := strings.CutPrefix(m, prefix); ok {
				f.numbers = append(f.numbers, n)
			}
		}
	}
	return f
}

// atIndex is at returning the index of the value in force at t, or -1.
func atIndex(ds []dated, t events.UnixTime) int {
	best := -1
	for i, d := range ds {
		if d.at > t {
			continue
		}
		if best < 0 || d.at > ds[best].at || (d.at == ds[best].at && d.val > ds[best].val) {
			best = i
		}
	}
	return best
}

// config is ConfigAt over facts loaded from cfgPrefix(pn).
func (f *acctFacts) config(pn string, t events.UnixTime) (NumberConfig, bool) {
	i := atIndex(f.series, t)
	if i < 0 || !f.cfgOK[i] {
		return NumberConfig{PhoneNumberID: pn}, false
	}
	nc := f.configs[i]
	nc.PhoneNumberID, nc.EffectiveFrom = pn, f.series[i].at
	return nc, true
}

// tier is TierAt over facts loaded from a tier prefix.
func (f *acctFacts) tier(t events.UnixTime) Tier {
	i := atIndex(f.series, t)
	if i < 0 {
		return TierNotSet
	}
	return f.tiers[i]
}
