// Package kafkatest gives integration tests a Kafka broker and isolated topics, and consumer-loop
// tests an in-process broker.
//
// Brokers decides where the broker comes from exactly as every convmeter test helper does (see
// package testenv): CONVMETER_KAFKA_BROKERS, else a testcontainers-go Kafka container when a Docker
// engine answers, else a failure under CONVMETER_REQUIRE_SERVICES=1, else a skip naming
// scripts/services.sh.
//
// Fake starts franz-go's kfake in process. kafka-go's writer, plain reader and consumer-group reader
// (join, sync, heartbeat, offset commit and fetch) work against it; see the package tests.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Image is the Kafka image used when a Docker engine is available: the same Kafka version
// scripts/services.sh runs.
const Image = "apache/kafka:3.9.1"

var shared struct {
	once    sync.Once
	brokers []string
	err     error
}

// Brokers returns the broker addresses for an integration test, or ends the test (see package doc).
// With Docker, one container serves the whole test binary; testcontainers' reaper removes it.
func Brokers(t testing.TB) []string {
	t.Helper()
	v, src := testenv.Lookup(testenv.EnvKafkaBrokers)
	switch src {
	case testenv.FromEnv:
		var brokers []string
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				brokers = append(brokers, b)
			}
		}
		return brokers
	case testenv.FromDocker:
		shared.once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			shared.brokers, shared.err = startContainer(ctx)
		})
		if shared.err != nil {
			testenv.Unavailable(t, "kafka", testenv.EnvKafkaBrokers, "starting the Kafka container failed: "+shared.err.Error())
		}
		return shared.brokers
	case testenv.Missing:
	}
	testenv.Unavailable(t, "kafka", testenv.EnvKafkaBrokers, "")
	return nil
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns a topic or group name unique to this test run: "t." + the test name made safe and
// shortened, "." + 8 random hex digits.
func Name(t testing.TB) string {
	n := unsafe.ReplaceAllString(t.Name(), "_")
	if len(n) > 120 {
		n = n[:120]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t." + n + "." + hex.EncodeToString(b[:])
}

// Topic creates a uniquely named topic with the given partition count on brokers and deletes it
// when the test ends.
func Topic(t testing.TB, brokers []string, partitions int) string {
	t.Helper()
	name := Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, brokers, kafkax.TopicSpec{Name: name, Partitions: partitions}); err != nil {
		t.Fatalf("create test topic %q: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kafkax.DeleteTopics(ctx, brokers, name); err != nil {
			t.Logf("delete test topic %q: %v", name, err)
		}
	})
	return name
}

// Topics creates a full, uniquely prefixed set of convmeter topics (kafkax.PrefixedTopics with
// Name(t) as prefix, kafkax.Topics.Specs(partitions): co-partitioned, snapshots compacted) and
// deletes them when the test ends.
func Topics(t testing.TB, brokers []string, partitions int) kafkax.Topics {
	t.Helper()
	topics := kafkax.PrefixedTopics(Name(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, brokers, topics.Specs(partitions)...); err != nil {
		t.Fatalf("create test topics %s*: %v", topics.MessageEvents, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kafkax.DeleteTopics(ctx, brokers, topics.All()...); err != nil {
			t.Logf("delete test topics: %v", err)
		}
	})
	return topics
}

// Fake starts an in-process kfake cluster with one broker and the given topics, each with the given
// partition count, and closes it when the test ends. It returns the broker addresses.
func Fake(t testing.TB, partitions int, topics ...string) []string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100 * time.Millisecond)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(partitions), topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// startContainer runs Image as a single-node KRaft broker. The testcontainers Kafka module in the
// workspace (v0.40.0) does not build against testcontainers-go v0.45.0, and no newer one is
// published, so this binds a free host port to the same container port and advertises it, which
// needs no start-up script.
func startContainer(ctx context.Context) ([]string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	p := strconv.Itoa(port)
	_, err = testcontainers.Run(ctx, Image,
		testcontainers.WithExposedPorts(p+"/tcp"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				network.MustParsePort(p + "/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: p}},
			}
		}),
		testcontainers.WithEnv(map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://:" + p + ",CONTROLLER://:9093",
			"KAFKA_ADVERTISED_LISTENERS":                     "PLAINTEXT://127.0.0.1:" + p,
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
		}),
		testcontainers.WithWaitStrategy(wait.ForLog("Kafka Server started").WithStartupTimeout(2*time.Minute)),
	)
	if err != nil {
		return nil, err
	}
	return []string{"127.0.0.1:" + p}, nil
}

// DeleteRecords deletes the records of topic's partition before offset, as retention does
// (DeleteRecords, which kafka-go does not speak, through franz-go), and fails the test unless the
// partition then starts at offset.
func DeleteRecords(t testing.TB, brokers []string, topic string, partition int32, offset int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				t.Fatalf("delete records of %s/%d before %d: %v", topic, p.Partition, offset, err)
			}
			if p.LowWatermark != offset {
				t.Fatalf("delete records of %s/%d before %d: the log starts at %d", topic, p.Partition, offset, p.LowWatermark)
			}
		}
	}
}
