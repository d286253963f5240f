package ratelimit

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestOnMiniredis: the scripts run on the embedded Redis-protocol store `convmeter dev` uses.
func TestOnMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	s := newStore(t, rdb, "mini:", 1)
	l := randomLog(0, 5, 600)
	applyInBatches(t, s, l, 100)
	st, err := s.Limit(context.Background(), PortfolioScope("pf1"), l.evs[len(l.evs)-1].Time)
	if err != nil {
		t.Fatal(err)
	}
	if st.Used == 0 {
		t.Error("nothing counted")
	}
	if _, err := s.Admission(context.Background(), "n1", "u1", l.evs[len(l.evs)-1].Time); err != nil {
		t.Fatal(err)
	}
	// Same state as real Redis would hold: compare with a replay in other batches.
	s2 := newStore(t, rdb, "mini2:", 1)
	applyInBatches(t, s2, l, 37)
	if d := diff(dump(t, rdb, "mini:"), dump(t, rdb, "mini2:")); d != "" {
		t.Errorf("batching changed state on miniredis:\n%s", d)
	}
}
