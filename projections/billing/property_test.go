package billing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

// smallBook has tiny tiers so a few dozen events cross them.
func smallBook(t testing.TB) *ratecard.Book {
	b, err := ratecard.Parse(map[string]string{
		"m.csv": "market,India\nmarket,North America\nmarket,Other\nprefix,91,India,,\nprefix,1,North America,,\n",
		"cbp.csv": "card,currency,USD\ncard,effective_from,2023-01-01\n" +
			"rate,India,service,,0.004\nrate,India,marketing,,0.0099\nrate,India,business_initiated,,0.0091\n" +
			"rate,North America,service,,0.0088\nrate,North America,marketing,,0.025\nrate,North America,business_initiated,,0.0147\n",
		"pmp.csv": "card,currency,USD\ncard,effective_from,2025-07-01\n" +
			"rate,India,marketing,,0.0107\nrate,India,utility,0:3,0.0014\nrate,India,utility,3:7,0.0012\nrate,India,utility,7:MAX,0.001\n" +
			"rate,India,authentication,0:4,0.0014\nrate,India,authentication,4:MAX,0.0011\n" +
			"rate,North America,marketing,,0.025\nrate,North America,utility,0:3,0.0034\nrate,North America,utility,3:MAX,0.0032\n" +
			"rate,North America,authentication,,0.0034\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// genHistory generates charges of two WABAs (one portfolio) over three partitions, with
// corrections, many events sharing a second.
func genHistory(r *rand.Rand, n int) map[int32][]events.Event {
	h := map[int32][]events.Event{}
	wabas := []events.Account{
		{PhoneNumberID: "A1", WABAID: "WA", PortfolioID: "P", TimeZone: "Asia/Kolkata", Currency: "USD", Configured: true},
		{PhoneNumberID: "B1", WABAID: "WB", PortfolioID: "P", TimeZone: "America/New_York", Currency: "USD", Configured: true},
		{PhoneNumberID: "B2", WABAID: "WB", PortfolioID: "P", TimeZone: "America/New_York", Currency: "USD", Configured: true},
	}
	recipients := []string{"919800000001", "919800000002", "16505550001", "16505550002", "999000111"}
	var ids []string
	for i := 0; i < n; i++ {
		acct := wabas[r.IntN(len(wabas))]
		rcpt := recipients[r.IntN(len(recipients))]
		p := int32(len(acct.PhoneNumberID+rcpt)+int(rcpt[len(rcpt)-1])) % 3
		off := int64(len(h[p]))
		if len(ids) > 0 && r.IntN(10) == 0 {
			k := r.IntN(3) + 1
			var ret []string
			for j := 0; j < k; j++ {
				ret = append(ret, ids[r.IntN(len(ids))])
			}
			h[p] = append(h[p], events.Event{ID: fmt.Sprintf("c%d", i), Type: events.TypeCorrection,
				Cause: &events.Cause{Partition: p, Offset: off}, Data: &events.Correction{Retracts: ret}})
			continue
		}
		id := fmt.Sprintf("e%04d", i)
		ids = append(ids, id)
		var c events.Charge
		if r.IntN(3) == 0 { // CBP 2023-03: free tier in play
			acct.Month = "2023-03"
			c = events.Charge{Unit: events.UnitConversation, PricingModel: events.ModelCBP2023, Reason: events.ReasonConversationOpened,
				Category:    []events.Category{events.CategoryService, events.CategoryService, events.CategoryMarketing}[r.IntN(3)],
				DeliveredAt: at("2023-03-10T00:00:00Z") + events.UnixTime(r.IntN(40))}
		} else {
			acct.Month = "2025-08"
			c = events.Charge{PricingModel: events.ModelPMP, Reason: events.ReasonTemplateDelivered,
				Category:    []events.Category{events.CategoryUtility, events.CategoryAuthentication, events.CategoryMarketing}[r.IntN(3)],
				DeliveredAt: at("2025-08-10T00:00:00Z") + events.UnixTime(r.IntN(40))}
			if r.IntN(6) == 0 {
				c.PricingType, c.Reason = events.PricingFreeCustomerService, events.ReasonUtilityInCSW
			}
		}
		if r.IntN(15) == 0 {
			acct.Configured = false
		}
		c.Recipient = rcpt
		h[p] = append(h[p], chargeEvent(p, off, id, acct, c))
	}
	return h
}

// TestTotalsEqualSumOfLines: for generated histories, the settled totals of every WABA-month equal
// the sum of its settled lines, overall and per number, market, category and pricing type; and a
// second store fed the partitions in another order and other batch sizes holds the same ledger.
func TestTotalsEqualSumOfLines(t *testing.T) {
	book := smallBook(t)
	base := newStore(t, book)
	defer func(c int) { eachLineChunk = c }(eachLineChunk)
	for seed := uint64(1); seed <= 12; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		h := genHistory(r, 150+r.IntN(150))
		// The walk reads each partition's index in chunks this small: seconds with many lines
		// (40 seconds in all here) span chunks.
		eachLineChunk = 1 + r.IntN(9)
		a := sameRedis(t, base, book)
		b := sameRedis(t, base, book)
		a.freeTier, b.freeTier = 5, 5
		for _, p := range []int32{0, 1, 2} {
			apply(t, a, p, h[p]...)
		}
		for _, p := range []int32{2, 0, 1} {
			evs := h[p]
			for i := 0; i < len(evs); {
				k := 1 + r.IntN(20)
				apply(t, b, p, evs[i:min(i+k, len(evs))]...)
				i += k
			}
		}
		for _, wm := range [][2]string{{"WA", "2023-03"}, {"WB", "2023-03"}, {"WA", "2025-08"}, {"WB", "2025-08"}, {UnconfiguredWABA, "2025-08"}} {
			tt := totals(t, a, wm[0], wm[1])
			ls := allLines(t, a, wm[0], wm[1])
			var sum Bucket
			by := map[string]map[string]ratecard.Micros{"number": {}, "market": {}, "category": {}, "pt": {}}
			for _, l := range ls {
				sum.Lines++
				sum.AmountMicros += l.Amount
				if l.Billable {
					sum.Billable++
				}
				m := l.Market
				if m == "" {
					m = "?"
				}
				by["number"][l.Number] += l.Amount
				by["market"][m] += l.Amount
				by["category"][string(l.Category)] += l.Amount
				by["pt"][string(l.SettledType)] += l.Amount
			}
			if sum.Lines != tt.Total.Lines || sum.Billable != tt.Total.Billable || sum.AmountMicros != tt.Total.AmountMicros {
				t.Fatalf("seed %d %v: lines sum to %+v, totals say %+v", seed, wm, sum, tt.Total)
			}
			for dim, got := range map[string]map[string]Bucket{"number": tt.ByNumber, "market": tt.ByMarket, "category": tt.ByCategory, "pt": tt.ByPricingType} {
				for k, v := range by[dim] {
					if got[k].AmountMicros != v {
						t.Fatalf("seed %d %v: %s %s lines sum to %d, totals say %d", seed, wm, dim, k, v, got[k].AmountMicros)
					}
				}
			}
			if tt.FreeTier != nil && tt.FreeTier.Used != min(tt.FreeTier.Eligible, 5) {
				t.Fatalf("seed %d %v: free tier %+v", seed, wm, tt.FreeTier)
			}
			// Pages (settled by direct ranks) agree with the walk (settled by cuts).
			var paged []Settled
			for cur := ""; ; {
				pg, err := a.Lines(context.Background(), wm[0], wm[1], cur, 20+r.IntN(80))
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, pg.Lines...)
				if cur = pg.Next; cur == "" {
					break
				}
			}
			if fmt.Sprint(paged) != fmt.Sprint(ls) {
				t.Fatalf("seed %d %v: paged lines differ from the walk", seed, wm)
			}
			if da, db := dump(t, a, wm[0], wm[1]), dump(t, b, wm[0], wm[1]); da != db {
				t.Fatalf("seed %d %v: ledger depends on processing order", seed, wm)
			}
		}
	}
}

func TestLineCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	h := genHistory(r, 200)
	pr, _ := NewPricer(smallBook(t))
	for _, evs := range h {
		for _, e := range evs {
			c, ok := e.Data.(*events.Charge)
			if !ok {
				continue
			}
			l := pr.Line(e, c)
			got, err := decodeLine(l.ID, string(appendLine(nil, &l)))
			if err != nil || got != l {
				t.Fatalf("round trip of %+v gave %+v, %v", l, got, err)
			}
			// A group that follows neither rule is stored as it is.
			l.Group = "vt|other"
			if got, err := decodeLine(l.ID, string(appendLine(nil, &l))); err != nil || got != l {
				t.Fatalf("round trip of %+v gave %+v, %v", l, got, err)
			}
		}
	}
	for _, bad := range []string{"3\x1fwhatever", "2\x1fwhatever", "1\x1fwhatever", ""} {
		if _, err := decodeLine("x", bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// Lines stored in version 1 (id and group written out) still decode.
func TestLineCodecVersion1(t *testing.T) {
	v1 := strings.Join([]string{"1", "00000000000000000000000000000001/0", "N1/919800183731", "W2", "N1", "P", "2025-08",
		"India", "authentication", "PMP", "regular", "message", "1", "template_delivered", "wamid.0.1", "", "1755293395",
		"USD", "example-usd-2025-07", "1400", "", "vt|P|2025-08|India|authentication|example-usd-2025-07"}, sep)
	got, err := decodeLine("ignored: version 1 carries its id", v1)
	want := Line{ID: "00000000000000000000000000000001/0", Pair: "N1/919800183731", WABA: "W2", Number: "N1", Portfolio: "P",
		Month: "2025-08", Market: "India", Category: events.CategoryAuthentication, Model: events.ModelPMP,
		PricingType: events.PricingRegular, Unit: events.UnitMessage, Billable: true, Reason: "template_delivered",
		WAMID: "wamid.0.1", At: 1755293395, Currency: "USD", CardID: "example-usd-2025-07", List: 1400,
		Group: "vt|P|2025-08|India|authentication|example-usd-2025-07"}
	if err != nil || got != want {
		t.Fatalf("version 1 decoded to %+v, %v; want %+v", got, err, want)
	}
	// Written again, it is version 2 and a third shorter.
	if v2 := appendLine(nil, &got); v2[0] != '2' || len(v2) >= len(v1)*3/4 {
		t.Errorf("re-encoded as %q (%d bytes, version 1 had %d)", v2, len(v2), len(v1))
	}
}
