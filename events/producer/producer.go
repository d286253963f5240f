// Package producer is the Go SDK for upstream producers that publish convmeter input events
// straight to Kafka: the business's own sender (outbound sends), webhook relays (inbound messages,
// statuses) and account tooling (configs, limits, volume tiers, template categories).
//
// A Producer validates a whole batch before writing any of it (events.Validate plus the placement
// rules below), encodes each event as a CloudEvents-bound record (kafkax.ToMessage) and writes the
// batch in one synchronous call with acks from all in-sync replicas. Placement:
//
//   - pair events (inbound, outbound, status) are keyed by the pair key and placed by the
//     Java-compatible murmur2 partitioner, so any other producer agrees;
//   - account events (config, limit, volume tier, template category) are written once to every
//     partition, because every partition's engine needs them;
//   - clock ticks go to the partition they name.
//
// Event ids are deterministic (events.New), so retrying a failed Publish with the same events
// publishes the same facts again, which the engine recognises.
package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/segmentio/kafka-go"
)

// ErrInvalidEvent matches every *InvalidEventError.
var ErrInvalidEvent = errors.New("invalid event")

// InvalidEventError says why event Index of a Publish call was rejected. Nothing of that call was
// written. errors.Is matches ErrInvalidEvent and, through Err, events.FieldError values.
type InvalidEventError struct {
	Index int
	Type  events.Type
	ID    string
	Key   string // redacted (kafkax.RedactKey): phone numbers are personal data
	Err   error
}

func (e *InvalidEventError) Error() string {
	return fmt.Sprintf("event %d (%s %s key %s): %v", e.Index, e.Type, e.ID, e.Key, e.Err)
}

// Unwrap lets errors.Is match ErrInvalidEvent and the cause.
func (e *InvalidEventError) Unwrap() []error { return []error{ErrInvalidEvent, e.Err} }

// Producer publishes input events to the message-events topic. It is safe for concurrent use.
type Producer struct {
	w          *kafka.Writer
	topic      string
	partitions int
	owned      bool
}

type config struct {
	topic      string
	writerOpts []kafkax.WriterOption
	log        *slog.Logger
}

// Option configures New.
type Option func(*config)

// WithTopic sets the topic (default kafkax.MessageEvents).
func WithTopic(name string) Option { return func(c *config) { c.topic = name } }

// WithWriterOptions passes options to kafkax.NewWriter.
func WithWriterOptions(opts ...kafkax.WriterOption) Option {
	return func(c *config) { c.writerOpts = append(c.writerOpts, opts...) }
}

// WithLogger logs the Kafka client's errors to log.
func WithLogger(log *slog.Logger) Option { return func(c *config) { c.log = log } }

// New connects to brokers, learns the topic's partition count (the topic must exist: see
// kafkax.EnsureTopics) and returns a Producer. Close it when done.
func New(ctx context.Context, brokers []string, opts ...Option) (*Producer, error) {
	cfg := config{topic: kafkax.MessageEvents}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := kafkax.PartitionCount(ctx, brokers, cfg.topic)
	if err != nil {
		return nil, fmt.Errorf("new producer: %w", err)
	}
	wopts := cfg.writerOpts
	if cfg.log != nil {
		wopts = append([]kafkax.WriterOption{kafkax.WithWriterLogger(cfg.log)}, wopts...)
	}
	w, err := kafkax.NewWriter(brokers, cfg.topic, wopts...)
	if err != nil {
		return nil, fmt.Errorf("new producer: %w", err)
	}
	p, err := FromWriter(w, n)
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	p.owned = true
	return p, nil
}

// FromWriter wraps a writer made by kafkax.NewWriter (it must use *kafkax.Balancer and name its
// topic) whose topic has n partitions. Close does not close w.
func FromWriter(w *kafka.Writer, n int) (*Producer, error) {
	if w == nil || w.Topic == "" {
		return nil, errors.New("producer from writer: the writer must name its topic")
	}
	if _, ok := w.Balancer.(*kafkax.Balancer); !ok {
		return nil, fmt.Errorf("producer from writer for %q: %w", w.Topic, kafkax.ErrNotOurBalancer)
	}
	if n <= 0 {
		return nil, fmt.Errorf("producer from writer for %q: %d partitions: %w", w.Topic, n, kafkax.ErrPartitionRange)
	}
	return &Producer{w: w, topic: w.Topic, partitions: n}, nil
}

// Partitions is the partition count of the topic.
func (p *Producer) Partitions() int { return p.partitions }

// Topic is the topic the producer writes to.
func (p *Producer) Topic() string { return p.topic }

// Close flushes and closes the writer New made.
func (p *Producer) Close() error {
	if !p.owned {
		return nil
	}
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("close producer for %q: %w", p.topic, err)
	}
	return nil
}

// Records validates evs and returns the records Publish would write, in order: one per pair event
// and tick, one per partition for each account event. Nothing is written. When any event is
// invalid it returns every problem, each an *InvalidEventError, joined.
func (p *Producer) Records(evs ...events.Event) ([]kafka.Message, error) {
	var errs []error
	msgs := make([]kafka.Message, 0, len(evs))
	for i, e := range evs {
		if e.Type == "" && e.Data != nil {
			e.Type = e.Data.EventType()
		}
		if err := p.check(e); err != nil {
			errs = append(errs, &InvalidEventError{Index: i, Type: e.Type, ID: e.ID, Key: kafkax.RedactKey(e.Key), Err: err})
			continue
		}
		m, err := kafkax.ToMessage(e)
		if err != nil {
			errs = append(errs, &InvalidEventError{Index: i, Type: e.Type, ID: e.ID, Key: kafkax.RedactKey(e.Key), Err: err})
			continue
		}
		if len(m.Value) > events.MaxEventSize {
			errs = append(errs, &InvalidEventError{Index: i, Type: e.Type, ID: e.ID, Key: kafkax.RedactKey(e.Key),
				Err: fmt.Errorf("%d bytes encoded: %w", len(m.Value), events.ErrTooLarge)})
			continue
		}
		switch {
		case kafkax.IsBroadcast(e.Type):
			for q := range p.partitions {
				msgs = append(msgs, kafkax.ToPartition(m, q))
			}
		case e.Type == events.TypeTick:
			msgs = append(msgs, kafkax.ToPartition(m, int(e.Data.(*events.Tick).Partition)))
		default:
			msgs = append(msgs, m)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return msgs, nil
}

// check applies events.Validate and the placement rules.
func (p *Producer) check(e events.Event) error {
	if e.Data == nil {
		return &events.FieldError{Field: "data", Problem: "missing"}
	}
	if e.Type != e.Data.EventType() {
		return &events.FieldError{Field: "type", Problem: fmt.Sprintf("%q, but the data is %s", e.Type, e.Data.EventType())}
	}
	if !e.Type.IsInput() {
		return &events.FieldError{Field: "type", Problem: fmt.Sprintf("%s is not an input event type", e.Type)}
	}
	if e.ID == "" {
		return &events.FieldError{Field: "id", Problem: "missing (build events with events.New)"}
	}
	if err := events.Validate(e); err != nil {
		return err
	}
	if want := keyOf(e.Data); e.Key != want {
		return &events.FieldError{Field: "key", Problem: fmt.Sprintf("%s, want %s (build events with events.New)", kafkax.RedactKey(e.Key), kafkax.RedactKey(want))}
	}
	if t, ok := e.Data.(*events.Tick); ok && (t.Partition < 0 || int(t.Partition) >= p.partitions) {
		return &events.FieldError{Field: "partition", Problem: fmt.Sprintf("%d, topic %s has %d partitions", t.Partition, p.topic, p.partitions)}
	}
	return nil
}

// keyOf is the record key events.New gives a payload.
func keyOf(d events.Payload) string {
	switch v := d.(type) {
	case *events.InboundMessage:
		return events.PairKey(v.PhoneNumberID, v.WaID, v.UserID)
	case *events.OutboundSend:
		return events.PairKey(v.PhoneNumberID, v.WaID, v.UserID)
	case *events.StatusUpdate:
		return events.PairKey(v.PhoneNumberID, v.RecipientID, v.RecipientUserID)
	case *events.AccountConfig:
		return events.AccountKey(v.PhoneNumberID)
	case *events.LimitUpdate:
		return events.AccountKey(v.ID)
	case *events.VolumeTier:
		return events.AccountKey(v.WABAID)
	case *events.TemplateCategory:
		return events.AccountKey(v.WABAID)
	}
	return ""
}

// Publish validates evs, then writes them in one synchronous batch. It returns nil only when every
// record is acknowledged by all in-sync replicas. An invalid event fails the call before anything
// is written (see Records). On a write error some records may have been written: retry the call
// with the same events.
func (p *Producer) Publish(ctx context.Context, evs ...events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	msgs, err := p.Records(evs...)
	if err != nil {
		return fmt.Errorf("publish %d events to %s: %w", len(evs), p.topic, err)
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d events (%d records) to %s: %w", len(evs), len(msgs), p.topic, err)
	}
	return nil
}

// PublishInbound publishes messages users sent to business numbers.
func (p *Producer) PublishInbound(ctx context.Context, ms ...*events.InboundMessage) error {
	return publish(ctx, p, ms)
}

// PublishOutboundSend publishes business messages the Cloud API accepted. The template category is
// normalised (events.NormalizeCategory: "MARKETING" becomes "marketing") on a copy; a template
// whose category is not a template category is rejected.
func (p *Producer) PublishOutboundSend(ctx context.Context, ms ...*events.OutboundSend) error {
	norm := make([]*events.OutboundSend, len(ms))
	for i, m := range ms {
		if m == nil {
			continue
		}
		c := *m
		c.TemplateCategory = events.NormalizeCategory(string(c.TemplateCategory))
		norm[i] = &c
	}
	return publish(ctx, p, norm)
}

// PublishStatus publishes message statuses.
func (p *Producer) PublishStatus(ctx context.Context, ss ...*events.StatusUpdate) error {
	return publish(ctx, p, ss)
}

// PublishAccountConfig publishes business-number configs, each to every partition.
func (p *Producer) PublishAccountConfig(ctx context.Context, cs ...*events.AccountConfig) error {
	return publish(ctx, p, cs)
}

// PublishLimitUpdate publishes messaging-limit changes, each to every partition.
func (p *Producer) PublishLimitUpdate(ctx context.Context, ls ...*events.LimitUpdate) error {
	return publish(ctx, p, ls)
}

// PublishVolumeTier publishes volume-tier updates, each to every partition.
func (p *Producer) PublishVolumeTier(ctx context.Context, vs ...*events.VolumeTier) error {
	return publish(ctx, p, vs)
}

// PublishTemplateCategory publishes template category changes, each to every partition.
func (p *Producer) PublishTemplateCategory(ctx context.Context, ts ...*events.TemplateCategory) error {
	return publish(ctx, p, ts)
}

func publish[P interface {
	*T
	events.Payload
}, T any](ctx context.Context, p *Producer, ps []P) error {
	evs := make([]events.Event, 0, len(ps))
	var errs []error
	for i, d := range ps {
		if d == nil {
			var zero P
			errs = append(errs, &InvalidEventError{Index: i, Type: zero.EventType(), Err: &events.FieldError{Field: "data", Problem: "nil"}})
			continue
		}
		evs = append(evs, events.New(d))
	}
	if len(errs) > 0 {
		return fmt.Errorf("publish %d events to %s: %w", len(ps), p.topic, errors.Join(errs...))
	}
	return p.Publish(ctx, evs...)
}

// InvalidEvents returns every *InvalidEventError in err's tree, in order: the events of a Publish
// call that were rejected.
func InvalidEvents(err error) []*InvalidEventError {
	var out []*InvalidEventError
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) { //nolint:errorlint // walks the error tree itself, one level at a time
		case nil:
			return
		case *InvalidEventError:
			out = append(out, x)
			return
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}
