// Package wmkafka is a Watermill Publisher and Subscriber backed by segmentio/kafka-go.
//
// The official watermill-kafka uses Sarama; convmeter standardises on kafka-go, so this adapter
// exists. It passes Watermill's universal Pub/Sub suite (pubsub/tests) against a real broker with
// these features, declared honestly:
//
//   - ConsumerGroups: yes. A Subscriber joins its ConsumerGroup; members of one group share the
//     partitions of a topic, distinct groups each see every message.
//   - ExactlyOnceDelivery: no. Delivery is at least once: offsets are committed after Ack, in the
//     background every CommitInterval and finally on Close, so a crash redelivers what was acked
//     but not yet committed. convmeter's events carry deterministic ids for that reason.
//   - GuaranteedOrder: per partition. Messages with the same key (MetaKey) land in one partition
//     (murmur2, as the Java client, via kafkax.Balancer) and are delivered in order; one message
//     per subscription is in flight at a time, the next is delivered only after Ack. Nack
//     redelivers the same message.
//   - Persistent: yes (it is Kafka).
//   - NewSubscriberReceivesOldMessages: only for a new consumer group (StartOffset first).
//
// # Wire mapping
//
// A Watermill message becomes one Kafka record in CloudEvents binary mode:
//
//   - key: metadata MetaKey (not sent as a header), or the Config.KeyFunc result;
//   - value: the payload, unchanged;
//   - headers: ce_specversion "1.0", ce_id = message UUID, ce_source (metadata or Config.Source),
//     ce_type and ce_time when the metadata has them, content-type when set, and every other
//     metadata entry verbatim. Metadata keys starting with "kafka_" are local and never sent.
//
// A consumed record becomes a message whose UUID is ce_id (or "topic/partition/offset" for a
// record from a producer that set none), whose metadata are the headers plus MetaKey, MetaTopic,
// MetaPartition and MetaOffset.
//
// Publish writes all messages of one call with one kafka-go WriteMessages call and returns only
// after the broker acknowledged every one of them (RequiredAcks all), or with the error.
// Temporary broker errors are retried until the first message's context (or Config.Timeout)
// ends; a retry may duplicate records of a partly failed call, which is why delivery is called at
// least once. Metadata MetaPartition sends a record to that partition (kafkax.ToPartition).
// EventMessage builds the message of an events.Event with the same headers kafkax.ToMessage
// writes, so records published here and by kafkax are indistinguishable.
//
// The universal suite runs twice in CI against the real broker (pubsub_test.go): once with one
// consumer group per test, shared by every subscriber the test creates (so a subscriber continues
// where a closed one committed), and once with a fresh group per subscriber (so a new subscriber
// reads old messages). ForceShort keeps message counts small enough for 2 cores.
package wmkafka
