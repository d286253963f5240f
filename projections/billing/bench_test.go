package billing

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/redistest"
)

var benchLines = flag.Int("billing.lines", 0, "TestQueryLatency: lines to store before measuring (0 skips it; the bench script uses 1000000)")

// Delivery times of the generated charges.
type timeOrder int

const (
	// logOrder: times follow the offsets, as the aggregator emits charges (in log order, event
	// time advancing): 20 s apart per partition (a quiet partition: 130,000 charges a month),
	// each up to a minute late. A batch of 5,000 spans about 28 hours.
	logOrder timeOrder = iota
	// randomOrder: every charge at a uniformly random second of 20 days, whatever its offset:
	// the worst case for the sorted sets (every insert lands anywhere in them).
	randomOrder
)

func (o timeOrder) String() string { return [...]string{"log_order", "random_order"}[o] }

// benchBatch makes a batch of n PMP charges of partition p starting at offset off (its log offsets
// too, which the store checks and records as the projector's batches make it): a few WABAs,
// numbers and markets (a fifth in the United Kingdom, which the example card does not price:
// unpriced lines), utility/authentication/marketing, so groups and totals look real.
func benchBatch(r *rand.Rand, p int32, off int64, n int, order timeOrder) projections.Batch {
	evs := make([]events.Event, n)
	cats := []events.Category{events.CategoryUtility, events.CategoryAuthentication, events.CategoryMarketing}
	rcpt := []string{"9198", "1650", "5511", "1809", "4477"}
	for i := range evs {
		acct := events.Account{PhoneNumberID: fmt.Sprintf("N%d", r.IntN(8)), WABAID: fmt.Sprintf("W%d", r.IntN(4)),
			PortfolioID: "P", TimeZone: "Asia/Kolkata", Currency: "USD", Month: "2025-08", Configured: true}
		to := rcpt[r.IntN(len(rcpt))] + fmt.Sprintf("%08d", r.IntN(1_000_000))
		at := 1754524800 + int64(r.IntN(86400*20))
		if order == logOrder {
			at = 1754524800 + (off+int64(i))*20 - int64(r.IntN(60))
		}
		c := &events.Charge{Account: acct, Unit: events.UnitMessage, PricingModel: events.ModelPMP, Category: cats[r.IntN(3)],
			PricingType: events.PricingRegular, Billable: true, Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate,
			WAMID: fmt.Sprintf("wamid.%d.%d", p, off+int64(i)), Recipient: to, DeliveredAt: events.UnixTime(at)}
		evs[i] = events.Event{ID: fmt.Sprintf("%032x/%d", uint64(p)<<40|uint64(off+int64(i)), 0), Type: events.TypeCharge,
			Key: acct.PhoneNumberID + "/" + to, Time: c.DeliveredAt, Cause: &events.Cause{Partition: p, Offset: off + int64(i)}, Data: c}
	}
	return projections.Batch{Partition: p, Events: evs, First: off, Next: off + int64(n)}
}

// BenchmarkApply measures charge events applied per second into real Redis, in batches of 5000
// per partition over 4 partitions, one writer, with delivery times in log order (as the
// aggregator emits them) and at random (the sorted sets' worst case). The batches are built
// before the clock starts (in production they arrive decoded from Kafka); every one has fresh
// offsets and ids, so every event is really applied. Also reports the CPU per event of this
// process (plan, encoding, client) and of the Redis server (INFO CPU, so other clients of a
// shared Redis count too).
func BenchmarkApply(b *testing.B) {
	for _, order := range []timeOrder{logOrder, randomOrder} {
		b.Run(order.String(), func(b *testing.B) { benchApply(b, 1, order) })
	}
}

// BenchmarkApplyParallel is BenchmarkApply with two and four writers on disjoint partitions, as a
// projector with Parallel 2 or 4 (the default) runs: some plan while Redis executes the others'
// transactions.
func BenchmarkApplyParallel(b *testing.B) {
	for _, writers := range []int{2, 4} {
		for _, order := range []timeOrder{logOrder, randomOrder} {
			b.Run(fmt.Sprintf("writers=%d/%v", writers, order), func(b *testing.B) { benchApply(b, writers, order) })
		}
	}
}

// benchApply applies b.N batches (at least one per writer) over 4 partitions, each writer its own
// partitions.
func benchApply(b *testing.B, writers int, order timeOrder) {
	s := newStore(b, exampleBook(b))
	const size, partitions = 5000, 4
	per := partitions / writers
	ctx := context.Background()
	batches := make([][]projections.Batch, writers)
	for w := range batches {
		r := rand.New(rand.NewPCG(uint64(w), 2))
		for i := 0; i < max(1, b.N/writers); i++ {
			p := int32(w*per + i%per)
			batches[w] = append(batches[w], benchBatch(r, p, int64(i/per)*size, size, order))
		}
	}
	redistest.NoteOccupancy(b, s.rdb)
	u0 := readUsage(b, s)
	b.ResetTimer()
	start := time.Now()
	errs := make(chan error, writers)
	for w := range batches {
		go func(bs []projections.Batch) {
			for _, bt := range bs {
				if err := s.Apply(ctx, bt); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(batches[w])
	}
	for range batches {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	d := time.Since(start)
	n := 0
	for _, bs := range batches {
		n += len(bs) * size
	}
	reportUsage(b, s, u0, n, d)
}

// usage is the CPU spent so far by this process and by the Redis server, in seconds.
type usage struct{ self, redis float64 }

func readUsage(tb testing.TB, s *Store) usage {
	tb.Helper()
	return usage{self: testenv.ProcessCPU().Seconds(), redis: redistest.ServerCPU(tb, s.rdb).Seconds()}
}

// reportUsage reports events/s and the CPU per event of this process and of Redis since u0.
func reportUsage(b *testing.B, s *Store, u0 usage, n int, d time.Duration) {
	b.Helper()
	u := readUsage(b, s)
	b.ReportMetric(float64(n)/d.Seconds(), "events/s")
	b.ReportMetric((u.self-u0.self)*1e6/float64(n), "go-µs/event")
	b.ReportMetric((u.redis-u0.redis)*1e6/float64(n), "redis-µs/event")
}

// TestQueryLatency stores -billing.lines lines (over 4 partitions, one WABA-month per WABA) and
// reports p50/p99 latency of a 100-line page at random cursors and of the settled totals.
func TestQueryLatency(t *testing.T) {
	if *benchLines == 0 {
		t.Skip("set -billing.lines (scripts/bench-billing.sh does)")
	}
	s := newStore(t, exampleBook(t))
	r := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	const size = 10000
	start := time.Now()
	off := map[int32]int64{}
	for n := 0; n < *benchLines; n += size {
		p := int32((n / size) % 4)
		if err := s.Apply(ctx, benchBatch(r, p, off[p], size, randomOrder)); err != nil {
			t.Fatal(err)
		}
		off[p] += size
	}
	load := time.Since(start)
	t.Logf("stored %d lines in %v (%.0f events/s)", *benchLines, load, float64(*benchLines)/load.Seconds())
	// Cursors at random positions: take them from a walk with big pages.
	var cursors []string
	c := ""
	for i := 0; i < 40; i++ {
		pg, err := s.Lines(ctx, "W1", "2025-08", c, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if pg.Next == "" {
			break
		}
		cursors = append(cursors, pg.Next)
		c = pg.Next
	}
	var lat []time.Duration
	for i := 0; i < 500; i++ {
		cur := ""
		if i%5 != 0 {
			cur = cursors[r.IntN(len(cursors))]
		}
		t0 := time.Now()
		pg, err := s.Lines(ctx, "W1", "2025-08", cur, 100)
		lat = append(lat, time.Since(t0))
		if err != nil || len(pg.Lines) != 100 {
			t.Fatalf("page: %d lines, %v", len(pg.Lines), err)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("lines page (100) over %d stored: p50 %v p99 %v max %v", *benchLines, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	var tl []time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		tt, err := s.Totals(ctx, fmt.Sprintf("W%d", i%4), "2025-08")
		tl = append(tl, time.Since(t0))
		if err != nil || tt.Total.Lines == 0 {
			t.Fatalf("totals: %+v %v", tt.Total, err)
		}
	}
	sort.Slice(tl, func(i, j int) bool { return tl[i] < tl[j] })
	t.Logf("settled totals of one WABA-month (~%d lines, volume tiers crossed): p50 %v max %v", *benchLines/4, tl[len(tl)/2], tl[len(tl)-1])
}

// BenchmarkPlan measures the pure part of an apply (pricing, plan) per event, without Redis.
func BenchmarkPlan(b *testing.B) {
	pr, err := NewPricer(exampleBook(b))
	if err != nil {
		b.Fatal(err)
	}
	bt := benchBatch(rand.New(rand.NewPCG(1, 2)), 0, 0, 5000, logOrder)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Apply(pr, bt.Events, Prior{})
	}
	b.ReportMetric(float64(b.N*len(bt.Events))/b.Elapsed().Seconds(), "events/s")
}
