package billing

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

func at(s string) events.UnixTime {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return events.FromTime(t)
}

// julyHistory is a PMP month of WABA W1 (Asia/Kolkata, USD) over three partitions. Hand-checked
// against examples/usd-2025-07-01.csv:
//
//	1003 India utility templates, tiers 0:1000 at 0.0014 and 1000:5000 at 0.0012
//	     → 1000 × 1400 + 3 × 1200 = 1,403,600 micros
//	1 India utility inside the CSW, free (utility_in_csw)          →        0
//	2 India marketing at 0.0107                                    →   21,400
//	1 Dominican Republic (+1 809) marketing, Rest of Latin America →   74,000
//	1 United Kingdom marketing: the card has no UK row → unpriced (no_rate)
//	total 1,499,000 micros = 1.499 USD over 1008 lines.
//
// Plus one unconfigured charge, which lands under WABA "-" as unpriced.
func julyHistory() map[int32][]events.Event {
	h := map[int32][]events.Event{}
	off := map[int32]int64{}
	add := func(p int32, id string, acct events.Account, c events.Charge) {
		h[p] = append(h[p], chargeEvent(p, off[p], id, acct, c))
		off[p]++
	}
	base := at("2025-07-02T00:00:00Z")
	for i := 0; i < 1003; i++ {
		add(int32(i%3), fmt.Sprintf("u-%04d", i), ist, events.Charge{PricingModel: events.ModelPMP,
			Category: events.CategoryUtility, Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate,
			Recipient: fmt.Sprintf("9198%08d", i), DeliveredAt: base + events.UnixTime(i)})
	}
	add(0, "free-1", ist, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryUtility,
		PricingType: events.PricingFreeCustomerService, Reason: events.ReasonUtilityInCSW, Kind: events.KindTemplate,
		Recipient: "919811111111", DeliveredAt: base + 5})
	for i := 0; i < 2; i++ {
		add(1, fmt.Sprintf("m-%d", i), ist, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryMarketing,
			Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate, Recipient: "919822222222", DeliveredAt: base + 10})
	}
	n2 := ist
	n2.PhoneNumberID = "N2"
	add(2, "dr-1", n2, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryMarketing,
		Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate, Recipient: "18095550001", DeliveredAt: base + 20})
	add(2, "uk-1", n2, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryMarketing,
		Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate, Recipient: "447700900123", DeliveredAt: base + 30})
	add(0, "unconf-1", events.Account{PhoneNumberID: "N9"}, events.Charge{PricingModel: events.ModelPMP,
		Category: events.CategoryMarketing, Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate,
		Recipient: "919833333333", DeliveredAt: base + 40})
	return h
}

func wantBucket(t *testing.T, what string, got Bucket, lines, billable, unpriced int64, amount ratecard.Micros) {
	t.Helper()
	if got.Lines != lines || got.Billable != billable || got.Unpriced != unpriced || got.AmountMicros != amount {
		t.Errorf("%s = %+v, want lines %d billable %d unpriced %d amount %d", what, got, lines, billable, unpriced, amount)
	}
}

func TestGoldenJuly(t *testing.T) {
	book := exampleBook(t)
	h := julyHistory()
	// Two stores fed in different orders and batch sizes must hold the same ledger.
	a := newStore(t, book)
	for _, p := range []int32{0, 1, 2} {
		apply(t, a, p, h[p]...)
	}
	b := sameRedis(t, a, book)
	for _, p := range []int32{2, 1, 0} {
		evs := h[p]
		for i := 0; i < len(evs); i += 97 {
			apply(t, b, p, evs[i:min(i+97, len(evs))]...)
		}
	}
	tt := totals(t, a, "W1", "2025-07")
	wantBucket(t, "total", tt.Total, 1008, 1007, 1, 1_499_000)
	if tt.Total.Amount != "1.499" {
		t.Errorf("total amount %q, want 1.499", tt.Total.Amount)
	}
	wantBucket(t, "utility", tt.ByCategory["utility"], 1004, 1003, 0, 1_403_600)
	wantBucket(t, "marketing", tt.ByCategory["marketing"], 4, 4, 1, 95_400)
	wantBucket(t, "India", tt.ByMarket["India"], 1006, 1005, 0, 1_425_000)
	wantBucket(t, "RoLA", tt.ByMarket["Rest of Latin America"], 1, 1, 0, 74_000)
	wantBucket(t, "UK", tt.ByMarket["United Kingdom"], 1, 1, 1, 0)
	wantBucket(t, "N2", tt.ByNumber["N2"], 2, 2, 1, 74_000)
	wantBucket(t, "free_customer_service", tt.ByPricingType["free_customer_service"], 1, 0, 0, 0)
	if tt.Unpriced[UnpricedNoRate] != 1 || len(tt.Unpriced) != 1 {
		t.Errorf("unpriced = %v, want no_rate:1", tt.Unpriced)
	}
	if len(tt.VolumeTiers) != 1 || tt.VolumeTiers[0].ByTier["0:1000"] != 1000 || tt.VolumeTiers[0].ByTier["1000:5000"] != 3 || tt.VolumeTiers[0].GroupMessages != 1003 {
		t.Errorf("volume tiers = %+v", tt.VolumeTiers)
	}
	// The three lines above the first tier are the last three utility deliveries.
	ls := allLines(t, a, "W1", "2025-07")
	if len(ls) != 1008 {
		t.Fatalf("%d lines, want 1008", len(ls))
	}
	var sum ratecard.Micros
	for _, l := range ls {
		sum += l.Amount
		switch l.ID {
		case "u-1000", "u-1001", "u-1002":
			if l.Amount != 1200 || l.Tier != "1000:5000" {
				t.Errorf("%s: amount %d tier %s, want 1200 in 1000:5000", l.ID, l.Amount, l.Tier)
			}
		case "u-0999":
			if l.Amount != 1400 || l.Tier != "0:1000" {
				t.Errorf("u-0999: amount %d tier %s, want 1400 in 0:1000", l.Amount, l.Tier)
			}
		case "dr-1":
			if l.Market != "Rest of Latin America" || l.CardID != "example-usd-2025-07" {
				t.Errorf("dr-1 = %+v", l)
			}
		}
	}
	if sum != 1_499_000 {
		t.Errorf("lines sum to %d, want 1,499,000", sum)
	}
	un := totals(t, a, UnconfiguredWABA, "2025-07")
	wantBucket(t, "unconfigured", un.Total, 1, 1, 1, 0)
	if un.Unpriced[UnpricedNotConfigured] != 1 {
		t.Errorf("unconfigured unpriced = %v", un.Unpriced)
	}
	if da, db := dump(t, a, "W1", "2025-07"), dump(t, b, "W1", "2025-07"); da != db {
		t.Errorf("ledger depends on processing order:\n%s\n%s", da, db)
	}
}

// TestFreeTierBoundary: CBP-2023, 1001 service conversations of W2 in March 2024 over three
// partitions; the 1000th and 1001st share a second, so the id decides. 1000 are free, the 1001st
// (ft-1000) costs India service 0.004; five marketing conversations at 0.0099 are never free.
// Total 4,000 + 49,500 = 53,500 micros.
func TestFreeTierBoundary(t *testing.T) {
	book := exampleBook(t)
	w2 := events.Account{PhoneNumberID: "N3", WABAID: "W2", TimeZone: "UTC", Currency: "USD", Month: "2024-03", Configured: true}
	h := map[int32][]events.Event{}
	base := at("2024-03-05T00:00:00Z")
	for i := 0; i < 1001; i++ {
		ts := base + events.UnixTime(i)
		if i == 1000 {
			ts = base + 999 // ties with ft-0999
		}
		p := int32((i * 7) % 3)
		h[p] = append(h[p], chargeEvent(p, int64(len(h[p])), fmt.Sprintf("ft-%04d", i), w2, events.Charge{
			Unit: events.UnitConversation, PricingModel: events.ModelCBP2023, Category: events.CategoryService,
			Reason: events.ReasonConversationOpened, Recipient: fmt.Sprintf("9197%08d", i), DeliveredAt: ts}))
	}
	for i := 0; i < 5; i++ {
		h[1] = append(h[1], chargeEvent(1, int64(len(h[1])), fmt.Sprintf("mk-%d", i), w2, events.Charge{
			Unit: events.UnitConversation, PricingModel: events.ModelCBP2023, Category: events.CategoryMarketing,
			Reason: events.ReasonConversationOpened, Recipient: "919700000001", DeliveredAt: base + 1}))
	}
	s := newStore(t, book)
	for _, p := range []int32{1, 2, 0} {
		apply(t, s, p, h[p]...)
	}
	tt := totals(t, s, "W2", "2024-03")
	wantBucket(t, "total", tt.Total, 1006, 1006, 0, 53_500)
	wantBucket(t, "free_tier", tt.ByPricingType["free_tier"], 1000, 1000, 0, 0)
	wantBucket(t, "regular", tt.ByPricingType["regular"], 6, 6, 0, 53_500)
	if tt.FreeTier == nil || *tt.FreeTier != (FreeTierUsage{Eligible: 1001, Used: 1000, Limit: 1000}) {
		t.Errorf("free tier = %+v", tt.FreeTier)
	}
	for _, l := range allLines(t, s, "W2", "2024-03") {
		switch l.ID {
		case "ft-1000":
			if l.Amount != 4000 || l.SettledType != events.PricingRegular {
				t.Errorf("1001st conversation: %+v, want 4000 regular", l)
			}
		case "ft-0999":
			if l.Amount != 0 || l.SettledType != PricingFreeTier {
				t.Errorf("1000th conversation: %+v, want free tier", l)
			}
		}
	}
	// After 2024-10 service conversations no longer count toward a free tier (they are free anyway).
	if freeTierEligible(&events.Charge{Unit: events.UnitConversation, Billable: true, PricingModel: events.ModelCBP2023, Category: events.CategoryService}, "2024-11") {
		t.Error("service in 2024-11 counted toward the free tier")
	}
	if !freeTierEligible(&events.Charge{Unit: events.UnitConversation, Billable: true, PricingModel: events.ModelCBP2022, Category: events.CategoryBusinessInitiated}, "2023-05") {
		t.Error("CBP-2022 business-initiated in 2023-05 not counted toward the free tier")
	}
}

// TestMonthBoundaryKolkata: 2025-07-31T20:00Z is 2025-08-01 01:30 in Kolkata, so the engine's
// Month is August and the volume tier count starts again; 2025-06-30T19:00Z is already July 1
// there, so the PMP card prices it, not the 2024-10 CBP card.
func TestMonthBoundaryKolkata(t *testing.T) {
	book := exampleBook(t)
	s := newStore(t, book)
	aug := ist
	aug.Month = "2025-08"
	apply(t, s, 0,
		chargeEvent(0, 0, "jul-first", ist, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryUtility,
			Reason: events.ReasonTemplateDelivered, Recipient: "919800000001", DeliveredAt: at("2025-06-30T19:00:00Z")}),
		chargeEvent(0, 1, "aug-first", aug, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryUtility,
			Reason: events.ReasonTemplateDelivered, Recipient: "919800000001", DeliveredAt: at("2025-07-31T20:00:00Z")}),
	)
	jul := allLines(t, s, "W1", "2025-07")
	if len(jul) != 1 || jul[0].ID != "jul-first" || jul[0].CardID != "example-usd-2025-07" || jul[0].Amount != 1400 {
		t.Errorf("July lines = %+v", jul)
	}
	augLines := allLines(t, s, "W1", "2025-08")
	if len(augLines) != 1 || augLines[0].ID != "aug-first" || augLines[0].Group != "vt|P1|2025-08|India|utility|example-usd-2025-07" {
		t.Errorf("August lines = %+v", augLines)
	}
}

// TestCorrections: a retracted charge's line leaves the ledger and the totals in the same atomic
// unit; the replacement that follows it counts; retracting an unknown id changes nothing.
func TestCorrections(t *testing.T) {
	book := exampleBook(t)
	s := newStore(t, book)
	mk := func(off int64, id string, cat events.Category) events.Event {
		return chargeEvent(0, off, id, ist, events.Charge{PricingModel: events.ModelPMP, Category: cat,
			Reason: events.ReasonTemplateDelivered, Recipient: "919800000001", DeliveredAt: at("2025-07-03T10:00:00Z")})
	}
	apply(t, s, 0, mk(0, "a", events.CategoryMarketing), mk(1, "b", events.CategoryMarketing))
	wantBucket(t, "before", totals(t, s, "W1", "2025-07").Total, 2, 2, 0, 21_400)
	corr := events.Event{ID: "corr", Type: events.TypeCorrection, Cause: &events.Cause{Partition: 0, Offset: 2},
		Data: &events.Correction{Retracts: []string{"a", "never-seen"}, Reason: "late inbound"}}
	apply(t, s, 0, corr, mk(3, "a2", events.CategoryUtility))
	tt := totals(t, s, "W1", "2025-07")
	wantBucket(t, "after", tt.Total, 2, 2, 0, 10_700+1_400)
	wantBucket(t, "marketing", tt.ByCategory["marketing"], 1, 1, 0, 10_700)
	ls := allLines(t, s, "W1", "2025-07")
	if len(ls) != 2 || ls[0].ID != "a2" && ls[1].ID != "a2" {
		t.Errorf("lines after correction = %+v", ls)
	}
	for _, l := range ls {
		if l.ID == "a" {
			t.Error("retracted line still listed")
		}
	}
	// A correction and the retracted charge in the same batch cancel out.
	apply(t, s, 0, mk(4, "c", events.CategoryMarketing), events.Event{ID: "corr2", Type: events.TypeCorrection,
		Cause: &events.Cause{Partition: 0, Offset: 5}, Data: &events.Correction{Retracts: []string{"c"}}})
	wantBucket(t, "same batch", totals(t, s, "W1", "2025-07").Total, 2, 2, 0, 12_100)
}

// TestUnpricedThenPriced: with no USD card the charge is kept as unpriced, with its reason, and
// shows in the totals; replaying the same events once the card exists prices it.
func TestUnpricedThenPriced(t *testing.T) {
	marketsOnly, err := ratecard.Load("../ratecard/examples/markets.csv")
	if err != nil {
		t.Fatal(err)
	}
	evs := []events.Event{chargeEvent(0, 0, "x", ist, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryMarketing,
		Reason: events.ReasonTemplateDelivered, Recipient: "919800000001", DeliveredAt: at("2025-07-03T10:00:00Z")})}
	s := newStore(t, marketsOnly)
	apply(t, s, 0, evs...)
	tt := totals(t, s, "W1", "2025-07")
	wantBucket(t, "unpriced", tt.Total, 1, 1, 1, 0)
	if tt.Unpriced[UnpricedNoCard] != 1 {
		t.Errorf("unpriced reasons %v, want no_rate_card", tt.Unpriced)
	}
	replay := sameRedis(t, s, exampleBook(t))
	apply(t, replay, 0, evs...)
	wantBucket(t, "priced", totals(t, replay, "W1", "2025-07").Total, 1, 1, 0, 10_700)
}

// TestIdempotent: a batch applied twice, or overlapping batches, change nothing the second time.
func TestIdempotent(t *testing.T) {
	book := exampleBook(t)
	h := julyHistory()
	once := newStore(t, book)
	apply(t, once, 0, h[0]...)
	twice := sameRedis(t, once, book)
	apply(t, twice, 0, h[0][:200]...)
	apply(t, twice, 0, h[0][100:300]...)
	apply(t, twice, 0, h[0]...)
	apply(t, twice, 0, h[0]...)
	if a, b := dump(t, once, "W1", "2025-07"), dump(t, twice, "W1", "2025-07"); a != b {
		t.Errorf("replayed batches changed the ledger")
	}
	c, ok, err := twice.HighWater(context.Background(), 0)
	if err != nil || !ok || c.Offset != int64(len(h[0])-1) {
		t.Errorf("high water = %+v %v %v, want offset %d", c, ok, err, len(h[0])-1)
	}
}

func TestReconciliation(t *testing.T) {
	s := newStore(t, exampleBook(t))
	del := func(off int64, id string, ours, meta events.Verdict) events.Event {
		return events.Event{ID: id, Type: events.TypeMessageDelivered, Cause: &events.Cause{Partition: 0, Offset: off},
			Data: &events.MessageDelivered{Account: ist, WAMID: "wamid." + id, DeliveredAt: at("2025-07-03T10:00:00Z") + events.UnixTime(off),
				Ours: ours, Meta: &meta}}
	}
	ours := events.Verdict{Billable: true, Category: events.CategoryUtility, PricingType: events.PricingRegular, PricingModel: "PMP"}
	same := ours
	same.Category = "UTILITY" // spelling differences are not differences (A6)
	cat := ours
	cat.Category = events.CategoryMarketing
	free := ours
	free.Billable, free.PricingType = false, events.PricingFreeCustomerService
	apply(t, s, 0, del(0, "d0", ours, same), del(1, "d1", ours, cat), del(2, "d2", ours, free),
		events.Event{ID: "d3", Type: events.TypeMessageDelivered, Cause: &events.Cause{Partition: 0, Offset: 3},
			Data: &events.MessageDelivered{Account: ist, WAMID: "w3", DeliveredAt: at("2025-07-03T11:00:00Z"), Ours: ours}})
	r, err := s.Reconciliation(context.Background(), "W1", "2025-07", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"messages": 2, DiffCategory: 1, DiffBillable: 1, DiffPricingType: 1}
	if fmt.Sprint(r.Counts) != fmt.Sprint(want) {
		t.Errorf("counts = %v, want %v", r.Counts, want)
	}
	if len(r.Diffs) != 1 || r.Diffs[0].ID != "d1" || r.Next == "" {
		t.Fatalf("first page = %+v", r)
	}
	r2, err := s.Reconciliation(context.Background(), "W1", "2025-07", r.Next, 10)
	if err != nil || len(r2.Diffs) != 1 || r2.Diffs[0].ID != "d2" || r2.Next != "" {
		t.Fatalf("second page = %+v, %v", r2, err)
	}
	// Retracting a delivered event removes its difference.
	apply(t, s, 0, events.Event{ID: "c", Type: events.TypeCorrection, Cause: &events.Cause{Partition: 0, Offset: 4},
		Data: &events.Correction{Retracts: []string{"d1"}}})
	r, _ = s.Reconciliation(context.Background(), "W1", "2025-07", "", 10)
	if r.Counts[DiffCategory] != 0 || r.Counts["messages"] != 1 || len(r.Diffs) != 1 {
		t.Errorf("after retraction: %+v", r)
	}
}

// TestConcurrentWritersOnePartition: two writers racing on one partition (a rebalance overlap)
// never double-count: the WATCHed high-water mark makes one of them retry and skip.
func TestConcurrentWritersOnePartition(t *testing.T) {
	book := exampleBook(t)
	h := julyHistory()
	once := newStore(t, book)
	apply(t, once, 0, h[0]...)
	racy := sameRedis(t, once, book)
	done := make(chan error, 2)
	for w := 0; w < 2; w++ {
		go func() {
			var err error
			for i := 0; i < len(h[0]) && err == nil; i += 25 {
				err = racy.Apply(context.Background(), projectionsBatch(0, h[0][i:min(i+25, len(h[0]))]))
			}
			done <- err
		}()
	}
	for w := 0; w < 2; w++ {
		if err := <-done; err != nil && !errors.Is(err, ErrConflict) {
			t.Fatal(err)
		}
	}
	apply(t, racy, 0, h[0]...) // whatever a writer gave up on after conflicts
	if a, b := dump(t, once, "W1", "2025-07"), dump(t, racy, "W1", "2025-07"); a != b {
		t.Error("racing writers changed the ledger")
	}
}
