package aggregator_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
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
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ends, err := endOffsets(ctx, client, topics.MessageEvents, parts)
	if err != nil {
		b.Fatal(err)
	}
	total := sum(ends)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Bare reader.
		group := kafkatest.Name(b)
		start, cpu0 := time.Now(), testenv.ProcessCPU()
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
		bare, bareCPU := time.Since(start), testenv.ProcessCPU()-cpu0
		_ = r.Close()

		// Aggregator, in process, Redis snapshots with the default policy, with LZ4 output
		// records (the default) and uncompressed ones.
		var agg, aggCPU [2]time.Duration
		for j, compression := range []string{"lz4", "none"} {
			store, err := aggregator.NewRedisStore(rdb, prefix, fmt.Sprint(i, compression), topics.MessageEvents)
			if err != nil {
				b.Fatal(err)
			}
			group := kafkatest.Name(b)
			cfg := aggregator.Config{Brokers: brokers, Topics: topics, Group: group, Store: store, SessionTimeout: 6 * time.Second, Compression: compression}
			if j > 0 {
				// A second run writes into fresh output topics.
				cfg.Topics = kafkax.PrefixedTopics(kafkatest.Name(b))
				cfg.Topics.MessageEvents = topics.MessageEvents
				if err := kafkax.EnsureTopics(ctx, brokers, cfg.Topics.Specs(parts)[1:3]...); err != nil {
					b.Fatal(err)
				}
				out := cfg.Topics
				b.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), brokers, out.ConversationEvents, out.DeadLetter) })
			}
			actx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			start, cpu0 = time.Now(), testenv.ProcessCPU()
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
			agg[j], aggCPU[j] = time.Since(start), testenv.ProcessCPU()-cpu0
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		outs, _ := endOffsets(ctx, client, topics.ConversationEvents, parts)
		b.ReportMetric(float64(total)/bare.Seconds(), "bare_records/s")
		b.ReportMetric(float64(total)/agg[0].Seconds(), "aggregator_lz4_records/s")
		b.ReportMetric(float64(total)/agg[1].Seconds(), "aggregator_none_records/s")
		b.ReportMetric(bare.Seconds()/agg[0].Seconds(), "ratio_lz4")
		b.ReportMetric(bare.Seconds()/agg[1].Seconds(), "ratio_none")
		// CPU of this process (not the broker's) per run: steadier than wall time on a shared machine.
		b.ReportMetric(bareCPU.Seconds(), "bare_cpu_s")
		b.ReportMetric(aggCPU[0].Seconds(), "aggregator_lz4_cpu_s")
		b.ReportMetric(aggCPU[1].Seconds(), "aggregator_none_cpu_s")
		b.Logf("%d records over %d partitions (%d outputs): bare group reader %v (%.0f/s); aggregator, LZ4 outputs %v (%.0f/s, ratio %.2f); uncompressed outputs %v (%.0f/s, ratio %.2f)",
			total, parts, sum(outs), bare.Round(time.Millisecond), float64(total)/bare.Seconds(),
			agg[0].Round(time.Millisecond), float64(total)/agg[0].Seconds(), bare.Seconds()/agg[0].Seconds(),
			agg[1].Round(time.Millisecond), float64(total)/agg[1].Seconds(), bare.Seconds()/agg[1].Seconds())
		b.Logf("CPU of this process (the broker's not counted): bare group reader %v, aggregator LZ4 %v, uncompressed %v",
			bareCPU.Round(time.Millisecond), aggCPU[0].Round(time.Millisecond), aggCPU[1].Round(time.Millisecond))
	}
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
