// Package progress reports a long job's progress for people: a line every few seconds, or on a
// terminal one bar redrawn in place, with the share done, the rate and the time left at that
// rate. `convmeter replay` and `convmeter audit` use it.
package progress

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// Config says where and how a job reports.
type Config struct {
	Out   io.Writer     // where the report goes; nil: nowhere
	Every time.Duration // between lines (default 2 s); a bar is redrawn four times a second
	Bar   bool          // one bar redrawn in place (for a terminal)
	Job   string        // what runs: "replay"
	Unit  string        // what is counted: "records"
	Rate  string        // the rate's unit: "events/s"
	// Finishing replaces the ETA once everything is counted while the job still runs (a replay
	// applying its last batches); empty: the ETA (0s) stays.
	Finishing string
}

// Start reports done out of total (total < 0: unknown, so no share and no ETA) until the
// returned stop is called, which writes a last line and returns once it is written (calling it
// again does nothing).
func Start(ctx context.Context, c Config, total int64, done *atomic.Int64) (stop func()) {
	if c.Out == nil {
		return func() {}
	}
	every := c.Every
	switch {
	case c.Bar:
		every = 250 * time.Millisecond
	case every <= 0:
		every = 2 * time.Second
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	line := func(last bool) {
		s := Line(c, done.Load(), total, time.Since(start), last)
		if c.Bar {
			s = "\r" + s + "\x1b[K" // back to the line's start; erase what a longer line left
			if last {
				s += "\n"
			}
		} else {
			s += "\n"
		}
		_, _ = io.WriteString(c.Out, s)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				line(true)
				return
			case <-t.C:
				line(false)
			}
		}
	}()
	return func() { cancel(); <-finished }
}

// BarWidth is a bar's width in characters.
const BarWidth = 30

// Line describes n of total counted after elapsed: the share, the rate and the ETA at that rate,
// after a bar when c.Bar is set. last is the final line, written when the job ends.
func Line(c Config, n, total int64, elapsed time.Duration, last bool) string {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(n) / s
	}
	if total < 0 {
		if c.Bar {
			return fmt.Sprintf("%s %d %s, %.0f %s", c.Job, n, c.Unit, rate, c.Rate)
		}
		return fmt.Sprintf("%s: %d %s, %.0f %s", c.Job, n, c.Unit, rate, c.Rate)
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(max(total-n, 0))/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if total > 0 {
		pct = min(100*float64(n)/float64(total), 100)
	}
	eta = "ETA " + eta
	if n >= total && !last && c.Finishing != "" {
		eta = c.Finishing
	}
	if !c.Bar {
		return fmt.Sprintf("%s: %d/%d %s (%.1f%%), %.0f %s, %s", c.Job, n, total, c.Unit, pct, rate, c.Rate, eta)
	}
	filled := int(pct / 100 * BarWidth)
	return fmt.Sprintf("%s [%s%s] %5.1f%% %d/%d %s, %.0f %s, %s", c.Job,
		strings.Repeat("#", filled), strings.Repeat("-", BarWidth-filled), pct, n, total, c.Unit, rate, c.Rate, eta)
}
