package ingest

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry exposes the server's Stats as Prometheus metrics (read from the counters when
// scraped, so the request path pays nothing extra), the request latency, and the Go and process
// collectors.
func (s *Server) newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, v func() int64) {
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "convmeter_ingest_" + name, Help: help},
			func() float64 { return float64(v()) }))
	}
	st := &s.stats
	counter("requests_ok_total", "Webhook POSTs answered 200 (every event acknowledged by Kafka).", st.Requests.Load)
	counter("events_total", "Events acknowledged by Kafka (a broadcast account event counts once).", st.Events.Load)
	counter("dead_letters_total", "Webhook elements written to the dead-letter topic.", st.DeadLetters.Load)
	counter("poisoned_total", "Whole requests written to the dead-letter topic after a permanent publish error.", st.Poisoned.Load)
	counter("skipped_total", "Webhook changes deliberately not turned into events.", st.Skipped.Load)
	counter("bad_signature_total", "POSTs answered 401.", st.BadSignature.Load)
	counter("bad_request_total", "POSTs answered 400 or 413.", st.BadRequest.Load)
	counter("publish_failed_total", "POSTs answered 503 because Kafka did not acknowledge (Meta retries).", st.PublishFailed.Load)
	counter("handshakes_ok_total", "Subscription handshakes answered with the challenge.", st.HandshakeOK.Load)
	counter("handshakes_denied_total", "Subscription handshakes answered 403.", st.HandshakeDenied.Load)
	r.MustRegister(skippedCollector{st})
	r.MustRegister(s.latency)
	return r
}

var skippedDesc = prometheus.NewDesc("convmeter_ingest_skipped_by_reason_total",
	"Webhook changes deliberately not turned into events, by reason (field:<name>, account_update:<event>, value_errors, ...).",
	[]string{"reason"}, nil)

type skippedCollector struct{ st *Stats }

func (c skippedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- skippedDesc }

func (c skippedCollector) Collect(ch chan<- prometheus.Metric) {
	for reason, n := range c.st.SkippedBy() {
		ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(n), reason)
	}
}

func newLatency() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "convmeter_ingest_request_seconds",
		Help:    "Time from reading a webhook POST to answering it 200 (Kafka acknowledgement included).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}
