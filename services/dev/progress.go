package dev

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/services/aggregator"
)

// Progress says how far the embedded pipeline has got: GET /dev/progress answers it (the
// dashboard shows it under `convmeter dev`; `convmeter api` has no such route).
type Progress struct {
	// Simulating is true while generated traffic is being fed; Published counts the events the
	// simulation has published since the start.
	Simulating bool  `json:"simulating"`
	Published  int64 `json:"published"`
	// AggregatorLag is the input records the aggregator had not applied as of its last batch of
	// each partition, summed over the AggregatorPartitions that have had a batch.
	AggregatorLag        int64 `json:"aggregator_lag"`
	AggregatorPartitions int   `json:"aggregator_partitions"`
	// Aggregator counters since this process started (a restart counts the replay of the log):
	// input records applied, output events written, outputs derived again after a restart and
	// not written because the previous run had, inputs set aside as too late, records sent to
	// the dead-letter topic.
	EventsIn    int64 `json:"events_in"`
	EventsOut   int64 `json:"events_out"`
	Suppressed  int64 `json:"suppressed"`
	SetAside    int64 `json:"set_aside"`
	DeadLetters int64 `json:"dead_letters"`
	// ProjectionLag is, per projection consumer group, the conversation-events records after its
	// committed offsets (a projector commits after applying).
	ProjectionLag map[string]int64 `json:"projection_lag"`
	// CaughtUp: not simulating, every aggregator partition has had a batch, and nothing is
	// waiting to be applied anywhere.
	CaughtUp bool `json:"caught_up"`
}

// progress tracks what Progress reports.
type progress struct {
	client     *kafka.Client
	metrics    *aggregator.Metrics
	topic      string // conversation-events
	partitions int
	groups     []string

	simulating atomic.Bool
	published  atomic.Int64
}

// read computes the Progress now.
func (p *progress) read(ctx context.Context) (Progress, error) {
	out := Progress{Simulating: p.simulating.Load(), Published: p.published.Load(), ProjectionLag: map[string]int64{}}
	mfs, err := p.metrics.Registry.Gather()
	if err != nil {
		return out, fmt.Errorf("dev: aggregator metrics: %w", err)
	}
	counters := map[string]*int64{
		"convmeter_aggregator_events_in_total":    &out.EventsIn,
		"convmeter_aggregator_events_out_total":   &out.EventsOut,
		"convmeter_aggregator_suppressed_total":   &out.Suppressed,
		"convmeter_aggregator_set_aside_total":    &out.SetAside,
		"convmeter_aggregator_dead_letters_total": &out.DeadLetters,
	}
	for _, mf := range mfs {
		if c, ok := counters[mf.GetName()]; ok {
			for _, m := range mf.GetMetric() {
				*c += int64(m.GetCounter().GetValue())
			}
			continue
		}
		if mf.GetName() != "convmeter_aggregator_lag" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out.AggregatorLag += int64(m.GetGauge().GetValue())
			out.AggregatorPartitions++
		}
	}
	reqs := make([]kafka.OffsetRequest, p.partitions)
	parts := make([]int, p.partitions)
	for i := range reqs {
		reqs[i], parts[i] = kafka.LastOffsetOf(i), i
	}
	ends, err := p.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{p.topic: reqs}})
	if err != nil {
		return out, fmt.Errorf("dev: end offsets of %s: %w", p.topic, err)
	}
	end := map[int]int64{}
	for _, po := range ends.Topics[p.topic] {
		if po.Error != nil {
			return out, fmt.Errorf("dev: end offset of %s/%d: %w", p.topic, po.Partition, po.Error)
		}
		end[po.Partition] = po.LastOffset
	}
	for _, g := range p.groups {
		resp, err := p.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: g, Topics: map[string][]int{p.topic: parts}})
		if err != nil {
			return out, fmt.Errorf("dev: committed offsets of %s: %w", g, err)
		}
		if resp.Error != nil {
			return out, fmt.Errorf("dev: committed offsets of %s: %w", g, resp.Error)
		}
		var lag int64
		committed := map[int]int64{}
		for _, op := range resp.Topics[p.topic] {
			committed[op.Partition] = op.CommittedOffset
		}
		for part, e := range end {
			c, ok := committed[part]
			if !ok || c < 0 {
				c = 0
			}
			lag += max(0, e-c)
		}
		out.ProjectionLag[g] = lag
	}
	out.CaughtUp = !out.Simulating && out.AggregatorPartitions == p.partitions && out.AggregatorLag == 0
	for _, l := range out.ProjectionLag {
		out.CaughtUp = out.CaughtUp && l == 0
	}
	return out, nil
}

// handler serves GET /dev/progress.
func (p *progress) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		pr, err := p.read(ctx)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(pr)
	})
}
