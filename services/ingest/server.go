package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/wmkafka"
)

// Config configures the webhook server. Zero values take the defaults noted.
type Config struct {
	// Addr is the HTTP listen address (Run only); default ":8080".
	Addr string
	// Path is the webhook path; default "/webhook".
	Path string
	// VerifyToken answers Meta's subscription handshake; required.
	VerifyToken string
	// AppSecrets sign webhook bodies; at least one. Several are accepted during a rotation.
	AppSecrets []string
	// MaxBodyBytes bounds a request body; default 8 MiB (1000 updates of a few KiB each).
	MaxBodyBytes int64
	// Brokers are the Kafka brokers (Run only).
	Brokers []string
	// Topics names the topics; default kafkax.DefaultTopics(). Events go to MessageEvents,
	// rejected elements and poisoned requests to DeadLetter.
	Topics kafkax.Topics
	// Partitions is the partition count of MessageEvents, which account events are broadcast to.
	// Run looks it up when it is 0.
	Partitions int
	// PublishTimeout bounds the Kafka part of one request, retries included; default 10 s.
	PublishTimeout time.Duration
	// PublishRetries is how often a failed publish is retried before the request gets 503;
	// default 2.
	PublishRetries int
}

func (c *Config) defaults() error {
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.Path == "" {
		c.Path = "/webhook"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.Topics.MessageEvents == "" {
		c.Topics = kafkax.DefaultTopics()
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.PublishRetries < 0 {
		c.PublishRetries = 0
	} else if c.PublishRetries == 0 {
		c.PublishRetries = 2
	}
	if c.VerifyToken == "" {
		return errors.New("ingest: no verify token")
	}
	if c.Partitions <= 0 {
		return errors.New("ingest: partition count of the message-events topic unknown")
	}
	return nil
}

// Stats counts what the server did since it started.
type Stats struct {
	Requests        atomic.Int64 // POSTs answered 200
	Events          atomic.Int64 // events acknowledged by Kafka (broadcast copies counted once)
	DeadLetters     atomic.Int64 // rejected elements dead-lettered
	Poisoned        atomic.Int64 // whole requests dead-lettered by the poison queue
	Skipped         atomic.Int64 // changes deliberately skipped
	BadSignature    atomic.Int64
	BadRequest      atomic.Int64 // 400 and 413
	PublishFailed   atomic.Int64 // 503
	HandshakeOK     atomic.Int64
	HandshakeDenied atomic.Int64

	mu        sync.Mutex
	skippedBy map[string]int64
}

// SkippedBy returns the skipped-change counts by reason ("field:<name>", "account_update:<event>",
// "value_errors", ...) since the server started.
func (s *Stats) SkippedBy() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.skippedBy))
	for k, v := range s.skippedBy {
		out[k] = v
	}
	return out
}

func (s *Stats) skip(reasons map[string]int) {
	if len(reasons) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skippedBy == nil {
		s.skippedBy = map[string]int64{}
	}
	for k, v := range reasons {
		s.skippedBy[k] += int64(v)
	}
}

// Server is the webhook endpoint. Requests flow through a Watermill router: the HTTP handler
// verifies, reads and normalises, then hands the request to the router and waits; the router's
// handler publishes, wrapped in correlation-id, retry and poison-queue middleware.
type Server struct {
	cfg      Config
	log      *slog.Logger
	verifier *Verifier
	pub      message.Publisher
	queue    *requestQueue
	router   *message.Router
	now      func() time.Time
	stats    Stats
	latency  prometheus.Histogram
	registry *prometheus.Registry
}

// requestTopic is the router's in-process topic of webhook requests.
const requestTopic = "ingest.requests"

// New builds a Server that publishes through pub (normally a *wmkafka.Publisher). Call Run to
// start its router before serving Handler.
func New(cfg Config, pub message.Publisher, log *slog.Logger) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("ingest: no publisher")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, err := NewVerifier(cfg.AppSecrets...)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, verifier: v, pub: pub, queue: newRequestQueue(), now: time.Now, latency: newLatency()}
	s.registry = s.newRegistry()
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.PublishTimeout + 5*time.Second}, routerLogger(log))
	if err != nil {
		return nil, fmt.Errorf("ingest: router: %w", err)
	}
	poison, err := middleware.PoisonQueueWithFilter(&poisonPublisher{s: s}, cfg.Topics.DeadLetter, isPermanent)
	if err != nil {
		return nil, fmt.Errorf("ingest: poison queue: %w", err)
	}
	r.AddMiddleware(
		s.outcome,
		middleware.CorrelationID,
		middleware.Retry{
			MaxRetries:      cfg.PublishRetries,
			InitialInterval: 100 * time.Millisecond,
			MaxInterval:     time.Second,
			Multiplier:      2,
			ShouldRetry:     func(p middleware.RetryParams) bool { return !isPermanent(p.Err) },
		}.Middleware,
		poison,
	)
	r.AddConsumerHandler("publish", requestTopic, s.queue, s.publish)
	s.router = r
	return s, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Run runs the router until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	defer s.queue.Close()
	if err := s.router.Run(ctx); err != nil {
		return fmt.Errorf("ingest: router: %w", err)
	}
	return nil
}

// Running is closed when the router runs.
func (s *Server) Running() chan struct{} { return s.router.Running() }

// Handler serves the webhook path (GET for the handshake, POST for webhooks), GET /metrics
// (Prometheus) and GET /healthz (200 while the router runs).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+s.cfg.Path, s.handshake)
	mux.HandleFunc("POST "+s.cfg.Path, s.webhook)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-s.router.Running():
			if !s.router.IsClosed() {
				_, _ = io.WriteString(w, "ok\n")
				return
			}
		default:
		}
		http.Error(w, "router not running", http.StatusServiceUnavailable)
	})
	return mux
}

func (s *Server) handshake(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("hub.mode") != "subscribe" || q.Get("hub.verify_token") == "" ||
		!constantEqual(q.Get("hub.verify_token"), s.cfg.VerifyToken) {
		s.stats.HandshakeDenied.Add(1)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	s.stats.HandshakeOK.Add(1)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, q.Get("hub.challenge"))
}

func constantEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return ha == hb
}

// request is what the HTTP handler hands the router through the message context.
type request struct {
	res     Result
	body    []byte
	outcome error
	done    bool
	counts  [2]int // events, dead letters published
}

type requestKey struct{}

// Answer is the body of a 200.
type Answer struct {
	Events      int  `json:"events"`
	DeadLetters int  `json:"dead_letters"`
	Skipped     int  `json:"skipped"`
	Poisoned    bool `json:"poisoned,omitempty"`
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.stats.BadRequest.Add(1)
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	// Size the buffer from Content-Length (already bounded above), so reading does not regrow it.
	buf := bytes.NewBuffer(make([]byte, 0, max(r.ContentLength, 0)+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	body := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.stats.BadRequest.Add(1)
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body failed", http.StatusBadRequest)
		return
	}
	if err := s.verifier.Verify(r.Header.Get(SignatureHeader), body); err != nil {
		s.stats.BadSignature.Add(1)
		s.log.Warn("webhook rejected", "reason", err.Error(), "remote", r.RemoteAddr)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	res, err := Normalize(body)
	if err != nil {
		s.stats.BadRequest.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &request{res: res, body: body}
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), requestKey{}, req), s.cfg.PublishTimeout)
	defer cancel()
	msg := message.NewMessage(watermill.NewShortUUID(), body)
	corr := r.Header.Get("X-Request-Id")
	if corr == "" {
		corr = msg.UUID
	}
	middleware.SetCorrelationID(corr, msg)
	msg.SetContext(ctx)
	if err := s.queue.Publish(requestTopic, msg); err != nil || !req.done {
		s.fail(w, corr, fmt.Errorf("hand request to router: %w", errors.Join(err, ctx.Err())))
		return
	}
	if req.outcome != nil {
		s.fail(w, corr, req.outcome)
		return
	}
	skipped := 0
	for _, n := range res.Skipped {
		skipped += n
	}
	s.stats.Requests.Add(1)
	s.latency.Observe(time.Since(start).Seconds())
	s.stats.Skipped.Add(int64(skipped))
	s.stats.skip(res.Skipped)
	ans := Answer{Events: req.counts[0], DeadLetters: req.counts[1], Skipped: skipped, Poisoned: req.counts == [2]int{-1, -1}}
	if ans.Poisoned {
		ans.Events, ans.DeadLetters = 0, 0
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

func (s *Server) fail(w http.ResponseWriter, corr string, err error) {
	s.stats.PublishFailed.Add(1)
	s.log.Error("webhook not published; Meta will retry", "correlation_id", corr, "err", err)
	http.Error(w, "publishing failed, retry later", http.StatusServiceUnavailable)
}

// outcome is the outermost middleware: it records the handler chain's result for the waiting
// HTTP handler and acks, so a failed request is answered 503 (Meta retries) instead of being
// redelivered in process.
func (s *Server) outcome(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if req, ok := msg.Context().Value(requestKey{}).(*request); ok {
			req.outcome = err
			req.done = true
		}
		return out, nil
	}
}

// publish is the router's handler: it publishes the request's events and dead letters and
// returns only when Kafka acknowledged them all.
func (s *Server) publish(msg *message.Message) error {
	req, ok := msg.Context().Value(requestKey{}).(*request)
	if !ok {
		return &permanentError{errors.New("request without normalised content")}
	}
	corr := middleware.MessageCorrelationID(msg)
	evs := make([]*message.Message, 0, len(req.res.Events))
	for _, e := range req.res.Events {
		m, err := wmkafka.EventMessage(e)
		if err != nil {
			return &permanentError{err}
		}
		m.SetContext(msg.Context())
		m.Metadata.Set(middleware.CorrelationIDMetadataKey, corr)
		if kafkax.IsBroadcast(e.Type) {
			for p := range s.cfg.Partitions {
				c := m.Copy()
				c.SetContext(msg.Context())
				c.Metadata.Set(wmkafka.MetaPartition, strconv.Itoa(p))
				evs = append(evs, c)
			}
			continue
		}
		evs = append(evs, m)
	}
	dls := make([]*message.Message, 0, len(req.res.Rejected))
	for _, rj := range req.res.Rejected {
		m, err := wmkafka.EventMessage(deadLetter(rj, s.now()))
		if err != nil {
			return &permanentError{err}
		}
		m.SetContext(msg.Context())
		m.Metadata.Set(middleware.CorrelationIDMetadataKey, corr)
		dls = append(dls, m)
	}
	if err := s.pub.Publish(s.cfg.Topics.MessageEvents, evs...); err != nil {
		return classifyPublish(err)
	}
	if err := s.pub.Publish(s.cfg.Topics.DeadLetter, dls...); err != nil {
		return classifyPublish(err)
	}
	req.counts = [2]int{len(req.res.Events), len(dls)}
	s.stats.Events.Add(int64(len(req.res.Events)))
	s.stats.DeadLetters.Add(int64(len(dls)))
	for _, rj := range req.res.Rejected {
		s.log.Warn("webhook element dead-lettered", "correlation_id", corr, "path", rj.Path,
			"field", rj.Field, "waba_id", rj.WABAID, "error_kind", rj.Kind, "reason", rj.Reason)
	}
	return nil
}

// deadLetter is the dead-letter event of a rejected element. Its id comes from the element's
// bytes and reason, so Meta's retries of the same webhook write the same dead letter.
func deadLetter(r Rejected, now time.Time) events.Event {
	sum := sha256.Sum256(r.Original)
	headers := map[string]string{"path": r.Path, "field": r.Field, "waba_id": r.WABAID, "source": "ingest"}
	orig := kafkax.TruncateOriginal([]byte(r.Original), &headers)
	dl := &events.DeadLetter{
		Reason:    r.Reason,
		ErrorKind: string(r.Kind),
		Topic:     "webhook",
		Partition: -1,
		Offset:    -1,
		Headers:   headers,
		Original:  orig,
	}
	return events.Event{
		ID:   events.InputID(string(events.TypeDeadLetter), "ingest", hex.EncodeToString(sum[:]), r.Reason),
		Type: events.TypeDeadLetter,
		Key:  "ingest/" + r.WABAID,
		Time: events.FromTime(now),
		Data: dl,
	}
}

// permanentError marks a failure that retrying cannot fix: the request goes to the poison queue.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var pe *permanentError
	return errors.As(err, &pe)
}

// classifyPublish marks the Kafka errors that no retry fixes (a record too large, an invalid
// record) as permanent; everything else (broker down, timeouts, leadership moves) stays transient
// and ends in a 503 after the retries.
func classifyPublish(err error) error {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && !isPermanentKafka(e) {
				return err
			}
		}
		return &permanentError{err}
	}
	if isPermanentKafka(err) {
		return &permanentError{err}
	}
	return err
}

func isPermanentKafka(err error) bool {
	return errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.InvalidMessage) ||
		errors.Is(err, kafka.InvalidMessageSize) || errors.Is(err, kafka.RecordListTooLarge) ||
		errors.Is(err, kafka.InvalidRecord)
}

// poisonPublisher turns a request the handler chain gave up on into one dead letter holding the
// whole body, on the dead-letter topic, so the request is answered 200 and never lost.
type poisonPublisher struct{ s *Server }

func (p *poisonPublisher) Publish(topic string, msgs ...*message.Message) error {
	out := make([]*message.Message, 0, len(msgs))
	for _, m := range msgs {
		rj := Rejected{Path: "request", Kind: events.ErrKindInvalid, Reason: m.Metadata.Get(middleware.ReasonForPoisonedKey), Original: json.RawMessage(m.Payload)}
		if !json.Valid(rj.Original) {
			rj.Original, _ = json.Marshal(string(m.Payload))
		}
		dm, err := wmkafka.EventMessage(deadLetter(rj, p.s.now()))
		if err != nil {
			return err
		}
		dm.SetContext(m.Context())
		dm.Metadata.Set(middleware.CorrelationIDMetadataKey, middleware.MessageCorrelationID(m))
		out = append(out, dm)
		if req, ok := m.Context().Value(requestKey{}).(*request); ok {
			req.counts = [2]int{-1, -1}
		}
	}
	if err := p.s.pub.Publish(topic, out...); err != nil {
		return err
	}
	p.s.stats.Poisoned.Add(int64(len(msgs)))
	p.s.log.Error("webhook request dead-lettered whole", "topic", topic, "count", len(msgs))
	return nil
}

func (p *poisonPublisher) Close() error { return nil }

// routerLogger logs the router's lifecycle chatter (handlers added, started, stopped) at debug;
// its errors stay errors.
func routerLogger(log *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(log.With("component", "router"),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
}
