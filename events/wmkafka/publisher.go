package wmkafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events/kafkax"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("wmkafka: closed")

// KeyFunc returns the record key of a message; "" means no key.
type KeyFunc func(topic string, m *message.Message) (string, error)

// KeyFromMetadata is the default KeyFunc: the MetaKey metadata entry.
func KeyFromMetadata(_ string, m *message.Message) (string, error) {
	return m.Metadata.Get(MetaKey), nil
}

// PublisherConfig configures a Publisher. Zero values take the defaults noted.
type PublisherConfig struct {
	Brokers []string // required
	// Source is the ce_source header of messages whose metadata set none.
	Source string
	// KeyFunc picks the record key; default KeyFromMetadata.
	KeyFunc KeyFunc
	// BatchSize and BatchTimeout bound how long kafka-go waits to fill a partition batch:
	// default 1000 messages and 2 ms, so a synchronous Publish is not held back.
	BatchSize    int
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request; default 10 s.
	WriteTimeout time.Duration
	// MaxAttempts is how often kafka-go tries a batch before Publish fails; default 3.
	MaxAttempts int
	// Timeout bounds one Publish call when the first message's context has no deadline; default 30 s.
	Timeout time.Duration
	// AllowAutoTopicCreation lets the broker create unknown topics (with its defaults).
	AllowAutoTopicCreation bool
	// Compression of record batches; default none.
	Compression kafka.Compression
	Logger      *slog.Logger
}

// Publisher is a Watermill message.Publisher writing to Kafka with kafka-go.
type Publisher struct {
	cfg     PublisherConfig
	keyFunc KeyFunc
	w       *kafka.Writer

	mu     sync.RWMutex
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher for cfg.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("wmkafka: publisher: no brokers")
	}
	if cfg.KeyFunc == nil {
		cfg.KeyFunc = KeyFromMetadata
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 2 * time.Millisecond
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Balancer:               &kafkax.Balancer{},
		MaxAttempts:            cfg.MaxAttempts,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        500 * time.Millisecond,
		BatchSize:              cfg.BatchSize,
		BatchBytes:             16 << 20,
		BatchTimeout:           cfg.BatchTimeout,
		WriteTimeout:           cfg.WriteTimeout,
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: cfg.AllowAutoTopicCreation,
		Compression:            cfg.Compression,
		ErrorLogger:            errorLogger(cfg.Logger),
		// kafka-go's metadata TTL is also the timeout of its background metadata request; on a
		// busy broker with many topics a short TTL makes every refresh time out and the writer
		// never learns new topics. Publish retries an unknown topic until its deadline instead.
		Transport: &kafka.Transport{MetadataTTL: 6 * time.Second, IdleTimeout: time.Minute},
	}
	return &Publisher{cfg: cfg, keyFunc: cfg.KeyFunc, w: w}, nil
}

// Publish writes msgs to topic in one kafka-go call and returns after the broker acknowledged all
// of them. The first message's context bounds the call.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	kms := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km, err := p.marshal(topic, m)
		if err != nil {
			return fmt.Errorf("wmkafka: publish to %s: message %s: %w", topic, m.UUID, err)
		}
		kms[i] = km
	}
	ctx := msgs[0].Context()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
	}
	for {
		err := p.w.WriteMessages(ctx, kms...)
		if err == nil {
			return nil
		}
		// Temporary broker errors (unknown topic while the metadata cache catches up after a
		// topic was created, leader elections, request timeouts) are retried until ctx ends. A
		// retry may write again what a partly failed call wrote: delivery is at least once, and
		// the ids let consumers drop the copies.
		if temporary(err) && sleep(ctx, 200*time.Millisecond) {
			p.cfg.Logger.Debug("wmkafka: publish retried", "topic", topic, "err", err)
			continue
		}
		return fmt.Errorf("wmkafka: publish %d messages to %s: %w", len(kms), topic, err)
	}
}

// Close flushes and closes the writer. Publish calls in progress finish first.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("wmkafka: close publisher: %w", err)
	}
	return nil
}

// Stats returns the kafka-go writer statistics since the last call.
func (p *Publisher) Stats() kafka.WriterStats { return p.w.Stats() }

func errorLogger(l *slog.Logger) kafka.Logger {
	return kafka.LoggerFunc(func(msg string, args ...any) {
		l.Debug("kafka-go", "detail", fmt.Sprintf(msg, args...))
	})
}

// temporary reports whether err is a Kafka error code the broker marks retriable, or a set of
// per-message errors that all are.
func temporary(err error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		n := 0
		for _, e := range we {
			if e == nil {
				continue
			}
			if !temporary(e) {
				return false
			}
			n++
		}
		return n > 0
	}
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Temporary()
}
