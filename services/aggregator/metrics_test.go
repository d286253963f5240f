package aggregator

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthReadyMetrics(t *testing.T) {
	m := NewMetrics()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Fatalf("/readyz before joining: %d, want 503", code)
	}
	m.generation([]int{0, 1})
	m.running(0, true)
	if code, _ := get("/readyz"); code != 503 {
		t.Fatalf("/readyz with partition 1 restoring: %d, want 503", code)
	}
	m.running(1, true)
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz with both running: %d, want 200", code)
	}
	m.in.WithLabelValues("message.inbound.v1").Add(3)
	m.snapshotTaken(0, time.Now().Add(-90*time.Second))
	m.snapshotTaken(1, time.Now())
	_, body := get("/metrics")
	for _, want := range []string{
		`convmeter_aggregator_events_in_total{type="message.inbound.v1"} 3`,
		`convmeter_aggregator_snapshot_age_seconds 9`, // 90 s, the oldest
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
