package clock

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/segmentio/kafka-go"
)

func TestTicksOnePerPartitionDeterministic(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	a, b := Ticks(at, 3), Ticks(at, 3)
	if len(a) != 3 {
		t.Fatalf("%d ticks, want 3", len(a))
	}
	for p, e := range a {
		tick, ok := e.Data.(*events.Tick)
		if !ok || tick.Partition != int32(p) || e.Time != events.UnixTime(at.Unix()) || e.Type != events.TypeTick {
			t.Fatalf("tick %d: %+v", p, e)
		}
		if e.ID != b[p].ID {
			t.Fatalf("tick %d id %s then %s: ids must be deterministic", p, e.ID, b[p].ID)
		}
		if p > 0 && e.ID == a[p-1].ID {
			t.Fatalf("ticks %d and %d share id %s", p-1, p, e.ID)
		}
	}
}

// TestRunWritesTicksToEveryPartition runs the clock against real Kafka with a fake wall clock and
// reads each partition back: one tick per round, in the partition it names, at the clock's time.
func TestRunWritesTicksToEveryPartition(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts = 3
	topic := kafkatest.Topic(t, brokers, parts)
	var mu sync.Mutex
	now := time.Unix(1_760_000_000, 0)
	clockNow := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rounds := 0
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Brokers: brokers, Topic: topic, Interval: 20 * time.Millisecond, Now: clockNow,
			OnTick: func(_ events.UnixTime, n int) {
				if n != parts {
					t.Errorf("round over %d partitions, want %d", n, parts)
				}
				rounds++
				if rounds == 3 {
					cancel()
				}
			}}, nil)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("clock did not stop")
	}
	for p := 0; p < parts; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		for i := 0; i < 3; i++ {
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := r.ReadMessage(rctx)
			rcancel()
			if err != nil {
				t.Fatalf("partition %d tick %d: %v", p, i, err)
			}
			e, err := kafkax.FromMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			tick, ok := e.Data.(*events.Tick)
			want := events.UnixTime(1_760_000_000 + i + 1)
			if !ok || tick.Partition != int32(p) || e.Time != want {
				t.Fatalf("partition %d record %d: %s %+v at %v, want a tick for partition %d at %v", p, i, e.Type, e.Data, e.Time, p, want)
			}
		}
		_ = r.Close()
	}
}
