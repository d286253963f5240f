package clock

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Health tells whether a clock is writing its ticks. Pass its Ticked method as Config.OnTick
// (or call it from one) and serve Handler: /healthz answers 200 while the last round written is
// younger than Stale (or, before the first round, while the clock started less than Stale ago),
// 503 otherwise; /readyz answers 200 once a round was written.
type Health struct {
	Stale time.Duration // default: 5 intervals, at least 10 s
	start time.Time
	last  atomic.Int64 // Unix nanoseconds of the last round written; 0 before the first
}

// NewHealth returns the health of a clock writing every interval, started now.
func NewHealth(interval time.Duration) *Health {
	return &Health{Stale: max(5*interval, 10*time.Second), start: time.Now()}
}

// Ticked records a round written.
func (h *Health) Ticked() { h.last.Store(time.Now().UnixNano()) }

// Healthy reports whether the clock wrote a round recently (or is still starting).
func (h *Health) Healthy() bool {
	since := h.start
	if l := h.last.Load(); l != 0 {
		since = time.Unix(0, l)
	}
	return time.Since(since) < h.Stale
}

// Handler serves /healthz and /readyz.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.Healthy() {
			http.Error(w, "no round of ticks written for "+h.Stale.String(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if h.last.Load() == 0 {
			http.Error(w, "no round of ticks written yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
