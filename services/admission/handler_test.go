package admission

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
)

// fakeState answers from a fixed snapshot.
type fakeState struct {
	snap ratelimit.Snapshot
	err  error
}

func (f *fakeState) Admission(_ context.Context, pn, user string, at events.UnixTime) (ratelimit.Snapshot, error) {
	s := f.snap
	s.At = at
	return s, f.err
}

func (f *fakeState) Limit(_ context.Context, sc ratelimit.Scope, at events.UnixTime) (ratelimit.LimitStatus, error) {
	return ratelimit.LimitStatus{Scope: sc, At: at, Tier: ratelimit.Tier250, Limit: 250, Used: 7}, f.err
}

func (f *fakeState) ScopeOf(_ context.Context, pn string, at events.UnixTime) (ratelimit.Scope, ratelimit.NumberConfig, bool, error) {
	return ratelimit.PortfolioScope("pf1"), f.snap.Config, true, f.err
}

func (f *fakeState) Throughput(_ context.Context, pn string, at events.UnixTime, mps int) (ratelimit.ThroughputStatus, error) {
	return ratelimit.ThroughputStatus{PhoneNumberID: pn, At: at, LimitMPS: mps, Peak: 12, Current: 3}, f.err
}

func (f *fakeState) PairRateHits(_ context.Context, pn string, from, to events.UnixTime) ([]ratelimit.PairRateHit, error) {
	return []ratelimit.PairRateHit{{PhoneNumberID: pn, User: "15550001", WAMID: "wamid.x", At: to}}, f.err
}

var (
	tPMP  = events.UnixTime(1_761_955_200) // 2025-11-01T00:00:00Z
	tCBP  = events.UnixTime(1_717_200_000) // 2024-06-01T00:00:00Z
	t2026 = events.UnixTime(1_793_491_200) // 2026-11-01T00:00:00Z
)

func book(t *testing.T) *ratecard.Book {
	t.Helper()
	dir := filepath.Join("..", "..", "projections", "ratecard", "examples")
	paths, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
	b, err := ratecard.Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func baseSnap() ratelimit.Snapshot {
	return ratelimit.Snapshot{
		Config:     ratelimit.NumberConfig{PhoneNumberID: "n1", WABAID: "w1", PortfolioID: "pf1", TimeZone: "UTC", Currency: "USD"},
		Configured: true, Scope: ratelimit.PortfolioScope("pf1"), Tier: ratelimit.Tier250, TierSet: true,
		Used: 10, Exact: true,
	}
}

func withWindow(s ratelimit.Snapshot, at events.UnixTime) ratelimit.Snapshot {
	s.Pair.WindowKnown = true
	s.Pair.Window = ratelimit.Window{OpenedAt: at - ratelimit.Hour, ExpiresAt: at + 23*ratelimit.Hour}
	return s
}

func TestAdmissionTable(t *testing.T) {
	b := book(t)
	cases := []struct {
		name    string
		at      events.UnixTime
		snap    func(at events.UnixTime) ratelimit.Snapshot
		body    string
		allowed bool
		reasons []string
		check   func(t *testing.T, d Decision)
	}{
		{
			name: "marketing template outside the window is charged and counts", at: tPMP,
			snap: func(events.UnixTime) ratelimit.Snapshot { return baseSnap() },
			body: `{"phone_number_id":"n1","user":"+919800000001","kind":"template","category":"MARKETING"}`, allowed: true,
			check: func(t *testing.T, d Decision) {
				if !d.Charged || !d.Limit.Counts || d.Price == nil || d.Price.Market != "India" || d.Price.Amount != "0.0107" || d.Price.Currency != "USD" {
					t.Errorf("decision %+v price %+v", d, d.Price)
				}
			},
		},
		{
			name: "the 251st distinct user is refused", at: tPMP,
			snap: func(at events.UnixTime) ratelimit.Snapshot {
				s := baseSnap()
				s.Used = 250
				s.Limit = ratelimit.LimitStatus{HeadroomAt: at + 3*ratelimit.Hour}
				return s
			},
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"utility"}`, reasons: []string{ReasonMessagingLimit},
			check: func(t *testing.T, d Decision) {
				if d.Refusals[0].RetryAt != tPMP+3*ratelimit.Hour {
					t.Errorf("retry at %s", d.Refusals[0].RetryAt)
				}
			},
		},
		{
			name: "at the limit a user already counted may still be reached", at: tPMP,
			snap: func(events.UnixTime) ratelimit.Snapshot { s := baseSnap(); s.Used, s.UserCounted = 250, true; return s },
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"utility"}`, allowed: true,
		},
		{
			name: "at the limit inside the service window nothing counts", at: tPMP,
			snap: func(at events.UnixTime) ratelimit.Snapshot { s := withWindow(baseSnap(), at); s.Used = 250; return s },
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"utility"}`, allowed: true,
			check: func(t *testing.T, d Decision) {
				if d.Charged || d.PricingType != events.PricingFreeCustomerService || d.Limit.Counts {
					t.Errorf("utility inside the window: %+v", d)
				}
			},
		},
		{
			name: "free-form outside the window", at: tPMP,
			snap: func(events.UnixTime) ratelimit.Snapshot { return baseSnap() },
			body: `{"phone_number_id":"n1","user":"15550100","kind":"free_form"}`, reasons: []string{ReasonOutsideWindow},
			check: func(t *testing.T, d Decision) {
				if d.Refusals[0].ErrorCode != 131047 {
					t.Errorf("code %d", d.Refusals[0].ErrorCode)
				}
			},
		},
		{
			name: "free-form inside the window is free under PMP", at: tPMP,
			snap: func(at events.UnixTime) ratelimit.Snapshot { return withWindow(baseSnap(), at) },
			body: `{"phone_number_id":"n1","user":"15550100","kind":"free_form"}`, allowed: true,
			check: func(t *testing.T, d Decision) {
				if d.Charged || d.Category != events.CategoryService || d.Price != nil {
					t.Errorf("%+v", d)
				}
			},
		},
		{
			name: "free-form inside the window is charged at the utility rate from 2026-10-01", at: t2026,
			snap: func(at events.UnixTime) ratelimit.Snapshot { return withWindow(baseSnap(), at) },
			body: `{"phone_number_id":"n1","user":"15550100","kind":"free_form"}`, allowed: true,
			check: func(t *testing.T, d Decision) {
				if !d.Charged || d.PriceCategory != events.CategoryUtility || d.PricingModel != events.ModelPMP2026 {
					t.Errorf("%+v", d)
				}
			},
		},
		{
			name: "pair rate: empty bucket", at: tPMP,
			snap: func(at events.UnixTime) ratelimit.Snapshot {
				s := baseSnap()
				s.Pair.Bucket = ratelimit.Bucket{Units: 2, At: at, Set: true}
				return s
			},
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"marketing"}`, reasons: []string{ReasonPairRate},
			check: func(t *testing.T, d Decision) {
				if r := d.Refusals[0]; r.ErrorCode != 131056 || r.RetryAt != tPMP+4 {
					t.Errorf("%+v", r)
				}
			},
		},
		{
			name: "throughput: 80 messages already in this second", at: tPMP,
			snap: func(events.UnixTime) ratelimit.Snapshot { s := baseSnap(); s.Second = 80; return s },
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"marketing"}`, reasons: []string{ReasonThroughput},
		},
		{
			name: "coexistence numbers stop at 20 mps", at: tPMP,
			snap: func(events.UnixTime) ratelimit.Snapshot {
				s := baseSnap()
				s.Second, s.Config.Coexistence = 20, true
				return s
			},
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"marketing"}`, reasons: []string{ReasonThroughput},
		},
		{
			name: "several reasons at once", at: tPMP,
			snap: func(at events.UnixTime) ratelimit.Snapshot {
				s := baseSnap()
				s.Used = 300
				s.Pair.Bucket = ratelimit.Bucket{At: at, Set: true}
				return s
			},
			body: `{"phone_number_id":"n1","user":"15550100","kind":"free_form"}`, reasons: []string{ReasonOutsideWindow, ReasonMessagingLimit, ReasonPairRate},
		},
		{
			name: "inside an open FEP window everything is free", at: tPMP,
			snap: func(at events.UnixTime) ratelimit.Snapshot {
				s := baseSnap()
				s.Pair.Conversations = []ratelimit.Conversation{{ID: "fep1", Category: events.CategoryReferralConversion, OpenedAt: at - ratelimit.Hour, ExpiresAt: at + 71*ratelimit.Hour}}
				return s
			},
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"marketing"}`, allowed: true,
			check: func(t *testing.T, d Decision) {
				if d.Charged || d.PricingType != events.PricingFreeEntryPoint || !d.ServiceWindow.FEPOpen {
					t.Errorf("%+v", d)
				}
			},
		},
		{
			name: "a reply within 24 h of an ad click opens a free FEP window", at: tPMP,
			snap: func(at events.UnixTime) ratelimit.Snapshot {
				s := withWindow(baseSnap(), at)
				s.Pair.Window.EntryAt = at - ratelimit.Hour
				return s
			},
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"marketing"}`, allowed: true,
			check: func(t *testing.T, d Decision) {
				if !d.OpensFEP || d.Charged || d.ConversationCategory != events.CategoryReferralConversion {
					t.Errorf("%+v", d)
				}
			},
		},
		{
			name: "CBP: a marketing template inside an open marketing conversation opens nothing", at: tCBP,
			snap: func(at events.UnixTime) ratelimit.Snapshot {
				s := baseSnap()
				s.Pair.Conversations = []ratelimit.Conversation{{ID: "c1", Category: events.CategoryMarketing, OpenedAt: at - ratelimit.Hour, ExpiresAt: at + 23*ratelimit.Hour}}
				return s
			},
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"marketing"}`, allowed: true,
			check: func(t *testing.T, d Decision) {
				if d.Charged || d.OpensConversation || d.CoveredBy != "c1" || d.PricingModel != events.ModelCBP2023 {
					t.Errorf("%+v", d)
				}
			},
		},
		{
			name: "CBP: a utility template next to an open marketing conversation opens its own", at: tCBP,
			snap: func(at events.UnixTime) ratelimit.Snapshot {
				s := baseSnap()
				s.Pair.Conversations = []ratelimit.Conversation{{ID: "c1", Category: events.CategoryMarketing, OpenedAt: at - ratelimit.Hour, ExpiresAt: at + 23*ratelimit.Hour}}
				return s
			},
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"utility"}`, allowed: true,
			check: func(t *testing.T, d Decision) {
				if !d.Charged || !d.OpensConversation || d.ConversationCategory != events.CategoryUtility {
					t.Errorf("%+v", d)
				}
				if d.Price == nil || d.Price.CardID != "example-usd-2023-06" || d.Price.Market != "North America" {
					t.Errorf("price from the 2023 card: %+v %q", d.Price, d.PriceError)
				}
			},
		},
		{
			name: "unconfigured number: decision without price", at: tPMP,
			snap: func(events.UnixTime) ratelimit.Snapshot {
				s := baseSnap()
				s.Configured, s.Config = false, ratelimit.NumberConfig{}
				return s
			},
			body: `{"phone_number_id":"n1","user":"15550100","kind":"template","category":"marketing"}`, allowed: true,
			check: func(t *testing.T, d Decision) {
				if d.Price != nil || !strings.Contains(d.PriceError, "not configured") {
					t.Errorf("%+v", d)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := New(&fakeState{snap: c.snap(c.at)}, BookPricer{Book: b}, WithClock(func() time.Time { return c.at.Time() }))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			resp, err := http.Post(srv.URL+"/v1/admission", "application/json", strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var d Decision
			if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allowed {
				t.Errorf("allowed %v, want %v (refusals %+v)", d.Allowed, c.allowed, d.Refusals)
			}
			var got []string
			for _, r := range d.Refusals {
				got = append(got, r.Reason)
			}
			if strings.Join(got, ",") != strings.Join(c.reasons, ",") {
				t.Errorf("refusals %v, want %v", got, c.reasons)
			}
			if d.At != c.at {
				t.Errorf("at %d, want %d (now)", d.At, c.at)
			}
			if c.check != nil {
				c.check(t, d)
			}
		})
	}
}

func TestAdmissionBadRequestsAndErrors(t *testing.T) {
	h, _ := New(&fakeState{snap: baseSnap()}, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/v1/admission", `{"phone_number_id":"n1","kind":"template","category":"marketing"}`, 400},
		{"POST", "/v1/admission", `{"phone_number_id":"n1","user":"1","kind":"sms"}`, 400},
		{"POST", "/v1/admission", `{"phone_number_id":"n1","user":"1","kind":"template","category":"service"}`, 400},
		{"POST", "/v1/admission", `{"phone_number_id":"n1","user":"1","kind":"template","bogus":1}`, 400},
		{"POST", "/v1/admission", `not json`, 400},
		{"GET", "/v1/admission?phone_number_id=n1&user=1&kind=template&category=marketing&at=yesterday", "", 400},
		{"GET", "/v1/admission?phone_number_id=n1&user=1&kind=template&category=marketing&at=2025-11-01T00:00:00Z", "", 200},
		{"GET", "/v1/limits/numbers/n1?at=1761955200", "", 200},
		{"GET", "/v1/limits/portfolios/pf1", "", 200},
		{"DELETE", "/v1/admission", "", 405},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s %s: status %d, want %d", c.method, c.path, c.body, resp.StatusCode, c.code)
		}
	}
	h2, _ := New(&fakeState{err: errors.New("redis down")}, nil)
	rec := httptest.NewRecorder()
	h2.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/limits/numbers/n1", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "redis down") {
		t.Errorf("state error: %d %s", rec.Code, rec.Body)
	}
}

func TestNumberStatus(t *testing.T) {
	h, _ := New(&fakeState{snap: baseSnap()}, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/limits/numbers/n1?at=1761955200", nil))
	var st NumberStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Limit.Used != 7 || st.Throughput.Peak != 12 || st.Throughput.LimitMPS != 80 || st.PairRate.Hits24h != 1 || st.At != tPMP {
		t.Errorf("%+v", st)
	}
}

// blockingState blocks Admission until released, to fill the in-flight slots.
type blockingState struct {
	fakeState
	entered chan struct{}
	release chan struct{}
}

func (b *blockingState) Admission(ctx context.Context, pn, user string, at events.UnixTime) (ratelimit.Snapshot, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.fakeState.Admission(ctx, pn, user, at)
}

func TestOverloadSheds(t *testing.T) {
	st := &blockingState{fakeState: fakeState{snap: baseSnap()}, entered: make(chan struct{}, 2), release: make(chan struct{})}
	h, _ := New(st, nil, WithMaxInFlight(2))
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := `{"phone_number_id":"n1","user":"1","kind":"template","category":"marketing","at":1761955200}`
	done := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := http.Post(srv.URL+"/v1/admission", "application/json", strings.NewReader(body))
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	<-st.entered
	<-st.entered
	resp, err := http.Post(srv.URL+"/v1/admission", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("third request: %d %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(st.release)
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("held request: %d", code)
		}
	}
}
