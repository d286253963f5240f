package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/redistest"
)

// benchBatches builds n batches of size events for partition 0: a realistic mix over 20 numbers
// of 2 portfolios and 200,000 users: 40% dispatches, 30% deliveries (half outside the window),
// 20% inbound messages, 10% conversations opened. Event time advances 1 s per 50 events.
func benchBatches(n, size int) []projections.Batch { return benchBatchesOf(0, 1, n, size) }

// benchBatchesOf is benchBatches for partition p, drawn from seed.
func benchBatchesOf(p int32, seed uint64, n, size int) []projections.Batch {
	r := rand.New(rand.NewPCG(seed, 2))
	t := PortfolioSwitch + Day
	off := int64(0)
	out := make([]projections.Batch, n)
	for i := range out {
		first := off // the batch's log offsets, which the store checks and records
		evs := make([]events.Event, 0, size)
		for range size {
			off++
			if off%50 == 0 {
				t++
			}
			pn := fmt.Sprintf("n%d", r.IntN(20))
			a := acct(pn, fmt.Sprintf("pf%d", len(pn)%2), fmt.Sprintf("9198%08d", r.IntN(200_000)))
			var d events.Payload
			switch k := r.IntN(10); {
			case k < 4:
				d = &events.MessageDispatched{Account: a, WAMID: fmt.Sprintf("wamid.%d", off), SentAt: t, Kind: events.KindTemplate}
			case k < 7:
				d = &events.MessageDelivered{Account: a, WAMID: fmt.Sprintf("wamid.%d", off), DeliveredAt: t, Kind: events.KindTemplate, InsideCSW: k == 6 || r.IntN(2) == 0}
			case k < 9:
				d = &events.WindowOpened{Account: a, WAMID: fmt.Sprintf("wamid.in.%d", off), OpenedAt: t, ExpiresAt: t + Day}
			default:
				d = &events.ConversationOpened{Account: a, ConversationID: fmt.Sprintf("c%d", off), Category: events.CategoryMarketing, OpenedAt: t, ExpiresAt: t + Day}
			}
			evs = append(evs, events.Event{ID: fmt.Sprintf("in-%d/0", off), Type: d.EventType(), Time: t,
				Cause: &events.Cause{Offset: off}, Data: d})
		}
		out[i] = projections.Batch{Partition: p, Events: evs, First: first, Next: off}
	}
	return out
}

// BenchmarkApply measures events applied per second into real Redis, one batch per iteration
// (one read round trip and one Lua script each), at three batch sizes: 100 and 1,000 as the
// projector's batches of live traffic, 10,000 as a catch-up's.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			rdb, ns := client(b)
			s := newStore(b, rdb, ns, 1)
			batches := benchBatches(max(b.N, 1), size)
			ctx := context.Background()
			settle(b, rdb)
			redistest.NoteOccupancy(b, rdb)
			b.ResetTimer()
			start, cpu0, rcpu0 := time.Now(), testenv.ProcessCPU(), redistest.ServerCPU(b, rdb)
			for i := 0; i < b.N; i++ {
				if err := s.Apply(ctx, batches[i]); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			n := float64(b.N * size)
			b.ReportMetric(n/el.Seconds(), "events/s")
			b.ReportMetric(float64(el.Microseconds())/n, "µs/event")
			// CPU per event: what the machine's other load does not change.
			b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Microseconds())/n, "cpu-µs/event(go)")
			b.ReportMetric(float64((redistest.ServerCPU(b, rdb)-rcpu0).Microseconds())/n, "cpu-µs/event(redis)")
		})
	}
}

// BenchmarkApplyParallel is BenchmarkApply with two writers on disjoint partitions, as the
// projector runs with Parallel 2: one computes its batch while Redis executes the other's. The
// figure counts only events actually applied, from the first batch's start to the last one's end.
func BenchmarkApplyParallel(b *testing.B) {
	const writers = 2
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			rdb, ns := client(b)
			s := newStore(b, rdb, ns, writers)
			var batches [writers][]projections.Batch
			for w := range batches {
				batches[w] = benchBatchesOf(int32(w), uint64(w+1), (b.N+writers-1)/writers, size)
			}
			ctx := context.Background()
			settle(b, rdb)
			redistest.NoteOccupancy(b, rdb)
			b.ResetTimer()
			start, cpu0, rcpu0 := time.Now(), testenv.ProcessCPU(), redistest.ServerCPU(b, rdb)
			errs := make(chan error, writers)
			for w := range batches {
				go func() {
					for _, bt := range batches[w] {
						if err := s.Apply(ctx, bt); err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				}()
			}
			for range writers {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			n := float64(writers * len(batches[0]) * size)
			b.ReportMetric(n/el.Seconds(), "events/s")
			b.ReportMetric(float64(el.Microseconds())/n, "µs/event")
			b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Microseconds())/n, "cpu-µs/event(go)")
			b.ReportMetric(float64((redistest.ServerCPU(b, rdb)-rcpu0).Microseconds())/n, "cpu-µs/event(redis)")
		})
	}
}

// BenchmarkReduce measures the pure core alone.
func BenchmarkReduce(b *testing.B) {
	batches := benchBatches(4, 10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := NewView()
		Reduce(Config{}, v, batches[i%4].Events)
	}
	b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "events/s")
}

// settle waits until Redis has freed what earlier runs' cleanup unlinked (lazyfree in a background
// thread), so a run is not charged the CPU and the core of freeing another run's keys.
func settle(b *testing.B, rdb *redis.Client) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		info, err := rdb.Info(context.Background(), "memory").Result()
		if err != nil || !strings.Contains(info, "lazyfree_pending_objects:") ||
			strings.Contains(info, "lazyfree_pending_objects:0\r") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Log("Redis still freeing unlinked keys after 30 s")
}
