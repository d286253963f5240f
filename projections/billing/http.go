package billing

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

var monthRE = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])$`)

// NewHandler serves the billing query API (JSON unless noted):
//
//	GET /billing/totals?waba=W&month=YYYY-MM                    settled totals with breakdowns
//	GET /billing/lines?waba=W&month=YYYY-MM&limit=N&cursor=C    settled ledger lines, paged
//	GET /billing/lines.csv?waba=W&month=YYYY-MM                 every line, CSV
//	GET /billing/reconciliation?waba=W&month=YYYY-MM&limit=N&cursor=C
//	GET /billing/price?currency=USD&market=India&category=utility&n=1&day=YYYY-MM-DD
//
// Mount it as is (paths include /billing/).
func NewHandler(s *Store, log *slog.Logger) (http.Handler, error) {
	if s == nil {
		return nil, errors.New("billing: nil store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{s: s, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /billing/totals", h.totals)
	mux.HandleFunc("GET /billing/lines", h.lines)
	mux.HandleFunc("GET /billing/lines.csv", h.csv)
	mux.HandleFunc("GET /billing/reconciliation", h.reconciliation)
	mux.HandleFunc("GET /billing/price", h.price)
	return mux, nil
}

type handler struct {
	s   *Store
	log *slog.Logger
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		h.log.Error("billing api", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (h *handler) ok(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func wabaMonth(r *http.Request) (string, string, error) {
	waba, month := r.URL.Query().Get("waba"), r.URL.Query().Get("month")
	if waba == "" {
		return "", "", errors.New("waba is required")
	}
	if !monthRE.MatchString(month) {
		return "", "", errors.New("month must be YYYY-MM")
	}
	return waba, month, nil
}

func limit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, errors.New("limit must be 1..1000")
	}
	return n, nil
}

func (h *handler) totals(w http.ResponseWriter, r *http.Request) {
	waba, month, err := wabaMonth(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	t, err := h.s.Totals(r.Context(), waba, month)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	h.ok(w, t)
}

func (h *handler) lines(w http.ResponseWriter, r *http.Request) {
	h.paged(w, r, func(ctx context.Context, waba, month, cursor string, n int) (any, error) {
		return h.s.Lines(ctx, waba, month, cursor, n)
	})
}

// paged serves a cursor-paged query of one WABA-month: parameters, status codes and the answer.
func (h *handler) paged(w http.ResponseWriter, r *http.Request, query func(ctx context.Context, waba, month, cursor string, n int) (any, error)) {
	waba, month, err := wabaMonth(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	n, err := limit(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	page, err := query(r.Context(), waba, month, r.URL.Query().Get("cursor"), n)
	if errors.Is(err, ErrBadCursor) {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	h.ok(w, page)
}

// CSVHeader is the column list of the CSV export. Columns are only appended to.
var CSVHeader = []string{"event_id", "pair", "waba_id", "phone_number_id", "portfolio_id", "month", "delivered_at",
	"market", "category", "pricing_model", "pricing_type", "settled_pricing_type", "billable", "reason", "wamid",
	"conversation_id", "currency", "rate_card", "tier", "list_price", "amount", "amount_micros", "unpriced"}

// CSV is the line as a record of the CSV export, in CSVHeader's columns.
func (l Settled) CSV() []string {
	return []string{l.ID, l.Pair, l.WABA, l.Number, l.Portfolio, l.Month, l.At.String(),
		l.Market, string(l.Category), string(l.Model), string(l.PricingType), string(l.SettledType),
		strconv.FormatBool(l.Billable), l.Reason, l.WAMID, l.ConversationID, l.Currency, l.CardID, l.Tier,
		l.List.String(), l.Amount.String(), strconv.FormatInt(int64(l.Amount), 10), l.Unpriced}
}

func (h *handler) csv(w http.ResponseWriter, r *http.Request) {
	waba, month, err := wabaMonth(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="convmeter-`+waba+"-"+month+`.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(CSVHeader)
	err = h.s.EachLine(r.Context(), waba, month, func(l Settled) error { return cw.Write(l.CSV()) })
	cw.Flush()
	if err != nil {
		// Headers are gone; the truncated body and the log say what happened.
		h.log.Error("billing api: csv export", "waba", waba, "month", month, "err", err)
	}
}

func (h *handler) reconciliation(w http.ResponseWriter, r *http.Request) {
	h.paged(w, r, func(ctx context.Context, waba, month, cursor string, n int) (any, error) {
		return h.s.Reconciliation(ctx, waba, month, cursor, n)
	})
}

func (h *handler) price(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := int64(1)
	if v := q.Get("n"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 1 {
			h.fail(w, r, http.StatusBadRequest, errors.New("n must be a positive integer"))
			return
		}
	}
	rt, err := h.s.book.RateOn(q.Get("currency"), q.Get("market"), events.NormalizeCategory(q.Get("category")), q.Get("day"))
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ratecard.ErrNoCard) || errors.Is(err, ratecard.ErrUnknownMarket) || errors.Is(err, ratecard.ErrNoRate) {
			code = http.StatusNotFound
		}
		h.fail(w, r, code, err)
		return
	}
	t := rt.Tiers[rt.TierAt(n)]
	h.ok(w, map[string]any{"rate": rt, "n": n, "tier": t.String(), "amount_micros": t.Price, "amount": t.Price.String()})
}
