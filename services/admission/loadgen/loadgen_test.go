package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRun: every request reaches the server as a real HTTP request with its body, answers with a
// fixed length, chunked bodies and a closed connection are all read to their end, and 503s are
// counted as shed.
func TestRun(t *testing.T) {
	var got, bad atomic.Int64
	big := strings.Repeat("x", 10000) // beyond the server's buffer: sent chunked
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := got.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/x" || r.URL.RawQuery != "a=1" ||
			r.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(string(b), `{"i":`) {
			bad.Add(1)
		}
		switch n % 4 {
		case 0:
			_, _ = io.WriteString(w, big)
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "{}")
		default:
			_, _ = io.WriteString(w, `{"ok":true}`)
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL + "/v1/x?a=1", Rate: 400, Duration: 500 * time.Millisecond,
		Body: func(i int) []byte { return []byte(`{"i":` + strings.Repeat("1", i%50+1) + `}`) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 200 || got.Load() != 200 || bad.Load() != 0 {
		t.Fatalf("sent %d, server saw %d (%d malformed)", res.Sent, got.Load(), bad.Load())
	}
	if res.Shed != 50 || res.Failed != 50 || res.OK != 150 {
		t.Errorf("%s, want 150 ok and 50 shed", res)
	}
	if res.P50 <= 0 || res.Max < res.P99 {
		t.Errorf("percentiles %s", res)
	}
}

// TestRunGet: without a body the requests are GETs.
func TestRunGet(t *testing.T) {
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.ContentLength <= 0 {
			gets.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL + "/", Rate: 100, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 20 || gets.Load() != 20 {
		t.Errorf("%s; server saw %d GETs (204 is not 200: counted failed)", res, gets.Load())
	}
}
