package projector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/projections"
)

// memProjection records what it is given; it fails the first apply of partition failP once.
type memProjection struct {
	mu      sync.Mutex
	seen    map[int32][]int64 // partition → cause offsets applied, in order
	failP   int32
	failed  bool
	batches int
}

func (m *memProjection) Name() string { return "mem" }

func (m *memProjection) Apply(_ context.Context, b projections.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.Partition == m.failP && !m.failed {
		m.failed = true
		return errors.New("transient")
	}
	m.batches++
	for _, e := range b.Events {
		if e.Cause.Partition != b.Partition {
			return fmt.Errorf("event of partition %d in batch of %d", e.Cause.Partition, b.Partition)
		}
		m.seen[b.Partition] = append(m.seen[b.Partition], e.Cause.Offset)
	}
	return nil
}

func (m *memProjection) HighWater(context.Context, int32) (events.Cause, bool, error) {
	return events.Cause{}, false, nil
}

func (m *memProjection) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.seen {
		n += len(s)
	}
	return n
}

func writeTicks(t *testing.T, brokers []string, topic string, p int, from, n int) {
	t.Helper()
	w, err := kafkax.NewWriter(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var msgs []kafka.Message
	for i := from; i < from+n; i++ {
		e := events.Event{ID: fmt.Sprintf("p%d-%d", p, i), Type: events.TypeWindowExpired, Key: "N/1", Time: 1,
			Cause: &events.Cause{Partition: int32(p), Offset: int64(i)}, Data: &events.WindowExpired{}}
		m, err := kafkax.ToMessage(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafkax.ToPartition(m, p))
	}
	msgs = append(msgs, kafkax.ToPartition(kafka.Message{Value: []byte("not json")}, p))
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func runUntil(t *testing.T, brokers []string, topic, group string, m *memProjection, want int) {
	t.Helper()
	runUntilWith(t, brokers, topic, group, m, want, nil)
}

func runUntilWith(t *testing.T, brokers []string, topic, group string, m *memProjection, want int, metrics *Metrics) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, Config{Brokers: brokers, Topic: topic, Group: group, MaxBatch: 64, Parallel: 2, MaxWait: 50 * time.Millisecond,
		RetryMin:      time.Millisecond,
		ReaderOptions: []kafkax.ReaderOption{kafkax.WithSessionTimeout(time.Second)},
		Metrics:       metrics,
		OnBatch: func(Stats) {
			if m.count() >= want {
				cancel()
			}
		}}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("timed out with %d of %d events", m.count(), want)
	}
}

// TestRunBatchesAndCommits: against an in-process broker, every event reaches the projection in
// partition order, in per-partition batches, a failing Apply is retried rather than skipped,
// undecodable records are skipped, and a restarted consumer resumes after the committed offsets.
func TestRunBatchesAndCommits(t *testing.T) {
	const topic = "conv"
	brokers := kafkatest.Fake(t, 2, topic)
	writeTicks(t, brokers, topic, 0, 0, 150)
	writeTicks(t, brokers, topic, 1, 0, 100)
	m := &memProjection{seen: map[int32][]int64{}, failP: 1}
	runUntil(t, brokers, topic, "g", m, 250)
	for p, n := range map[int32]int{0: 150, 1: 100} {
		if len(m.seen[p]) != n {
			t.Fatalf("partition %d: %d events, want %d", p, len(m.seen[p]), n)
		}
		for i, off := range m.seen[p] {
			if off != int64(i) {
				t.Fatalf("partition %d: event %d has offset %d", p, i, off)
			}
		}
	}
	if !m.failed {
		t.Error("the failing apply was never tried")
	}
	// Restart with the same group: only the new records arrive.
	writeTicks(t, brokers, topic, 0, 150, 10)
	m2 := &memProjection{seen: map[int32][]int64{}, failP: -1}
	runUntil(t, brokers, topic, "g", m2, 10)
	if len(m2.seen[0]) != 10 || m2.seen[0][0] != 150 || len(m2.seen[1]) != 0 {
		t.Errorf("after restart saw %v, want offsets 150..159 of partition 0 only", m2.seen)
	}
}
