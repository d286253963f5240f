package kafkax

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReaderOption adjusts the configuration NewGroupReader builds, after its defaults are set.
type ReaderOption func(*kafka.ReaderConfig)

// WithReaderLogger sends kafka-go's error log to log at error level.
func WithReaderLogger(log *slog.Logger) ReaderOption {
	return func(c *kafka.ReaderConfig) { c.ErrorLogger = ErrorLogger(log) }
}

// WithDialer sets the dialer (TLS, SASL).
func WithDialer(d *kafka.Dialer) ReaderOption {
	return func(c *kafka.ReaderConfig) { c.Dialer = d }
}

// WithSessionTimeout sets the group session timeout; the heartbeat interval is a tenth of it.
// Tests use a short one so a closed reader's partitions are reassigned quickly.
func WithSessionTimeout(d time.Duration) ReaderOption {
	return func(c *kafka.ReaderConfig) {
		c.SessionTimeout = d
		c.HeartbeatInterval = d / 10
	}
}

// NewGroupReader returns a consumer-group reader of topic that never commits on its own:
// CommitInterval 0 makes CommitMessages synchronous, and nothing else commits. Use FetchBatch and
// Commit. A group with no committed offset starts at the first offset (the log is the source of
// truth: a new projection reads it all).
//
// MaxWait is 1.5 s. It is not a latency: with MinBytes 1 the broker answers a fetch as soon as a
// record arrives. It bounds an idle partition's fetch: kafka-go asks the broker to hold it for
// MaxWait less 1 s (less a quarter when MaxWait is under 1 s), here 0.5 s, and drops the
// connection when the answer comes later than MaxWait, here a 1 s margin. At 250 ms the margin
// was 62 ms: on a busy 2-core machine the empty answers of idle partitions came late, each one
// logged as an "unknown error" and followed by a new connection, a seek and a new fetch. Held
// fetches also delay a reader's stop (rebalance, close) by up to the hold.
func NewGroupReader(brokers []string, group, topic string, opts ...ReaderOption) (*kafka.Reader, error) {
	if len(brokers) == 0 {
		return nil, fmt.Errorf("new reader for group %q topic %q: %w", group, topic, ErrNoBrokers)
	}
	if group == "" || topic == "" {
		return nil, fmt.Errorf("new reader: group %q and topic %q must both be set", group, topic)
	}
	cfg := kafka.ReaderConfig{
		Brokers:           brokers,
		GroupID:           group,
		Topic:             topic,
		QueueCapacity:     1024,
		MinBytes:          1,
		MaxBytes:          4 << 20, // per partition fetch; a larger record still arrives whole (KIP-74)
		MaxWait:           1500 * time.Millisecond,
		ReadBatchTimeout:  10 * time.Second,
		ReadLagInterval:   -1,
		HeartbeatInterval: 3 * time.Second,
		CommitInterval:    0,
		SessionTimeout:    30 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    time.Second,
		MaxAttempts:       5,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.CommitInterval != 0 {
		return nil, fmt.Errorf("new reader for group %q topic %q: CommitInterval %v: only manual commits (0) are allowed", group, topic, cfg.CommitInterval)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new reader for group %q topic %q: %w", group, topic, err)
	}
	return kafka.NewReader(cfg), nil
}

// Fetcher is what FetchBatch reads from; *kafka.Reader is one.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
}

// Committer is what Commit commits to; *kafka.Reader is one.
type Committer interface {
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// BulkFetcher is a Fetcher that hands over the records it holds in one piece and knows when it
// has handed over all the partition had; PartitionReader is one. FetchInto uses both.
type BulkFetcher interface {
	Fetcher
	// FetchMessages returns at least one and at most max records, in offset order.
	FetchMessages(ctx context.Context, max int) ([]kafka.Message, error)
	// CaughtUp reports that every record of the log, as of the last fetch, has been returned.
	CaughtUp() bool
}

// PartitionBatch is the messages of one topic partition in a batch, in offset order.
type PartitionBatch struct {
	Topic     string
	Partition int
	Messages  []kafka.Message
}

// Last is the partition's last message: the one whose offset is committed.
func (p PartitionBatch) Last() kafka.Message { return p.Messages[len(p.Messages)-1] }

// Batch is what FetchBatch returns: messages grouped by topic partition, partitions in ascending
// order, each partition's messages in offset order.
type Batch struct {
	Partitions []PartitionBatch
	n          int
	free       [][]kafka.Message // emptied message slices kept by Reset for the next fill
}

// Len is the number of messages in b.
func (b Batch) Len() int { return b.n }

// Last returns the last message of each partition: what Commit commits.
func (b Batch) Last() []kafka.Message {
	out := make([]kafka.Message, 0, len(b.Partitions))
	for _, p := range b.Partitions {
		out = append(out, p.Last())
	}
	return out
}

// Messages returns every message of b, partition by partition.
func (b Batch) Messages() []kafka.Message {
	out := make([]kafka.Message, 0, b.n)
	for _, p := range b.Partitions {
		out = append(out, p.Messages...)
	}
	return out
}

func (b *Batch) add(m kafka.Message) {
	b.n++
	for i := range b.Partitions {
		p := &b.Partitions[i]
		if p.Partition == m.Partition && p.Topic == m.Topic {
			p.Messages = append(p.Messages, m)
			return
		}
	}
	var msgs []kafka.Message
	if n := len(b.free); n > 0 {
		msgs, b.free = b.free[n-1], b.free[:n-1]
	}
	b.Partitions = append(b.Partitions, PartitionBatch{Topic: m.Topic, Partition: m.Partition, Messages: append(msgs, m)})
}

// addAll adds ms, appending runs of one partition at once.
func (b *Batch) addAll(ms []kafka.Message) {
	for len(ms) > 0 {
		n := 1
		for n < len(ms) && ms[n].Partition == ms[0].Partition && ms[n].Topic == ms[0].Topic {
			n++
		}
		b.add(ms[0])
		p := &b.Partitions[b.find(ms[0])]
		p.Messages = append(p.Messages, ms[1:n]...)
		b.n += n - 1
		ms = ms[n:]
	}
}

func (b *Batch) find(m kafka.Message) int {
	for i := range b.Partitions {
		if b.Partitions[i].Partition == m.Partition && b.Partitions[i].Topic == m.Topic {
			return i
		}
	}
	return -1
}

// Reset empties b, keeping its memory for FetchInto. The messages b held are dropped: slices of
// them taken earlier must not be used after Reset.
func (b *Batch) Reset() {
	for i := range b.Partitions {
		clear(b.Partitions[i].Messages)
		b.free = append(b.free, b.Partitions[i].Messages[:0])
	}
	clear(b.Partitions)
	b.Partitions, b.n = b.Partitions[:0], 0
}

func (b *Batch) sort() {
	slices.SortFunc(b.Partitions, func(x, y PartitionBatch) int {
		if x.Topic != y.Topic {
			if x.Topic < y.Topic {
				return -1
			}
			return 1
		}
		return x.Partition - y.Partition
	})
}

// FetchBatch fetches up to max messages from r, waiting at most maxWait in all, and returns them
// grouped by partition. It returns as soon as max messages are in; after maxWait it returns what it
// has, possibly nothing (an empty batch and a nil error mean the topic was quiet: a loop can do its
// periodic work and call again).
//
// When ctx ends or r fails, FetchBatch returns the messages fetched so far with the error. Those
// messages are not committed; the reader has moved past them in this process, so a caller that
// does not process them must restart its reader (the group then redelivers from the last commit).
func FetchBatch(ctx context.Context, r Fetcher, max int, maxWait time.Duration) (Batch, error) {
	var b Batch
	err := FetchInto(ctx, r, &b, max, maxWait)
	return b, err
}

// FetchInto is FetchBatch into b, which it resets first: a loop that is done with each batch
// before it fetches the next reuses the batch's memory (a few hundred KiB of message headers per
// thousand messages).
//
// From a BulkFetcher it takes records a response at a time, and it returns as soon as the batch
// holds at least one record and the fetcher has caught up with the log: waiting out maxWait then
// would only delay records that are all there is.
func FetchInto(ctx context.Context, r Fetcher, b *Batch, max int, maxWait time.Duration) error {
	b.Reset()
	if max <= 0 {
		return fmt.Errorf("fetch batch: max %d, must be positive", max)
	}
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	if bf, ok := r.(BulkFetcher); ok {
		for b.n < max && (b.n == 0 || !bf.CaughtUp()) {
			ms, err := bf.FetchMessages(wctx, max-b.n)
			if err != nil {
				b.sort()
				if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil {
					return nil // maxWait passed
				}
				return fmt.Errorf("fetch batch after %d messages: %w", b.n, err)
			}
			b.addAll(ms)
		}
		b.sort()
		return nil
	}
	for b.n < max {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			b.sort()
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil {
				return nil // maxWait passed
			}
			return fmt.Errorf("fetch batch after %d messages: %w", b.n, err)
		}
		b.add(m)
	}
	b.sort()
	return nil
}

// Commit commits b: one offset per partition, the last message's, in one CommitMessages call. Call
// it after the batch's effects are durable. An empty batch commits nothing.
//
// If the group rebalanced while the batch was processed, kafka-go may fail the commit (or the new
// owner may already be re-reading the partitions from the previous commit). Either way nothing is
// lost: effects are idempotent by position (architecture rule 3), so the caller restarts its loop.
func Commit(ctx context.Context, c Committer, b Batch) error {
	if b.n == 0 {
		return nil
	}
	last := b.Last()
	if err := c.CommitMessages(ctx, last...); err != nil {
		return fmt.Errorf("commit %d partitions (%s): %w", len(last), describe(last), err)
	}
	return nil
}

func describe(ms []kafka.Message) string {
	s := ""
	for i, m := range ms {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset)
		if i == 7 && len(ms) > 8 {
			return s + fmt.Sprintf(" and %d more", len(ms)-8)
		}
	}
	return s
}
