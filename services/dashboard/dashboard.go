// Package dashboard is convmeter's small web dashboard: one HTML page with a little JavaScript and
// inline SVG charts (no build step; the assets are embedded with go:embed), served next to the
// billing query API and the admission API by `convmeter api` and `convmeter dev`.
//
// The page reads the public APIs for every number it shows (GET /billing/totals for each WABA's
// month, GET /v1/limits/numbers/{id} for each number's messaging limit and headroom), so what it
// displays is what those endpoints answer. The handler adds what the public APIs do not list:
//
//	GET /                            the page
//	GET /static/{file}               its script and style sheet
//	GET /dashboard/api/overview      the moment shown ("at": the rate-limit projection's stream
//	                                 time, the simulated now under `dev --simulate`; the wall
//	                                 clock before anything was applied), the configured numbers
//	                                 with their windows and conversations open at that moment, and
//	                                 each WABA with its current month in its own time zone
//	GET /dashboard/api/history       samples taken by Sample: windows open, conversations open,
//	                                 ledger lines and amounts over time, for the charts
//
// The page writes what it rendered, and any script error it caught, as JSON into the element
// #cm-check, so a headless browser test can compare the rendering with the APIs.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratelimit"
)

//go:embed static
var static embed.FS

// Config configures New. Billing and RateLimit are required.
type Config struct {
	Billing   *billing.Store
	RateLimit *ratelimit.Store
	// Now is the wall clock, used for "at" before the rate-limit projection has applied anything;
	// default time.Now.
	Now func() time.Time
	// HistorySize bounds the samples kept for the charts; default 720 (an hour at 5 s).
	HistorySize int
	Log         *slog.Logger
}

// Handler serves the dashboard. It is safe for concurrent use.
type Handler struct {
	cfg Config
	mux *http.ServeMux

	mu      sync.Mutex
	history []Sample
}

// New returns the dashboard handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Billing == nil || cfg.RateLimit == nil {
		return nil, errors.New("dashboard: the billing and rate-limit stores are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = 720
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: embedded assets: %w", err)
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, sub, "index.html")
	})
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	h.mux.HandleFunc("GET /dashboard/api/overview", h.overview)
	h.mux.HandleFunc("GET /dashboard/api/history", h.historyJSON)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// NumberRow is one configured number in the overview.
type NumberRow struct {
	PhoneNumberID string `json:"phone_number_id"`
	WABAID        string `json:"waba_id"`
	PortfolioID   string `json:"portfolio_id"`
	TimeZone      string `json:"time_zone"`
	Currency      string `json:"currency"`
	ratelimit.OpenCounts
	ConversationsTotal int64 `json:"conversations_open_total"`
}

// WABARow is one WABA in the overview: Month is the month of At in the WABA's time zone, the
// month the page shows by default; Months are the last few, newest first.
type WABARow struct {
	WABAID   string   `json:"waba_id"`
	TimeZone string   `json:"time_zone"`
	Currency string   `json:"currency"`
	Numbers  []string `json:"numbers"`
	Month    string   `json:"month"`
	Months   []string `json:"months"`
}

// Overview is the answer of GET /dashboard/api/overview.
type Overview struct {
	At                 events.UnixTime  `json:"at"`
	AtSource           string           `json:"at_source"` // "stream" or "wall"
	Numbers            []NumberRow      `json:"numbers"`
	WABAs              []WABARow        `json:"wabas"`
	WindowsOpen        int64            `json:"windows_open"`
	ConversationsOpen  int64            `json:"conversations_open"`
	ConversationsByCat map[string]int64 `json:"conversations_by_category"`
}

// Overview computes the overview at the projection's stream time.
func (h *Handler) Overview(ctx context.Context) (Overview, error) {
	rl := h.cfg.RateLimit
	at, ok, err := rl.StreamTime(ctx)
	if err != nil {
		return Overview{}, err
	}
	o := Overview{At: at, AtSource: "stream", Numbers: []NumberRow{}, WABAs: []WABARow{}, ConversationsByCat: map[string]int64{}}
	if !ok {
		o.At, o.AtSource = events.FromTime(h.cfg.Now()), "wall"
	}
	ncs, err := rl.Numbers(ctx, o.At)
	if err != nil {
		return Overview{}, err
	}
	open, err := rl.OpenPairs(ctx, o.At)
	if err != nil {
		return Overview{}, err
	}
	wabas := map[string]*WABARow{}
	for _, nc := range ncs {
		row := NumberRow{PhoneNumberID: nc.PhoneNumberID, WABAID: nc.WABAID, PortfolioID: nc.PortfolioID,
			TimeZone: nc.TimeZone, Currency: nc.Currency, OpenCounts: open[nc.PhoneNumberID]}
		if row.Conversations == nil {
			row.Conversations = map[events.Category]int64{}
		}
		for c, n := range row.Conversations {
			row.ConversationsTotal += n
			o.ConversationsByCat[string(c)] += n
		}
		o.WindowsOpen += row.Windows
		o.ConversationsOpen += row.ConversationsTotal
		o.Numbers = append(o.Numbers, row)
		if nc.WABAID == "" {
			continue
		}
		w, ok := wabas[nc.WABAID]
		if !ok {
			w = &WABARow{WABAID: nc.WABAID, TimeZone: nc.TimeZone, Currency: nc.Currency}
			w.Month, w.Months = months(o.At, nc.TimeZone, 3)
			wabas[nc.WABAID] = w
		}
		w.Numbers = append(w.Numbers, nc.PhoneNumberID)
	}
	for _, w := range wabas {
		o.WABAs = append(o.WABAs, *w)
	}
	sort.Slice(o.WABAs, func(i, j int) bool { return o.WABAs[i].WABAID < o.WABAs[j].WABAID })
	return o, nil
}

// months returns the month of at in time zone tz (UTC when unknown) and the n months up to it,
// newest first.
func months(at events.UnixTime, tz string, n int) (string, []string) {
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		loc = time.UTC
	}
	t := at.Time().In(loc)
	first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, first.AddDate(0, -i, 0).Format("2006-01"))
	}
	return out[0], out
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	o, err := h.Overview(r.Context())
	if err != nil {
		h.cfg.Log.Error("dashboard: overview", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// Sample is one point of the history: what was open at the stream time and the ledger of every
// WABA's current month.
type Sample struct {
	Wall              int64            `json:"wall"` // Unix seconds
	At                events.UnixTime  `json:"at"`
	WindowsOpen       int64            `json:"windows_open"`
	ConversationsOpen int64            `json:"conversations_open"`
	Lines             int64            `json:"lines"`
	Billable          int64            `json:"billable"`
	AmountMicros      map[string]int64 `json:"amount_micros"` // per currency
}

// TakeSample computes one history sample now.
func (h *Handler) TakeSample(ctx context.Context) (Sample, error) {
	o, err := h.Overview(ctx)
	if err != nil {
		return Sample{}, err
	}
	s := Sample{Wall: h.cfg.Now().Unix(), At: o.At, WindowsOpen: o.WindowsOpen, ConversationsOpen: o.ConversationsOpen,
		AmountMicros: map[string]int64{}}
	for _, wr := range o.WABAs {
		t, err := h.cfg.Billing.Totals(ctx, wr.WABAID, wr.Month)
		if err != nil {
			return Sample{}, err
		}
		s.Lines += t.Total.Lines
		s.Billable += t.Total.Billable
		for cur, b := range t.ByCurrency {
			s.AmountMicros[cur] += int64(b.AmountMicros)
		}
	}
	return s, nil
}

// Sample records a history sample every interval until ctx ends. Failed samples are logged and
// skipped.
func (h *Handler) Sample(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s, err := h.TakeSample(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			h.cfg.Log.Warn("dashboard: sample", "err", err)
		default:
			h.mu.Lock()
			h.history = append(h.history, s)
			if over := len(h.history) - h.cfg.HistorySize; over > 0 {
				h.history = slices.Delete(h.history, 0, over)
			}
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// History returns a copy of the samples taken so far, oldest first.
func (h *Handler) History() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.history)
}

func (h *Handler) historyJSON(w http.ResponseWriter, _ *http.Request) {
	hs := h.History()
	if hs == nil {
		hs = []Sample{}
	}
	writeJSON(w, http.StatusOK, hs)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
