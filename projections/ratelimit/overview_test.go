package ratelimit

import (
	"context"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// TestOverview: numbers, stream time and open windows/conversations per number, merged over two
// partitions, at two moments.
func TestOverview(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 2)
	ctx := context.Background()
	if _, ok, err := s.StreamTime(ctx); err != nil || ok {
		t.Fatalf("empty store: stream time found %v, err %v", ok, err)
	}
	t0 := tPFEra
	for p := int32(0); p < 2; p++ {
		l := &log{p: p}
		l.config("n1", "pf1", "TIER_2K", t0-Day)
		l.config("n2", "pf1", "TIER_2K", t0-Day)
		l.inbound("n1", "pf1", "u1", t0+events.UnixTime(p))      // window until t0+p+Day
		l.inbound("n2", "pf1", "u2", t0+Hour+events.UnixTime(p)) // window until t0+Hour+p+Day
		l.add(&events.ConversationOpened{Account: acct("n1", "pf1", "u9"), ConversationID: "c1", Category: events.CategoryMarketing,
			OpenedAt: t0, ExpiresAt: t0 + 2*Day}, t0+2*Hour)
		apply(t, s, l.batch())
	}
	st, ok, err := s.StreamTime(ctx)
	if err != nil || !ok || st < t0+Hour+1 {
		t.Fatalf("stream time %s %v %v, want at least %s", st, ok, err, t0+Hour+1)
	}
	ns2, err := s.Numbers(ctx, st)
	if err != nil || len(ns2) != 2 || ns2[0].PhoneNumberID != "n1" || ns2[1].PhoneNumberID != "n2" || ns2[0].PortfolioID != "pf1" {
		t.Fatalf("numbers %+v, err %v", ns2, err)
	}
	open, err := s.OpenPairs(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if open["n1"].Windows != 2 || open["n2"].Windows != 2 || open["n1"].Conversations[events.CategoryMarketing] != 2 {
		t.Fatalf("at %s: %+v", st, open)
	}
	// One second after n1's first window expired, before n2's.
	open, err = s.OpenPairs(ctx, t0+Day)
	if err != nil {
		t.Fatal(err)
	}
	if open["n1"].Windows != 1 || open["n2"].Windows != 2 {
		t.Fatalf("at t0+1d: %+v", open)
	}
}
