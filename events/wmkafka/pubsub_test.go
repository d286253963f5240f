package wmkafka_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/wmkafka"
)

func brokers(t *testing.T) []string { return kafkatest.Brokers(t) }

// keyByPayload keys each message by its payload, as the suite's order test expects: messages of
// one "type" (payload) share a partition and so keep their order.
func keyByPayload(_ string, m *message.Message) (string, error) { return string(m.Payload), nil }

func newPubSub(t *testing.T, group string) (message.Publisher, message.Subscriber) {
	t.Helper()
	bs := brokers(t)
	// AllowAutoTopicCreation makes the writer ask the broker about a topic its metadata cache does
	// not know yet (the suite creates topics moments before publishing); SubscribeInitialize has
	// created every topic the suite publishes to, so nothing is auto-created.
	pub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{Brokers: bs, Source: "wmkafka-test", KeyFunc: keyByPayload, AllowAutoTopicCreation: true})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{Brokers: bs, ConsumerGroup: group, InitializePartitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	return pub, sub
}

// groupOf gives every test of the suite its own consumer group, shared by all pub/subs that test
// creates: so a closed subscriber's successor continues from the committed offsets.
func groupOf(t *testing.T) string {
	sum := sha256.Sum256([]byte(t.Name()))
	return "wmkafka-test-" + hex.EncodeToString(sum[:8])
}

func TestUniversalPubSub(t *testing.T) {
	brokers(t)
	features := tests.Features{
		ConsumerGroups:      true,
		ExactlyOnceDelivery: false,
		// Per partition, by key; keyByPayload makes the suite's order test key by message type.
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: false,
		Persistent:                          true,
		// Members of one group do not re-read what the group committed; only a new group does.
		NewSubscriberReceivesOldMessages: false,
		// The long variants (5000 messages, 50 subscribers) take minutes on 2 cores.
		ForceShort: true,
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, groupOf(t)) },
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) { return newPubSub(t, group) },
	)
}

// TestUniversalPubSubFreshGroups runs the suite again with a new consumer group per pub/sub, where
// a new subscriber does receive old messages (it starts at the first offset).
func TestUniversalPubSubFreshGroups(t *testing.T) {
	brokers(t)
	var n atomic.Int64
	features := tests.Features{
		ConsumerGroups:                   true,
		ExactlyOnceDelivery:              false,
		GuaranteedOrder:                  true,
		Persistent:                       true,
		NewSubscriberReceivesOldMessages: true,
		ForceShort:                       true,
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newPubSub(t, groupOf(t)+"-"+strconv.FormatInt(n.Add(1), 10))
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) { return newPubSub(t, group) },
	)
}
