package aggregator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/window"
	"github.com/segmentio/kafka-go"
)

// testTopics creates a fresh set of the four topics with n partitions and deletes them at the end.
func testTopics(t *testing.T, brokers []string, n int) kafkax.Topics {
	t.Helper()
	topics := kafkax.PrefixedTopics(kafkatest.Name(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, brokers, topics.Specs(n)...); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kafkax.DeleteTopics(ctx, brokers, topics.All()...); err != nil {
			t.Logf("delete topics: %v", err)
		}
	})
	return topics
}

// produce writes msgs to topic in order, in large synchronous batches.
func produce(t testing.TB, brokers []string, topic string, msgs []kafka.Message) {
	t.Helper()
	w, err := kafkax.NewWriter(brokers, topic, kafkax.WithBatch(5000, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := 0; i < len(msgs); i += 20000 {
		if err := w.WriteMessages(ctx, msgs[i:min(len(msgs), i+20000)]...); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// endOffsets returns the end offset of each partition of topic.
func endOffsets(ctx context.Context, client *kafka.Client, topic string, n int) ([]int64, error) {
	req := make([]kafka.OffsetRequest, n)
	for p := range req {
		req[p] = kafka.LastOffsetOf(p)
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, po.Error
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

// committed returns the group's committed offset of each partition of topic (-1: none).
func committed(ctx context.Context, client *kafka.Client, group, topic string, n int) ([]int64, error) {
	parts := make([]int, n)
	for p := range parts {
		parts[p] = p
	}
	res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, err
	}
	if res.Error != nil {
		return nil, res.Error
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = -1
	}
	for _, p := range res.Topics[topic] {
		if p.Error == nil {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// waitCommitted waits until the group has committed the end of every input partition.
func waitCommitted(t *testing.T, client *kafka.Client, group, topic string, ends []int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := committed(ctx, client, group, topic, len(ends))
		cancel()
		done := err == nil
		for p := range ends {
			done = done && got[p] == ends[p]
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not commit the end of %s within %v: committed %v (err %v), ends %v", group, topic, timeout, got, err, ends)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readPartition reads every record of topic/partition.
func readPartition(t testing.TB, client *kafka.Client, topic string, p int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ends, err := endOffsets(ctx, client, topic, p+1)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	end := ends[p]
	var out []kafka.Message
	for off := int64(0); off < end; {
		res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: off, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second})
		if err == nil {
			err = res.Error
		}
		if err != nil {
			t.Fatalf("fetch %s/%d at %d: %v", topic, p, off, err)
		}
		for {
			r, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p, err)
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
				m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
			}
			out = append(out, m)
			off = r.Offset + 1
		}
	}
	return out
}

// reference runs the pure processor over one partition's input records: what an uninterrupted
// aggregator must write.
func reference(t testing.TB, topic string, p int, ecfg window.Config, in []kafka.Message) (out, dead []events.Event) {
	t.Helper()
	ecfg.Partition = int32(p)
	eng, err := window.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	proc := Processor{Engine: eng, Topic: topic, Partition: int32(p)}
	for _, m := range in {
		out, dead, _ = proc.Record(m, out, dead)
	}
	return out, dead
}

// sameEvents compares the records of one output partition with the reference, event by event:
// count, ids, types, causes and encoded bytes. It reports the first difference.
func sameEvents(t testing.TB, what string, got []kafka.Message, want []events.Event) {
	t.Helper()
	for i := 0; i < min(len(got), len(want)); i++ {
		g, err := events.Decode(got[i].Value)
		if err != nil {
			t.Fatalf("%s: record %d (offset %d) does not decode: %v", what, i, got[i].Offset, err)
		}
		w := want[i]
		wb, err := events.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		if g.ID != w.ID || g.Type != w.Type || *g.Cause != *w.Cause || !bytes.Equal(got[i].Value, wb) {
			t.Fatalf("%s: record %d (offset %d) differs:\n got %s\nwant %s", what, i, got[i].Offset, got[i].Value, wb)
		}
		if string(got[i].Key) != w.Key {
			t.Fatalf("%s: record %d key %q, want %q", what, i, got[i].Key, w.Key)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d (%s)", what, len(got), len(want), describeTail(got, want))
	}
}

func describeTail(got []kafka.Message, want []events.Event) string {
	if len(got) > len(want) {
		return fmt.Sprintf("first extra: %s", got[len(want)].Value)
	}
	b, _ := events.Marshal(want[len(got)])
	return fmt.Sprintf("first missing: %s", b)
}

// checkAgainstReference reads every input partition back, runs the reference and compares the
// output and dead-letter topics with it, partition by partition. It returns the totals.
func checkAgainstReference(t *testing.T, brokers []string, topics kafkax.Topics, n int, ecfg window.Config) (in, out, dead int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	for p := 0; p < n; p++ {
		input := readPartition(t, client, topics.MessageEvents, p)
		wantOut, wantDead := reference(t, topics.MessageEvents, p, ecfg, input)
		sameEvents(t, fmt.Sprintf("output partition %d", p), readPartition(t, client, topics.ConversationEvents, p), wantOut)
		sameEvents(t, fmt.Sprintf("dead-letter partition %d", p), readPartition(t, client, topics.DeadLetter, p), wantDead)
		in, out, dead = in+len(input), out+len(wantOut), dead+len(wantDead)
	}
	return in, out, dead
}
