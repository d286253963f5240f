package producer_test

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
	"github.com/convmeter/convmeter/events/producer"
	"github.com/segmentio/kafka-go"
)

const pn = "106540352242922"

func inbound(i int) *events.InboundMessage {
	return &events.InboundMessage{PhoneNumberID: pn, WaID: strconv.Itoa(16505550000 + i), WAMID: "wamid.in." + strconv.Itoa(i),
		MessageType: "text", Timestamp: events.UnixTime(1750030000 + i)}
}

func status(i int) *events.StatusUpdate {
	return &events.StatusUpdate{PhoneNumberID: pn, RecipientID: strconv.Itoa(16505550000 + i%50), WAMID: "wamid.out." + strconv.Itoa(i),
		Status: events.StatusSent, Timestamp: events.UnixTime(1750030000 + i)}
}

func accountConfig() *events.AccountConfig {
	return &events.AccountConfig{PhoneNumberID: pn, WABAID: "102290129340398", PortfolioID: "p1", TimeZone: "Asia/Kolkata",
		Currency: "INR", EffectiveFrom: 1750000000}
}

// offline returns a producer whose writer points nowhere: validation must fail before any write.
func offline(t *testing.T, n int) *producer.Producer {
	t.Helper()
	w, err := kafkax.NewWriter([]string{"127.0.0.1:1"}, "nowhere", kafkax.WithTransport(&kafka.Transport{DialTimeout: 10 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := producer.FromWriter(w, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRecordsPlacement(t *testing.T) {
	p := offline(t, 4)
	evs := []events.Event{events.New(inbound(1)), events.New(accountConfig()), events.NewTick(2, 1750030000), events.New(status(3))}
	msgs, err := p.Records(evs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1+4+1+1 {
		t.Fatalf("%d records, want 7 (the account config once per partition)", len(msgs))
	}
	var b kafkax.Balancer
	parts := []int{0, 1, 2, 3}
	if got, want := b.Balance(msgs[0], parts...), events.PartitionString(evs[0].Key, 4); got != want {
		t.Errorf("inbound on %d, want %d", got, want)
	}
	for q := range 4 {
		if got := b.Balance(msgs[1+q], parts...); got != q {
			t.Errorf("account config copy %d on %d", q, got)
		}
	}
	if got := b.Balance(msgs[5], parts...); got != 2 {
		t.Errorf("tick for partition 2 on %d", got)
	}
}

func TestPublishRejectsInvalidBeforeWriting(t *testing.T) {
	p := offline(t, 4)
	ctx := context.Background()
	noUser := inbound(2)
	noUser.WaID = ""
	wrongKey := events.New(status(4))
	wrongKey.Key = pn + "/19999999999"
	output := events.Event{ID: "x", Type: events.TypeWindowOpened, Data: &events.WindowOpened{}}
	err := p.Publish(ctx,
		events.New(inbound(1)), // valid: nothing is written all the same
		events.New(noUser),
		wrongKey,
		output,
		events.NewTick(9, 1750030000),
		events.Event{Type: events.TypeInboundMessage, Data: inbound(5)}, // no id
	)
	if !errors.Is(err, producer.ErrInvalidEvent) {
		t.Fatalf("err %v, want ErrInvalidEvent", err)
	}
	var ie *producer.InvalidEventError
	if !errors.As(err, &ie) || ie.Index != 1 {
		t.Fatalf("first invalid event: %+v", ie)
	}
	var fe *events.FieldError
	if !errors.As(ie, &fe) || !strings.HasSuffix(fe.Field, "wa_id") {
		t.Fatalf("cause %v, want the missing wa_id", ie.Err)
	}
	idx := map[int]bool{}
	for _, ie := range producer.InvalidEvents(err) {
		idx[ie.Index] = true
	}
	for _, want := range []int{1, 2, 3, 4, 5} {
		if !idx[want] {
			t.Errorf("event %d not reported (got %v)", want, idx)
		}
	}
	if idx[0] {
		t.Error("the valid event reported")
	}
	for _, s := range []string{"19999999999", "16505550002"} {
		if contains(err.Error(), s) {
			t.Errorf("error message shows a whole phone number %s: %v", s, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestPublishOutboundSendValidatesTemplateCategory(t *testing.T) {
	p := offline(t, 2)
	ok := &events.OutboundSend{PhoneNumberID: pn, WaID: "16505551234", WAMID: "wamid.o1", Timestamp: 1750030000,
		Kind: events.KindTemplate, TemplateCategory: "MARKETING"}
	msgs, err := p.Records(events.New(&events.OutboundSend{PhoneNumberID: pn, WaID: "16505551234", WAMID: "wamid.o1",
		Timestamp: 1750030000, Kind: events.KindTemplate, TemplateCategory: events.NormalizeCategory(string(ok.TemplateCategory))}))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("normalised template send: %v", err)
	}
	bad := *ok
	bad.TemplateCategory = "service"
	err = p.PublishOutboundSend(context.Background(), &bad)
	var fe *events.FieldError
	if !errors.Is(err, producer.ErrInvalidEvent) || !errors.As(err, &fe) || !strings.HasSuffix(fe.Field, "template_category") {
		t.Fatalf("service template: err %v, want a template_category field error", err)
	}
	if ok.TemplateCategory != "MARKETING" {
		t.Error("PublishOutboundSend changed the caller's struct")
	}
	if err := p.PublishOutboundSend(context.Background(), nil); !errors.Is(err, producer.ErrInvalidEvent) {
		t.Fatalf("nil send: %v", err)
	}
}

func TestFromWriterRejectsForeignBalancer(t *testing.T) {
	w := &kafka.Writer{Topic: "t", Balancer: &kafka.Hash{}}
	if _, err := producer.FromWriter(w, 3); !errors.Is(err, kafkax.ErrNotOurBalancer) {
		t.Fatalf("err %v", err)
	}
	w2, _ := kafkax.NewWriter([]string{"127.0.0.1:1"}, "t")
	if _, err := producer.FromWriter(w2, 0); !errors.Is(err, kafkax.ErrPartitionRange) {
		t.Fatalf("0 partitions: %v", err)
	}
}

// readPartitions reads every record of every partition of topic.
func readPartitions(t *testing.T, brokers []string, topic string, parts int) [][]kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	out := make([][]kafka.Message, parts)
	for p := range parts {
		resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			t.Fatal(err)
		}
		last := resp.Topics[topic][0].LastOffset
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		for range last {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("partition %d: %v", p, err)
			}
			out[p] = append(out[p], m)
		}
		_ = r.Close()
	}
	return out
}

func publishAndCheck(t *testing.T, brokers []string, topic string, parts int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := producer.New(ctx, brokers, producer.WithTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Partitions() != parts {
		t.Fatalf("producer sees %d partitions, want %d", p.Partitions(), parts)
	}
	if err := p.PublishAccountConfig(ctx, accountConfig()); err != nil {
		t.Fatal(err)
	}
	var ins []*events.InboundMessage
	var sts []*events.StatusUpdate
	for i := range 40 {
		ins = append(ins, inbound(i))
		sts = append(sts, status(i))
	}
	if err := p.PublishInbound(ctx, ins...); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishStatus(ctx, sts...); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, events.NewTick(1, 1750030100)); err != nil {
		t.Fatal(err)
	}

	recs := readPartitions(t, brokers, topic, parts)
	total := 0
	for q, ms := range recs {
		if len(ms) == 0 {
			t.Fatalf("partition %d empty", q)
		}
		first, err := kafkax.FromMessage(ms[0])
		if err != nil {
			t.Fatal(err)
		}
		if first.Type != events.TypeAccountConfig {
			t.Errorf("partition %d starts with %s, want the account config broadcast before everything else", q, first.Type)
		}
		ticks := 0
		for _, m := range ms {
			e, err := kafkax.FromMessage(m)
			if err != nil {
				t.Fatalf("partition %d offset %d: %v", q, m.Offset, err)
			}
			switch e.Type {
			case events.TypeAccountConfig:
			case events.TypeTick:
				ticks++
				if q != 1 {
					t.Errorf("tick for partition 1 on %d", q)
				}
			default:
				if want := events.PartitionString(e.Key, parts); want != q {
					t.Errorf("%s key %s on %d, want %d", e.Type, e.Key, q, want)
				}
				total++
			}
			if ty, _ := kafkax.Header(m, kafkax.HeaderType); ty != string(e.Type) {
				t.Errorf("ce_type %q for %s", ty, e.Type)
			}
		}
		if q == 1 && ticks != 1 {
			t.Errorf("partition 1 has %d ticks, want 1", ticks)
		}
	}
	if total != 80 {
		t.Fatalf("%d pair events read back, want 80", total)
	}
}

func TestPublishOnKfake(t *testing.T) {
	brokers := kafkatest.Fake(t, 3, kafkax.MessageEvents)
	publishAndCheck(t, brokers, kafkax.MessageEvents, 3)
}

func TestIntegrationPublish(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	publishAndCheck(t, brokers, kafkatest.Topic(t, brokers, 4), 4)
}

func TestIntegrationNewFailsOnMissingTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	_, err := producer.New(context.Background(), brokers, producer.WithTopic(kafkatest.Name(t)))
	if !errors.Is(err, kafkax.ErrUnknownTopic) {
		t.Fatalf("err %v, want ErrUnknownTopic", err)
	}
}
