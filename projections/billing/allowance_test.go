package billing

import (
	"fmt"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// TestPMP2026AllowancePerNumber: with the unconfirmed allowance switched on (2 free service
// messages per number and month), the first two service messages of each number, by delivery time
// then id and across partitions, are free; the third is charged at the list price; templates are
// not counted; a number of the same WABA has an allowance of its own.
func TestPMP2026AllowancePerNumber(t *testing.T) {
	book := exampleBook(t)
	acct := func(number string) events.Account {
		return events.Account{PhoneNumberID: number, WABAID: "W9", TimeZone: "UTC", Currency: "USD", Month: "2026-10", Configured: true}
	}
	base := at("2026-10-05T10:00:00Z")
	service := func(p int32, off int64, id, number string, ts events.UnixTime) events.Event {
		return chargeEvent(p, off, id, acct(number), events.Charge{Unit: events.UnitMessage, PricingModel: events.ModelPMP2026,
			Category: events.CategoryService, PricingType: events.PricingRegular, Billable: true, Reason: events.ReasonServiceCharged,
			Kind: events.KindFreeForm, Recipient: "919800000001", DeliveredAt: ts, FreeAllowance: 2})
	}
	s := newStore(t, book)
	// N9: three service messages, the second and third in the same second (ties by id), in two
	// partitions; N8: one; and a utility template on N9 that the allowance does not cover.
	apply(t, s, 1, service(1, 0, "svc-c", "N9", base+5), service(1, 1, "svc-n8", "N8", base+9))
	apply(t, s, 0, service(0, 0, "svc-a", "N9", base), service(0, 1, "svc-b", "N9", base+5),
		chargeEvent(0, 2, "tpl", acct("N9"), events.Charge{Unit: events.UnitMessage, PricingModel: events.ModelPMP2026,
			Category: events.CategoryUtility, PricingType: events.PricingRegular, Billable: true, Reason: events.ReasonTemplateDelivered,
			Kind: events.KindTemplate, Recipient: "919800000001", DeliveredAt: base + 1}))
	tt := totals(t, s, "W9", "2026-10")
	want := map[string]FreeTierUsage{"N9": {Eligible: 3, Used: 2, Limit: 2}, "N8": {Eligible: 1, Used: 1, Limit: 2}}
	if fmt.Sprint(tt.FreeAllowances) != fmt.Sprint(want) {
		t.Errorf("allowances = %+v, want %+v", tt.FreeAllowances, want)
	}
	wantBucket(t, "free_allowance", tt.ByPricingType[string(PricingFreeAllowance)], 3, 3, 0, 0)
	for _, l := range allLines(t, s, "W9", "2026-10") {
		free := l.ID == "svc-a" || l.ID == "svc-b" || l.ID == "svc-n8"
		switch {
		case free && (l.Amount != 0 || l.SettledType != PricingFreeAllowance):
			t.Errorf("%s: %d %s, want free within the allowance", l.ID, l.Amount, l.SettledType)
		case !free && (l.Amount == 0 || l.SettledType != events.PricingRegular):
			t.Errorf("%s: %d %s, want charged at the list price", l.ID, l.Amount, l.SettledType)
		}
	}
	if tt.Total.AmountMicros != 2*1400 {
		t.Errorf("total %d micros, want the third service message and the template at 1400 each", tt.Total.AmountMicros)
	}
}
