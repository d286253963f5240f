package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/wmkafka"
)

const (
	testSecret = "app-secret-1"
	testToken  = "verify-me"
)

// fakePublisher records what was published, by topic; fail makes the next calls fail.
type fakePublisher struct {
	mu   sync.Mutex
	got  map[string][]*message.Message
	fail []error // consumed one per Publish call
}

func (p *fakePublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.fail) > 0 {
		err := p.fail[0]
		p.fail = p.fail[1:]
		if err != nil {
			return err
		}
	}
	if p.got == nil {
		p.got = map[string][]*message.Message{}
	}
	p.got[topic] = append(p.got[topic], msgs...)
	return nil
}

func (p *fakePublisher) Close() error { return nil }

func (p *fakePublisher) on(topic string) []*message.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*message.Message(nil), p.got[topic]...)
}

func startServer(t *testing.T, pub message.Publisher, secrets ...string) (*Server, *httptest.Server) {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{testSecret}
	}
	srv, err := New(Config{VerifyToken: testToken, AppSecrets: secrets, Partitions: 3, MaxBodyBytes: 1 << 20,
		Topics: kafkax.PrefixedTopics("test"), PublishTimeout: 5 * time.Second}, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Running()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
	})
	return srv, hs
}

func post(t *testing.T, url string, body []byte, sig string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHandshake(t *testing.T) {
	_, hs := startServer(t, &fakePublisher{})
	for _, tc := range []struct {
		name  string
		query url.Values
		code  int
		body  string
	}{
		{"good", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {testToken}, "hub.challenge": {"1158201444"}}, 200, "1158201444"},
		{"wrong token", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"nope"}, "hub.challenge": {"1"}}, 403, ""},
		{"no token", url.Values{"hub.mode": {"subscribe"}, "hub.challenge": {"1"}}, 403, ""},
		{"wrong mode", url.Values{"hub.mode": {"unsubscribe"}, "hub.verify_token": {testToken}, "hub.challenge": {"1"}}, 403, ""},
	} {
		resp, err := http.Get(hs.URL + "/webhook?" + tc.query.Encode())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || (tc.code == 200 && string(b) != tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, b, tc.code, tc.body)
		}
	}
}

func TestSignature(t *testing.T) {
	body := load(t, "statuses_pmp.json")
	for _, tc := range []struct {
		name    string
		secrets []string
		sig     string
		code    int
	}{
		{"good", []string{testSecret}, Sign(testSecret, body), 200},
		{"wrong secret", []string{testSecret}, Sign("other", body), 401},
		{"missing", []string{testSecret}, "", 401},
		{"not hex", []string{testSecret}, "sha256=zz", 401},
		{"sha1 form", []string{testSecret}, "sha1=" + strings.TrimPrefix(Sign(testSecret, body), "sha256="), 401},
		{"body changed", []string{testSecret}, Sign(testSecret, append([]byte(" "), body...)), 401},
		{"rotated: old secret still accepted", []string{"new-secret", testSecret}, Sign(testSecret, body), 200},
		{"rotated: new secret accepted", []string{"new-secret", testSecret}, Sign("new-secret", body), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &fakePublisher{}
			_, hs := startServer(t, pub, tc.secrets...)
			code, msg := post(t, hs.URL, body, tc.sig)
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, msg, tc.code)
			}
			n := len(pub.on("test." + kafkax.MessageEvents))
			if tc.code == 200 && n != 5 || tc.code != 200 && n != 0 {
				t.Errorf("published %d events", n)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	pub := &fakePublisher{}
	_, hs := startServer(t, pub)
	bad := []byte(`{"object":"whatsapp_business_account","entry":[`)
	if code, msg := post(t, hs.URL, bad, Sign(testSecret, bad)); code != 400 || !strings.Contains(msg, "not a JSON webhook envelope") {
		t.Errorf("malformed: %d %s", code, msg)
	}
	big := bytes.Repeat([]byte(" "), 2<<20)
	if code, _ := post(t, hs.URL, big, Sign(testSecret, big)); code != 413 {
		t.Errorf("too large: %d", code)
	}
	if n := len(pub.on("test." + kafkax.MessageEvents)); n != 0 {
		t.Errorf("published %d", n)
	}
}

func TestBadElementDeadLettered(t *testing.T) {
	pub := &fakePublisher{}
	srv, hs := startServer(t, pub)
	body := load(t, "batch_bad_elements.json")
	code, msg := post(t, hs.URL, body, Sign(testSecret, body))
	if code != 200 {
		t.Fatalf("%d %s", code, msg)
	}
	var ans Answer
	if err := json.Unmarshal([]byte(msg), &ans); err != nil || ans != (Answer{Events: 2, DeadLetters: 3, Skipped: 3}) {
		t.Errorf("answer %s %v", msg, err)
	}
	if n := len(pub.on("test." + kafkax.MessageEvents)); n != 2 {
		t.Errorf("%d events published, want 2", n)
	}
	dls := pub.on("test." + kafkax.DeadLetter)
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dls))
	}
	e, err := events.Decode(dls[2].Payload)
	if err != nil {
		t.Fatal(err)
	}
	dl := e.Data.(*events.DeadLetter)
	var orig map[string]any
	if err := json.Unmarshal(dl.Original, &orig); err != nil || orig["timestamp"] != "yesterday" || dl.ErrorKind != string(events.ErrKindFieldType) ||
		dl.Headers["path"] != "entry[0].changes[0].value.statuses[3]" || dls[2].Metadata.Get(wmkafka.HeaderType) != string(events.TypeDeadLetter) {
		t.Errorf("dead letter %+v original %v", dl, orig)
	}
	if by := srv.Stats().SkippedBy(); by["field:message_template_status_update"] != 1 || by["value_errors"] != 1 || by["field:smb_message_echoes"] != 1 {
		t.Errorf("skipped by reason %v", by)
	}
	if srv.Stats().DeadLetters.Load() != 3 || srv.Stats().Events.Load() != 2 {
		t.Errorf("stats %d %d", srv.Stats().DeadLetters.Load(), srv.Stats().Events.Load())
	}
}

func TestAccountEventsBroadcast(t *testing.T) {
	pub := &fakePublisher{}
	_, hs := startServer(t, pub)
	body := load(t, "account_capability.json")
	if code, msg := post(t, hs.URL, body, Sign(testSecret, body)); code != 200 {
		t.Fatalf("%d %s", code, msg)
	}
	got := pub.on("test." + kafkax.MessageEvents)
	if len(got) != 2*3 {
		t.Fatalf("%d records, want 2 events x 3 partitions", len(got))
	}
	for i, m := range got {
		if p := m.Metadata.Get(wmkafka.MetaPartition); p != string(rune('0'+i%3)) {
			t.Errorf("record %d to partition %q", i, p)
		}
	}
	if got[0].UUID != got[1].UUID || got[0].UUID == got[3].UUID {
		t.Errorf("copies must share the event id, events must not")
	}
}

func TestKafkaFailureIs503ThenRetryPublishes(t *testing.T) {
	down := errors.New("connection refused")
	pub := &fakePublisher{fail: []error{down, down, down}} // first try and both retries
	srv, hs := startServer(t, pub)
	body := load(t, "statuses_pmp.json")
	if code, _ := post(t, hs.URL, body, Sign(testSecret, body)); code != 503 {
		t.Fatalf("kafka down: %d, want 503", code)
	}
	if n := len(pub.on("test." + kafkax.MessageEvents)); n != 0 {
		t.Fatalf("%d published while down", n)
	}
	if code, _ := post(t, hs.URL, body, Sign(testSecret, body)); code != 200 {
		t.Fatalf("retry: %d", code)
	}
	if n := len(pub.on("test." + kafkax.MessageEvents)); n != 5 {
		t.Errorf("%d published after retry, want 5", n)
	}
	if srv.Stats().PublishFailed.Load() != 1 {
		t.Errorf("publish failures %d", srv.Stats().PublishFailed.Load())
	}
}

func TestTransientErrorRetriedWithinRequest(t *testing.T) {
	pub := &fakePublisher{fail: []error{errors.New("leader moved")}}
	_, hs := startServer(t, pub)
	body := load(t, "inbound_text.json")
	if code, msg := post(t, hs.URL, body, Sign(testSecret, body)); code != 200 {
		t.Fatalf("%d %s", code, msg)
	}
	if n := len(pub.on("test." + kafkax.MessageEvents)); n != 1 {
		t.Errorf("%d published, want 1", n)
	}
}

func TestPermanentErrorPoisonsRequest(t *testing.T) {
	pub := &fakePublisher{fail: []error{kafka.MessageSizeTooLarge}}
	srv, hs := startServer(t, pub)
	body := load(t, "inbound_text.json")
	code, msg := post(t, hs.URL, body, Sign(testSecret, body))
	if code != 200 || !strings.Contains(msg, `"poisoned":true`) {
		t.Fatalf("%d %s", code, msg)
	}
	dls := pub.on("test." + kafkax.DeadLetter)
	if len(dls) != 1 || srv.Stats().Poisoned.Load() != 1 {
		t.Fatalf("%d dead letters", len(dls))
	}
	e, err := events.Decode(dls[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if dl := e.Data.(*events.DeadLetter); !bytes.Equal(dl.Original, body) || !strings.Contains(dl.Reason, "Message Size Too Large") {
		t.Errorf("poisoned dead letter reason %q, original %d bytes", dl.Reason, len(dl.Original))
	}
}

func TestCorrelationIDTravels(t *testing.T) {
	pub := &fakePublisher{}
	_, hs := startServer(t, pub)
	body := load(t, "inbound_text.json")
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/webhook", bytes.NewReader(body))
	req.Header.Set(SignatureHeader, Sign(testSecret, body))
	req.Header.Set("X-Request-Id", "req-77")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := pub.on("test." + kafkax.MessageEvents)
	if len(got) != 1 || got[0].Metadata.Get("correlation_id") != "req-77" {
		t.Errorf("correlation id not on the record: %+v", got)
	}
}

func TestDeadLetterTruncatesHugeOriginal(t *testing.T) {
	big := append(append([]byte(`"`), bytes.Repeat([]byte("x"), kafkax.MaxDeadLetterOriginal+10)...), '"')
	e := deadLetter(Rejected{Path: "p", Kind: events.ErrKindInvalid, Reason: "r", Original: big}, time.Unix(1, 0))
	dl := e.Data.(*events.DeadLetter)
	if len(dl.Original) != kafkax.MaxDeadLetterOriginal || dl.Headers["truncated_from"] != strconv.Itoa(len(big)) || dl.Headers["sha256"] == "" {
		t.Errorf("original %d bytes, headers %v", len(dl.Original), dl.Headers)
	}
	b, err := events.Marshal(e)
	if err != nil || len(b) > kafkax.MaxDeadLetterRecordBytes {
		t.Errorf("encoded %d bytes (limit %d): %v", len(b), kafkax.MaxDeadLetterRecordBytes, err)
	}
}

// blockingPublisher holds every Publish until release is closed.
type blockingPublisher struct {
	fakePublisher
	entered chan struct{}
	release chan struct{}
}

func (p *blockingPublisher) Publish(topic string, msgs ...*message.Message) error {
	select {
	case p.entered <- struct{}{}:
	default:
	}
	<-p.release
	return p.fakePublisher.Publish(topic, msgs...)
}

// TestAnswerWaitsForAck: no answer while Kafka has not acknowledged; and a shutdown that begins
// meanwhile lets the request finish with 200 before Serve returns.
func TestAnswerWaitsForAckAndShutdownDrains(t *testing.T) {
	pub := &blockingPublisher{entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv, err := New(Config{VerifyToken: testToken, AppSecrets: []string{testSecret}, Partitions: 2, PublishTimeout: 10 * time.Second}, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, srv, ln, nil) }()
	<-srv.Running()

	body := load(t, "inbound_text.json")
	answered := make(chan int, 1)
	go func() {
		code, _ := post(t, "http://"+ln.Addr().String(), body, Sign(testSecret, body))
		answered <- code
	}()
	<-pub.entered
	select {
	case code := <-answered:
		t.Fatalf("answered %d before Kafka acknowledged", code)
	case <-time.After(200 * time.Millisecond):
	}
	cancel() // shutdown begins with the request in flight
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(pub.release)
	if code := <-answered; code != 200 {
		t.Errorf("in-flight request answered %d, want 200", code)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if n := len(pub.on(kafkax.MessageEvents)); n != 1 {
		t.Errorf("%d events published", n)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	_, hs := startServer(t, &fakePublisher{})
	body := load(t, "batch_bad_elements.json")
	if code, _ := post(t, hs.URL, body, Sign(testSecret, body)); code != 200 {
		t.Fatal(code)
	}
	post(t, hs.URL, body, "sha256=00")
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"convmeter_ingest_events_total 2",
		"convmeter_ingest_dead_letters_total 3",
		"convmeter_ingest_bad_signature_total 1",
		`convmeter_ingest_skipped_by_reason_total{reason="field:smb_message_echoes"} 1`,
		"convmeter_ingest_request_seconds_count 1",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	resp, err = http.Get(hs.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
}
