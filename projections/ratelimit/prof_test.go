package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestProfPhases(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	for _, b := range benchBatches(6, 10000) {
		t0 := time.Now()
		v, err := s.load(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		exp := ""
		if v.HasHW {
			exp = encodeCause(v.HW)
		}
		ch := Reduce(s.cfg, v, b.Events)
		t2 := time.Now()
		if _, err := s.write(ctx, 0, exp, ch, len(b.Events)); err != nil {
			t.Fatal(err)
		}
		t3 := time.Now()
		t.Logf("load %v reduce %v write %v", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2))
	}
}
