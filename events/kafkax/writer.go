package kafkax

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrNoBrokers is returned by constructors given an empty broker list.
var ErrNoBrokers = errors.New("kafkax: no brokers")

// Writer defaults. BatchTimeout is how long a partition's batch waits to fill before it is sent;
// a synchronous WriteMessages of fewer than BatchSize messages per partition waits this long, so it
// is small.
const (
	DefaultBatchTimeout = 2 * time.Millisecond
	DefaultBatchSize    = 1000
	DefaultCompression  = kafka.Lz4
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxAttempts  = 5
)

// WriterOption adjusts a writer NewWriter builds, after its defaults are set.
type WriterOption func(*kafka.Writer)

// WithWriterLogger sends kafka-go's error log to log at error level. kafka-go's chatty info log is
// dropped.
func WithWriterLogger(log *slog.Logger) WriterOption {
	return func(w *kafka.Writer) { w.ErrorLogger = ErrorLogger(log) }
}

// WithBatch sets the batch size (messages per partition per request) and timeout.
func WithBatch(size int, timeout time.Duration) WriterOption {
	return func(w *kafka.Writer) { w.BatchSize, w.BatchTimeout = size, timeout }
}

// WithBatchBytes sets the largest batch, and so the largest message, the writer accepts
// (kafka-go fails a larger message with kafka.MessageTooLargeError).
func WithBatchBytes(n int64) WriterOption {
	return func(w *kafka.Writer) { w.BatchBytes = n }
}

// WithCompression sets the compression codec (0 for none).
func WithCompression(c kafka.Compression) WriterOption {
	return func(w *kafka.Writer) { w.Compression = c }
}

// WithTransport sets the writer's transport (TLS, SASL, metadata TTL).
func WithTransport(t kafka.RoundTripper) WriterOption {
	return func(w *kafka.Writer) { w.Transport = t }
}

// NewWriter returns a kafka-go writer with convmeter's defaults:
//
//   - Balancer (Java-compatible murmur2 for keyed records, ToPartition for explicit ones);
//   - RequiredAcks = RequireAll, synchronous WriteMessages: when it returns nil every message is
//     acknowledged by all in-sync replicas; on error retry the whole call (ids are deterministic);
//   - BatchTimeout 2ms, BatchSize 1000, LZ4 compression;
//   - BatchBytes MaxRecordBytes, or MaxDeadLetterRecordBytes when topic is a dead-letter topic
//     (its name ends in DeadLetter), matching the max.message.bytes Topics.Specs gives them;
//   - AllowAutoTopicCreation false: topics are made by EnsureTopics, with their partition counts.
//
// topic may be empty, in which case every message must name its topic.
func NewWriter(brokers []string, topic string, opts ...WriterOption) (*kafka.Writer, error) {
	if len(brokers) == 0 {
		return nil, fmt.Errorf("new writer for topic %q: %w", topic, ErrNoBrokers)
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &Balancer{},
		MaxAttempts:            DefaultMaxAttempts,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		BatchSize:              DefaultBatchSize,
		BatchBytes:             int64(MaxBatchBytes(topic)),
		BatchTimeout:           DefaultBatchTimeout,
		ReadTimeout:            DefaultWriteTimeout,
		WriteTimeout:           DefaultWriteTimeout,
		RequiredAcks:           kafka.RequireAll,
		Async:                  false,
		Compression:            DefaultCompression,
		AllowAutoTopicCreation: false,
	}
	for _, o := range opts {
		o(w)
	}
	return w, nil
}

// ErrorLogger adapts log to kafka-go's Logger interface, at error level. A nil log gives nil.
func ErrorLogger(log *slog.Logger) kafka.Logger {
	if log == nil {
		return nil
	}
	return kafka.LoggerFunc(func(format string, args ...any) {
		log.Error("kafka-go", "detail", fmt.Sprintf(format, args...))
	})
}
