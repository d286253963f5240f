package kafkax

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/segmentio/kafka-go"
)

// CloudEvents Kafka protocol binding (binary mode) header names.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderType        = "ce_type"
	HeaderSource      = "ce_source"
	HeaderTime        = "ce_time"
	HeaderSubject     = "ce_subject"
	HeaderContentType = "content-type"
)

// SpecVersion is the CloudEvents spec version of the headers.
const SpecVersion = "1.0"

// Headers returns the CloudEvents headers of e: ce_specversion, ce_id, ce_type, ce_source,
// ce_time (RFC 3339, UTC), ce_subject (the key, when e has one) and content-type.
func Headers(e events.Event) []kafka.Header {
	// One allocation for the values and one for the headers: a record is written for every output
	// event, and eight small allocations each were a tenth of the aggregator's step.
	n := len(SpecVersion) + len(e.ID) + len(e.Type) + len(events.Source) + len(time.RFC3339) + 6 + len(e.Key) + len(events.ContentType)
	hb := headerBuf{buf: make([]byte, 0, n), h: make([]kafka.Header, 0, 7)}
	hb.add(HeaderSpecVersion, append(hb.buf, SpecVersion...))
	hb.add(HeaderID, append(hb.buf, e.ID...))
	hb.add(HeaderType, append(hb.buf, e.Type...))
	hb.add(HeaderSource, append(hb.buf, events.Source...))
	hb.add(HeaderTime, e.Time.Time().AppendFormat(hb.buf, time.RFC3339))
	if e.Key != "" {
		hb.add(HeaderSubject, append(hb.buf, e.Key...))
	}
	hb.add(HeaderContentType, append(hb.buf, events.ContentType...))
	return hb.h
}

// headerBuf builds headers whose values share one buffer.
type headerBuf struct {
	buf []byte
	h   []kafka.Header
}

// add appends the header key whose value is what grown appended to the buffer; the value's
// capacity ends with it, so appending to one value cannot overwrite the next.
func (hb *headerBuf) add(key string, grown []byte) {
	v := grown[len(hb.buf):len(grown):len(grown)]
	hb.buf = grown
	hb.h = append(hb.h, kafka.Header{Key: key, Value: v})
}

// Header returns the value of the first header named key.
func Header(m kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// ToMessage encodes e as a record: the envelope as value, e.Key as key (nil when empty) and the
// CloudEvents headers. The record has no topic, partition or timestamp; the writer decides them.
func ToMessage(e events.Event) (kafka.Message, error) {
	if e.Type == "" && e.Data != nil {
		e.Type = e.Data.EventType()
	}
	v, err := events.Encode(nil, e)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("record of %s %s key %s: %w", e.Type, e.ID, RedactKey(e.Key), err)
	}
	m := kafka.Message{Value: v, Headers: Headers(e)}
	if e.Key != "" {
		m.Key = []byte(e.Key)
	}
	return m, nil
}

// FromMessage decodes m's value with events.Decode. Every failure is an *events.DecodeError (so
// errors.Is matches the kind's sentinel and events.KindOf names it for the dead-letter record),
// including a record whose key differs from its envelope's key or is missing while the envelope has
// one: such a record may sit on the wrong partition, and the engine must not take it for the pair
// it names. (A record key with an envelope key of "", as a keyed tick, is accepted.) The envelope is the truth; the
// CloudEvents headers are routing hints and are not checked.
func FromMessage(m kafka.Message) (events.Event, error) {
	e, err := events.Decode(m.Value)
	if err != nil {
		return events.Event{}, err
	}
	if e.Key != "" && string(m.Key) != e.Key {
		problem := fmt.Sprintf("record key %s differs from envelope key %s", RedactKey(string(m.Key)), RedactKey(e.Key))
		if len(m.Key) == 0 {
			problem = fmt.Sprintf("record has no key; the envelope key is %s", RedactKey(e.Key))
		}
		return events.Event{}, &events.DecodeError{Kind: events.ErrKindInvalid, Type: e.Type, ID: e.ID,
			Err: &events.FieldError{Field: "key", Problem: problem}}
	}
	return e, nil
}

// IsBroadcast reports whether events of type t go to every partition: account facts that every
// partition's engine must know (configs, limits, volume tiers, template categories).
func IsBroadcast(t events.Type) bool {
	switch t {
	case events.TypeAccountConfig, events.TypeLimitUpdate, events.TypeVolumeTier, events.TypeTemplateCategory:
		return true
	default:
		return false
	}
}

// ErrNotOurBalancer is returned when an explicit-partition write goes through a writer whose
// balancer is not a *Balancer, which would ignore the partition.
var ErrNotOurBalancer = errors.New("writer balancer is not *kafkax.Balancer; explicit partitions would be ignored")

// ErrPartitionRange is returned for an explicit partition outside 0..n-1.
var ErrPartitionRange = errors.New("partition out of range")

// Broadcast writes one copy of e to each of the partitions 0..partitions-1 of w's topic, in one
// synchronous WriteMessages call. w must use a *Balancer (NewWriter does).
func Broadcast(ctx context.Context, w *kafka.Writer, e events.Event, partitions int) error {
	msgs, err := BroadcastMessages(w, e, partitions)
	if err != nil {
		return err
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("broadcast %s %s to %d partitions: %w", e.Type, e.ID, partitions, err)
	}
	return nil
}

// BroadcastMessages returns the records Broadcast writes, for callers that batch them with others.
func BroadcastMessages(w *kafka.Writer, e events.Event, partitions int) ([]kafka.Message, error) {
	if _, ok := w.Balancer.(*Balancer); !ok {
		return nil, fmt.Errorf("broadcast %s %s: %w", e.Type, e.ID, ErrNotOurBalancer)
	}
	if partitions <= 0 {
		return nil, fmt.Errorf("broadcast %s %s to %d partitions: %w", e.Type, e.ID, partitions, ErrPartitionRange)
	}
	m, err := ToMessage(e)
	if err != nil {
		return nil, fmt.Errorf("broadcast: %w", err)
	}
	msgs := make([]kafka.Message, partitions)
	for p := range msgs {
		msgs[p] = ToPartition(m, p)
	}
	return msgs, nil
}

// WriteToPartition writes e to partition p of w's topic, which has n partitions (clock ticks).
func WriteToPartition(ctx context.Context, w *kafka.Writer, e events.Event, p, n int) error {
	if _, ok := w.Balancer.(*Balancer); !ok {
		return fmt.Errorf("write %s %s to partition %d: %w", e.Type, e.ID, p, ErrNotOurBalancer)
	}
	if p < 0 || p >= n {
		return fmt.Errorf("write %s %s to partition %d of %d: %w", e.Type, e.ID, p, n, ErrPartitionRange)
	}
	m, err := ToMessage(e)
	if err != nil {
		return err
	}
	if err := w.WriteMessages(ctx, ToPartition(m, p)); err != nil {
		return fmt.Errorf("write %s %s to partition %d: %w", e.Type, e.ID, p, err)
	}
	return nil
}

// RedactKey shortens the user part of a pair key to its last four characters, for logs and error
// messages (phone numbers are personal data): "106540352242922/16505551234" becomes
// "106540352242922/…1234". Account keys and keys without a user part are returned as they are.
func RedactKey(key string) string {
	pn, user, ok := events.SplitPairKey(key)
	if !ok || pn == "acct" {
		return key
	}
	if len(user) <= 4 {
		return pn + "/…"
	}
	return pn + "/…" + user[len(user)-4:]
}
