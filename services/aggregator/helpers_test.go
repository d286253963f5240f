package aggregator_test

import (
	"context"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/aggregator/internal/crosscheck"
	"github.com/segmentio/kafka-go"
)

func produce(t testing.TB, brokers []string, topic string, msgs []kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := crosscheck.Produce(ctx, brokers, topic, msgs); err != nil {
		t.Fatal(err)
	}
}

func endOffsets(ctx context.Context, client *kafka.Client, topic string, n int) ([]int64, error) {
	return crosscheck.EndOffsets(ctx, client, topic, n)
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
func waitCommitted(t testing.TB, client *kafka.Client, group, topic string, ends []int64, timeout time.Duration) {
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

// testTopics creates a fresh set of the four topics with n partitions under a unique prefix and
// deletes them at the end.
func testTopics(t testing.TB, brokers []string, prefix string, n int) kafkax.Topics {
	t.Helper()
	topics := kafkax.PrefixedTopics(prefix)
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
