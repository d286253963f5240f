package kafkatest_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/segmentio/kafka-go"
)

func TestName(t *testing.T) {
	a, b := kafkatest.Name(t), kafkatest.Name(t)
	if a == b {
		t.Fatalf("two names are equal: %q", a)
	}
	if !strings.HasPrefix(a, "t.TestName.") {
		t.Fatalf("name %q does not carry the test name", a)
	}
	t.Run("sub/test with spaces", func(t *testing.T) {
		n := kafkatest.Name(t)
		if strings.ContainsAny(n, "/ ") {
			t.Fatalf("unsafe topic name %q", n)
		}
	})
}

// TestFakeConsumerGroup shows what the package doc promises: kafka-go's writer and consumer-group
// reader work against kfake, including FetchBatch, Commit and a restarted reader resuming after
// the commit.
func TestFakeConsumerGroup(t *testing.T) {
	const topic, parts, total = "convmeter.message-events.v1", 3, 90
	brokers := kafkatest.Fake(t, parts, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	n, err := kafkax.PartitionCount(ctx, brokers, topic)
	if err != nil || n != parts {
		t.Fatalf("PartitionCount = %d, %v; want %d", n, err, parts)
	}
	w, err := kafkax.NewWriter(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	msgs := make([]kafka.Message, total)
	for i := range msgs {
		e := events.New(&events.InboundMessage{PhoneNumberID: "1065", WaID: strconv.Itoa(1000 + i%11), WAMID: "w" + strconv.Itoa(i), MessageType: "text", Timestamp: events.UnixTime(1750000000 + i)})
		m, err := kafkax.ToMessage(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write to kfake: %v", err)
	}

	group := "g-" + kafkatest.Name(t)
	read := func(want int) (kafkax.Batch, *kafka.Reader) {
		r, err := kafkax.NewGroupReader(brokers, group, topic, kafkax.WithSessionTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var all kafkax.Batch
		for all.Len() < want {
			b, err := kafkax.FetchBatch(ctx, r, want-all.Len(), time.Second)
			if err != nil {
				t.Fatalf("fetch from kfake: %v", err)
			}
			if err := kafkax.Commit(ctx, r, b); err != nil {
				t.Fatalf("commit to kfake: %v", err)
			}
			for _, pb := range b.Partitions {
				for _, m := range pb.Messages {
					if p := events.Partition(m.Key, parts); p != m.Partition {
						t.Fatalf("key %q on %d, want %d", m.Key, m.Partition, p)
					}
				}
			}
			all.Partitions = append(all.Partitions, b.Partitions...)
			all = rebatch(all)
		}
		return all, r
	}
	first, r1 := read(40)
	if err := r1.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	second, r2 := read(total - 40)
	defer r2.Close()

	seen := map[string]bool{}
	for _, b := range []kafkax.Batch{first, second} {
		for _, m := range b.Messages() {
			k := strconv.Itoa(m.Partition) + "@" + strconv.FormatInt(m.Offset, 10)
			if seen[k] {
				t.Fatalf("%s delivered twice across a committed restart", k)
			}
			seen[k] = true
		}
	}
	if len(seen) != total {
		t.Fatalf("read %d distinct records, want %d", len(seen), total)
	}
}

// rebatch recounts a Batch assembled from several batches' partitions.
func rebatch(b kafkax.Batch) kafkax.Batch {
	var f sliceFetcher
	for _, pb := range b.Partitions {
		f.msgs = append(f.msgs, pb.Messages...)
	}
	out, _ := kafkax.FetchBatch(context.Background(), &f, len(f.msgs)+1, time.Millisecond)
	return out
}

type sliceFetcher struct{ msgs []kafka.Message }

func (s *sliceFetcher) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if len(s.msgs) == 0 {
		<-ctx.Done()
		return kafka.Message{}, ctx.Err()
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

func TestBrokersFromEnv(t *testing.T) {
	t.Setenv("CONVMETER_KAFKA_BROKERS", " 10.0.0.1:9092, 10.0.0.2:9092 ,")
	got := kafkatest.Brokers(t)
	if strings.Join(got, "|") != "10.0.0.1:9092|10.0.0.2:9092" {
		t.Fatalf("Brokers = %q", got)
	}
}

func TestTopicCreatesAndDeletes(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	var name string
	t.Run("sub", func(t *testing.T) {
		name = kafkatest.Topic(t, brokers, 3)
		n, err := kafkax.PartitionCount(context.Background(), brokers, name)
		if err != nil || n != 3 {
			t.Fatalf("test topic %q: %d partitions, %v", name, n, err)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := kafkax.PartitionCount(context.Background(), brokers, name)
		if errors.Is(err, kafkax.ErrUnknownTopic) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %q still there after its test ended: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTopicsCreatesCoPartitionedSet(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topics := kafkatest.Topics(t, brokers, 3)
	if topics == kafkax.DefaultTopics() {
		t.Fatal("test topics are the production names")
	}
	for _, name := range topics.All() {
		n, err := kafkax.PartitionCount(context.Background(), brokers, name)
		if err != nil || n != 3 {
			t.Fatalf("%s: %d partitions, %v; want 3", name, n, err)
		}
	}
}

// TestFakeEnsureTopics: services run EnsureTopics at start, also against kfake (convmeter dev), so
// creating and re-verifying the full topic set with its configs must work there too.
func TestFakeEnsureTopics(t *testing.T) {
	brokers := kafkatest.Fake(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	specs := kafkax.DefaultTopics().Specs(4)
	for range 2 {
		if err := kafkax.EnsureTopics(ctx, brokers, specs...); err != nil {
			t.Fatalf("EnsureTopics on kfake: %v", err)
		}
	}
	err := kafkax.EnsureTopics(ctx, brokers, kafkax.DefaultTopics().Specs(2)...)
	if !errors.Is(err, kafkax.ErrPartitionMismatch) {
		t.Fatalf("mismatch on kfake: %v", err)
	}
}
