package replay

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/producer"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/internal/memlimit"
	"github.com/convmeter/convmeter/services/loadgen"
	"github.com/convmeter/convmeter/services/window"
)

// benchModel is a traffic model of the replay benchmarks.
type benchModel struct {
	name string
	cfg  loadgen.Config
	env  string // the variable that sets the number of events (scripts/bench-replay.sh)
}

// benchModels: "dense" is 20 numbers starting 2,000 sessions an hour each, so 1M events span
// 5 hours: nothing expires or folds, the engines only take new facts. "month" is the loadgen
// defaults of `convmeter loadgen` and the audit figures (4 numbers, 20,000 users each, 600
// sessions an hour each over 720 h): 1M events span 2.7 days and 3M 8.3 days, so windows expire,
// facts fold past the 72 h lateness and pairs are evicted as in a long log.
var benchModels = []benchModel{
	{"dense", loadgen.Config{Seed: 99, WABAs: 4, Numbers: 20, UsersPerNumber: 20_000, SessionsPerHour: 2000,
		Duration: 100_000 * time.Hour}, "CONVMETER_BENCH_REPLAY_EVENTS"},
	{"month", loadgen.Config{Seed: 1, WABAs: 2, Numbers: 4, UsersPerNumber: 20_000, Duration: 720 * time.Hour},
		"CONVMETER_BENCH_REPLAY_MONTH_EVENTS"},
}

// events is the size of the model's benchmark, from its variable; small by default so
// `go test -bench .` stays quick.
func (m benchModel) events() int {
	if n, err := strconv.Atoi(os.Getenv(m.env)); err == nil && n > 0 {
		return n
	}
	return 20_000
}

// traffic is the model's first n events (all of them when n <= 0).
func (m benchModel) traffic(tb testing.TB, n int) []events.Event {
	tb.Helper()
	g, err := loadgen.New(m.cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var evs []events.Event
	for n <= 0 || len(evs) < n {
		it, ok := g.Next()
		if !ok {
			break
		}
		evs = append(evs, it.Event)
	}
	tb.Logf("%s traffic: %d events over %.1f h of event time", m.name, len(evs), float64(span(evs))/3600)
	return evs
}

// span is the event time the pair events of evs cover (account events take effect earlier).
func span(evs []events.Event) events.UnixTime {
	var s timeSpan
	for _, e := range evs {
		s.add(e)
	}
	return s.hi - s.lo
}

// timeSpan is the event time of the pair events added to it: [lo, hi].
type timeSpan struct{ lo, hi events.UnixTime }

func (s *timeSpan) add(e events.Event) {
	if !kafkax.IsBroadcast(e.Type) {
		if s.lo == 0 || e.Time < s.lo {
			s.lo = e.Time
		}
		s.hi = max(s.hi, e.Time)
	}
}

// BenchmarkReplayKafka is the end-to-end replay: loadgen traffic (each of benchModels) in a
// 4-partition topic, replayed into the billing and rate-limit stores of a fresh Redis namespace.
// records/s counts input records read from Kafka, run through the engines and applied.
func BenchmarkReplayKafka(b *testing.B) {
	for _, m := range benchModels {
		b.Run(m.name, func(b *testing.B) { benchReplayKafka(b, m) })
	}
}

func benchReplayKafka(b *testing.B, m benchModel) {
	brokers := kafkatest.Brokers(b)
	parts := 4
	if n, err := strconv.Atoi(os.Getenv("CONVMETER_BENCH_REPLAY_PARTITIONS")); err == nil && n > 0 {
		parts = n
	}
	topic := kafkatest.Topic(b, brokers, parts)
	rdb, prefix := redistest.Client(b)
	ctx := context.Background()
	publishTraffic(ctx, b, m, brokers, topic)
	// The replay starts from a clean heap, as `convmeter replay` does in its own process, under
	// its memory policy: no collection below the GC floor, the memory it will allocate backed in
	// advance (Config.BeforeRead).
	runtime.GC()
	debug.FreeOSMemory()
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	limit, _ := memlimit.Set(0, 0) // GOGC as the environment says (the script: 400, as the command)
	floor := min(int64(memlimit.DefaultFloor), limit/2)
	defer memlimit.Floor(0, floor, limit)() // 0: the GOGC in force
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
		gc0, cycles0 := testenv.GC()
		batch, _ := strconv.Atoi(os.Getenv("CONVMETER_BENCH_REPLAY_BATCH"))
		stopProfile := profileReplay(b, m.name)
		st, err := Run(ctx, Config{Brokers: brokers, Topic: topic, BatchSize: batch, BeforeRead: Prefault(floor, quiet())}, ns, quiet())
		stopProfile()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(st.PerSecond, "records/s")
		b.ReportMetric((testenv.ProcessCPU().Seconds()-pcpu0)*1e6/float64(st.Records), "cpu-µs/record(go)")
		gc1, cycles1 := testenv.GC()
		b.ReportMetric((gc1-gc0).Seconds()*1e6/float64(st.Records), "cpu-µs/record(go-gc)")
		b.ReportMetric((redistest.ServerCPU(b, rdb).Seconds()-cpu0)*1e6/float64(st.Records), "cpu-µs/record(redis)")
		b.ReportMetric((redistest.ChildrenCPU(b, rdb).Seconds()-ccpu0)*1e6/float64(st.Records), "cpu-µs/record(redis-aof-rewrite)")
		if brokerPID > 0 {
			b.ReportMetric((testenv.PIDCPU(brokerPID).Seconds()-bcpu0)*1e6/float64(st.Records), "cpu-µs/record(broker)")
		}
		b.ReportMetric(float64(st.Outputs)/st.Seconds, "outputs/s")
		b.Logf("replay: %d records, %d outputs, %.2fs, %.0f records/s; apply seconds (summed over partitions) %v; redis cpu %.2fs; %d GC cycles",
			st.Records, st.Outputs, st.Seconds, st.PerSecond, st.ApplySeconds, redistest.ServerCPU(b, rdb).Seconds()-cpu0, cycles1-cycles0)
	}
}

// publishTraffic writes the model's traffic to topic as it generates it, 10,000 events at a time,
// so the heap stays small: the replay then starts from a heap like a fresh process's, as
// `convmeter replay`'s does.
func publishTraffic(ctx context.Context, b *testing.B, m benchModel, brokers []string, topic string) {
	g, err := loadgen.New(m.cfg)
	if err != nil {
		b.Fatal(err)
	}
	pr, err := producer.New(ctx, brokers, producer.WithTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	var covered timeSpan
	n, want := 0, m.events()
	chunk := make([]events.Event, 0, 10_000)
	for n < want {
		it, ok := g.Next()
		if ok {
			chunk = append(chunk, it.Event)
			covered.add(it.Event)
		}
		if len(chunk) == cap(chunk) || n+len(chunk) == want || !ok {
			if err := pr.Publish(ctx, chunk...); err != nil {
				b.Fatal(err)
			}
			n += len(chunk)
			chunk = chunk[:0]
		}
		if !ok {
			break
		}
	}
	_ = pr.Close()
	b.Logf("%s traffic: %d events over %.1f h of event time, published in %v; GOMAXPROCS %d",
		m.name, n, float64(covered.hi-covered.lo)/3600, time.Since(t0).Round(time.Millisecond), runtime.GOMAXPROCS(0))
}

// profileReplay writes a CPU profile of the replay alone (not the traffic's generation and
// publication, which -cpuprofile would include) to $CONVMETER_BENCH_REPLAY_CPUPROFILE.<model>,
// when the variable is set, and the allocation profiles at its start and end to
// <that>.allocs0 and <that>.allocs: `go tool pprof -sample_index alloc_space -diff_base
// X.allocs0 X.allocs` shows what the replay alone allocated. It returns the function that stops
// them.
func profileReplay(b *testing.B, model string) (stop func()) {
	path := os.Getenv("CONVMETER_BENCH_REPLAY_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	path += "." + model
	writeAllocs(b, path+".allocs0")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
		writeAllocs(b, path+".allocs")
		b.Logf("CPU profile of the replay in %s, allocations in %[1]s.allocs0 and %[1]s.allocs", path)
	}
}

// writeAllocs writes the allocation profile so far to path. The profile is as of the last
// garbage collection, so it collects first.
func writeAllocs(b *testing.B, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReplayEngineOnly is the same traffic through the engines alone (no Kafka, no Redis):
// the ceiling the projections' writes bring the replay down from.
func BenchmarkReplayEngineOnly(b *testing.B) {
	for _, m := range benchModels {
		b.Run(m.name, func(b *testing.B) { benchReplayEngineOnly(b, m) })
	}
}

func benchReplayEngineOnly(b *testing.B, m benchModel) {
	evs := m.traffic(b, m.events())
	msgs := encodeAll(b, evs)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		x, err := NewPartition(0, "bench", window.Config{CachePairs: cacheShare(0, 1)}, 5000, discard{}) // as a replay of one partition
		if err != nil {
			b.Fatal(err)
		}
		c0 := testenv.ProcessCPU().Seconds()
		for _, msg := range msgs {
			if err := x.Record(context.Background(), msg); err != nil {
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
