package aggregator

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/convmeter/convmeter/services/internal/opshttp"
)

// Metrics are the aggregator's Prometheus metrics, registered on their own registry.
type Metrics struct {
	Registry       *prometheus.Registry
	in             *prometheus.CounterVec
	out            *prometheus.CounterVec
	suppressed     prometheus.Counter
	setAside       prometheus.Counter
	deadLetters    *prometheus.CounterVec
	lag            *prometheus.GaugeVec
	pairs          *prometheus.GaugeVec
	snapAt         *prometheus.GaugeVec
	snapSeconds    prometheus.Histogram
	snapshotErrors prometheus.Counter
	restores       prometheus.Histogram
	batches        prometheus.Histogram

	mu        sync.Mutex
	joined    bool
	assigned  map[int]bool // partition → restored and running
	snapTimes map[int]time.Time
}

// NewMetrics registers the metrics on a new registry, with the Go and process collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r, assigned: map[int]bool{}, snapTimes: map[int]time.Time{}}
	m.in = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "convmeter_aggregator_events_in_total", Help: "Input records applied, by event type (dead letters have type \"\")."}, []string{"type"})
	m.out = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "convmeter_aggregator_events_out_total", Help: "Output events written to the conversation-events topic, by type."}, []string{"type"})
	m.suppressed = prometheus.NewCounter(prometheus.CounterOpts{Name: "convmeter_aggregator_suppressed_total", Help: "Outputs and dead letters derived again after a restore and not written, because a previous run had."})
	m.setAside = prometheus.NewCounter(prometheus.CounterOpts{Name: "convmeter_aggregator_set_aside_total", Help: "Input events set aside as too late."})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "convmeter_aggregator_dead_letters_total", Help: "Input records written to the dead-letter topic, by error kind."}, []string{"kind"})
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "convmeter_aggregator_lag", Help: "Records in the input partition not yet applied, as of the last batch."}, []string{"partition"})
	m.pairs = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "convmeter_aggregator_live_pairs", Help: "Live pairs held by the partition's engine."}, []string{"partition"})
	m.snapAt = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "convmeter_aggregator_snapshot_timestamp_seconds", Help: "Wall-clock time of the partition's last snapshot (age = time() - this)."}, []string{"partition"})
	m.snapSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "convmeter_aggregator_snapshot_seconds", Help: "Time to take and store one snapshot.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)})
	m.snapshotErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "convmeter_aggregator_snapshot_errors_total", Help: "Snapshots that could not be taken or stored (processing goes on; restarts replay more)."})
	m.restores = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "convmeter_aggregator_restore_seconds", Help: "Time to restore a partition: load the snapshot and read the output tails.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)})
	m.batches = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "convmeter_aggregator_batch_records", Help: "Input records per processed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)})
	for _, c := range []prometheus.Collector{m.in, m.out, m.suppressed, m.setAside, m.deadLetters, m.lag, m.pairs, m.snapAt, m.snapSeconds, m.snapshotErrors, m.restores, m.batches} {
		f(c)
	}
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "convmeter_aggregator_snapshot_age_seconds", Help: "Age of the oldest last snapshot among the assigned partitions."}, m.oldestSnapshotAge))
	return m
}

func pl(p int) string { return strconv.Itoa(p) }

func (m *Metrics) oldestSnapshotAge() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var oldest time.Duration
	for p := range m.assigned {
		if t, ok := m.snapTimes[p]; ok && time.Since(t) > oldest {
			oldest = time.Since(t)
		}
	}
	return oldest.Seconds()
}

// snapshotTaken records partition p's latest snapshot time.
func (m *Metrics) snapshotTaken(p int, t time.Time) {
	m.snapAt.WithLabelValues(pl(p)).Set(float64(t.UnixMilli()) / 1000)
	m.mu.Lock()
	m.snapTimes[p] = t
	m.mu.Unlock()
}

// generation records a new set of assigned partitions, none restored yet.
func (m *Metrics) generation(parts []int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.joined = true
	m.assigned = make(map[int]bool, len(parts))
	for _, p := range parts {
		m.assigned[p] = false
	}
}

// running marks partition p restored (or not).
func (m *Metrics) running(p int, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, in := m.assigned[p]; in {
		m.assigned[p] = ok
	}
}

// Ready reports whether the instance has joined the group and every assigned partition is
// restored and running.
func (m *Metrics) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.joined {
		return false
	}
	for _, ok := range m.assigned {
		if !ok {
			return false
		}
	}
	return true
}

// Handler serves /metrics, /healthz (the process answers) and /readyz (Ready).
func (m *Metrics) Handler() http.Handler {
	return opshttp.Handler(m.Registry, m.Ready, "joining the group or restoring partitions")
}
