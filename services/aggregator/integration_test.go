package aggregator_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/aggregator/internal/crosscheck"
	"github.com/convmeter/convmeter/services/aggregator/traffic"
	"github.com/convmeter/convmeter/services/window"
	"github.com/segmentio/kafka-go"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// runUntil runs the aggregator in process until stop says so, then cancels it and checks it
// returned nil.
func runUntil(t *testing.T, cfg aggregator.Config, stop func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- aggregator.Run(ctx, cfg, testLogger(t)) }()
	deadline := time.Now().Add(3 * time.Minute)
	for !stop() {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("timed out")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of cancel")
	}
}

// TestRunStopRestartMatchesReference runs the aggregator in process over generated traffic,
// stops it mid-stream (the graceful path: finish the batch, snapshot, commit), starts it again,
// and compares everything written with the pure reference.
func TestRunStopRestartMatchesReference(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts = 4
	topics := testTopics(t, brokers, kafkatest.Name(t), parts)
	msgs, err := traffic.Generate(traffic.Config{Seed: 7, Records: 12000, Partitions: parts, BadEvery: 1500})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, brokers, topics.MessageEvents, msgs)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ends, err := endOffsets(context.Background(), client, topics.MessageEvents, parts)
	if err != nil {
		t.Fatal(err)
	}
	store := aggregator.NewMemStore()
	group := kafkatest.Name(t)
	cfg := aggregator.Config{Brokers: brokers, Topics: topics, Group: group, Store: store, MaxBatch: 1000, SnapshotEvery: 2500, SessionTimeout: 6 * time.Second}
	// progress: at least min records committed, and some of every partition (a partition that
	// has applied nothing when it stops has nothing to snapshot).
	progress := func(min int64) func() bool {
		return func() bool {
			got, err := committed(context.Background(), client, group, topics.MessageEvents, parts)
			if err != nil {
				return false
			}
			var s int64
			for _, c := range got {
				if c <= 0 {
					return false
				}
				s += c
			}
			return s >= min
		}
	}
	runUntil(t, cfg, progress(sum(ends)/3))
	for p := 0; p < parts; p++ {
		if _, ok, _ := store.Load(context.Background(), p); !ok {
			t.Errorf("no snapshot of partition %d after a graceful stop", p)
		}
	}
	runUntil(t, cfg, progress(sum(ends)))
	tot, err := crosscheck.Check(context.Background(), brokers, topics, parts, window.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if tot.DeadLetters == 0 || tot.SetAside == 0 || tot.Outputs <= tot.Inputs/2 {
		t.Fatalf("traffic too thin to mean anything: %+v", tot)
	}
	t.Logf("equal to the reference: %+v", tot)
}

func TestCheckTopicsRefusesMismatch(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topics := kafkax.PrefixedTopics(kafkatest.Name(t))
	topics.MessageEvents = kafkatest.Topic(t, brokers, 4)
	topics.ConversationEvents = kafkatest.Topic(t, brokers, 3)
	topics.DeadLetter = kafkatest.Topic(t, brokers, 4)
	_, err := aggregator.CheckTopics(context.Background(), brokers, topics)
	var pm *kafkax.PartitionMismatchError
	if !errors.As(err, &pm) || pm.Topic != topics.ConversationEvents || pm.Want != 4 || pm.Got != 3 {
		t.Fatalf("CheckTopics = %v, want a PartitionMismatchError naming %s with 4 vs 3", err, topics.ConversationEvents)
	}
	err = aggregator.Run(context.Background(), aggregator.Config{Brokers: brokers, Topics: topics, Store: aggregator.NewMemStore()}, nil)
	if !errors.Is(err, kafkax.ErrPartitionMismatch) {
		t.Fatalf("Run = %v, want ErrPartitionMismatch", err)
	}
	// Stopped before it could check the topics (SIGTERM right after start): a clean stop.
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if err := aggregator.Run(stopped, aggregator.Config{Brokers: brokers, Topics: topics, Store: aggregator.NewMemStore()}, nil); err != nil {
		t.Fatalf("Run with its context ended before the start = %v, want nil", err)
	}
}

// failingStore has no snapshots and cannot store any (Redis down after start).
type failingStore struct{}

func (failingStore) Load(context.Context, int) (aggregator.Snapshot, bool, error) {
	return aggregator.Snapshot{}, false, nil
}
func (failingStore) Save(context.Context, int, aggregator.Snapshot) error {
	return errors.New("store down")
}

// TestSnapshotFailuresDoNotStopTheLine: a snapshot store that fails every Save costs restarts
// replay time, nothing else; the partition keeps applying and writing.
func TestSnapshotFailuresDoNotStopTheLine(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts = 2
	topics := testTopics(t, brokers, kafkatest.Name(t), parts)
	msgs, err := traffic.Generate(traffic.Config{Seed: 9, Records: 4000, Partitions: parts, BadEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, brokers, topics.MessageEvents, msgs)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ends, err := endOffsets(context.Background(), client, topics.MessageEvents, parts)
	if err != nil {
		t.Fatal(err)
	}
	group := kafkatest.Name(t)
	cfg := aggregator.Config{Brokers: brokers, Topics: topics, Group: group, Store: failingStore{}, MaxBatch: 500, SnapshotEvery: 1000, SessionTimeout: 6 * time.Second}
	runUntil(t, cfg, func() bool {
		got, err := committed(context.Background(), client, group, topics.MessageEvents, parts)
		return err == nil && sum(got) == sum(ends)
	})
	tot, err := crosscheck.Check(context.Background(), brokers, topics, parts, window.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("equal to the reference without a single snapshot: %+v", tot)
}

// faultyWriter fails every every-th write: alternately before writing (refused) and after
// writing (the records are in the log but the acknowledgement is lost, as when a produce
// request times out on its way back).
type faultyWriter struct {
	w     aggregator.RecordWriter
	every int

	mu            sync.Mutex
	calls         int
	refused, lost int
}

func (f *faultyWriter) WriteBatch(ctx context.Context, p int, b *kafkax.RecordBatch) error {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	if n%f.every != 0 {
		return f.w.WriteBatch(ctx, p, b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if (n/f.every)%2 == 1 {
		f.refused++
		return errors.New("injected: write refused")
	}
	if err := f.w.WriteBatch(ctx, p, b); err != nil {
		return err
	}
	f.lost++
	return errors.New("injected: acknowledgement lost")
}

// TestWriteFailuresMatchReference injects write failures, before the write and after it (a lost
// acknowledgement): each restarts the partition from its snapshot, and the output still equals
// the reference, nothing doubled by the writes that did land.
func TestWriteFailuresMatchReference(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts = 2
	topics := testTopics(t, brokers, kafkatest.Name(t), parts)
	msgs, err := traffic.Generate(traffic.Config{Seed: 13, Records: 8000, Partitions: parts, BadEvery: 700})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, brokers, topics.MessageEvents, msgs)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ends, err := endOffsets(context.Background(), client, topics.MessageEvents, parts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var faulty []*faultyWriter
	group := kafkatest.Name(t)
	cfg := aggregator.Config{Brokers: brokers, Topics: topics, Group: group, Store: aggregator.NewMemStore(),
		MaxBatch: 300, SnapshotEvery: 900, SessionTimeout: 6 * time.Second, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		WrapWriter: func(_ string, w aggregator.RecordWriter) aggregator.RecordWriter {
			f := &faultyWriter{w: w, every: 5}
			mu.Lock()
			faulty = append(faulty, f)
			mu.Unlock()
			return f
		}}
	runUntil(t, cfg, func() bool {
		got, err := committed(context.Background(), client, group, topics.MessageEvents, parts)
		return err == nil && sum(got) == sum(ends)
	})
	refused, lost := 0, 0
	for _, f := range faulty {
		f.mu.Lock()
		refused, lost = refused+f.refused, lost+f.lost
		f.mu.Unlock()
	}
	if refused == 0 || lost == 0 {
		t.Fatalf("injected %d refused and %d lost-acknowledgement writes, want some of each", refused, lost)
	}
	tot, err := crosscheck.Check(context.Background(), brokers, topics, parts, window.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d refused and %d lost-acknowledgement writes; equal to the reference: %+v", refused, lost, tot)
}
