package ratelimit

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
)

// TestAdmissionSnapshotBothProtocols: the admission read answers the same over RESP2 and RESP3
// (ZMSCORE scores come back as strings in one and doubles in the other): a user counted in
// another partition than the pair's counts, a user never reached does not, a user whose
// delivery left the 24 h window does not, and the sum over partitions is the upper bound.
func TestAdmissionSnapshotBothProtocols(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 2)
	at := tPFEra + Hour
	a, b := &log{p: 0}, &log{p: 1}
	a.config("n1", "pf1", "TIER_250", tPFEra)
	b.config("n1", "pf1", "TIER_250", tPFEra)
	b.config("n2", "pf1", "TIER_250", tPFEra)
	// u1 is reached through n2 in partition 1 and asked about through n1, whose pair is in 0.
	u1 := ""
	for i := 0; u1 == ""; i++ {
		u := fmt.Sprintf("u%d", i)
		if events.PartitionString(events.PairKey("n1", u, ""), 2) == 0 && events.PartitionString(events.PairKey("n2", u, ""), 2) == 1 {
			u1 = u
		}
	}
	b.delivered("n2", "pf1", u1, at-10, false)
	a.delivered("n1", "pf1", "old", at-Day-5, false)
	a.delivered("n1", "pf1", userIn("n1", 0, 2)+"x", at-20, false) // counted in partition 0
	a.dispatched("n1", "pf1", u1, at)
	apply(t, s, a.batch())
	apply(t, s, b.batch())
	opt := *rdb.Options()
	for _, proto := range []int{2, 3} {
		opt.Protocol = proto
		c := redis.NewClient(&opt)
		defer c.Close()
		st, err := NewStore(c, WithNamespace(ns), WithPartitions(2), WithAccountCache(0, nil))
		if err != nil {
			t.Fatal(err)
		}
		snap, err := st.Admission(context.Background(), "n1", u1, at)
		if err != nil {
			t.Fatal(err)
		}
		if !snap.UserCounted || snap.Used != 2 || snap.Exact || snap.Second != 1 || snap.Scope != PortfolioScope("pf1") {
			t.Errorf("RESP%d %s: %+v", proto, u1, snap)
		}
		if snap, err = st.Admission(context.Background(), "n1", "old", at); err != nil || snap.UserCounted {
			t.Errorf("RESP%d old: counted %v, %v", proto, snap.UserCounted, err)
		}
		if snap, err = st.Admission(context.Background(), "n1", "nobody", at); err != nil || snap.UserCounted {
			t.Errorf("RESP%d nobody: counted %v, %v", proto, snap.UserCounted, err)
		}
	}
}
