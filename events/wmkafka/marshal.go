package wmkafka

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
)

// Metadata keys with a local meaning. Keys starting with "kafka_" are never sent as headers.
const (
	MetaKey       = "kafka_key"       // record key (publish and consume)
	MetaPartition = "kafka_partition" // publish: explicit target partition; consume: source partition
	MetaTopic     = "kafka_topic"     // consume: source topic
	MetaOffset    = "kafka_offset"    // consume: record offset
)

// CloudEvents Kafka binding headers (binary content mode), as kafkax writes them.
const (
	HeaderSpecVersion = kafkax.HeaderSpecVersion
	HeaderID          = kafkax.HeaderID
	HeaderSource      = kafkax.HeaderSource
	HeaderType        = kafkax.HeaderType
	HeaderTime        = kafkax.HeaderTime
	HeaderSubject     = kafkax.HeaderSubject
	HeaderContentType = kafkax.HeaderContentType
)

const localPrefix = "kafka_"

func (p *Publisher) marshal(topic string, m *message.Message) (kafka.Message, error) {
	km := kafka.Message{Topic: topic, Value: m.Payload}
	key, err := p.keyFunc(topic, m)
	if err != nil {
		return km, err
	}
	if key != "" {
		km.Key = []byte(key)
	}
	if s := m.Metadata.Get(MetaPartition); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return km, &MetadataError{Key: MetaPartition, Value: s}
		}
		km = kafkax.ToPartition(km, n)
	}
	hs := make([]kafka.Header, 0, len(m.Metadata)+3)
	hs = append(hs, kafka.Header{Key: HeaderSpecVersion, Value: []byte(kafkax.SpecVersion)}, kafka.Header{Key: HeaderID, Value: []byte(m.UUID)})
	if m.Metadata.Get(HeaderSource) == "" && p.cfg.Source != "" {
		hs = append(hs, kafka.Header{Key: HeaderSource, Value: []byte(p.cfg.Source)})
	}
	for k, v := range m.Metadata {
		if strings.HasPrefix(k, localPrefix) || k == HeaderSpecVersion || k == HeaderID {
			continue
		}
		hs = append(hs, kafka.Header{Key: k, Value: []byte(v)})
	}
	km.Headers = hs
	return km, nil
}

// Unmarshal turns a consumed record into a Watermill message (see the package doc).
func Unmarshal(km kafka.Message) *message.Message {
	md := make(message.Metadata, len(km.Headers)+4)
	id := ""
	for _, h := range km.Headers {
		if h.Key == HeaderID {
			id = string(h.Value)
			continue
		}
		md[h.Key] = string(h.Value)
	}
	if id == "" {
		id = km.Topic + "/" + strconv.Itoa(km.Partition) + "/" + strconv.FormatInt(km.Offset, 10)
	}
	if km.Key != nil {
		md[MetaKey] = string(km.Key)
	}
	md[MetaTopic] = km.Topic
	md[MetaPartition] = strconv.Itoa(km.Partition)
	md[MetaOffset] = strconv.FormatInt(km.Offset, 10)
	m := message.NewMessage(id, km.Value)
	m.Metadata = md
	return m
}

// MetadataError says a metadata entry with a local meaning has a value that cannot be used.
type MetadataError struct {
	Key, Value string
}

func (e *MetadataError) Error() string {
	return "wmkafka: metadata " + e.Key + "=" + strconv.Quote(e.Value) + " is not usable"
}

// EventMessage builds the Watermill message of an event: UUID = event id, payload = the encoded
// envelope, key = the event key, and the CloudEvents metadata kafkax.Headers would write
// (ce_type, ce_source, ce_time, ce_subject, content-type; the Publisher adds ce_specversion and
// ce_id).
func EventMessage(e events.Event) (*message.Message, error) {
	if e.Type == "" && e.Data != nil {
		e.Type = e.Data.EventType()
	}
	b, err := events.Encode(make([]byte, 0, 512), e)
	if err != nil {
		return nil, fmt.Errorf("wmkafka: message of %s %s key %s: %w", e.Type, e.ID, kafkax.RedactKey(e.Key), err)
	}
	m := message.NewMessage(e.ID, b)
	md := make(message.Metadata, 8)
	md[HeaderType] = string(e.Type)
	md[HeaderSource] = events.Source
	md[HeaderTime] = string(e.Time.Time().AppendFormat(make([]byte, 0, 20), time.RFC3339))
	if e.Key != "" {
		md[HeaderSubject] = e.Key
		md[MetaKey] = e.Key
	}
	md[HeaderContentType] = events.ContentType
	m.Metadata = md
	return m, nil
}
