package projector

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/convmeter/convmeter/services/internal/opshttp"
)

// Metrics is what a projector reports over HTTP: Prometheus metrics, liveness and readiness.
// Set Config.Metrics to one made by NewMetrics and serve its Handler.
type Metrics struct {
	Registry *prometheus.Registry

	records, events, undecoded, rounds, failures prometheus.Counter
	refilledRecords, lostRecords                 prometheus.Counter
	applySeconds                                 prometheus.Counter
	lag                                          *prometheus.GaugeVec
	lastCommit                                   prometheus.Gauge

	fetched atomic.Bool  // a fetch returned without error: the reader joined the group
	failing atomic.Int64 // Unix nanoseconds since which Apply or commit has been failing; 0 if not
}

// NewMetrics registers a projector's metrics, labelled with the projection's name, on a new
// registry with the Go and process collectors.
func NewMetrics(projection string) *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l := prometheus.Labels{"projection": projection}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "convmeter_projector_" + name, Help: help, ConstLabels: l})
		r.MustRegister(c)
		return c
	}
	m := &Metrics{Registry: r,
		records:      counter("records_total", "Records fetched from the conversation-events topic and committed."),
		events:       counter("events_total", "Records decoded and applied to the projection."),
		undecoded:    counter("undecoded_total", "Records that did not decode (logged with their offset, left in the log)."),
		rounds:       counter("rounds_total", "Rounds fetched, applied and committed."),
		failures:     counter("failures_total", "Apply or commit attempts that failed and were retried."),
		applySeconds: counter("apply_seconds_total", "Wall time spent applying rounds."),
		refilledRecords: counter("refilled_records_total",
			"Records read again and applied because the store lacked their effect after their offsets were committed (Redis restored from an older state)."),
		lostRecords: counter("lost_records_total",
			"Records the store lacked that retention had deleted from the log: the projection lacks them until a replay rebuilds it."),
	}
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "convmeter_projector_lag", ConstLabels: l,
		Help: "Records of the partition after the last committed one, as of that round's fetch."}, []string{"partition"})
	m.lastCommit = prometheus.NewGauge(prometheus.GaugeOpts{Name: "convmeter_projector_last_commit_timestamp_seconds", ConstLabels: l,
		Help: "Wall-clock time of the last committed round."})
	r.MustRegister(m.lag, m.lastCommit)
	return m
}

// Ready reports whether the projector has joined its group and is not stuck: no Apply or commit
// has been failing for longer than 30 s (Redis or Kafka away).
func (m *Metrics) Ready() bool {
	if !m.fetched.Load() {
		return false
	}
	since := m.failing.Load()
	return since == 0 || time.Since(time.Unix(0, since)) < 30*time.Second
}

// Handler serves /metrics, /healthz (the process answers) and /readyz (Ready).
func (m *Metrics) Handler() http.Handler {
	return opshttp.Handler(m.Registry, m.Ready, "joining the group, or applying has been failing for 30 s")
}

// The methods below accept a nil *Metrics, so Run calls them unconditionally.

func (m *Metrics) fetchedOK() {
	if m != nil {
		m.fetched.Store(true)
	}
}

func (m *Metrics) failed() {
	if m != nil {
		m.failures.Inc()
		m.failing.CompareAndSwap(0, time.Now().UnixNano())
	}
}

func (m *Metrics) succeeded() {
	if m != nil {
		m.failing.Store(0)
	}
}

// committed records a round: its counts and, per partition, the records after its last one.
func (m *Metrics) committed(st Stats, lag map[int]int64) {
	if m == nil {
		return
	}
	m.records.Add(float64(st.Records))
	m.events.Add(float64(st.Events))
	m.undecoded.Add(float64(st.Undecoded))
	m.rounds.Inc()
	m.applySeconds.Add(st.Apply.Seconds())
	for p, n := range lag {
		m.lag.WithLabelValues(strconv.Itoa(p)).Set(float64(n))
	}
	m.lastCommit.Set(float64(time.Now().UnixMilli()) / 1000)
}

func (m *Metrics) refilled(records, undecoded int) {
	if m != nil {
		m.refilledRecords.Add(float64(records))
		m.undecoded.Add(float64(undecoded))
	}
}

func (m *Metrics) lost(records int64) {
	if m != nil {
		m.lostRecords.Add(float64(records))
	}
}
