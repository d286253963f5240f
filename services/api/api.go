// Package api is the `convmeter api` HTTP server: the billing query API, the admission/quote API
// and the dashboard on one mux, plus a health check.
//
//	GET  /billing/...        billing.NewHandler (totals, lines, CSV export, reconciliation, price)
//	     /v1/...             admission.Handler (admission and quotes, number and portfolio limits)
//	GET  /healthz            200 "ok" when Config.Check passes (Redis answers), else 503
//	GET  /                   the dashboard (package dashboard), its assets and its JSON
//
// `convmeter dev` runs the same server over its embedded stores.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/services/admission"
	"github.com/convmeter/convmeter/services/dashboard"
)

// Config configures New and Run. Billing and RateLimit are required.
type Config struct {
	// Addr is the listen address (Run only), e.g. ":8080" or "127.0.0.1:0".
	Addr      string
	Billing   *billing.Store
	RateLimit *ratelimit.Store
	// Book prices admission quotes; default Billing.Book().
	Book *ratecard.Book
	// AdmissionOptions adjust the admission handler (clock, timeline).
	AdmissionOptions []admission.Option
	// Check answers /healthz; nil always passes. Give it the Redis ping.
	Check func(ctx context.Context) error
	// SampleEvery is how often the dashboard samples its charts' history (Run only); default 5s.
	SampleEvery time.Duration
	// OnListen, when set, is called with the listener's address once Run listens.
	OnListen func(addr net.Addr)
	// Routes are further handlers by ServeMux pattern (`convmeter dev` adds GET /dev/progress).
	Routes map[string]http.Handler
}

// Server is the assembled handler.
type Server struct {
	http.Handler
	Dashboard *dashboard.Handler
}

// New assembles the mux.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.Billing == nil || cfg.RateLimit == nil {
		return nil, errors.New("api: the billing and rate-limit stores are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	book := cfg.Book
	if book == nil {
		book = cfg.Billing.Book()
	}
	bh, err := billing.NewHandler(cfg.Billing, log)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	ah, err := admission.New(cfg.RateLimit, admission.BookPricer{Book: book}, append([]admission.Option{admission.WithLogger(log)}, cfg.AdmissionOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	dh, err := dashboard.New(dashboard.Config{Billing: cfg.Billing, RateLimit: cfg.RateLimit, Log: log})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/billing/", bh)
	mux.Handle("/v1/", ah)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if cfg.Check != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := cfg.Check(ctx); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "unhealthy: %v\n", err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	for pattern, h := range cfg.Routes {
		mux.Handle(pattern, h)
	}
	mux.Handle("/", dh)
	return &Server{Handler: mux, Dashboard: dh}, nil
}

// Run serves until ctx ends, then shuts down gracefully and returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", cfg.Addr, err)
	}
	if cfg.OnListen != nil {
		cfg.OnListen(ln.Addr())
	}
	log.Info("api: serving", "addr", ln.Addr().String())
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		s.Dashboard.Sample(sctx, cfg.SampleEvery)
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	stopSampling()
	<-sampled
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", serveErr)
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}
