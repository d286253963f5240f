package billing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

func TestHourSlotMonotone(t *testing.T) {
	base := slotBase("2025-08")
	if want := at("2025-07-30T00:00:00Z"); base != int64(want) {
		t.Fatalf("base %d, want %d", base, want)
	}
	prev := int64(-1)
	for _, a := range []int64{-1 << 40, 0, base - 1, base, base + 3599, base + 3600, base + 86400*10, base + hourSlots*3600 - 1, base + hourSlots*3600, 1 << 40} {
		s := hourSlot(base, a)
		if s < prev || s < 0 || s >= hourSlots {
			t.Fatalf("slot of %d is %d after %d", a, s, prev)
		}
		lo, hi := slotRange(base, s)
		l, _ := strconv.ParseInt(lo, 10, 64)
		u, _ := strconv.ParseInt(hi, 10, 64)
		if (lo != "-inf" && a < l) || (hi != "+inf" && a > u) || (lo == "-inf") != (s == 0) || (hi == "+inf") != (s == hourSlots-1) {
			t.Fatalf("%d outside the range [%s, %s] of its slot %d", a, lo, hi, s)
		}
		prev = s
	}
	if hourSlot(slotBase("bad"), 1754524800) != hourSlots-1 {
		t.Fatal("an unparseable month puts every line in the last slot")
	}
	if c := slotCounts("\x00\x00\x00\x02\xff\xff\xff\xff\x00"); c[0] != 2 || c[1] != -1 || c[2] != 0 {
		t.Fatalf("counts %v", c[:3])
	}
}

// TestTierCutsBruteForce: for generated PMP histories with many lines per second spread over
// hours (and a few far outside the month, in the clamped end slots), with cuts falling inside an
// hour and inside a second, and with retractions, the settled totals (member counters plus the
// exact lines of the cuts' hours), the pages (direct ranks) and the walk (cuts) all equal a
// brute-force ranking of every live line of each group by (time, id).
func TestTierCutsBruteForce(t *testing.T) {
	book := smallBook(t)
	base := newStore(t, book)
	pr, err := NewPricer(book)
	if err != nil {
		t.Fatal(err)
	}
	month := "2025-08"
	hours := []events.UnixTime{at("2025-08-10T00:00:00Z"), at("2025-08-10T01:00:00Z"), at("2025-08-10T05:00:00Z"), at("2025-08-20T23:00:00Z")}
	accts := []events.Account{
		{PhoneNumberID: "A1", WABAID: "WA", PortfolioID: "P", TimeZone: "Asia/Kolkata", Currency: "USD", Configured: true, Month: month},
		{PhoneNumberID: "A2", WABAID: "WA", PortfolioID: "P", TimeZone: "Asia/Kolkata", Currency: "USD", Configured: true, Month: month},
		{PhoneNumberID: "B1", WABAID: "WB", PortfolioID: "P", TimeZone: "America/New_York", Currency: "USD", Configured: true, Month: month},
		{PhoneNumberID: "B2", WABAID: "WB", PortfolioID: "P", TimeZone: "America/New_York", Currency: "USD", Configured: true, Month: month},
	}
	rcpts := []string{"919800000001", "919800000002", "16505550001", "16505550002"}
	for seed := uint64(1); seed <= 10; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		s := sameRedis(t, base, book)
		h := map[int32][]events.Event{}
		ids := map[int32][]string{}
		live := map[string]Line{}
		n := 40 + r.IntN(120)
		for i := 0; i < n; i++ {
			p := int32(r.IntN(3))
			off := int64(len(h[p]))
			if len(ids[p]) > 0 && r.IntN(8) == 0 {
				ret := []string{ids[p][r.IntN(len(ids[p]))], ids[p][r.IntN(len(ids[p]))]}
				h[p] = append(h[p], events.Event{ID: fmt.Sprintf("c%d", i), Type: events.TypeCorrection,
					Cause: &events.Cause{Partition: p, Offset: off}, Data: &events.Correction{Retracts: ret}})
				for _, id := range ret {
					delete(live, id)
				}
				continue
			}
			// Few seconds per hour, so seconds hold many lines; the odd line far outside the month.
			// Odd seeds make the early hours sparse, so the cuts fall in later ones.
			hour := r.IntN(len(hours))
			if seed%2 == 1 {
				hour = max(hour, r.IntN(len(hours)))
			}
			when := hours[hour] + events.UnixTime(r.IntN(3)*1799+r.IntN(2))
			switch r.IntN(25) {
			case 0:
				when = at("2025-07-02T00:00:00Z") + events.UnixTime(r.IntN(2))
			case 1:
				when = at("2025-11-01T00:00:00Z") + events.UnixTime(r.IntN(2))
			}
			c := events.Charge{PricingModel: events.ModelPMP, Reason: events.ReasonTemplateDelivered,
				Category:    []events.Category{events.CategoryUtility, events.CategoryAuthentication}[r.IntN(2)],
				DeliveredAt: when, Recipient: rcpts[r.IntN(len(rcpts))]}
			id := fmt.Sprintf("e%03d", r.IntN(1000)) + fmt.Sprint(i) // ids not in time order
			e := chargeEvent(p, off, id, accts[r.IntN(len(accts))], c)
			h[p] = append(h[p], e)
			ids[p] = append(ids[p], id)
			live[id] = pr.Line(e, e.Data.(*events.Charge))
		}
		for _, p := range []int32{2, 0, 1} {
			for i := 0; i < len(h[p]); {
				k := 1 + r.IntN(15)
				apply(t, s, p, h[p][i:min(i+k, len(h[p]))]...)
				i += k
			}
		}
		// Brute force: rank every live line of each group.
		groups := map[string][]Line{}
		for _, l := range live {
			groups[l.Group] = append(groups[l.Group], l)
		}
		want := map[string]ratecard.Micros{} // line id → settled amount
		wantTotal := map[string]ratecard.Micros{}
		wantByNumber := map[string]ratecard.Micros{}
		wantTiers := map[string]map[string]int64{} // waba → group → "tier" → messages
		for g, ls := range groups {
			sort.Slice(ls, func(i, j int) bool { return ls[i].Key().Less(ls[j].Key()) })
			rate, ok := s.groupRate(g)
			for i, l := range ls {
				amt := l.List
				if g != "" && ok {
					tier := rate.Tiers[rate.TierAt(int64(i+1))]
					amt = tier.Price
					if wantTiers[l.WABA] == nil {
						wantTiers[l.WABA] = map[string]int64{}
					}
					wantTiers[l.WABA][g+" "+tier.String()]++
				}
				want[l.ID] = amt
				wantTotal[l.WABA] += amt
				wantByNumber[l.WABA+"#"+l.Number] += amt
			}
		}
		for _, waba := range []string{"WA", "WB"} {
			tt := totals(t, s, waba, month)
			if tt.Total.AmountMicros != wantTotal[waba] {
				t.Fatalf("seed %d %s: total %d, brute force %d", seed, waba, tt.Total.AmountMicros, wantTotal[waba])
			}
			for num, b := range tt.ByNumber {
				if b.AmountMicros != wantByNumber[waba+"#"+num] {
					t.Fatalf("seed %d %s: number %s %d, brute force %d", seed, waba, num, b.AmountMicros, wantByNumber[waba+"#"+num])
				}
			}
			got := map[string]int64{}
			for _, u := range tt.VolumeTiers {
				for tier, n := range u.ByTier {
					if n != 0 {
						got[u.Group+" "+tier] = n
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(wantTiers[waba]) {
				t.Fatalf("seed %d %s: tiers %v, brute force %v", seed, waba, got, wantTiers[waba])
			}
			walk := allLines(t, s, waba, month)
			var paged []Settled
			for cur := ""; ; {
				pg, err := s.Lines(context.Background(), waba, month, cur, 7+r.IntN(30))
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, pg.Lines...)
				if cur = pg.Next; cur == "" {
					break
				}
			}
			if len(walk) != len(paged) {
				t.Fatalf("seed %d %s: walk %d lines, pages %d", seed, waba, len(walk), len(paged))
			}
			nw := 0
			for i, l := range walk {
				if l.Amount != want[l.ID] || paged[i].Amount != want[l.ID] || paged[i].ID != l.ID {
					t.Fatalf("seed %d %s: line %s settled %d (page %d), brute force %d", seed, waba, l.ID, l.Amount, paged[i].Amount, want[l.ID])
				}
				nw++
			}
			wantN := 0
			for _, l := range live {
				if l.WABA == waba {
					wantN++
				}
			}
			if nw != wantN {
				t.Fatalf("seed %d %s: %d lines stored, %d live", seed, waba, nw, wantN)
			}
		}
	}
}

// A partition written in the layout before member counters is refused, not settled wrongly.
func TestOldLayoutRefused(t *testing.T) {
	s := newStore(t, smallBook(t))
	acct := events.Account{PhoneNumberID: "A1", WABAID: "WA", PortfolioID: "P", TimeZone: "Asia/Kolkata", Currency: "USD", Configured: true, Month: "2025-08"}
	var evs []events.Event
	for i := 0; i < 10; i++ {
		evs = append(evs, chargeEvent(0, int64(i), fmt.Sprintf("e%02d", i), acct, events.Charge{PricingModel: events.ModelPMP,
			Reason: events.ReasonTemplateDelivered, Category: events.CategoryUtility, Recipient: "919800000001", DeliveredAt: at("2025-08-10T00:00:00Z")}))
	}
	apply(t, s, 0, evs...)
	ctx := context.Background()
	tt := totals(t, s, "WA", "2025-08")
	if len(tt.VolumeTiers) != 1 {
		t.Fatalf("volume tiers %+v", tt.VolumeTiers)
	}
	if err := s.rdb.SAdd(ctx, kGroupSet(s.tag(0), tt.VolumeTiers[0].Group), "WA#A1").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Totals(ctx, "WA", "2025-08"); !errors.Is(err, ErrOldLayout) {
		t.Fatalf("totals over the old layout: %v", err)
	}
}

// memberOfStored reads the member of a stored line of either version without decoding it.
func TestMemberOfStored(t *testing.T) {
	pr, _ := NewPricer(smallBook(t))
	for _, evs := range genHistory(rand.New(rand.NewPCG(5, 6)), 100) {
		for _, e := range evs {
			if c, ok := e.Data.(*events.Charge); ok {
				l := pr.Line(e, c)
				if m, ok := memberOfStored(string(appendLine(nil, &l))); !ok || m != groupMember(l) {
					t.Fatalf("member of %+v: %q %v", l, m, ok)
				}
			}
		}
	}
	v1 := "1\x1fid/0\x1fN1/919800183731\x1fW2\x1fN1\x1fP\x1f2025-08"
	if m, ok := memberOfStored(v1); !ok || m != "W2#N1" {
		t.Fatalf("member of a version 1 line: %q %v", m, ok)
	}
	if _, ok := memberOfStored(""); ok {
		t.Fatal("empty string has a member")
	}
}

// groupRule recognises exactly the groups ftGroup and vtGroup build, "|" inside fields included.
func TestGroupRuleMatchesBuilders(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	for i := 0; i < 20000; i++ {
		l := Line{WABA: pick("W", "W|2", "", "waba:W"), Portfolio: pick("", "P", "P|x", "W"), Month: pick("2025-08", "2025|08", ""),
			Market: pick("India", "", "I|n"), Category: events.Category(pick("utility", "", "a|b")), CardID: pick("c1", "", "|")}
		old := func(l *Line) string {
			switch {
			case l.Group == "":
				return ""
			case l.Group == ftGroup(l):
				return "f"
			case l.Group == vtGroup(l):
				return "v"
			}
			return "g" + l.Group
		}
		other := l
		other.WABA, other.Month, other.Portfolio = pick("W", "W|2", ""), pick("2025-08", "2025|08"), pick("", "P", "waba:W")
		other.Market, other.CardID = pick("India", "I|n", ""), pick("c1", "|")
		for _, g := range []string{"", ftGroup(&l), vtGroup(&l), ftGroup(&other), vtGroup(&other), "vt|other", "ft|"} {
			l.Group = g
			if got, want := groupRule(&l), old(&l); got != want {
				t.Fatalf("%+v: rule %q, want %q", l, got, want)
			}
		}
	}
}
