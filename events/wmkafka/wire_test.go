package wmkafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/wmkafka"
)

// TestWireMapping publishes events through the Publisher and reads the raw records with a plain
// kafka-go reader: the key, the murmur2 partition, an explicit partition and the CloudEvents
// headers must be on the wire; Unmarshal must give back the message.
func TestWireMapping(t *testing.T) {
	bs := kafkatest.Brokers(t)
	const n = 5
	topic := kafkatest.Topic(t, bs, n)
	pub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{Brokers: bs})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	var msgs []*message.Message
	var evs []events.Event
	for i, wa := range []string{"16505551234", "5511987654321", "919876543210", "447700900123"} {
		e := events.New(&events.StatusUpdate{PhoneNumberID: "106540352242922", RecipientID: wa, WAMID: "wamid.W" + wa,
			Status: events.StatusDelivered, Timestamp: events.UnixTime(1752000000 + i)})
		m, err := wmkafka.EventMessage(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs, evs = append(msgs, m), append(evs, e)
	}
	acct := events.New(&events.LimitUpdate{Scope: "waba", ID: "1", Tier: "TIER_2K", EffectiveFrom: 1759900000})
	am, _ := wmkafka.EventMessage(acct)
	am.Metadata.Set(wmkafka.MetaPartition, "3")
	msgs, evs = append(msgs, am), append(evs, acct)
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}

	got := map[string]kafka.Message{}
	for p := range n {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: bs, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		hwm, err := kafka.DialLeader(context.Background(), "tcp", bs[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := hwm.ReadLastOffset()
		hwm.Close()
		if err != nil {
			t.Fatal(err)
		}
		for range last {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			id, _ := kafkax.Header(m, "ce_id")
			got[id] = m
		}
		r.Close()
	}
	if len(got) != len(evs) {
		t.Fatalf("%d records, want %d", len(got), len(evs))
	}
	for i, e := range evs {
		m := got[e.ID]
		wantP := events.PartitionString(e.Key, n)
		if i == len(evs)-1 {
			wantP = 3
		}
		if string(m.Key) != e.Key || m.Partition != wantP {
			t.Errorf("%s: key %q partition %d, want %q %d", e.ID, m.Key, m.Partition, e.Key, wantP)
		}
		for k, want := range map[string]string{"ce_specversion": "1.0", "ce_type": string(e.Type), "ce_source": events.Source,
			"ce_time": e.Time.String(), "content-type": events.ContentType, "ce_subject": e.Key} {
			if v, _ := kafkax.Header(m, k); v != want {
				t.Errorf("%s: header %s = %q, want %q", e.ID, k, v, want)
			}
		}
		if _, ok := kafkax.Header(m, wmkafka.MetaPartition); ok {
			t.Errorf("local metadata %s went on the wire", wmkafka.MetaPartition)
		}
		back := wmkafka.Unmarshal(m)
		if back.UUID != e.ID || back.Metadata.Get(wmkafka.MetaKey) != e.Key {
			t.Errorf("unmarshal: uuid %s key %s", back.UUID, back.Metadata.Get(wmkafka.MetaKey))
		}
		if _, err := kafkax.FromMessage(m); err != nil {
			t.Errorf("kafkax cannot read the record: %v", err)
		}
	}
}

func TestUnmarshalForeignRecord(t *testing.T) {
	m := wmkafka.Unmarshal(kafka.Message{Topic: "t", Partition: 2, Offset: 9, Value: []byte("x"),
		Headers: []kafka.Header{{Key: "trace", Value: []byte("abc")}}})
	if m.UUID != "t/2/9" || m.Metadata.Get("trace") != "abc" || m.Metadata.Get(wmkafka.MetaOffset) != "9" || m.Metadata.Get(wmkafka.MetaKey) != "" {
		t.Errorf("foreign record: %s %v", m.UUID, m.Metadata)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{}); err == nil {
		t.Error("publisher without brokers")
	}
	if _, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{Brokers: []string{"x:1"}}); err == nil {
		t.Error("subscriber without group")
	}
	pub, _ := wmkafka.NewPublisher(wmkafka.PublisherConfig{Brokers: []string{"127.0.0.1:1"}})
	m := message.NewMessage("1", nil)
	m.Metadata.Set(wmkafka.MetaPartition, "minus one")
	var me *wmkafka.MetadataError
	if err := pub.Publish("t", m); !errorsAs(err, &me) {
		t.Errorf("bad partition metadata: %v", err)
	}
	_ = pub.Close()
	if err := pub.Publish("t", message.NewMessage("2", nil)); !errorsIs(err, wmkafka.ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}
