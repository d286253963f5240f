package replay

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/producer"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/loadgen"
	"github.com/convmeter/convmeter/services/window"
)

// benchEvents is the size of the end-to-end replay benchmark (scripts/bench-replay.sh sets
// CONVMETER_BENCH_REPLAY_EVENTS); small by default so `go test -bench .` stays quick.
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("CONVMETER_BENCH_REPLAY_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 20_000
}

func benchTraffic(b *testing.B, n int) []events.Event {
	b.Helper()
	m, err := loadgen.New(loadgen.Config{Seed: 99, WABAs: 4, Numbers: 20, UsersPerNumber: 20_000, SessionsPerHour: 2000,
		Duration: 100_000 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]events.Event, 0, n)
	for len(evs) < n {
		it, ok := m.Next()
		if !ok {
			break
		}
		evs = append(evs, it.Event)
	}
	return evs
}

// BenchmarkReplayKafka is the end-to-end replay: loadgen traffic in a 4-partition topic, replayed
// into the billing and rate-limit stores of a fresh Redis namespace. records/s counts input
// records read from Kafka, run through the engines and applied.
func BenchmarkReplayKafka(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	parts := 4
	if n, err := strconv.Atoi(os.Getenv("CONVMETER_BENCH_REPLAY_PARTITIONS")); err == nil && n > 0 {
		parts = n
	}
	topic := kafkatest.Topic(b, brokers, parts)
	rdb, prefix := redistest.Client(b)
	ctx := context.Background()
	evs := benchTraffic(b, benchEvents())
	pr, err := producer.New(ctx, brokers, producer.WithTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	for i := 0; i < len(evs); i += 10_000 {
		if err := pr.Publish(ctx, evs[i:min(i+10_000, len(evs))]...); err != nil {
			b.Fatal(err)
		}
	}
	_ = pr.Close()
	b.Logf("published %d events in %v; GOMAXPROCS %d", len(evs), time.Since(t0).Round(time.Millisecond), runtime.GOMAXPROCS(0))
	// The broker's CPU too, when the script says which process it is (CONVMETER_KAFKA_PID).
	brokerPID, _ := strconv.Atoi(os.Getenv("CONVMETER_KAFKA_PID"))
	redistest.NoteOccupancy(b, rdb)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ns, err := OpenNamespace(rdb, prefix+"r"+strconv.Itoa(i)+":", books(b), parts, quiet())
		if err != nil {
			b.Fatal(err)
		}
		cpu0, pcpu0, ccpu0 := redistest.ServerCPU(b, rdb).Seconds(), testenv.ProcessCPU().Seconds(), redistest.ChildrenCPU(b, rdb).Seconds()
		bcpu0 := testenv.PIDCPU(brokerPID).Seconds()
		batch, _ := strconv.Atoi(os.Getenv("CONVMETER_BENCH_REPLAY_BATCH"))
		st, err := Run(ctx, Config{Brokers: brokers, Topic: topic, BatchSize: batch}, ns, quiet())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(st.PerSecond, "records/s")
		b.ReportMetric((testenv.ProcessCPU().Seconds()-pcpu0)*1e6/float64(st.Records), "cpu-µs/record(go)")
		b.ReportMetric((redistest.ServerCPU(b, rdb).Seconds()-cpu0)*1e6/float64(st.Records), "cpu-µs/record(redis)")
		b.ReportMetric((redistest.ChildrenCPU(b, rdb).Seconds()-ccpu0)*1e6/float64(st.Records), "cpu-µs/record(redis-aof-rewrite)")
		if brokerPID > 0 {
			b.ReportMetric((testenv.PIDCPU(brokerPID).Seconds()-bcpu0)*1e6/float64(st.Records), "cpu-µs/record(broker)")
		}
		b.ReportMetric(float64(st.Outputs)/st.Seconds, "outputs/s")
		b.Logf("replay: %d records, %d outputs, %.2fs, %.0f records/s; apply seconds (summed over partitions) %v; redis cpu %.2fs",
			st.Records, st.Outputs, st.Seconds, st.PerSecond, st.ApplySeconds, redistest.ServerCPU(b, rdb).Seconds()-cpu0)
	}
}

// BenchmarkReplayEngineOnly is the same traffic through the engines alone (no Kafka, no Redis):
// the ceiling the projections' writes bring the replay down from.
func BenchmarkReplayEngineOnly(b *testing.B) {
	evs := benchTraffic(b, benchEvents())
	msgs := encodeAll(b, evs)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		x, err := NewPartition(0, "bench", window.Config{CachePairs: cacheShare(0, 1)}, 5000, discard{}) // as a replay of one partition
		if err != nil {
			b.Fatal(err)
		}
		c0 := testenv.ProcessCPU().Seconds()
		for _, m := range msgs {
			if err := x.Record(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric((testenv.ProcessCPU().Seconds()-c0)*1e6/float64(len(msgs)), "cpu-µs/record")
		b.ReportMetric(float64(len(msgs))/time.Since(t0).Seconds(), "records/s")
	}
}

type discard struct{}

func (discard) Name() string                                   { return "discard" }
func (discard) Apply(context.Context, projections.Batch) error { return nil }
func (discard) HighWater(context.Context, int32) (events.Cause, bool, error) {
	return events.Cause{}, false, nil
}
