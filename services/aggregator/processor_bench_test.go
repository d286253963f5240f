package aggregator_test

import (
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/aggregator/traffic"
	"github.com/convmeter/convmeter/services/window"
)

// BenchmarkProcessor is the CPU cost of the aggregator's pure step per input record over
// generated traffic on one partition: decode, engine, and encoding the outputs as records of a
// record batch (uncompressed), as the shell does. Two spans of the same 100,000 records: short
// (an action every 200 ms: 2 h, nothing past the 72 h lateness) and long (one every 30 s:
// 10 days, so windows expire, facts fold into bases and pairs are evicted, as in a live
// partition that runs for days).
func BenchmarkProcessor(b *testing.B) {
	for _, c := range []struct {
		name string
		step time.Duration
	}{{"short", 0}, {"long", 30 * time.Second}} {
		b.Run(c.name, func(b *testing.B) { benchProcessor(b, c.step) })
	}
}

func benchProcessor(b *testing.B, step time.Duration) {
	msgs, err := traffic.Generate(traffic.Config{Seed: 3, Records: 100_000, Partitions: 1, Users: 50000, Step: step})
	if err != nil {
		b.Fatal(err)
	}
	for i := range msgs {
		msgs[i].Offset = int64(i)
		msgs[i].WriterData = nil
	}
	var ts []int64
	for _, m := range msgs {
		if e, err := kafkax.FromMessage(m); err == nil && e.Type != events.TypeAccountConfig {
			ts = append(ts, int64(e.Time))
		}
	}
	slices.Sort(ts) // a few statuses are days older than the rest (set aside as too late): the middle 98% tell the span
	b.Logf("%d records, 98%% of them within %.1f h of event time", len(msgs), float64(ts[len(ts)*99/100]-ts[len(ts)/100])/3600)
	b.ResetTimer()
	n := 0
	rb := kafkax.NewRecordBatch(0)
	var value []byte
	var st window.Stats
	for i := 0; i < b.N; i++ {
		eng, _ := window.New(window.Config{})
		p := aggregator.Processor{Engine: eng, Topic: "t"}
		var out, dead []events.Event
		for _, m := range msgs {
			out, dead, _ = p.Record(m, out[:0], dead[:0])
			for _, e := range out {
				// As the shell encodes outputs: the envelope, then the record in a batch.
				var err error
				if value, err = events.Encode(value[:0], e); err != nil {
					b.Fatal(err)
				}
				if rb.Len() == 2000 {
					rb.Reset(0)
				}
				if err := rb.AppendEvent(e, value); err != nil {
					b.Fatal(err)
				}
			}
			n++
		}
		st = eng.Stats()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(st.Evicted), "evicted")
}

// BenchmarkSealLZ4 is the cost of compressing the aggregator's output records as the shell does
// (kafkax.RecordBatch.Seal with LZ4, one 4 MiB block): MB/s of uncompressed records and the
// compressed share of their size.
func BenchmarkSealLZ4(b *testing.B) {
	msgs, err := traffic.Generate(traffic.Config{Seed: 3, Records: 6_000, Partitions: 1, Users: 3000})
	if err != nil {
		b.Fatal(err)
	}
	eng, _ := window.New(window.Config{})
	p := aggregator.Processor{Engine: eng, Topic: "t"}
	var recs [][]byte
	var evs []events.Event
	var out, dead []events.Event
	for i, m := range msgs {
		m.Offset = int64(i)
		out, dead, _ = p.Record(m, out[:0], dead[:0])
		for _, e := range out {
			v, err := events.Encode(nil, e)
			if err != nil {
				b.Fatal(err)
			}
			recs, evs = append(recs, v), append(evs, e)
		}
	}
	rb := kafkax.NewRecordBatch(kafka.Lz4)
	fill := func() int {
		rb.Reset(kafka.Lz4)
		for i := range recs {
			if err := rb.AppendEvent(evs[i], recs[i]); err != nil {
				b.Fatal(err)
			}
			if rb.Size() >= 4<<20 {
				break
			}
		}
		return rb.Size()
	}
	size := fill()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill()
		b.StartTimer()
		if err := rb.Seal(time.Unix(0, 0)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rb.Bytes()))/float64(size), "compressed/uncompressed")
}
