package kafkax_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/segmentio/kafka-go"
)

func seq(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

// TestBalancerAgreesWithKafkaGoMurmur2 checks the whole Balancer, not just events.Partition,
// against kafka-go's independent port of the Java partitioner, for pair keys and random bytes.
func TestBalancerAgreesWithKafkaGoMurmur2(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var ours kafkax.Balancer
	theirs := kafka.Murmur2Balancer{Consistent: true}
	for _, n := range []int{1, 2, 6, 12, 64, 257} {
		parts := seq(n)
		hist := make([]int, n)
		for i := range 5000 {
			key := []byte(events.PairKey(strconv.Itoa(100000000000000+rng.IntN(1000)), strconv.Itoa(rng.IntN(1e9)), ""))
			if i%5 == 0 {
				key = make([]byte, rng.IntN(40))
				for j := range key {
					key[j] = byte(rng.UintN(256))
				}
			}
			m := kafka.Message{Key: key}
			got, want := ours.Balance(m, parts...), theirs.Balance(m, parts...)
			if got != want {
				t.Fatalf("key %q, %d partitions: ours %d, kafka-go %d", key, n, got, want)
			}
			hist[got]++
		}
		for p, c := range hist {
			if n <= 12 && c == 0 {
				t.Errorf("%d partitions: partition %d got no key of 5000", n, p)
			}
		}
	}
}

// TestBalancerUsesEventsPartition checks that the balancer places keyed records with
// events.Partition (whose murmur2 the events package pins with Java vectors), and that an empty,
// non-nil key is hashed as the Java client does.
func TestBalancerUsesEventsPartition(t *testing.T) {
	var b kafkax.Balancer
	for _, k := range []string{"21", "foobar", "a-little-bit-long-string", "106540352242922/16505551234", "acct/106540352242922"} {
		for _, n := range []int{6, 100} {
			if got, want := b.Balance(kafka.Message{Key: []byte(k)}, seq(n)...), events.PartitionString(k, n); got != want {
				t.Errorf("key %q n %d: %d, want %d", k, n, got, want)
			}
		}
	}
	// An empty, non-nil key is hashed as Java does, not spread round robin.
	e := events.Partition([]byte{}, 6)
	for range 10 {
		if got := b.Balance(kafka.Message{Key: []byte{}}, seq(6)...); got != e {
			t.Fatalf("empty key: %d, want %d every time", got, e)
		}
	}
}

func TestBalancerExplicitAndRoundRobin(t *testing.T) {
	var b kafkax.Balancer
	m := kafka.Message{Key: []byte("106540352242922/16505551234")}
	hashed := events.Partition(m.Key, 6)
	for p := range 6 {
		got := b.Balance(kafkax.ToPartition(m, p), seq(6)...)
		if got != p {
			t.Fatalf("ToPartition(%d) placed on %d", p, got)
		}
		if q, ok := kafkax.ExplicitPartition(kafkax.ToPartition(m, p)); !ok || q != p {
			t.Fatalf("ExplicitPartition = %d %v, want %d true", q, ok, p)
		}
	}
	if got := b.Balance(m, seq(6)...); got != hashed {
		t.Fatalf("unmarked keyed message on %d, want %d", got, hashed)
	}
	seen := make([]int, 4)
	for range 400 {
		seen[b.Balance(kafka.Message{Value: []byte("tick")}, seq(4)...)]++
	}
	for p, c := range seen {
		if c != 100 {
			t.Errorf("round robin: partition %d got %d of 400, want 100", p, c)
		}
	}
}

func sampleStatus() events.Event {
	return events.New(&events.StatusUpdate{
		PhoneNumberID: "106540352242922", RecipientID: "16505551234", WAMID: "wamid.HBgL",
		Status: events.StatusDelivered, Timestamp: 1750030073,
	})
}

func TestToMessageFromMessage(t *testing.T) {
	e := sampleStatus()
	m, err := kafkax.ToMessage(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Key) != e.Key {
		t.Errorf("key %q, want %q", m.Key, e.Key)
	}
	want := map[string]string{
		"ce_specversion": "1.0",
		"ce_id":          e.ID,
		"ce_type":        "message.status.v1",
		"ce_source":      "convmeter",
		"ce_time":        "2025-06-15T23:27:53Z",
		"ce_subject":     "106540352242922/16505551234",
		"content-type":   "application/json",
	}
	if len(m.Headers) != len(want) {
		t.Errorf("%d headers, want %d: %v", len(m.Headers), len(want), m.Headers)
	}
	for k, v := range want {
		if got, ok := kafkax.Header(m, k); !ok || got != v {
			t.Errorf("header %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if !m.Time.IsZero() {
		t.Errorf("record time %v set; it must be left to the writer", m.Time)
	}
	got, err := kafkax.FromMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := events.Marshal(e)
	b2, _ := events.Marshal(got)
	if string(b1) != string(b2) {
		t.Errorf("round trip changed the event:\n%s\n%s", b1, b2)
	}

	tick := events.NewTick(3, 1750030073)
	tm, err := kafkax.ToMessage(tick)
	if err != nil {
		t.Fatal(err)
	}
	if tm.Key != nil {
		t.Errorf("tick key %q, want nil", tm.Key)
	}
	if _, ok := kafkax.Header(tm, "ce_subject"); ok {
		t.Error("tick has ce_subject")
	}
}

func TestFromMessageRejects(t *testing.T) {
	e := sampleStatus()
	m, _ := kafkax.ToMessage(e)

	moved := m
	moved.Key = []byte("106540352242922/19999999999")
	_, err := kafkax.FromMessage(moved)
	if !errors.Is(err, events.ErrInvalid) || events.KindOf(err) != events.ErrKindInvalid {
		t.Fatalf("key mismatch: err %v, want an invalid DecodeError", err)
	}
	if s := err.Error(); contains(s, "19999999999") || contains(s, "16505551234") {
		t.Errorf("error shows a whole phone number: %s", s)
	}

	keyless := m
	keyless.Key = nil
	if _, err := kafkax.FromMessage(keyless); events.KindOf(err) != events.ErrKindInvalid {
		t.Fatalf("pair event without a record key: err %v, want invalid", err)
	}

	bad := m
	bad.Value = []byte(`{"v":1,"id":"x","type":"message.status.v1"`)
	if _, err := kafkax.FromMessage(bad); events.KindOf(err) != events.ErrKindMalformed {
		t.Fatalf("truncated value: err %v, want malformed", err)
	}
	if _, err := kafkax.ToMessage(events.Event{ID: "x"}); err == nil {
		t.Fatal("ToMessage of an event without data succeeded")
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

func TestRedactKey(t *testing.T) {
	for in, want := range map[string]string{
		"106540352242922/16505551234": "106540352242922/…1234",
		"106540352242922/123":         "106540352242922/…",
		"acct/106540352242922":        "acct/106540352242922",
		"":                            "",
		"nokey":                       "nokey",
	} {
		if got := kafkax.RedactKey(in); got != want {
			t.Errorf("RedactKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTopics(t *testing.T) {
	d := kafkax.DefaultTopics()
	if d.MessageEvents != "convmeter.message-events.v1" || d.ConversationEvents != "convmeter.conversation-events.v1" ||
		d.DeadLetter != "convmeter.deadletter.v1" || d.Snapshots != "convmeter.snapshots.v1" {
		t.Fatalf("default topics changed: %+v", d)
	}
	p := kafkax.PrefixedTopics("t1")
	if p.MessageEvents != "t1.convmeter.message-events.v1" || p.Snapshots != "t1.convmeter.snapshots.v1" {
		t.Fatalf("prefixed topics: %+v", p)
	}
	specs := p.Specs(12)
	if len(specs) != 4 {
		t.Fatalf("%d specs", len(specs))
	}
	for _, s := range specs {
		if s.Partitions != 12 {
			t.Errorf("%s: %d partitions, want 12 (co-partitioned)", s.Name, s.Partitions)
		}
		if compact := s.Configs["cleanup.policy"] == "compact"; compact != (s.Name == p.Snapshots) {
			t.Errorf("%s: cleanup.policy %q", s.Name, s.Configs["cleanup.policy"])
		}
	}
	for _, s := range specs {
		want := strconv.Itoa(kafkax.MaxRecordBytes)
		switch s.Name {
		case p.DeadLetter:
			want = strconv.Itoa(kafkax.MaxDeadLetterRecordBytes)
		case p.Snapshots:
			want = strconv.Itoa(kafkax.MaxSnapshotRecordBytes)
		}
		if got := s.Configs["max.message.bytes"]; got != want {
			t.Errorf("%s: max.message.bytes %s, want %s", s.Name, got, want)
		}
	}
	for topic, want := range map[string]int64{p.MessageEvents: kafkax.MaxRecordBytes, p.DeadLetter: kafkax.MaxDeadLetterRecordBytes} {
		w, err := kafkax.NewWriter([]string{"127.0.0.1:1"}, topic)
		if err != nil {
			t.Fatal(err)
		}
		if w.BatchBytes != want {
			t.Errorf("writer to %s: BatchBytes %d, want %d (the topic's max.message.bytes)", topic, w.BatchBytes, want)
		}
		if w.RequiredAcks != kafka.RequireAll || w.Async || w.AllowAutoTopicCreation || w.BatchTimeout > 5*time.Millisecond {
			t.Errorf("writer defaults changed: acks %v async %v autocreate %v batch timeout %v", w.RequiredAcks, w.Async, w.AllowAutoTopicCreation, w.BatchTimeout)
		}
	}
	for _, ty := range events.InputTypes {
		want := ty == events.TypeAccountConfig || ty == events.TypeLimitUpdate || ty == events.TypeVolumeTier || ty == events.TypeTemplateCategory
		if kafkax.IsBroadcast(ty) != want {
			t.Errorf("IsBroadcast(%s) = %v", ty, !want)
		}
	}
}

func TestBroadcastMessages(t *testing.T) {
	w, err := kafkax.NewWriter([]string{"127.0.0.1:1"}, "x")
	if err != nil {
		t.Fatal(err)
	}
	e := events.New(&events.AccountConfig{PhoneNumberID: "1065", WABAID: "w", TimeZone: "UTC", Currency: "USD", EffectiveFrom: 1})
	msgs, err := kafkax.BroadcastMessages(w, e, 5)
	if err != nil {
		t.Fatal(err)
	}
	var b kafkax.Balancer
	for p, m := range msgs {
		if got := b.Balance(m, seq(5)...); got != p {
			t.Errorf("copy %d placed on %d", p, got)
		}
		if string(m.Key) != e.Key {
			t.Errorf("copy %d key %q", p, m.Key)
		}
	}
	if _, err := kafkax.BroadcastMessages(w, e, 0); !errors.Is(err, kafkax.ErrPartitionRange) {
		t.Errorf("0 partitions: %v", err)
	}
	other := &kafka.Writer{Balancer: &kafka.Hash{}}
	if _, err := kafkax.BroadcastMessages(other, e, 5); !errors.Is(err, kafkax.ErrNotOurBalancer) {
		t.Errorf("foreign balancer: %v", err)
	}
	if err := kafkax.WriteToPartition(context.Background(), w, events.NewTick(7, 1), 7, 5); !errors.Is(err, kafkax.ErrPartitionRange) {
		t.Errorf("tick to partition 7 of 5: %v", err)
	}
	if _, err := kafkax.NewWriter(nil, "x"); !errors.Is(err, kafkax.ErrNoBrokers) {
		t.Errorf("no brokers: %v", err)
	}
}

// fakeReader serves queued messages, then blocks until ctx ends, as kafka.Reader does.
type fakeReader struct {
	msgs    []kafka.Message
	commits [][]kafka.Message
}

func (f *fakeReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if len(f.msgs) > 0 {
		m := f.msgs[0]
		f.msgs = f.msgs[1:]
		return m, nil
	}
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (f *fakeReader) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	f.commits = append(f.commits, msgs)
	return nil
}

func interleaved(parts, perPart int) []kafka.Message {
	var out []kafka.Message
	for o := range perPart {
		for p := parts - 1; p >= 0; p-- {
			out = append(out, kafka.Message{Topic: "t", Partition: p, Offset: int64(100*p + o)})
		}
	}
	return out
}

func TestFetchBatchGroupsAndCommitsLastPerPartition(t *testing.T) {
	f := &fakeReader{msgs: interleaved(3, 10)}
	ctx := context.Background()
	b, err := kafkax.FetchBatch(ctx, f, 20, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 20 || len(b.Partitions) != 3 {
		t.Fatalf("len %d partitions %d, want 20 and 3", b.Len(), len(b.Partitions))
	}
	for i, pb := range b.Partitions {
		if pb.Partition != i {
			t.Fatalf("partitions not in order: %d at %d", pb.Partition, i)
		}
		for j := 1; j < len(pb.Messages); j++ {
			if pb.Messages[j].Offset <= pb.Messages[j-1].Offset {
				t.Fatalf("partition %d not in offset order", i)
			}
		}
	}
	if err := kafkax.Commit(ctx, f, b); err != nil {
		t.Fatal(err)
	}
	if len(f.commits) != 1 {
		t.Fatalf("%d commit calls, want 1", len(f.commits))
	}
	got := map[int]int64{}
	for _, m := range f.commits[0] {
		got[m.Partition] = m.Offset
	}
	// 20 of the interleaved 30: 7 rounds of 3 minus the last message of round 7 (partition 0).
	want := map[int]int64{2: 206, 1: 106, 0: 5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
}

func TestFetchBatchMaxWaitReturnsWhatArrived(t *testing.T) {
	f := &fakeReader{msgs: interleaved(2, 2)}
	start := time.Now()
	b, err := kafkax.FetchBatch(context.Background(), f, 100, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("quiet topic is not an error: %v", err)
	}
	if b.Len() != 4 {
		t.Fatalf("len %d, want 4", b.Len())
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("returned after %v, want about 50ms", d)
	}
	empty, err := kafkax.FetchBatch(context.Background(), f, 100, 10*time.Millisecond)
	if err != nil || empty.Len() != 0 {
		t.Fatalf("empty fetch: %d messages, err %v", empty.Len(), err)
	}
	if err := kafkax.Commit(context.Background(), f, empty); err != nil || len(f.commits) != 0 {
		t.Fatalf("commit of an empty batch: err %v, %d calls", err, len(f.commits))
	}
}

func TestFetchBatchCancelled(t *testing.T) {
	f := &fakeReader{msgs: interleaved(1, 3)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	b, err := kafkax.FetchBatch(ctx, f, 100, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's error", err)
	}
	if b.Len() != 3 {
		t.Fatalf("fetched messages dropped: %d, want 3", b.Len())
	}
	if _, err := kafkax.FetchBatch(context.Background(), f, 0, time.Second); err == nil {
		t.Fatal("max 0 accepted")
	}
}

func TestTruncateOriginal(t *testing.T) {
	small := []byte("abc")
	var h map[string]string // records without headers have none
	if got := kafkax.TruncateOriginal(small, &h); string(got) != "abc" || h != nil {
		t.Fatalf("small original changed: %q %v", got, h)
	}
	big := make([]byte, kafkax.MaxDeadLetterOriginal+10)
	got := kafkax.TruncateOriginal(big, &h)
	if len(got) != kafkax.MaxDeadLetterOriginal || h["truncated_from"] != strconv.Itoa(len(big)) || len(h["sha256"]) != 64 {
		t.Fatalf("big original: len %d headers %v", len(got), h)
	}
	// A dead letter with the truncated original fits the topic after base64.
	if 4*(kafkax.MaxDeadLetterOriginal+2)/3 > kafkax.MaxDeadLetterRecordBytes {
		t.Fatal("MaxDeadLetterOriginal does not fit MaxDeadLetterRecordBytes after base64")
	}
}
