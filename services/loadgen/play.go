package loadgen

import (
	"context"
	"time"
)

// Play calls fn with each item of m at its arrival time compressed speedup times (speedup 1440
// plays a simulated day in a minute; 0 or less plays as fast as fn returns). It is the only place
// the model meets the wall clock; the first item plays at once.
func Play(ctx context.Context, m *Model, speedup float64, fn func(Item) error) error {
	var start time.Time
	var first int64
	for {
		it, ok := m.Next()
		if !ok {
			return nil
		}
		if speedup > 0 && !it.Duplicate {
			at := int64(it.Arrival)
			if start.IsZero() || at < first {
				start, first = time.Now(), at
			}
			due := start.Add(time.Duration(float64(at-first) / speedup * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
	}
}
