package projector

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/kafkatest"
)

// TestMetrics: a run's counts, lag, retried failures and readiness reach /metrics and /readyz.
func TestMetrics(t *testing.T) {
	const topic = "conv"
	brokers := kafkatest.Fake(t, 2, topic)
	writeTicks(t, brokers, topic, 0, 0, 150)
	writeTicks(t, brokers, topic, 1, 0, 100)
	met := NewMetrics("mem")
	srv := httptest.NewServer(met.Handler())
	defer srv.Close()
	if code, _ := get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz before the first fetch: %d, want 503", code)
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	m := &memProjection{seen: map[int32][]int64{}, failP: 1}
	runUntilWith(t, brokers, topic, "g", m, 250, met)
	if code, _ := get(t, srv.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz after a run: %d, want 200", code)
	}
	_, body := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`convmeter_projector_events_total{projection="mem"} 250`,
		`convmeter_projector_undecoded_total{projection="mem"} 2`,
		`convmeter_projector_records_total{projection="mem"} 252`,
		`convmeter_projector_failures_total{projection="mem"} 1`,
		`convmeter_projector_lag{partition="0",projection="mem"} 0`,
		`convmeter_projector_lag{partition="1",projection="mem"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// A new group's first round (at most 64 records; fewer when the fetch brings fewer within
	// MaxWait, as on a loaded machine) leaves records behind: the lag says how many.
	lagged := NewMetrics("mem")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	taken := 0
	err := Run(ctx, Config{Brokers: brokers, Topic: topic, Group: "g-lag", MaxBatch: 64, MaxWait: 50 * time.Millisecond,
		Metrics: lagged, OnBatch: func(s Stats) { taken += s.Records; cancel() }}, &memProjection{seen: map[int32][]int64{}, failP: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The partitions of that round (151 and 101 records: the ticks and one undecodable each)
	// together lack what the round did not take.
	size := map[string]float64{"0": 151, "1": 101}
	families, err := lagged.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var behind, held float64
	for _, f := range families {
		if f.GetName() != "convmeter_projector_lag" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					behind += m.GetGauge().GetValue()
					held += size[l.GetValue()]
				}
			}
		}
	}
	if held == 0 || taken == 0 || behind != held-float64(taken) {
		t.Errorf("lag after a first round of %d records: %v behind in partitions holding %v, want %v", taken, behind, held, held-float64(taken))
	}

	// Failing for longer than the bound: not ready; a success clears it.
	met.failing.Store(time.Now().Add(-time.Minute).UnixNano())
	if met.Ready() {
		t.Error("ready while applying has failed for a minute")
	}
	met.succeeded()
	if !met.Ready() {
		t.Error("not ready after a success")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
