package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/producer"
)

// BenchmarkPublish measures Producer.Publish to the real broker with default writer settings:
// status events in synchronous batches of 1000 (acks=all, LZ4) to a 6-partition topic. b.N counts
// events. Run: go test -run '^$' -bench Publish -benchtime 200000x ./events/producer
func BenchmarkPublish(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	topic := kafkatest.Topic(b, brokers, 6)
	ctx := context.Background()
	p, err := producer.New(ctx, brokers, producer.WithTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const batch = 1000
	evs := make([]events.Event, batch)
	for i := range evs {
		evs[i] = events.New(status(i))
	}
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		if err := p.Publish(ctx, evs[:n]...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
