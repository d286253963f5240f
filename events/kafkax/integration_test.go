package kafkax_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/segmentio/kafka-go"
)

func statusEvent(i int) events.Event {
	return events.New(&events.StatusUpdate{
		PhoneNumberID: "106540352242922", RecipientID: strconv.Itoa(16505550000 + i%97),
		WAMID: "wamid." + strconv.Itoa(i), Status: events.StatusSent, Timestamp: events.UnixTime(1750030073 + i),
	})
}

func writeEvents(t testing.TB, w *kafka.Writer, evs []events.Event) {
	t.Helper()
	msgs := make([]kafka.Message, len(evs))
	for i, e := range evs {
		m, err := kafkax.ToMessage(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write %d events: %v", len(evs), err)
	}
}

// fetchAll reads batches until want messages are in or the deadline passes.
func fetchAll(t testing.TB, r kafkax.Fetcher, want int, batchMax int) []kafkax.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []kafkax.Batch
	n := 0
	for n < want {
		b, err := kafkax.FetchBatch(ctx, r, min(batchMax, want-n), 500*time.Millisecond)
		if err != nil {
			t.Fatalf("fetch after %d of %d: %v", n, want, err)
		}
		if b.Len() > 0 {
			out = append(out, b)
			n += b.Len()
		}
	}
	return out
}

func TestIntegrationRoundTripWithHeaders(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 3)
	w, err := kafkax.NewWriter(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	evs := make([]events.Event, 60)
	for i := range evs {
		evs[i] = statusEvent(i)
	}
	writeEvents(t, w, evs)

	r, err := kafkax.NewGroupReader(brokers, kafkatest.Name(t), topic, kafkax.WithSessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	byID := map[string]events.Event{}
	for _, b := range fetchAll(t, r, len(evs), 1000) {
		for _, pb := range b.Partitions {
			for _, m := range pb.Messages {
				e, err := kafkax.FromMessage(m)
				if err != nil {
					t.Fatalf("%s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
				}
				if want := events.PartitionString(e.Key, 3); m.Partition != want {
					t.Errorf("event %s key %s on partition %d, want %d", e.ID, e.Key, m.Partition, want)
				}
				if id, _ := kafkax.Header(m, kafkax.HeaderID); id != e.ID {
					t.Errorf("ce_id %q, want %q", id, e.ID)
				}
				if ty, _ := kafkax.Header(m, kafkax.HeaderType); ty != string(events.TypeStatusUpdate) {
					t.Errorf("ce_type %q", ty)
				}
				if ct, _ := kafkax.Header(m, kafkax.HeaderContentType); ct != "application/json" {
					t.Errorf("content-type %q", ct)
				}
				if d := time.Since(m.Time); d < 0 || d > time.Hour {
					t.Errorf("record time %v is not append time", m.Time)
				}
				byID[e.ID] = e
			}
		}
	}
	for _, e := range evs {
		got, ok := byID[e.ID]
		if !ok {
			t.Fatalf("event %s not read back", e.ID)
		}
		b1, _ := events.Marshal(e)
		b2, _ := events.Marshal(got)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("event changed:\n%s\n%s", b1, b2)
		}
	}
}

func TestIntegrationEnsureTopicsDetectsPartitionMismatch(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topics := kafkax.PrefixedTopics(kafkatest.Name(t))
	t.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), brokers, topics.All()...) })

	if err := kafkax.EnsureTopics(ctx, brokers, topics.Specs(4)...); err != nil {
		t.Fatalf("create: %v", err)
	}
	for _, name := range topics.All() {
		n, err := kafkax.PartitionCount(ctx, brokers, name)
		if err != nil || n != 4 {
			t.Fatalf("%s: %d partitions, err %v; want 4", name, n, err)
		}
	}
	if err := kafkax.EnsureTopics(ctx, brokers, topics.Specs(4)...); err != nil {
		t.Fatalf("second EnsureTopics with the same counts: %v", err)
	}
	err := kafkax.EnsureTopics(ctx, brokers, topics.Specs(6)...)
	var pm *kafkax.PartitionMismatchError
	if !errors.Is(err, kafkax.ErrPartitionMismatch) || !errors.As(err, &pm) {
		t.Fatalf("EnsureTopics with 6 over 4: err %v, want a PartitionMismatchError", err)
	}
	if pm.Want != 6 || pm.Got != 4 {
		t.Fatalf("mismatch %+v, want 6 and 4", pm)
	}
	if _, err := kafkax.PartitionCount(ctx, brokers, topics.MessageEvents+".absent"); !errors.Is(err, kafkax.ErrUnknownTopic) {
		t.Fatalf("absent topic: %v, want ErrUnknownTopic", err)
	}
	// The snapshots topic is compacted.
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topics.Snapshots, ConfigNames: []string{"cleanup.policy"},
	}}})
	if err != nil || len(resp.Resources) != 1 || len(resp.Resources[0].ConfigEntries) != 1 {
		t.Fatalf("describe configs: %+v %v", resp, err)
	}
	if v := resp.Resources[0].ConfigEntries[0].ConfigValue; v != "compact" {
		t.Fatalf("snapshots cleanup.policy %q, want compact", v)
	}
	// An existing topic whose config differs from its spec is reported, not altered.
	plain := kafkatest.Topic(t, brokers, 4)
	err = kafkax.EnsureTopics(ctx, brokers, kafkax.TopicSpec{Name: plain, Partitions: 4, Configs: map[string]string{"cleanup.policy": "compact"}})
	var cm *kafkax.ConfigMismatchError
	if !errors.Is(err, kafkax.ErrConfigMismatch) || !errors.As(err, &cm) || cm.Got != "delete" || cm.Want != "compact" {
		t.Fatalf("uncompacted topic ensured as compacted: err %v", err)
	}
}

// A topic EnsureTopics has just created can be read at once: every partition's leader answers
// ListOffsets (a KRaft broker names leaders in its metadata a little before they serve, and the
// aggregator's first call on a fresh output topic is a ListOffsets; it used to fail with Not
// Leader For Partition and retry 200 ms later).
func TestIntegrationEnsureTopicsReturnsServedTopics(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	for i := range 5 {
		name := kafkatest.Name(t) + "." + strconv.Itoa(i)
		t.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), brokers, name) })
		if err := kafkax.EnsureTopics(ctx, brokers, kafkax.TopicSpec{Name: name, Partitions: 8}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		for p := range 8 {
			req.Topics[name] = append(req.Topics[name], kafka.LastOffsetOf(p))
		}
		res, err := client.ListOffsets(ctx, req)
		if err != nil {
			t.Fatalf("list offsets of %s: %v", name, err)
		}
		if got := res.Topics[name]; len(got) != 8 {
			t.Fatalf("list offsets of %s: %d partitions answered, want 8", name, len(got))
		}
		for _, po := range res.Topics[name] {
			if po.Error != nil || po.LastOffset != 0 {
				t.Fatalf("%s/%d right after EnsureTopics: offset %d, err %v", name, po.Partition, po.LastOffset, po.Error)
			}
		}
	}
}

// countingCommitter records every commit call a reader makes.
type countingCommitter struct {
	r     *kafka.Reader
	calls [][]kafka.Message
}

func (c *countingCommitter) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	c.calls = append(c.calls, msgs)
	return c.r.CommitMessages(ctx, msgs...)
}

func TestIntegrationCommitOnePerPartitionAndResume(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts, total, first = 4, 400, 150
	topic := kafkatest.Topic(t, brokers, parts)
	group := kafkatest.Name(t)
	w, err := kafkax.NewWriter(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	evs := make([]events.Event, total)
	for i := range evs {
		evs[i] = statusEvent(i)
	}
	writeEvents(t, w, evs)

	r1, err := kafkax.NewGroupReader(brokers, group, topic, kafkax.WithSessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	batches := fetchAll(t, r1, first, first)
	cc := &countingCommitter{r: r1}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	committed := map[int]int64{}
	seen := map[string]bool{}
	for _, b := range batches {
		if err := kafkax.Commit(ctx, cc, b); err != nil {
			t.Fatal(err)
		}
		for _, pb := range b.Partitions {
			committed[pb.Partition] = pb.Last().Offset + 1
			for _, m := range pb.Messages {
				seen[strconv.Itoa(m.Partition)+"@"+strconv.FormatInt(m.Offset, 10)] = true
			}
		}
	}
	if len(cc.calls) != len(batches) {
		t.Fatalf("%d commit calls for %d batches", len(cc.calls), len(batches))
	}
	for i, c := range cc.calls {
		if len(c) != len(batches[i].Partitions) {
			t.Fatalf("commit %d carried %d messages for %d partitions: one per partition expected", i, len(c), len(batches[i].Partitions))
		}
	}
	if err := r1.Close(); err != nil {
		t.Fatalf("close first reader: %v", err)
	}

	// The group's committed offsets are what Commit said.
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	offs, err := client.ConsumerOffsets(ctx, kafka.TopicAndGroup{Topic: topic, GroupId: group})
	if err != nil {
		t.Fatal(err)
	}
	for p, o := range committed {
		if offs[p] != o {
			t.Errorf("partition %d: committed offset %d, want %d", p, offs[p], o)
		}
	}

	// A new reader in the same group starts right after the commits: nothing seen twice, nothing lost.
	r2, err := kafkax.NewGroupReader(brokers, group, topic, kafkax.WithSessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	firstOffset := map[int]int64{}
	n := first
	for _, b := range fetchAll(t, r2, total-first, 1000) {
		for _, pb := range b.Partitions {
			if _, ok := firstOffset[pb.Partition]; !ok {
				firstOffset[pb.Partition] = pb.Messages[0].Offset
			}
			for _, m := range pb.Messages {
				k := strconv.Itoa(m.Partition) + "@" + strconv.FormatInt(m.Offset, 10)
				if seen[k] {
					t.Fatalf("partition %d offset %d delivered again after commit", m.Partition, m.Offset)
				}
				seen[k] = true
				n++
			}
		}
	}
	for p, o := range committed {
		if fo, ok := firstOffset[p]; ok && fo != o {
			t.Errorf("partition %d resumed at %d, want %d", p, fo, o)
		}
	}
	if n != total || len(seen) != total {
		t.Fatalf("read %d (%d distinct), want %d", n, len(seen), total)
	}
}

func TestIntegrationBroadcastAndTicksReachEveryPartition(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts = 5
	topic := kafkatest.Topic(t, brokers, parts)
	w, err := kafkax.NewWriter(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := events.New(&events.AccountConfig{PhoneNumberID: "106540352242922", WABAID: "w1", TimeZone: "UTC", Currency: "USD", EffectiveFrom: 1750000000})
	if err := kafkax.Broadcast(ctx, w, cfg, parts); err != nil {
		t.Fatal(err)
	}
	for p := range parts {
		if err := kafkax.WriteToPartition(ctx, w, events.NewTick(int32(p), 1750000001), p, parts); err != nil {
			t.Fatal(err)
		}
	}
	for p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 200 * time.Millisecond})
		var got []events.Event
		for range 2 {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("partition %d: %v", p, err)
			}
			e, err := kafkax.FromMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		_ = r.Close()
		if got[0].ID != cfg.ID || got[0].Type != events.TypeAccountConfig {
			t.Errorf("partition %d: first record %s %s, want the account config", p, got[0].Type, got[0].ID)
		}
		if tk, ok := got[1].Data.(*events.Tick); !ok || int(tk.Partition) != p {
			t.Errorf("partition %d: second record %s %+v, want its own tick", p, got[1].Type, got[1].Data)
		}
	}
}

// TestIntegrationPartitionerAgreesWithKcat is the placement proof against an independent client:
// librdkafka (kcat) with murmur2_random, the Java-compatible partitioner, in both directions.
func TestIntegrationPartitionerAgreesWithKcat(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	kcat := testenv.Tool(t, "scripts/services.sh installs it: apt-get install kcat", "kcat")
	const parts, n = 6, 2000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keys := proofKeys(n)

	t.Run("kcat produces, kafka-go reads", func(t *testing.T) {
		topic := kafkatest.Topic(t, brokers, parts)
		var in bytes.Buffer
		for i, k := range keys {
			fmt.Fprintf(&in, "%s\t%d\n", k, i)
		}
		cmd := exec.CommandContext(ctx, kcat, "-P", "-b", strings.Join(brokers, ","), "-t", topic,
			"-X", "topic.partitioner=murmur2_random", "-K", "\t")
		cmd.Stdin = &in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, out)
		}
		got := 0
		for p := range parts {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
			last, err := lastOffset(ctx, brokers, topic, p)
			if err != nil {
				t.Fatal(err)
			}
			for off := int64(0); off < last; off++ {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					t.Fatalf("partition %d: %v", p, err)
				}
				if want := events.Partition(m.Key, parts); want != p {
					t.Errorf("kcat put key %q on partition %d; events.Partition says %d", m.Key, p, want)
				}
				got++
			}
			_ = r.Close()
		}
		if got != n {
			t.Fatalf("read %d records, want %d", got, n)
		}
	})

	t.Run("kafka-go writes, kcat reads", func(t *testing.T) {
		topic := kafkatest.Topic(t, brokers, parts)
		w, err := kafkax.NewWriter(brokers, topic)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		msgs := make([]kafka.Message, n)
		for i, k := range keys {
			msgs[i] = kafka.Message{Key: []byte(k), Value: []byte(strconv.Itoa(i))}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, kcat, "-C", "-b", strings.Join(brokers, ","), "-t", topic,
			"-f", "%k\t%p\n", "-e", "-q").Output()
		if err != nil {
			t.Fatalf("kcat -C: %v", err)
		}
		got := 0
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			k, ps, ok := strings.Cut(sc.Text(), "\t")
			if !ok {
				t.Fatalf("kcat line %q", sc.Text())
			}
			p, _ := strconv.Atoi(ps)
			if want := events.PartitionString(k, parts); p != want {
				t.Errorf("key %q on partition %d, want %d", k, p, want)
			}
			got++
		}
		if got != n {
			t.Fatalf("kcat read %d records, want %d", got, n)
		}
	})
}

func proofKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = events.PairKey(strconv.Itoa(106540352242900+i%7), strconv.Itoa(16505550000+i*7919), "")
		if i%10 == 0 {
			keys[i] = events.PairKey("106540352242922", "", "US.bsuid."+strconv.Itoa(i))
		}
	}
	return keys
}

// pythonProducer sends each stdin line as a key with kafka-python's default (Java-compatible
// murmur2) partitioner and prints "key<TAB>partition" from the broker's acknowledgement.
const pythonProducer = `
import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=sys.argv[1].split(","), acks="all")
keys = [l.rstrip("\n") for l in sys.stdin]
fs = [(k, p.send(sys.argv[2], key=k.encode(), value=b"v")) for k in keys]
for k, f in fs:
    print("%s\t%d" % (k, f.get(timeout=60).partition))
p.close()
`

// TestIntegrationPartitionerAgreesWithKafkaPython is an optional third opinion: kafka-python's
// default partitioner. It skips when python3 or the kafka module is missing (pip install
// kafka-python).
func TestIntegrationPartitionerAgreesWithKafkaPython(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import kafka").Run() != nil {
		t.Skip("python3 with kafka-python not available (optional: pip install kafka-python)")
	}
	const parts, n = 6, 500
	topic := kafkatest.Topic(t, brokers, parts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keys := proofKeys(n)
	cmd := exec.CommandContext(ctx, py, "-c", pythonProducer, strings.Join(brokers, ","), topic)
	cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kafka-python producer: %v", err)
	}
	got := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, ps, _ := strings.Cut(line, "\t")
		p, err := strconv.Atoi(ps)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if want := events.PartitionString(k, parts); p != want {
			t.Errorf("kafka-python put %q on %d, events.Partition says %d", k, p, want)
		}
		got++
	}
	if got != n {
		t.Fatalf("%d acknowledgements, want %d", got, n)
	}
}

// kafkaLibs finds the Kafka jars scripts/services.sh caches (CONVMETER_CACHE or ~/.cache/convmeter).
func kafkaLibs() string {
	dirs := []string{os.Getenv("CONVMETER_CACHE")}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "convmeter"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(d, "kafka-*", "libs", "kafka-clients-*.jar")); len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	return ""
}

// TestIntegrationPartitionerAgreesWithJavaClient produces keyed records with the Java client
// itself (kafka.tools.ConsoleProducer from the jars scripts/services.sh runs Kafka with, default
// partitioner) and checks every record landed on events.Partition. It skips when java or the jars
// are missing (Kafka not started by scripts/services.sh on this machine).
func TestIntegrationPartitionerAgreesWithJavaClient(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	java, err := exec.LookPath("java")
	libs := kafkaLibs()
	if err != nil || libs == "" {
		t.Skip("java or the Kafka jars of scripts/services.sh not found; this optional check needs both")
	}
	const parts, n = 6, 2000
	topic := kafkatest.Topic(t, brokers, parts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keys := proofKeys(n)
	var in bytes.Buffer
	for i, k := range keys {
		fmt.Fprintf(&in, "%s\t%d\n", k, i)
	}
	cmd := exec.CommandContext(ctx, java, "-Xms64m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
		"-Dlog4j.configuration=file:/dev/null", "-cp", filepath.Join(libs, "*"),
		"kafka.tools.ConsoleProducer", "--bootstrap-server", strings.Join(brokers, ","), "--topic", topic,
		"--property", "parse.key=true", "--property", "key.separator=\t",
		"--producer-property", "acks=all", "--producer-property", "linger.ms=5")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("java ConsoleProducer: %v\n%s", err, out)
	}
	got := 0
	for p := range parts {
		last, err := lastOffset(ctx, brokers, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		for range last {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("partition %d: %v", p, err)
			}
			if want := events.Partition(m.Key, parts); want != p {
				t.Errorf("the Java client put key %q on partition %d; events.Partition says %d", m.Key, p, want)
			}
			got++
		}
		_ = r.Close()
	}
	if got != n {
		t.Fatalf("read %d records, want %d", got, n)
	}
}

func lastOffset(ctx context.Context, brokers []string, topic string, p int) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
	if err != nil {
		return 0, err
	}
	for _, po := range resp.Topics[topic] {
		if po.Partition == p {
			if po.Error != nil {
				return 0, po.Error
			}
			return po.LastOffset, nil
		}
	}
	return 0, fmt.Errorf("no offset for %s/%d", topic, p)
}

// TestIntegrationReaderReadsRecordLargerThanMaxBytes: the reader's MaxBytes bounds memory per
// partition fetch, not the record size; a dead letter near MaxDeadLetterRecordBytes must still be
// read (KIP-74: a fetch returns at least one whole batch).
func TestIntegrationReaderReadsRecordLargerThanMaxBytes(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := kafkatest.Name(t) + "." + kafkax.DeadLetter
	t.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), brokers, topic) })
	spec := kafkax.DefaultTopics().Specs(1)[2]
	spec.Name = topic
	if err := kafkax.EnsureTopics(ctx, brokers, spec); err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewWriter(brokers, topic, kafkax.WithCompression(0))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	big := bytes.Repeat([]byte("x"), 6<<20)
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: big}, kafka.Message{Key: []byte("k"), Value: []byte("small")}); err != nil {
		t.Fatalf("write a 6 MiB dead letter: %v", err)
	}
	r, err := kafkax.NewGroupReader(brokers, kafkatest.Name(t), topic, kafkax.WithSessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := fetchAll(t, r, 2, 10)
	msgs := b[0].Messages()
	for _, x := range b[1:] {
		msgs = append(msgs, x.Messages()...)
	}
	if len(msgs[0].Value) != len(big) || string(msgs[1].Value) != "small" {
		t.Fatalf("read %d and %q, want the 6 MiB record and \"small\"", len(msgs[0].Value), msgs[1].Value)
	}
}

// TestIntegrationBatchWriter writes record batches built by RecordBatch with every codec to one
// partition of the real broker (which checks each batch's CRC, decompresses and validates every
// record) and reads them back with kafka-go's reader: the records ToMessage builds, in order, with
// the broker's offsets. A batch over the topic's max.message.bytes is refused with the broker's
// error, and nothing of it lands.
func TestIntegrationBatchWriter(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := kafkatest.Name(t)
	t.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), brokers, topic) })
	if err := kafkax.EnsureTopics(ctx, brokers, kafkax.TopicSpec{Name: topic, Partitions: 2, Configs: map[string]string{"max.message.bytes": "1048576"}}); err != nil {
		t.Fatal(err)
	}
	big := kafkatest.Name(t) + "-big"
	t.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), brokers, big) })
	if err := kafkax.EnsureTopics(ctx, brokers, kafkax.TopicSpec{Name: big, Partitions: 1, Configs: map[string]string{"max.message.bytes": "16777216"}}); err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewBatchWriter(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want []kafka.Message
	b := kafkax.NewRecordBatch(0)
	for i, c := range []kafka.Compression{0, kafka.Lz4, kafka.Snappy, kafka.Zstd, kafka.Gzip} {
		b.Reset(c)
		for j := range 500 {
			e := statusEvent(i*1000 + j)
			m, err := kafkax.ToMessage(e)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.AppendEvent(e, m.Value); err != nil {
				t.Fatal(err)
			}
			want = append(want, m)
		}
		if err := b.Seal(time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteBatch(ctx, 1, b); err != nil {
			t.Fatalf("codec %v: %v", c, err)
		}
	}
	b.Reset(0)
	if err := b.Append(nil, bytes.Repeat([]byte("x"), 1100000), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Seal(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBatch(ctx, 1, b); !errors.Is(err, kafka.MessageSizeTooLarge) {
		t.Fatalf("batch over max.message.bytes: %v, want %v", err, kafka.MessageSizeTooLarge)
	}
	// LZ4 frames of several blocks, one of them stored uncompressed (random bytes), and xerial
	// Snappy of several chunks: the broker decompresses compressed batches to validate them.
	bw, err := kafkax.NewBatchWriter(brokers, big)
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 5<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	big3 := [][]byte{noise, bytes.Repeat([]byte("convmeter "), 1<<19), noise[:1000]}
	for _, c := range []kafka.Compression{kafka.Lz4, kafka.Snappy} {
		b.Reset(c)
		for _, v := range big3 {
			if err := b.Append(nil, v, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Seal(time.Now()); err != nil {
			t.Fatal(err)
		}
		if b.Size() < len(noise) || b.Size() > len(noise)+len(noise)/8 {
			t.Fatalf("%v: %d bytes of records compressed to %d", c, len(noise)*6/5+1000, b.Size())
		}
		if err := bw.WriteBatch(ctx, 0, b); err != nil {
			t.Fatalf("multi-block %v batch: %v", c, err)
		}
	}
	if end, err := lastOffset(ctx, brokers, big, 0); err != nil || end != 6 {
		t.Fatalf("end offset of %s: %d (%v), want 6", big, end, err)
	}
	// Read back by kafka-go and by librdkafka (kcat), an independent decoder of both framings.
	// A short MaxWait: Close waits for the fetch in flight.
	br := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: big, Partition: 0, MaxBytes: 16 << 20, MaxWait: 200 * time.Millisecond})
	defer br.Close()
	for i := range 6 {
		m, err := br.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s record %d: %v", big, i, err)
		}
		if !bytes.Equal(m.Value, big3[i%3]) {
			t.Fatalf("%s record %d: %d bytes, not the %d written", big, i, len(m.Value), len(big3[i%3]))
		}
	}
	if kcat, err := exec.LookPath("kcat"); err == nil {
		out, err := exec.CommandContext(ctx, kcat, "-C", "-b", brokers[0], "-t", big, "-p", "0", "-o", "beginning", "-e", "-q",
			"-X", "fetch.message.max.bytes=16777216", "-f", "%o %S\n").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat: %v: %s", err, out)
		}
		var lines []string
		for i := range 6 {
			lines = append(lines, fmt.Sprintf("%d %d", i, len(big3[i%3])))
		}
		if got, want := strings.TrimSpace(string(out)), strings.Join(lines, "\n"); got != want {
			t.Fatalf("kcat read %s as\n%s\nwant\n%s", big, got, want)
		}
	} else if testenv.Required() {
		t.Fatal("kcat not installed; scripts/services.sh installs it (apt-get install kcat)")
	}

	if end, err := lastOffset(ctx, brokers, topic, 1); err != nil || end != int64(len(want)) {
		t.Fatalf("end offset %d (%v), want %d", end, err, len(want))
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 1, MaxBytes: 4 << 20, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	for i, w := range want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read record %d: %v", i, err)
		}
		if m.Offset != int64(i) || !bytes.Equal(m.Key, w.Key) || !bytes.Equal(m.Value, w.Value) || len(m.Headers) != len(w.Headers) {
			t.Fatalf("record %d at offset %d: key %q value %q headers %v, want %q %q %v", i, m.Offset, m.Key, m.Value, m.Headers, w.Key, w.Value, w.Headers)
		}
		for j := range w.Headers {
			if m.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(m.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: %s=%q, want %s=%q", i, j, m.Headers[j].Key, m.Headers[j].Value, w.Headers[j].Key, w.Headers[j].Value)
			}
		}
		if d := time.Since(m.Time); d < 0 || d > time.Hour {
			t.Fatalf("record %d time %v", i, m.Time)
		}
		if e, err := kafkax.FromMessage(m); err != nil || e.ID != statusEvent(i/500*1000+i%500).ID {
			t.Fatalf("record %d: %v %v", i, e.ID, err)
		}
	}
}

// TestIntegrationPartitionReader reads a partition of the real broker with PartitionReader from
// its first offset, from the middle and from its end, and compares what it returns with kafka-go's
// own partition reader: offsets, keys, values, headers, high watermarks, as they come and again
// once the whole partition is read (records stay valid: no later fetch reuses their memory).
// FetchInto returns at once when the reader has caught up, instead of waiting out maxWait.
func TestIntegrationPartitionReader(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := kafkatest.Topic(t, brokers, 2)
	var evs []events.Event
	for i := range 4000 {
		evs = append(evs, statusEvent(i))
	}
	for i, c := range []kafka.Compression{kafka.Lz4, 0, kafka.Zstd, kafka.Snappy} { // a thousand records each
		w, err := kafkax.NewWriter(brokers, topic, kafkax.WithCompression(c), kafkax.WithBatch(700, time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		writeEvents(t, w, evs[i*1000:(i+1)*1000])
		_ = w.Close()
	}
	p := events.PartitionString(evs[0].Key, 2)
	end, err := lastOffset(ctx, brokers, topic, p)
	if err != nil || end < 1000 {
		t.Fatalf("end offset %d (%v)", end, err)
	}
	kr := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxBytes: 4 << 20, MaxWait: 200 * time.Millisecond})
	defer kr.Close()
	var want []kafka.Message
	for int64(len(want)) < end {
		m, err := kr.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	for _, from := range []int64{kafka.FirstOffset, 1, end / 2, end - 1} {
		r, err := kafkax.NewPartitionReader(kafkax.PartitionReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxBytes: 64 << 10}, from)
		if err != nil {
			t.Fatal(err)
		}
		i := max(from, 0)
		var b kafkax.Batch
		var kept []kafka.Message
		same := func(m kafka.Message, i int64) {
			t.Helper()
			w := want[i]
			if m.Offset != w.Offset || m.Partition != p || m.Topic != topic || m.HighWaterMark != end ||
				!bytes.Equal(m.Key, w.Key) || !bytes.Equal(m.Value, w.Value) || len(m.Headers) != len(w.Headers) || !m.Time.Equal(w.Time) {
				t.Fatalf("from %d: record %d: %+v, want %+v", from, i, m, w)
			}
			for j := range w.Headers {
				if m.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(m.Headers[j].Value, w.Headers[j].Value) {
					t.Fatalf("from %d: record %d header %d: %+v, want %+v", from, i, j, m.Headers[j], w.Headers[j])
				}
			}
		}
		for i < end {
			start := time.Now()
			if err := kafkax.FetchInto(ctx, r, &b, 400, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if b.Len() == 0 {
				t.Fatalf("from %d: empty batch at %d", from, i)
			}
			if b.Len() < 400 && time.Since(start) > 4*time.Second {
				t.Fatalf("from %d: a batch of %d records at %d waited out maxWait", from, b.Len(), i)
			}
			for _, m := range b.Partitions[0].Messages {
				same(m, i)
				kept = append(kept, m)
				i++
			}
		}
		for k, m := range kept {
			same(m, max(from, 0)+int64(k))
		}
		_ = r.Close()
		if _, err := r.FetchMessage(ctx); err == nil {
			t.Fatal("fetch after close")
		}

		// With Reuse the records of a call are valid until the next: checked before it. Calls of
		// 300 split the responses, so a response's memory must outlive the call that returned
		// only part of it.
		r, err = kafkax.NewPartitionReader(kafkax.PartitionReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxBytes: 64 << 10,
			Reuse: true}, from)
		if err != nil {
			t.Fatal(err)
		}
		for i = max(from, 0); i < end; {
			msgs, err := r.FetchMessages(ctx, 300)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				same(m, i)
				i++
			}
		}
		_ = r.Close()
	}

	// From the end: the reader waits for records written after it started.
	r, err := kafkax.NewPartitionReader(kafkax.PartitionReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond}, kafka.LastOffset)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := kafkax.NewWriter(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	time.Sleep(200 * time.Millisecond)
	more := statusEvent(5000)
	more.Key = evs[0].Key
	writeEvents(t, w, []events.Event{more})
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kafkax.FromMessage(m); err != nil || e.ID != more.ID || m.Offset != end {
		t.Fatalf("from the end: %v at %d (%v), want %s at %d", e.ID, m.Offset, err, more.ID, end)
	}
}

// TestIntegrationPartitionReaderReuse reads a partition of many responses with Reuse: every
// record is right when returned, and the memory cycles through a few responses' worth (the
// responses waiting, the one in hand, the one being fetched) instead of growing with the log.
func TestIntegrationPartitionReaderReuse(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := kafkatest.Topic(t, brokers, 1)
	var evs []events.Event
	for i := range 3000 {
		e := statusEvent(i)
		e.Key = statusEvent(0).Key
		evs = append(evs, e)
	}
	w, err := kafkax.NewWriter(brokers, topic, kafkax.WithCompression(kafka.Lz4), kafkax.WithBatch(100, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(evs); i += 100 { // a batch of 100 records each
		writeEvents(t, w, evs[i:i+100])
	}
	_ = w.Close()
	const prefetch = 2
	r, err := kafkax.NewPartitionReader(kafkax.PartitionReaderConfig{Brokers: brokers, Topic: topic, MaxBytes: 1 << 10,
		Prefetch: prefetch, Reuse: true}, kafka.FirstOffset)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	firsts := map[*byte]bool{} // where the first record of each response points
	calls := 0
	for i := 0; i < len(evs); {
		msgs, err := r.FetchMessages(ctx, 1000) // a whole response
		if err != nil {
			t.Fatal(err)
		}
		calls++
		firsts[unsafe.SliceData(msgs[0].Value)] = true
		for _, m := range msgs {
			e, err := kafkax.FromMessage(m)
			if err != nil || e.ID != evs[i].ID || m.Offset != int64(i) {
				t.Fatalf("record %d: %s at %d (%v), want %s", i, e.ID, m.Offset, err, evs[i].ID)
			}
			i++
		}
	}
	if calls < 20 {
		t.Fatalf("%d responses: too few to see memory reused", calls)
	}
	// The responses waiting, the one in hand and the one being fetched: prefetch+2 buffers; one
	// place more for the first response, decoded before the reader knew how large batches are.
	if len(firsts) > prefetch+3 {
		t.Fatalf("%d responses in %d places, want at most %d (reused)", calls, len(firsts), prefetch+3)
	}
}
