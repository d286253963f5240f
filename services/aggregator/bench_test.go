package aggregator_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/aggregator/traffic"
	"github.com/convmeter/convmeter/services/window"
	"github.com/segmentio/kafka-go"
)

var (
	benchRecords    = flag.Int("bench.records", 500_000, "records of BenchmarkEndToEnd")
	benchPartitions = flag.Int("bench.partitions", 4, "partitions of BenchmarkEndToEnd")
	benchPairs      = flag.Int("bench.pairs", 1_000_000, "live pairs of BenchmarkRestore")
	benchCodecs     = flag.String("bench.codecs", "lz4", "output compressions of BenchmarkEndToEnd's aggregator passes, in order (lz4, snappy, none, ...): the default's only, as other codecs' passes disturb the next (an uncompressed pass writes 470 MB the kernel flushes during the following passes)")
	benchMaxBatch   = flag.Int("bench.maxbatch", 0, "the aggregator's MaxBatch in BenchmarkEndToEnd (0: its default)")
	benchRounds     = flag.Int("bench.rounds", 5, "measured rounds of BenchmarkEndToEnd (bare reader, then the aggregator with each codec), after one warm-up round")
)

// BenchmarkEndToEnd measures, on the real broker, the rate of a bare kafka-go group reader
// draining the input topic (FetchBatch + Commit, nothing else) and the rate of the aggregator
// over the same topic (decode, engine, encode, write outputs and dead letters with acks,
// snapshots to Redis, commits), each from the start of its group join to the commit of the last
// offset, with the GC target the aggregator command sets. scripts/bench-aggregator.sh runs it.
func BenchmarkEndToEnd(b *testing.B) {
	// The GC target `convmeter aggregator` runs with (its -gc-percent default), for both readers.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	brokers := kafkatest.Brokers(b)
	rdb, prefix := redistest.Client(b)
	parts := *benchPartitions
	topics := kafkax.PrefixedTopics(kafkatest.Name(b))
	ctx := context.Background()
	if err := kafkax.EnsureTopics(ctx, brokers, topics.Specs(parts)...); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), brokers, topics.All()...) })
	msgs, err := traffic.Generate(traffic.Config{Seed: 1, Records: *benchRecords, Partitions: parts, Users: 50000})
	if err != nil {
		b.Fatal(err)
	}
	produce(b, brokers, topics.MessageEvents, msgs)
	runtime.GC() // the garbage of generating and producing the records, before the first pass
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ends, err := endOffsets(ctx, client, topics.MessageEvents, parts)
	if err != nil {
		b.Fatal(err)
	}
	total := sum(ends)
	codecs := strings.Split(*benchCodecs, ",")
	// Each pass's figures go straight to stdout as it ends: the benchmark's own log keeps only
	// ten lines.
	say := func(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }
	// The broker's CPU per pass, when the script says which process it is.
	brokerPID, _ := strconv.Atoi(os.Getenv("CONVMETER_KAFKA_PID"))
	brokerCPU := func() time.Duration {
		if brokerPID <= 0 {
			return 0
		}
		return testenv.PIDCPU(brokerPID)
	}
	brokerSays := func(d time.Duration) string {
		if brokerPID <= 0 {
			return ""
		}
		return fmt.Sprintf(", broker CPU %v", d.Round(time.Millisecond))
	}
	// Per measured round: the bare reader's rate and CPU, then each codec's ratio, rate and CPU.
	var bareRates, bareCPUs []float64
	ratios, rates, cpus := make([][]float64, len(codecs)), make([][]float64, len(codecs)), make([][]float64, len(codecs))
	b.ResetTimer()
	// Round 0 warms up (the first pass of a process grows its heap from nothing, page faults
	// included, which a running aggregator has long done: it cost the first aggregator pass up to
	// a CPU-second more than the next); rounds 1..bench.rounds are measured, and the medians
	// reported. Within a round the phases run back to back, so each ratio compares passes made
	// in the same state of the machine.
	for i := 0; i <= *benchRounds*b.N; i++ {
		// Bare reader.
		group := kafkatest.Name(b)
		start, cpu0, busy0, kcpu0 := time.Now(), testenv.ProcessCPU(), testenv.MachineBusy(), brokerCPU()
		r, err := kafkax.NewGroupReader(brokers, group, topics.MessageEvents, kafkax.WithSessionTimeout(6*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for n < total {
			batch, err := kafkax.FetchBatch(ctx, r, 10000, 200*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			if err := kafkax.Commit(ctx, r, batch); err != nil {
				b.Fatal(err)
			}
			n += int64(batch.Len())
		}
		bare, bareCPU, bareBusy, bareBroker := time.Since(start), testenv.ProcessCPU()-cpu0, testenv.MachineBusy()-busy0, brokerCPU()-kcpu0
		_ = r.Close()

		// Aggregator, in process, Redis snapshots with the default policy, once per output
		// compression of bench.codecs (LZ4, the default, unless told otherwise).
		var outs int64
		agg, aggCPU, aggBusy, aggBroker := make([]time.Duration, len(codecs)), make([]time.Duration, len(codecs)), make([]time.Duration, len(codecs)), make([]time.Duration, len(codecs))
		for j, compression := range codecs {
			store, err := aggregator.NewRedisStore(rdb, prefix, fmt.Sprint(i, "-", j, compression), topics.MessageEvents)
			if err != nil {
				b.Fatal(err)
			}
			group := kafkatest.Name(b)
			cfg := aggregator.Config{Brokers: brokers, Topics: topics, Group: group, Store: store, SessionTimeout: 6 * time.Second, Compression: compression, MaxBatch: *benchMaxBatch}
			// Every pass writes into fresh output topics: in topics a pass has written to,
			// the next would find its outputs already emitted and suppress them.
			cfg.Topics = kafkax.PrefixedTopics(kafkatest.Name(b))
			cfg.Topics.MessageEvents = topics.MessageEvents
			if err := kafkax.EnsureTopics(ctx, brokers, cfg.Topics.Specs(parts)[1:3]...); err != nil {
				b.Fatal(err)
			}
			// Deleted at the end, not between passes: the broker deletes a topic's files in
			// the background, which would run during the next pass.
			out := cfg.Topics
			b.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), brokers, out.ConversationEvents, out.DeadLetter) })
			actx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			start, cpu0, busy0, kcpu0 = time.Now(), testenv.ProcessCPU(), testenv.MachineBusy(), brokerCPU()
			go func() { done <- aggregator.Run(actx, cfg, nil) }()
			for {
				got, err := committed(ctx, client, group, topics.MessageEvents, parts)
				if err == nil && sum(got) == total {
					break
				}
				select {
				case err := <-done:
					b.Fatalf("aggregator stopped: %v", err)
				case <-time.After(20 * time.Millisecond):
				}
			}
			agg[j], aggCPU[j], aggBusy[j], aggBroker[j] = time.Since(start), testenv.ProcessCPU()-cpu0, testenv.MachineBusy()-busy0, brokerCPU()-kcpu0
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if j == 0 {
				ends, _ := endOffsets(ctx, client, cfg.Topics.ConversationEvents, parts)
				outs = sum(ends)
			}
		}
		// Cores the whole machine kept busy (this process, the broker, Redis, anything else):
		// near the core count, a phase is bound by CPU; well below, by waiting.
		cores := func(busy, wall time.Duration) float64 { return busy.Seconds() / wall.Seconds() }
		round := fmt.Sprint("round ", i)
		if i == 0 {
			round = "warm-up (not counted)"
		}
		say("%s: %d records over %d partitions (%d outputs), %d cores: bare group reader %v (%.0f/s), CPU of this process %v%s, machine busy %.2f cores",
			round, total, parts, outs, runtime.NumCPU(), bare.Round(time.Millisecond), float64(total)/bare.Seconds(), bareCPU.Round(time.Millisecond), brokerSays(bareBroker), cores(bareBusy, bare))
		for j, c := range codecs {
			say("%s: aggregator, %-6s outputs: %v (%.0f/s, ratio %.2f), CPU of this process %v%s, machine busy %.2f cores",
				round, c, agg[j].Round(time.Millisecond), float64(total)/agg[j].Seconds(), bare.Seconds()/agg[j].Seconds(), aggCPU[j].Round(time.Millisecond), brokerSays(aggBroker[j]), cores(aggBusy[j], agg[j]))
		}
		if i == 0 {
			continue
		}
		bareRates, bareCPUs = append(bareRates, float64(total)/bare.Seconds()), append(bareCPUs, bareCPU.Seconds())
		for j := range codecs {
			ratios[j] = append(ratios[j], bare.Seconds()/agg[j].Seconds())
			rates[j] = append(rates[j], float64(total)/agg[j].Seconds())
			cpus[j] = append(cpus[j], aggCPU[j].Seconds())
		}
	}
	b.ReportMetric(median(bareRates), "bare_records/s")
	b.ReportMetric(median(bareCPUs), "bare_cpu_s")
	for j, c := range codecs {
		b.ReportMetric(median(rates[j]), "aggregator_"+c+"_records/s")
		b.ReportMetric(median(ratios[j]), "ratio_"+c)
		// CPU of this process (not the broker's) per pass: steadier than wall time on a shared machine.
		b.ReportMetric(median(cpus[j]), "aggregator_"+c+"_cpu_s")
		sorted := slices.Sorted(slices.Values(ratios[j]))
		b.Logf("ratio with %s outputs over %d rounds: median %.2f, min %.2f, max %.2f", c, len(sorted), median(sorted), sorted[0], sorted[len(sorted)-1])
	}
}

// median is the median of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkRestore measures what a restart costs a partition holding bench.pairs live pairs:
// snapshot (engine to bytes), save to and load from Redis, window.Restore, and the replay rate of
// the log tail after the snapshot (at most SnapshotEvery records with the default policy).
func BenchmarkRestore(b *testing.B) {
	rdb, prefix := redistest.Client(b)
	store, err := aggregator.NewRedisStore(rdb, prefix, "bench", "restore")
	if err != nil {
		b.Fatal(err)
	}
	eng, err := window.New(window.Config{})
	if err != nil {
		b.Fatal(err)
	}
	proc := aggregator.Processor{Engine: eng, Topic: "restore"}
	t0 := events.UnixTime(1_752_000_000)
	cfgEv := events.New(&events.AccountConfig{PhoneNumberID: "106540352242922", WABAID: "waba", PortfolioID: "pf", TimeZone: "UTC", Currency: "USD", EffectiveFrom: t0 - 86400})
	rec := func(e events.Event, off int64) kafka.Message {
		m, err := kafkax.ToMessage(e)
		if err != nil {
			b.Fatal(err)
		}
		m.Offset = off
		return m
	}
	var out, dead []events.Event
	out, dead, _ = proc.Record(rec(cfgEv, 0), out, dead)
	fill := time.Now()
	for i := 0; i < *benchPairs; i++ {
		in := events.New(&events.InboundMessage{PhoneNumberID: "106540352242922", WaID: fmt.Sprintf("55%011d", i), WAMID: fmt.Sprintf("wamid.%d", i),
			MessageType: "text", Timestamp: t0 + events.UnixTime(i/1000)})
		out, dead, _ = proc.Record(rec(in, int64(i+1)), out[:0], dead[:0])
	}
	fillTook := time.Since(fill)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.Logf("engine with %d live pairs built in %v (%.0f records/s through decode+engine); heap %d MiB", eng.Pairs(), fillTook.Round(time.Millisecond), float64(*benchPairs)/fillTook.Seconds(), ms.HeapAlloc>>20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var buf bytes.Buffer
		if err := eng.Snapshot(&buf); err != nil {
			b.Fatal(err)
		}
		snapTook := time.Since(start)
		start = time.Now()
		if err := store.Save(context.Background(), 0, aggregator.Snapshot{NextOffset: int64(*benchPairs + 1), Pairs: eng.Pairs(), TakenAt: time.Now(), Data: buf.Bytes()}); err != nil {
			b.Fatal(err)
		}
		saveTook := time.Since(start)
		start = time.Now()
		s, ok, err := store.Load(context.Background(), 0)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		loadTook := time.Since(start)
		start = time.Now()
		restored, err := window.Restore(bytes.NewReader(s.Data), window.Config{})
		if err != nil {
			b.Fatal(err)
		}
		restoreTook := time.Since(start)
		if restored.Pairs() != eng.Pairs() {
			b.Fatalf("restored %d pairs, want %d", restored.Pairs(), eng.Pairs())
		}
		b.ReportMetric(float64(buf.Len())/float64(eng.Pairs()), "snapshot_bytes/pair")
		b.ReportMetric(snapTook.Seconds(), "snapshot_s")
		b.ReportMetric(saveTook.Seconds(), "redis_save_s")
		b.ReportMetric(loadTook.Seconds(), "redis_load_s")
		b.ReportMetric(restoreTook.Seconds(), "engine_restore_s")
		b.Logf("%d pairs: snapshot %d MiB (%.0f bytes/pair) in %v; Redis save %v, load %v; window.Restore %v; restart before tail replay %v",
			eng.Pairs(), buf.Len()>>20, float64(buf.Len())/float64(eng.Pairs()), snapTook.Round(time.Millisecond), saveTook.Round(time.Millisecond),
			loadTook.Round(time.Millisecond), restoreTook.Round(time.Millisecond), (loadTook + restoreTook).Round(time.Millisecond))
	}
}
