package ratelimit

import (
	"context"
	"testing"
	"time"
)

// TestAccountCacheReloadsAhead: an account fact is reused within half the TTL; past half of it
// the next caller reloads it; past the TTL nothing cached is served.
func TestAccountCacheReloadsAhead(t *testing.T) {
	rdb, ns := client(t)
	now := time.Unix(0, 0)
	s, err := NewStore(rdb, WithNamespace(ns), WithPartitions(2), WithAccountCache(time.Second, func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pf := func() string {
		t.Helper()
		nc, ok, err := s.NumberConfig(ctx, "n1", tPFEra+10)
		if err != nil || !ok {
			t.Fatalf("config: %v %v", ok, err)
		}
		return nc.PortfolioID
	}
	a := &log{p: 0}
	a.config("n1", "pf1", "TIER_250", tPFEra)
	apply(t, s, a.batch())
	if got := pf(); got != "pf1" {
		t.Fatalf("first read %q", got)
	}
	b := &log{p: 1}
	b.config("n1", "pf2", "TIER_250", tPFEra+5)
	apply(t, s, b.batch())
	now = now.Add(400 * time.Millisecond)
	if got := pf(); got != "pf1" {
		t.Errorf("within half the TTL: %q, want the cached pf1", got)
	}
	now = now.Add(200 * time.Millisecond)
	if got := pf(); got != "pf2" {
		t.Errorf("past half the TTL: %q, want the reloaded pf2", got)
	}
	if got := pf(); got != "pf2" {
		t.Errorf("after the reload: %q, want pf2", got)
	}
	c := &log{p: 0, off: a.off}
	c.config("n1", "pf3", "TIER_250", tPFEra+6)
	apply(t, s, c.batch())
	now = now.Add(time.Second)
	if got := pf(); got != "pf3" {
		t.Errorf("past the TTL: %q, want pf3", got)
	}
}
