package kafkax_test

import (
	"context"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/segmentio/kafka-go"
)

// BenchmarkWriter measures NewWriter's defaults against other compression codecs on the real
// broker: synchronous WriteMessages of 1000 encoded status events per call to a 6-partition topic.
// b.N counts records. Run:
// go test -run '^$' -bench Writer -benchtime 200000x ./events/kafkax
func BenchmarkWriter(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	msgs := make([]kafka.Message, 1000)
	for i := range msgs {
		m, err := kafkax.ToMessage(statusEvent(i))
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	for _, c := range []struct {
		name string
		opt  kafkax.WriterOption
	}{
		{"default-lz4", func(*kafka.Writer) {}},
		{"snappy", kafkax.WithCompression(kafka.Snappy)},
		{"none", kafkax.WithCompression(0)},
	} {
		b.Run(c.name, func(b *testing.B) {
			topic := kafkatest.Topic(b, brokers, 6)
			w, err := kafkax.NewWriter(brokers, topic, c.opt)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			ctx := context.Background()
			bytes := 0
			for _, m := range msgs {
				bytes += len(m.Value)
			}
			b.ResetTimer()
			start := time.Now()
			for done := 0; done < b.N; done += len(msgs) {
				n := min(len(msgs), b.N-done)
				if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			s := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/s, "events/s")
			b.ReportMetric(float64(b.N)*float64(bytes)/float64(len(msgs))/s/1e6, "value-MB/s")
		})
	}
}

// BenchmarkFetchBatchCommit measures the consume side on the real broker: a group reader made by
// NewGroupReader reading b.N records from a 6-partition topic through FetchBatch (max 1000,
// maxWait 100ms) and Commit per batch. Writing the records is not timed. Run:
// go test -run '^$' -bench FetchBatch -benchtime 200000x ./events/kafkax
func BenchmarkFetchBatchCommit(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	topic := kafkatest.Topic(b, brokers, 6)
	w, err := kafkax.NewWriter(brokers, topic)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	msgs := make([]kafka.Message, 1000)
	for i := range msgs {
		if msgs[i], err = kafkax.ToMessage(statusEvent(i)); err != nil {
			b.Fatal(err)
		}
	}
	for done := 0; done < b.N; done += len(msgs) {
		if err := w.WriteMessages(ctx, msgs[:min(len(msgs), b.N-done)]...); err != nil {
			b.Fatal(err)
		}
	}
	r, err := kafkax.NewGroupReader(brokers, kafkatest.Name(b), topic)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ResetTimer()
	start := time.Now()
	batches := 0
	for n := 0; n < b.N; {
		batch, err := kafkax.FetchBatch(ctx, r, 1000, 100*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		if err := kafkax.Commit(ctx, r, batch); err != nil {
			b.Fatal(err)
		}
		if batch.Len() > 0 {
			batches++
		}
		n += batch.Len()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/float64(batches), "events/batch")
}
