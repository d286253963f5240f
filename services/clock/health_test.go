package clock

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	h := NewHealth(time.Second)
	if h.Stale != 10*time.Second {
		t.Fatalf("stale bound %v, want 10s", h.Stale)
	}
	status := func(path string) int {
		rec := httptest.NewRecorder()
		h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if status("/healthz") != 200 || status("/readyz") != 503 {
		t.Fatalf("starting: healthz %d readyz %d, want 200 503", status("/healthz"), status("/readyz"))
	}
	h.Ticked()
	if status("/healthz") != 200 || status("/readyz") != 200 {
		t.Fatalf("after a round: healthz %d readyz %d", status("/healthz"), status("/readyz"))
	}
	h.last.Store(time.Now().Add(-11 * time.Second).UnixNano())
	if status("/healthz") != 503 {
		t.Fatal("healthy with the last round 11 s old")
	}
	never := &Health{Stale: time.Second, start: time.Now().Add(-2 * time.Second)}
	if never.Healthy() {
		t.Fatal("healthy without any round, started 2 s ago with a 1 s bound")
	}
}
