package admission

import (
	"context"
	"fmt"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/projections/redistest"
)

// BenchmarkStoreAdmission measures the state read of one admission decision (closed loop, one
// caller), by number of partitions merged.
func BenchmarkStoreAdmission(b *testing.B) {
	for _, parts := range []int{1, 4, 12} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			rdb, ns := redistest.Client(b)
			store, err := ratelimit.NewStore(rdb, ratelimit.WithNamespace(ns), ratelimit.WithPartitions(parts))
			if err != nil {
				b.Fatal(err)
			}
			s := newSeeder(parts)
			s.config("n1", "pf1", "TIER_10K")
			for i := range 2000 {
				p, a := s.pair("n1", "pf1", fmt.Sprintf("9198%08d", i))
				s.add(p, &events.MessageDelivered{Account: a, WAMID: fmt.Sprint(i), DeliveredAt: tPMP, Kind: events.KindTemplate}, tPMP)
			}
			s.apply(b, store)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := store.Admission(ctx, "n1", fmt.Sprintf("9198%08d", i%3000), tPMP+10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
