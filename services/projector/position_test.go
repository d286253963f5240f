package projector

import (
	"context"
	"errors"
	"testing"

	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/projections/redistest"
)

// TestStoresCheckTheirLogPosition runs both Redis stores through what projections.CheckPosition
// decides, each reading and writing its position in its own atomic unit: a batch after a gap is
// refused with the gap, a batch whose events were all applied before still records its position,
// a batch delivered again does not move it back, an empty store misses everything before its
// first batch, and a store whose state came from a replay (no position) accepts any batch.
func TestStoresCheckTheirLogPosition(t *testing.T) {
	rdb, _ := redistest.Client(t)
	book, err := ratecard.Load(cardsPath)
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]func() projections.Projection{
		"billing": func() projections.Projection {
			s, err := billing.NewStore(rdb, freshPrefix(t, rdb), book, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"ratelimit": func() projections.Projection {
			s, err := ratelimit.NewStore(rdb, ratelimit.WithNamespace(freshPrefix(t, rdb)), ratelimit.WithPartitions(1))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	evs := synth(300, 1)[0]
	for name, fresh := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := fresh()
			step := func(what string, b projections.Batch, gap *projections.GapError) {
				t.Helper()
				err := s.Apply(ctx, b)
				var got *projections.GapError
				switch {
				case gap == nil && err != nil:
					t.Fatalf("%s: %v", what, err)
				case gap != nil && (!errors.As(err, &got) || *got != *gap):
					t.Fatalf("%s: err %v; want %v", what, err, gap)
				}
			}
			batch := func(i, j int, first, next int64) projections.Batch {
				return projections.Batch{Partition: 0, Events: evs[i:j], First: first, Next: next}
			}
			step("first batch", batch(0, 100, 0, 100), nil)
			step("a batch after a gap", batch(200, 300, 200, 300), &projections.GapError{From: 100, To: 200})
			step("the gap", batch(100, 200, 100, 200), nil)
			step("the batch after it", batch(200, 300, 200, 300), nil)
			step("events applied before, offsets new", batch(250, 300, 300, 350), nil)
			step("nothing decoded", batch(0, 0, 350, 360), nil)
			step("delivered again", batch(0, 100, 0, 100), nil)
			step("after the position", batch(0, 0, 360, 365), nil) // not back at 100: no gap
			step("after another gap", batch(0, 0, 400, 410), &projections.GapError{From: 365, To: 400})

			step("empty store, offsets committed", func() projections.Batch { s = fresh(); return batch(0, 10, 70, 80) }(),
				&projections.GapError{From: 0, To: 70})

			s = fresh()
			step("a replay's batch", batch(0, 100, 0, 0), nil)
			step("promoted, then read from the log", batch(100, 110, 500, 510), nil)
			step("and on", batch(110, 120, 520, 530), &projections.GapError{From: 510, To: 520})
		})
	}
}
