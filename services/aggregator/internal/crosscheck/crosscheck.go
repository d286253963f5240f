// Package crosscheck compares what the aggregator wrote with a pure reference run: it reads every
// input partition back, runs aggregator.Processor (the engine plus dead letters and set-aside
// originals, no Kafka) over it in offset order, and compares the output and dead-letter
// partitions with the result event by event: count, ids, types, causes, keys and encoded bytes.
// The crash tests run it in a binary built without -race (cmd/crosscheck), where it is many times
// faster than inside the race-instrumented test.
package crosscheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/window"
	"github.com/segmentio/kafka-go"
)

// Produce writes msgs to topic in order, in large synchronous batches.
func Produce(ctx context.Context, brokers []string, topic string, msgs []kafka.Message) error {
	w, err := kafkax.NewWriter(brokers, topic, kafkax.WithBatch(5000, 5*time.Millisecond))
	if err != nil {
		return err
	}
	defer w.Close()
	for i := 0; i < len(msgs); i += 20000 {
		if err := w.WriteMessages(ctx, msgs[i:min(len(msgs), i+20000)]...); err != nil {
			return fmt.Errorf("produce to %s: %w", topic, err)
		}
	}
	return nil
}

// EndOffsets returns the end offset of each partition of topic.
func EndOffsets(ctx context.Context, client *kafka.Client, topic string, n int) ([]int64, error) {
	req := make([]kafka.OffsetRequest, n)
	for p := range req {
		req[p] = kafka.LastOffsetOf(p)
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := make([]int64, n)
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("end offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

// ReadPartition reads every record of topic/partition up to end.
func ReadPartition(ctx context.Context, client *kafka.Client, topic string, p int, end int64) ([]kafka.Message, error) {
	var out []kafka.Message
	for off := int64(0); off < end; {
		res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: off, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second})
		if err == nil {
			err = res.Error
		}
		if err != nil {
			return nil, fmt.Errorf("fetch %s/%d at %d: %w", topic, p, off, err)
		}
		for {
			r, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("read %s/%d after %d: %w", topic, p, off, err)
			}
			if r.Offset < off {
				continue
			}
			m := kafka.Message{Topic: topic, Partition: p, Offset: r.Offset}
			if r.Key != nil {
				m.Key, _ = io.ReadAll(r.Key)
			}
			if r.Value != nil {
				m.Value, _ = io.ReadAll(r.Value)
			}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, kafka.Header(h))
			}
			out = append(out, m)
			off = r.Offset + 1
		}
	}
	return out, nil
}

// Reference runs the pure processor over one partition's input records: what an uninterrupted
// aggregator writes.
func Reference(topic string, p int, ecfg window.Config, in []kafka.Message) (out, dead []events.Event, err error) {
	ecfg.Partition = int32(p)
	eng, err := window.New(ecfg)
	if err != nil {
		return nil, nil, err
	}
	proc := aggregator.Processor{Engine: eng, Topic: topic, Partition: int32(p)}
	for _, m := range in {
		out, dead, _ = proc.Record(m, out, dead)
	}
	return out, dead, nil
}

// Compare compares the records of one partition with the reference events and describes the
// first difference.
func Compare(what string, got []kafka.Message, want []events.Event) error {
	var wb []byte
	for i := 0; i < min(len(got), len(want)); i++ {
		var err error
		if wb, err = events.Encode(wb[:0], want[i]); err != nil {
			return fmt.Errorf("%s: reference event %d: %w", what, i, err)
		}
		if !bytes.Equal(got[i].Value, wb) || string(got[i].Key) != want[i].Key {
			return fmt.Errorf("%s: record %d (offset %d) differs:\n got key %q %s\nwant key %q %s", what, i, got[i].Offset, got[i].Key, got[i].Value, want[i].Key, wb)
		}
	}
	if len(got) > len(want) {
		return fmt.Errorf("%s: %d records, want %d; first extra: %s", what, len(got), len(want), got[len(want)].Value)
	}
	if len(got) < len(want) {
		b, _ := events.Marshal(want[len(got)])
		return fmt.Errorf("%s: %d records, want %d; first missing: %s", what, len(got), len(want), b)
	}
	return nil
}

// Totals counts what Check compared.
type Totals struct {
	Inputs      int `json:"inputs"`
	Outputs     int `json:"outputs"`
	DeadLetters int `json:"dead_letters"`
	SetAside    int `json:"set_aside"`
	Corrections int `json:"corrections"`
}

// Check reads every input partition back, runs the reference and compares the output and
// dead-letter topics with it, partition by partition.
func Check(ctx context.Context, brokers []string, topics kafkax.Topics, n int, ecfg window.Config) (Totals, error) {
	var tot Totals
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ends := map[string][]int64{}
	for _, topic := range []string{topics.MessageEvents, topics.ConversationEvents, topics.DeadLetter} {
		e, err := EndOffsets(ctx, client, topic, n)
		if err != nil {
			return tot, err
		}
		ends[topic] = e
	}
	for p := 0; p < n; p++ {
		input, err := ReadPartition(ctx, client, topics.MessageEvents, p, ends[topics.MessageEvents][p])
		if err != nil {
			return tot, err
		}
		wantOut, wantDead, err := Reference(topics.MessageEvents, p, ecfg, input)
		if err != nil {
			return tot, err
		}
		for _, c := range []struct {
			topic string
			want  []events.Event
		}{{topics.ConversationEvents, wantOut}, {topics.DeadLetter, wantDead}} {
			got, err := ReadPartition(ctx, client, c.topic, p, ends[c.topic][p])
			if err != nil {
				return tot, err
			}
			if err := Compare(fmt.Sprintf("%s partition %d", c.topic, p), got, c.want); err != nil {
				return tot, err
			}
		}
		tot.Inputs += len(input)
		tot.Outputs += len(wantOut)
		tot.DeadLetters += len(wantDead)
		for _, e := range wantOut {
			switch e.Type {
			case events.TypeEventSetAside:
				tot.SetAside++
			case events.TypeCorrection:
				tot.Corrections++
			default:
			}
		}
	}
	return tot, nil
}
