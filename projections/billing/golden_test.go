package billing

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

var writeGolden = flag.Bool("billing.write-golden", false, "write testdata/*-v1 files that do not exist yet (never overwrites)")

// goldenHistory is the recorded history of testdata/history-v1.jsonl. Hand-checked against
// ratecard/testdata/golden (India utility tiers 0:2 at 0.002, 2:4 at 0.0015, 4:MAX at 0.001):
//
//	utility u1 (t+100), u2 (t+200), u3 and u4 (both t+300: the id decides), u5 (t+400), over two
//	partitions → 2000 + 2000 + 1500 + 1500 + 1000 = 8,000 micros
//	marketing m1 (India) retracted by a correction → 0; m2 (+1 809, Rest of Latin America) 50,000
//	f1 free utility inside the CSW → 0; x1 unconfigured → unpriced under WABA "-"
//	d1 delivered with Meta saying marketing where we say utility → one category difference
//	total of G1 2025-09: 58,000 micros = 0.058 USD over 7 lines.
func goldenHistory() []events.Event {
	acct := events.Account{PhoneNumberID: "GN1", WABAID: "G1", PortfolioID: "GP", TimeZone: "Asia/Kolkata", Currency: "USD", Month: "2025-09", Configured: true}
	t := at("2025-09-10T00:00:00Z")
	u := func(p int32, off int64, id string, dt events.UnixTime) events.Event {
		return chargeEvent(p, off, id, acct, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryUtility,
			Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate, WAMID: "wamid." + id, Recipient: "9198000000" + string(id[1]) + string(id[1]), DeliveredAt: t + dt})
	}
	m := func(p int32, off int64, id, to string, dt events.UnixTime) events.Event {
		return chargeEvent(p, off, id, acct, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryMarketing,
			Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate, WAMID: "wamid." + id, Recipient: to, DeliveredAt: t + dt})
	}
	f1 := chargeEvent(1, 2, "f1", acct, events.Charge{PricingModel: events.ModelPMP, Category: events.CategoryUtility,
		PricingType: events.PricingFreeCustomerService, Reason: events.ReasonUtilityInCSW, Kind: events.KindTemplate,
		WAMID: "wamid.f1", Recipient: "919800000077", DeliveredAt: t + 250})
	x1 := chargeEvent(1, 4, "x1", events.Account{PhoneNumberID: "GN9"}, events.Charge{PricingModel: events.ModelPMP,
		Category: events.CategoryMarketing, Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate,
		WAMID: "wamid.x1", Recipient: "919800000088", DeliveredAt: t + 500})
	ours := events.Verdict{Billable: true, Category: events.CategoryUtility, PricingType: events.PricingRegular, PricingModel: "PMP"}
	meta := ours
	meta.Category = events.CategoryMarketing
	d1 := events.Event{ID: "d1", Type: events.TypeMessageDelivered, Key: "GN1/919800000011", Time: t + 100,
		Cause: &events.Cause{Partition: 0, Offset: 5}, Data: &events.MessageDelivered{Account: acct, WAMID: "wamid.u1",
			DeliveredAt: t + 100, Kind: events.KindTemplate, KindSource: "send", Ours: ours, Meta: &meta}}
	corr := events.Event{ID: "c1", Type: events.TypeCorrection, Key: "GN1/919800000099", Cause: &events.Cause{Partition: 0, Offset: 3},
		Data: &events.Correction{Key: "GN1/919800000099", Retracts: []string{"m1"}, Reason: "late event", CausedBy: "late"}}
	return []events.Event{
		u(0, 0, "u1", 100), u(0, 1, "u3", 300), m(0, 2, "m1", "919800000099", 150), corr, m(0, 4, "m2", "18095550001", 160), d1,
		u(1, 0, "u2", 200), u(1, 1, "u4", 300), f1, u(1, 3, "u5", 400), x1,
	}
}

func readHistory(t *testing.T, path string) map[int32][]events.Event {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int32][]events.Event{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		e, err := events.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out[e.Cause.Partition] = append(out[e.Cause.Partition], e)
	}
	return out
}

// TestGoldenHistory replays the recorded history (testdata/history-v1.jsonl, never edited) and
// compares the ledger with testdata/ledger-v1.json (never edited), and with the hand-checked
// numbers above.
func TestGoldenHistory(t *testing.T) {
	const histPath, ledgerPath = "testdata/history-v1.jsonl", "testdata/ledger-v1.json"
	if *writeGolden {
		if _, err := os.Stat(histPath); os.IsNotExist(err) {
			var buf bytes.Buffer
			for _, e := range goldenHistory() {
				b, err := events.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				buf.Write(b)
				buf.WriteByte('\n')
			}
			if err := os.WriteFile(histPath, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	book, err := ratecard.Load("../ratecard/testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, book)
	h := readHistory(t, histPath)
	for _, p := range []int32{1, 0} {
		apply(t, s, p, h[p]...)
	}
	ctx := context.Background()
	tt := totals(t, s, "G1", "2025-09")
	wantBucket(t, "G1 total", tt.Total, 7, 6, 0, 58_000)
	wantBucket(t, "utility", tt.ByCategory["utility"], 6, 5, 0, 8_000)
	ls := allLines(t, s, "G1", "2025-09")
	want := map[string]ratecard.Micros{"u1": 2000, "u2": 2000, "u3": 1500, "u4": 1500, "u5": 1000, "f1": 0, "m2": 50_000}
	for _, l := range ls {
		if w, ok := want[l.ID]; !ok || l.Amount != w {
			t.Errorf("line %s: amount %d, want %d (listed: %v)", l.ID, l.Amount, w, ok)
		}
	}
	if len(ls) != len(want) {
		t.Errorf("%d lines, want %d", len(ls), len(want))
	}
	un := totals(t, s, UnconfiguredWABA, "2025-09")
	wantBucket(t, "unconfigured", un.Total, 1, 1, 1, 0)
	rec, err := s.Reconciliation(ctx, "G1", "2025-09", "", 10)
	if err != nil || rec.Counts[DiffCategory] != 1 || len(rec.Diffs) != 1 {
		t.Errorf("reconciliation = %+v, %v", rec, err)
	}
	got, _ := json.MarshalIndent(struct {
		Totals         Totals         `json:"totals"`
		Lines          []Settled      `json:"lines"`
		Unconfigured   Totals         `json:"unconfigured"`
		Reconciliation Reconciliation `json:"reconciliation"`
	}{tt, ls, un, rec}, "", " ")
	got = append(got, '\n')
	if *writeGolden {
		if _, err := os.Stat(ledgerPath); os.IsNotExist(err) {
			if err := os.WriteFile(ledgerPath, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantLedger, err := os.ReadFile(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, wantLedger) {
		t.Errorf("ledger differs from %s (golden files are never edited: a change here is a behaviour change)\n%s", ledgerPath, got)
	}
}
