package ingest

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/events/wmkafka"
)

// record is one record as kcat, an independent client, printed it.
type record struct {
	partition int
	key       string
	headers   map[string]string
	value     []byte
}

// kcatRead reads every record of topic with kcat.
func kcatRead(t *testing.T, brokers []string, topic string) []record {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		if testenv.Required() {
			t.Fatal("kcat not found and CONVMETER_REQUIRE_SERVICES=1")
		}
		t.Skip("kcat not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-C", "-b", strings.Join(brokers, ","), "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%p\t%k\t%h\t%s\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, stderr.String())
	}
	var recs []record
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 4)
		if len(f) != 4 {
			t.Fatalf("kcat line %q", sc.Text())
		}
		p, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatal(err)
		}
		r := record{partition: p, key: f[1], headers: map[string]string{}, value: []byte(f[3])}
		for _, h := range strings.Split(f[2], ",") {
			k, v, _ := strings.Cut(h, "=")
			r.headers[k] = v
		}
		recs = append(recs, r)
	}
	return recs
}

func kafkaServer(t *testing.T, brokers []string, topics kafkax.Topics, partitions int, timeout time.Duration) *httptest.Server {
	t.Helper()
	pub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{Brokers: brokers, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	srv, err := New(Config{VerifyToken: testToken, AppSecrets: []string{testSecret}, Partitions: partitions,
		Topics: topics, PublishTimeout: timeout, PublishRetries: 1}, pub, slog.New(slog.NewTextHandler(tWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Running()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); cancel(); <-done })
	return hs
}

// TestKafkaEndToEnd posts every fixture to a server publishing to real Kafka and reads the topics
// back with kcat: keys, partitions (murmur2 of the key, or every partition for account events),
// the CloudEvents headers and the envelopes must be what Normalize produced.
func TestKafkaEndToEnd(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const n = 4
	topics := kafkatest.Topics(t, brokers, n)
	hs := kafkaServer(t, brokers, topics, n, 20*time.Second)

	want := map[string]events.Event{}
	wantRecords, wantDead := 0, 0
	for _, f := range []string{"statuses_pmp.json", "inbound_types.json", "inbound_bsuid.json", "account_capability.json",
		"template_category.json", "batch_bad_elements.json", "status_group.json"} {
		body := load(t, f)
		if code, msg := post(t, hs.URL, body, Sign(testSecret, body)); code != 200 {
			t.Fatalf("%s: %d %s", f, code, msg)
		}
		res := normalize(t, f)
		for _, e := range res.Events {
			want[e.ID] = e
			if kafkax.IsBroadcast(e.Type) {
				wantRecords += n
			} else {
				wantRecords++
			}
		}
		wantDead += len(res.Rejected)
	}

	recs := kcatRead(t, brokers, topics.MessageEvents)
	if len(recs) != wantRecords {
		t.Fatalf("%d records on %s, want %d", len(recs), topics.MessageEvents, wantRecords)
	}
	broadcastSeen := map[string][]int{}
	for _, r := range recs {
		e, err := events.Decode(r.value)
		if err != nil {
			t.Fatalf("record does not decode: %v", err)
		}
		w, ok := want[e.ID]
		if !ok {
			t.Fatalf("unexpected event %s", e.ID)
		}
		if r.key != w.Key {
			t.Errorf("%s: key %q, want %q", e.ID, r.key, w.Key)
		}
		if kafkax.IsBroadcast(e.Type) {
			broadcastSeen[e.ID] = append(broadcastSeen[e.ID], r.partition)
		} else if p := events.PartitionString(w.Key, n); r.partition != p {
			t.Errorf("%s key %s on partition %d, murmur2 says %d", e.ID, w.Key, r.partition, p)
		}
		h := r.headers
		if h["ce_id"] != e.ID || h["ce_type"] != string(e.Type) || h["ce_source"] != events.Source ||
			h["ce_specversion"] != "1.0" || h["content-type"] != events.ContentType ||
			h["ce_time"] != e.Time.Time().Format(time.RFC3339) || h["correlation_id"] == "" {
			t.Errorf("%s: headers %v", e.ID, h)
		}
	}
	for id, ps := range broadcastSeen {
		sort.Ints(ps)
		if len(ps) != n || ps[0] != 0 || ps[n-1] != n-1 {
			t.Errorf("broadcast %s on partitions %v, want 0..%d", id, ps, n-1)
		}
	}

	dead := kcatRead(t, brokers, topics.DeadLetter)
	if len(dead) != wantDead {
		t.Fatalf("%d dead letters, want %d", len(dead), wantDead)
	}
	for _, r := range dead {
		e, err := events.Decode(r.value)
		if err != nil {
			t.Fatal(err)
		}
		if dl := e.Data.(*events.DeadLetter); len(dl.Original) == 0 || dl.Reason == "" || r.headers["ce_type"] != string(events.TypeDeadLetter) {
			t.Errorf("dead letter %+v headers %v", dl, r.headers)
		}
	}
}

// TestKafkaDownThenRetry: a request while Kafka refuses connections gets 503 and writes nothing;
// Meta's retry of the same body to a server with Kafka up gets 200 and writes every event once.
// A duplicate webhook afterwards writes records with the same ids, so the id set does not change.
func TestKafkaDownThenRetry(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const n = 3
	topics := kafkatest.Topics(t, brokers, n)
	body := load(t, "statuses_pmp.json")
	res := normalize(t, "statuses_pmp.json")

	// 127.0.0.1:1 refuses connections: Kafka is down.
	down := kafkaServer(t, []string{"127.0.0.1:1"}, topics, n, 3*time.Second)
	start := time.Now()
	if code, msg := post(t, down.URL, body, Sign(testSecret, body)); code != 503 {
		t.Fatalf("kafka down: %d %s, want 503", code, msg)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the 503 took %s", d)
	}

	up := kafkaServer(t, brokers, topics, n, 20*time.Second)
	if code, msg := post(t, up.URL, body, Sign(testSecret, body)); code != 200 {
		t.Fatalf("retry: %d %s", code, msg)
	}
	count := func() map[string]int {
		c := map[string]int{}
		for _, r := range kcatRead(t, brokers, topics.MessageEvents) {
			c[r.headers["ce_id"]]++
		}
		return c
	}
	got := count()
	if len(got) != len(res.Events) {
		t.Fatalf("%d distinct ids, want %d", len(got), len(res.Events))
	}
	for _, e := range res.Events {
		if got[e.ID] != 1 {
			t.Errorf("event %s written %d times, want once", e.ID, got[e.ID])
		}
	}

	if code, _ := post(t, up.URL, body, Sign(testSecret, body)); code != 200 {
		t.Fatalf("duplicate: %d", code)
	}
	got = count()
	if len(got) != len(res.Events) {
		t.Errorf("a duplicate webhook changed the id set: %d ids", len(got))
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestRun starts the server as `convmeter ingest` would: Run looks up the partition count, listens,
// serves, and returns nil when ctx ends.
func TestRun(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topics := kafkatest.Topics(t, brokers, 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Addr: addr, VerifyToken: testToken, AppSecrets: []string{testSecret}, Brokers: brokers, Topics: topics}, nil)
	}()
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/webhook?hub.mode=subscribe&hub.verify_token=" + testToken + "&hub.challenge=42")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	body := load(t, "account_volume_tier.json")
	if code, msg := post(t, url, body, Sign(testSecret, body)); code != 200 {
		t.Fatalf("%d %s", code, msg)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(kcatRead(t, brokers, topics.MessageEvents)); n != 3 {
		t.Errorf("%d records, want the volume tier on each of 3 partitions", n)
	}
}
