package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
)

// State is what the handlers read; *ratelimit.Store implements it.
type State interface {
	Admission(ctx context.Context, pn, user string, at events.UnixTime) (ratelimit.Snapshot, error)
	Limit(ctx context.Context, sc ratelimit.Scope, at events.UnixTime) (ratelimit.LimitStatus, error)
	ScopeOf(ctx context.Context, pn string, at events.UnixTime) (ratelimit.Scope, ratelimit.NumberConfig, bool, error)
	Throughput(ctx context.Context, pn string, at events.UnixTime, limitMPS int) (ratelimit.ThroughputStatus, error)
	PairRateHits(ctx context.Context, pn string, from, to events.UnixTime) ([]ratelimit.PairRateHit, error)
}

// Price is a quote for one message.
type Price struct {
	Currency     string          `json:"currency"`
	Market       string          `json:"market"`
	Category     events.Category `json:"category"`
	CardID       string          `json:"card_id,omitempty"`
	AmountMicros int64           `json:"amount_micros"`
	Amount       string          `json:"amount"` // decimal, exact
	// List is true: the first volume tier's price. Admission does not know the month's volume.
	List bool `json:"list_price"`
}

// Pricer quotes a price; BookPricer adapts a ratecard.Book.
type Pricer interface {
	Quote(currency, recipient string, cat events.Category, at time.Time) (Price, error)
}

// BookPricer prices from rate cards: the market from the recipient's calling code, the card of
// the currency in force on the day of at (in the WABA's time zone).
type BookPricer struct{ Book *ratecard.Book }

// Quote implements Pricer.
func (p BookPricer) Quote(currency, recipient string, cat events.Category, at time.Time) (Price, error) {
	if p.Book == nil {
		return Price{}, errors.New("no rate cards loaded")
	}
	market, ok := p.Book.Market(recipient, at)
	if !ok {
		return Price{}, fmt.Errorf("recipient calling code: %w", ratecard.ErrUnknownMarket)
	}
	pr, err := p.Book.Price(currency, market, cat, 1, at)
	if err != nil {
		return Price{}, fmt.Errorf("price %s %s %s: %w", currency, market, cat, err)
	}
	return Price{Currency: currency, Market: market, Category: cat, CardID: pr.CardID,
		AmountMicros: int64(pr.Amount), Amount: pr.Amount.String(), List: true}, nil
}

// Handler serves the admission/quote API and the status endpoints.
type Handler struct {
	state    State
	pricer   Pricer
	timeline Timeline
	now      func() time.Time
	log      *slog.Logger
	mux      *http.ServeMux
	zones    sync.Map      // time zone name → *time.Location
	inflight chan struct{} // nil: unlimited
	timeout  time.Duration // per-request budget for reading state
}

// Option configures a Handler.
type Option func(*Handler)

// WithClock sets the wall clock that "now" means when a request names no time (default time.Now).
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// WithTimeline replaces DefaultTimeline.
func WithTimeline(t Timeline) Option { return func(h *Handler) { h.timeline = t } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithMaxInFlight bounds the requests served at once (default 512; 0: unbounded). Beyond it the
// handler answers 503 at once with Retry-After, so an overloaded API sheds load in microseconds
// instead of queueing every caller behind it.
func WithMaxInFlight(n int) Option {
	return func(h *Handler) {
		h.inflight = nil
		if n > 0 {
			h.inflight = make(chan struct{}, n)
		}
	}
}

// WithTimeout bounds the time a request spends reading state (default 2 s).
func WithTimeout(d time.Duration) Option { return func(h *Handler) { h.timeout = d } }

// New returns the handler. pricer may be nil: decisions then carry price_error.
func New(state State, pricer Pricer, opts ...Option) (*Handler, error) {
	if state == nil {
		return nil, errors.New("admission: nil state")
	}
	h := &Handler{state: state, pricer: pricer, timeline: DefaultTimeline, now: time.Now,
		log: slog.New(slog.DiscardHandler), mux: http.NewServeMux(), inflight: make(chan struct{}, 512),
		timeout: 2 * time.Second}
	for _, o := range opts {
		o(h)
	}
	h.mux.HandleFunc("POST /v1/admission", h.admissionPost)
	h.mux.HandleFunc("GET /v1/admission", h.admissionGet)
	h.mux.HandleFunc("GET /v1/limits/numbers/{id}", h.number)
	h.mux.HandleFunc("GET /v1/limits/portfolios/{id}", h.portfolio)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.inflight != nil {
		select {
		case h.inflight <- struct{}{}:
			defer func() { <-h.inflight }()
		default:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "overloaded: too many requests in flight"})
			return
		}
	}
	if h.timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	h.mux.ServeHTTP(w, r)
}

// location returns the time zone named tz, loaded once (time.LoadLocation reads the zone file).
func (h *Handler) location(tz string) (*time.Location, bool) {
	if tz == "" {
		return nil, false
	}
	if v, ok := h.zones.Load(tz); ok {
		return v.(*time.Location), true
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, false
	}
	h.zones.Store(tz, loc)
	return loc, true
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		h.log.ErrorContext(r.Context(), "admission request failed", "path", r.URL.Path, "err", err)
	}
	writeJSON(w, code, apiError{Error: err.Error()})
}

// parseAt reads a time as Unix seconds or RFC 3339; empty means now.
func (h *Handler) parseAt(s string) (events.UnixTime, error) {
	if s == "" {
		return events.FromTime(h.now()), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return events.UnixTime(n), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("at %q: want Unix seconds or RFC 3339", s)
	}
	return events.FromTime(t), nil
}

func (h *Handler) admissionPost(w http.ResponseWriter, r *http.Request) {
	req, err := decodeRequest(w, r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, fmt.Errorf("decode request: %w", err))
		return
	}
	h.admit(w, r, req)
}

func (h *Handler) admissionGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	at, err := h.parseAt(q.Get("at"))
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	h.admit(w, r, Request{PhoneNumberID: q.Get("phone_number_id"), User: q.Get("user"),
		Kind: events.MessageKind(q.Get("kind")), Category: events.Category(q.Get("category")), At: at})
}

func (h *Handler) admit(w http.ResponseWriter, r *http.Request, req Request) {
	req.User = strings.TrimPrefix(req.User, "+")
	switch {
	case req.PhoneNumberID == "" || req.User == "":
		h.fail(w, r, http.StatusBadRequest, errors.New("phone_number_id and user are required"))
		return
	case req.Kind != events.KindTemplate && req.Kind != events.KindFreeForm:
		h.fail(w, r, http.StatusBadRequest, fmt.Errorf("kind %q: want template or free_form", req.Kind))
		return
	case req.Kind == events.KindTemplate && !events.NormalizeCategory(string(req.Category)).IsTemplateCategory():
		h.fail(w, r, http.StatusBadRequest, fmt.Errorf("category %q: a template needs marketing, utility, authentication or authentication_international", req.Category))
		return
	}
	if req.At == 0 {
		req.At = events.FromTime(h.now())
	}
	snap, err := h.state.Admission(r.Context(), req.PhoneNumberID, req.User, req.At)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	local := req.At.Time()
	if loc, ok := h.location(snap.Config.TimeZone); ok {
		local = local.In(loc)
	}
	d := Decide(req, snap, h.timeline(local), local)
	if d.Charged {
		switch {
		case !snap.Configured || snap.Config.Currency == "":
			d.PriceError = "number not configured: no billing currency"
		case h.pricer == nil:
			d.PriceError = "no rate cards loaded"
		default:
			p, err := h.pricer.Quote(snap.Config.Currency, req.User, d.PriceCategory, local)
			if err != nil {
				d.PriceError = err.Error()
			} else {
				d.Price = &p
			}
		}
	}
	writeDecision(w, &d)
}

// NumberStatus is the answer of GET /v1/limits/numbers/{id}.
type NumberStatus struct {
	PhoneNumberID string                     `json:"phone_number_id"`
	At            events.UnixTime            `json:"at"`
	Configured    bool                       `json:"configured"`
	Config        ratelimit.NumberConfig     `json:"config"`
	Limit         ratelimit.LimitStatus      `json:"messaging_limit"`
	Throughput    ratelimit.ThroughputStatus `json:"throughput"`
	PairRate      PairRateStatus             `json:"pair_rate"`
}

// PairRateStatus lists the would-be 131056 messages of the last 24 h.
type PairRateStatus struct {
	Hits24h int                     `json:"hits_24h"`
	Recent  []ratelimit.PairRateHit `json:"recent,omitempty"` // the newest 20
}

func (h *Handler) number(w http.ResponseWriter, r *http.Request) {
	pn := r.PathValue("id")
	at, err := h.parseAt(r.URL.Query().Get("at"))
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()
	sc, nc, ok, err := h.state.ScopeOf(ctx, pn, at)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	st := NumberStatus{PhoneNumberID: pn, At: at, Configured: ok, Config: nc}
	if st.Limit, err = h.state.Limit(ctx, sc, at); err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	if st.Throughput, err = h.state.Throughput(ctx, pn, at, nc.MPS()); err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	hits, err := h.state.PairRateHits(ctx, pn, at-ratelimit.Day+1, at)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	st.PairRate.Hits24h = len(hits)
	st.PairRate.Recent = hits[max(0, len(hits)-20):]
	writeJSON(w, http.StatusOK, st)
}

func (h *Handler) portfolio(w http.ResponseWriter, r *http.Request) {
	at, err := h.parseAt(r.URL.Query().Get("at"))
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	st, err := h.state.Limit(r.Context(), ratelimit.PortfolioScope(r.PathValue("id")), at)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
