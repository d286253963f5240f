package aggregator_test

import (
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/aggregator/traffic"
	"github.com/convmeter/convmeter/services/window"
	"github.com/segmentio/kafka-go"
)

// BenchmarkProcessor is the CPU cost of the aggregator's pure step per input record over
// generated traffic on one partition: decode, engine, and encoding the outputs as records.
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
	for i := 0; i < b.N; i++ {
		eng, _ := window.New(window.Config{})
		p := aggregator.Processor{Engine: eng, Topic: "t"}
		var out, dead []events.Event
		for _, m := range msgs {
			out, dead, _ = p.Record(m, out[:0], dead[:0])
			for _, e := range out {
				if _, err := kafkax.ToMessage(e); err != nil {
					b.Fatal(err)
				}
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	_ = kafka.Message{}
}
