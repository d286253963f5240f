package billing

import (
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

// TestPricerLine is a table test of the pure pricing of one charge (no Redis).
func TestPricerLine(t *testing.T) {
	pr, err := NewPricer(exampleBook(t))
	if err != nil {
		t.Fatal(err)
	}
	acct := events.Account{PhoneNumberID: "N1", WABAID: "W1", PortfolioID: "P1", TimeZone: "Asia/Kolkata", Currency: "USD", Month: "2025-08", Configured: true}
	pmp := events.Charge{Unit: events.UnitMessage, PricingModel: events.ModelPMP, Category: events.CategoryMarketing,
		PricingType: events.PricingRegular, Billable: true, Recipient: "919800000001", DeliveredAt: at("2025-08-05T10:00:00Z")}
	for _, c := range []struct {
		name     string
		acct     func(*events.Account)
		charge   func(*events.Charge)
		list     ratecard.Micros
		market   string
		unpriced string
		group    string
	}{
		{name: "PMP marketing India", list: 10_700, market: "India"},
		{name: "PMP utility India is volume tiered", charge: func(c *events.Charge) { c.Category = events.CategoryUtility },
			list: 1400, market: "India", group: "vt|P1|2025-08|India|utility|example-usd-2025-07"},
		{name: "no portfolio: the WABA is the volume group", acct: func(a *events.Account) { a.PortfolioID = "" },
			charge: func(c *events.Charge) { c.Category = events.CategoryAuthentication },
			list:   1400, market: "India", group: "vt|waba:W1|2025-08|India|authentication|example-usd-2025-07"},
		{name: "authentication_international is not tiered", charge: func(c *events.Charge) { c.Category = events.CategoryAuthenticationInternational },
			list: 28_000, market: "India"},
		{name: "Jamaica +1 876 is Rest of Latin America", charge: func(c *events.Charge) { c.Recipient = "18765550100" },
			list: 74_000, market: "Rest of Latin America"},
		{name: "free in the CSW costs nothing and needs no card",
			charge: func(c *events.Charge) {
				c.Billable, c.PricingType, c.Category = false, events.PricingFreeCustomerService, events.CategoryUtility
			},
			market: "India"},
		{name: "PMP-2026 service at the utility list rate, no tiers",
			charge: func(c *events.Charge) {
				c.PricingModel, c.Category, c.Reason = events.ModelPMP2026, events.CategoryService, events.ReasonServiceCharged
				c.DeliveredAt = at("2026-10-05T10:00:00Z")
			}, acct: func(a *events.Account) { a.Month = "2026-10" }, list: 1400, market: "India"},
		{name: "not configured", acct: func(a *events.Account) { *a = events.Account{PhoneNumberID: "N1"} }, unpriced: UnpricedNotConfigured},
		{name: "no currency", acct: func(a *events.Account) { a.Currency = "" }, market: "India", unpriced: UnpricedNoCurrency},
		{name: "bad time zone", acct: func(a *events.Account) { a.TimeZone = "Mars/Olympus" }, unpriced: UnpricedBadTimeZone},
		{name: "unknown market", charge: func(c *events.Charge) { c.Recipient = "999123456" }, unpriced: UnpricedUnknownMarket},
		{name: "no card for the currency", acct: func(a *events.Account) { a.Currency = "EUR" }, market: "India", unpriced: UnpricedNoCard},
		{name: "no rate for the market", charge: func(c *events.Charge) { c.Recipient = "447700900123" }, market: "United Kingdom", unpriced: UnpricedNoRate},
		{name: "CBP-2023 service conversation in the free-tier era",
			charge: func(c *events.Charge) {
				c.Unit, c.PricingModel, c.Category = events.UnitConversation, events.ModelCBP2023, events.CategoryService
				c.DeliveredAt = at("2024-03-05T10:00:00Z")
			}, acct: func(a *events.Account) { a.Month = "2024-03" }, list: 4000, market: "India", group: "ft|W1|2024-03"},
		{name: "INR card", acct: func(a *events.Account) { a.Currency = "INR" },
			charge: func(c *events.Charge) { c.DeliveredAt = at("2024-03-05T10:00:00Z") }, list: 770_000, market: "India"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, ch := acct, pmp
			if c.acct != nil {
				c.acct(&a)
			}
			if c.charge != nil {
				c.charge(&ch)
			}
			e := chargeEvent(0, 0, "id", a, ch)
			l := pr.Line(e, e.Data.(*events.Charge))
			if l.List != c.list || l.Market != c.market || l.Unpriced != c.unpriced || l.Group != c.group {
				t.Errorf("line = list %d market %q unpriced %q group %q; want %d %q %q %q", l.List, l.Market, l.Unpriced, l.Group, c.list, c.market, c.unpriced, c.group)
			}
		})
	}
}
