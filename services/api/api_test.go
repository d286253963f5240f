package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/services/api"
	"github.com/convmeter/convmeter/services/dashboard"
)

// TestRoutes: every part is mounted on one server (over an empty in-memory Redis), /healthz
// follows the check, and Run stops when its context ends.
func TestRoutes(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	book, err := ratecard.Examples()
	if err != nil {
		t.Fatal(err)
	}
	bill, err := billing.NewStore(rdb, "convmeter:", book, nil)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := ratelimit.NewStore(rdb, ratelimit.WithPartitions(2))
	if err != nil {
		t.Fatal(err)
	}
	var healthy atomic.Bool
	healthy.Store(true)
	addr := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- api.Run(ctx, api.Config{Addr: "127.0.0.1:0", Billing: bill, RateLimit: rl, SampleEvery: time.Hour,
			Check: func(context.Context) error {
				if !healthy.Load() {
					return errors.New("redis away")
				}
				return nil
			},
			OnListen: func(a net.Addr) { addr <- a }}, nil)
	}()
	base := "http://" + (<-addr).String()

	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	for _, c := range []struct {
		path, ctype, contains string
		code                  int
	}{
		{"/healthz", "text/plain", "ok", 200},
		{"/", "text/html", `id="cm-check"`, 200},
		{"/static/app.js", "javascript", "cm-check", 200},
		{"/static/style.css", "text/css", ".cards", 200},
		{"/billing/totals?waba=W1&month=2026-11", "application/json", `"lines":0`, 200},
		{"/billing/totals?waba=W1", "application/json", "month must be YYYY-MM", 400},
		{"/v1/limits/numbers/1065?at=1795000000", "application/json", `"configured":false`, 200},
		{"/dashboard/api/overview", "application/json", `"at_source":"wall"`, 200},
		{"/dashboard/api/history", "application/json", "[", 200},
		{"/nope", "", "", 404},
	} {
		code, ctype, body := get(c.path)
		if code != c.code || !strings.Contains(ctype, c.ctype) || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: %d %q %.200q; want %d, %q containing %q", c.path, code, ctype, body, c.code, c.ctype, c.contains)
		}
	}
	var o dashboard.Overview
	_, _, body := get("/dashboard/api/overview")
	if err := json.Unmarshal([]byte(body), &o); err != nil || len(o.Numbers) != 0 || o.At == 0 {
		t.Errorf("overview of an empty store: %+v, %v", o, err)
	}

	healthy.Store(false)
	if code, _, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "redis away") {
		t.Errorf("unhealthy /healthz: %d %q", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}
