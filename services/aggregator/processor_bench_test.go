package aggregator_test

import (
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
// record batch (uncompressed), as the shell does.
func BenchmarkProcessor(b *testing.B) {
	msgs, err := traffic.Generate(traffic.Config{Seed: 3, Records: 100_000, Partitions: 1, Users: 50000})
	if err != nil {
		b.Fatal(err)
	}
	for i := range msgs {
		msgs[i].Offset = int64(i)
		msgs[i].WriterData = nil
	}
	b.ResetTimer()
	n := 0
	rb := kafkax.NewRecordBatch(0)
	var value []byte
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
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
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
