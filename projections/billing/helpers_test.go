package billing

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"

	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/redistest"
)

func testRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	return redistest.Client(t)
}

func exampleBook(t testing.TB) *ratecard.Book {
	t.Helper()
	b, err := ratecard.Load("../ratecard/examples")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newStore(t testing.TB, book *ratecard.Book) *Store {
	t.Helper()
	c, prefix := testRedis(t)
	s, err := NewStore(c, prefix, book, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameRedis returns a second store on the same Redis with a fresh prefix.
func sameRedis(t testing.TB, s *Store, book *ratecard.Book) *Store {
	t.Helper()
	prefix := redistest.Prefix(t)
	t.Cleanup(func() { _, _ = redistest.DeletePrefix(context.Background(), s.rdb, prefix) })
	s2, err := NewStore(s.rdb, prefix, book, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s2
}

var ist = events.Account{PhoneNumberID: "N1", WABAID: "W1", PortfolioID: "P1", TimeZone: "Asia/Kolkata",
	Currency: "USD", Month: "2025-07", Configured: true}

// chargeEvent builds a charge.v1 output event at input position (p, off).
func chargeEvent(p int32, off int64, id string, acct events.Account, c events.Charge) events.Event {
	c.Account = acct
	if c.Unit == "" {
		c.Unit = events.UnitMessage
	}
	if c.PricingType == "" {
		c.PricingType = events.PricingRegular
		c.Billable = true
	}
	c.User = c.Recipient
	return events.Event{ID: id, Type: events.TypeCharge, Key: events.PairKey(acct.PhoneNumberID, c.Recipient, ""),
		Time: c.DeliveredAt, Cause: &events.Cause{Partition: p, Offset: off}, Data: &c}
}

func apply(t testing.TB, s *Store, p int32, evs ...events.Event) {
	t.Helper()
	if err := s.Apply(context.Background(), projections.Batch{Partition: p, Events: evs}); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func totals(t testing.TB, s *Store, waba, month string) Totals {
	t.Helper()
	tt, err := s.Totals(context.Background(), waba, month)
	if err != nil {
		t.Fatalf("totals %s %s: %v", waba, month, err)
	}
	return tt
}

func allLines(t testing.TB, s *Store, waba, month string) []Settled {
	t.Helper()
	var out []Settled
	if err := s.EachLine(context.Background(), waba, month, func(l Settled) error { out = append(out, l); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func dump(t testing.TB, s *Store, waba, month string) string {
	t.Helper()
	tt := totals(t, s, waba, month)
	ls := allLines(t, s, waba, month)
	for i := range ls {
		ls[i].Partition = 0 // where a line lives is not part of the ledger
	}
	b, _ := json.Marshal(struct {
		T Totals
		L []Settled
	}{tt, ls})
	return string(b)
}

func projectionsBatch(p int32, evs []events.Event) projections.Batch {
	return projections.Batch{Partition: p, Events: evs}
}
