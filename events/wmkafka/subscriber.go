package wmkafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"
)

// SubscriberConfig configures a Subscriber. Zero values take the defaults noted.
type SubscriberConfig struct {
	Brokers       []string // required
	ConsumerGroup string   // required: members of one group share a topic's partitions
	// MaxWait bounds how long a fetch waits for data; default 100 ms (small, so tests and quiet
	// partitions do not stall).
	MaxWait time.Duration
	// CommitInterval is how often acknowledged offsets are committed; default 200 ms. Close
	// commits what is left.
	CommitInterval time.Duration
	// HeartbeatInterval, SessionTimeout and RebalanceTimeout tune the group protocol; defaults
	// 250 ms, 10 s, 10 s.
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	// NackResendSleep is the pause before a nacked message is delivered again; default 10 ms.
	NackResendSleep time.Duration
	// InitializePartitions is the partition count SubscribeInitialize creates a topic with;
	// 0 means SubscribeInitialize does nothing.
	InitializePartitions int
	Logger               *slog.Logger
}

// Subscriber is a Watermill message.Subscriber reading from Kafka with kafka-go's consumer groups.
// Each Subscribe call is one group member on one topic. Within it, one message is in flight at a
// time: the next is delivered after Ack; Nack delivers the same message again.
type Subscriber struct {
	cfg     SubscriberConfig
	closing chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	closed bool
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber returns a Subscriber for cfg.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("wmkafka: subscriber: no brokers")
	}
	if cfg.ConsumerGroup == "" {
		return nil, errors.New("wmkafka: subscriber: no consumer group")
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 100 * time.Millisecond
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 200 * time.Millisecond
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 250 * time.Millisecond
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.RebalanceTimeout <= 0 {
		cfg.RebalanceTimeout = 10 * time.Second
	}
	if cfg.NackResendSleep <= 0 {
		cfg.NackResendSleep = 10 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Subscriber{cfg: cfg, closing: make(chan struct{})}, nil
}

// Subscribe joins the consumer group on topic and returns the stream of its messages. The channel
// closes when ctx ends or the Subscriber is closed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           s.cfg.Brokers,
		GroupID:           s.cfg.ConsumerGroup,
		Topic:             topic,
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           s.cfg.MaxWait,
		ReadBatchTimeout:  s.cfg.MaxWait,
		CommitInterval:    s.cfg.CommitInterval,
		HeartbeatInterval: s.cfg.HeartbeatInterval,
		SessionTimeout:    s.cfg.SessionTimeout,
		RebalanceTimeout:  s.cfg.RebalanceTimeout,
		JoinGroupBackoff:  200 * time.Millisecond,
		ReadBackoffMin:    20 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
		ErrorLogger:       errorLogger(s.cfg.Logger),
	})
	out := make(chan *message.Message)
	ctx, cancel := context.WithCancel(ctx)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer s.wg.Done()
		defer cancel()
		defer close(out)
		defer func() {
			if err := r.Close(); err != nil {
				s.cfg.Logger.Warn("wmkafka: close reader", "topic", topic, "err", err)
			}
		}()
		s.consume(ctx, r, topic, out)
	}()
	return out, nil
}

func (s *Subscriber) consume(ctx context.Context, r *kafka.Reader, topic string, out chan<- *message.Message) {
	log := s.cfg.Logger.With("topic", topic, "group", s.cfg.ConsumerGroup)
	for {
		km, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("wmkafka: fetch", "err", err)
			if !sleep(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		if !s.deliver(ctx, km, out, log) {
			return
		}
		// With CommitInterval set this only queues the offset; Close commits what is queued.
		if err := r.CommitMessages(context.Background(), km); err != nil {
			// At least once: the record comes again after a restart or rebalance.
			log.Warn("wmkafka: commit", "partition", km.Partition, "offset", km.Offset, "err", err)
		}
	}
}

// deliver hands km to out until it is acked. It reports false when ctx ended first.
func (s *Subscriber) deliver(ctx context.Context, km kafka.Message, out chan<- *message.Message, log *slog.Logger) bool {
	for {
		m := Unmarshal(km)
		mctx, mcancel := context.WithCancel(ctx)
		m.SetContext(mctx)
		select {
		case out <- m:
		case <-ctx.Done():
			mcancel()
			return false
		}
		select {
		case <-m.Acked():
			mcancel()
			return true
		case <-m.Nacked():
			mcancel()
			log.Debug("wmkafka: nacked, redelivering", "partition", km.Partition, "offset", km.Offset)
			if !sleep(ctx, s.cfg.NackResendSleep) {
				return false
			}
		case <-ctx.Done():
			mcancel()
			return false
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close ends every subscription, commits acknowledged offsets, leaves the groups and closes the
// message channels before it returns.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// SubscribeInitialize creates topic with InitializePartitions partitions if it does not exist.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.cfg.InitializePartitions <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return CreateTopic(ctx, s.cfg.Brokers, topic, s.cfg.InitializePartitions)
}

// CreateTopic creates topic with n partitions (replication factor 1 on a one-broker cluster,
// else the broker default) and waits until every partition has a leader. An existing topic is
// left as it is.
func CreateTopic(ctx context.Context, brokers []string, topic string, n int) error {
	var d kafka.Dialer
	conn, err := d.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return fmt.Errorf("wmkafka: create topic %s: dial: %w", topic, err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("wmkafka: create topic %s: find controller: %w", topic, err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("wmkafka: create topic %s: dial controller: %w", topic, err)
	}
	defer cc.Close()
	rf := -1
	if bs, err := conn.Brokers(); err == nil && len(bs) == 1 {
		rf = 1
	}
	err = cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: n, ReplicationFactor: rf})
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("wmkafka: create topic %s with %d partitions: %w", topic, n, err)
	}
	for {
		ps, err := conn.ReadPartitions(topic)
		if err == nil && len(ps) > 0 && allLed(ps) {
			return nil
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return fmt.Errorf("wmkafka: create topic %s: partitions have no leader: %w", topic, ctx.Err())
		}
	}
}

func allLed(ps []kafka.Partition) bool {
	for _, p := range ps {
		if p.Leader.Host == "" {
			return false
		}
	}
	return true
}
