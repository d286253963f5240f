package wmkafka

import (
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"
)

// Metadata keys with a local meaning. Keys starting with "kafka_" are never sent as headers.
const (
	MetaKey       = "kafka_key"       // record key (publish and consume)
	MetaPartition = "kafka_partition" // publish: explicit target partition; consume: source partition
	MetaTopic     = "kafka_topic"     // consume: source topic
	MetaOffset    = "kafka_offset"    // consume: record offset
)

// CloudEvents Kafka binding headers (binary content mode).
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderContentType = "content-type"
)

const localPrefix = "kafka_"

// explicitPartition travels in kafka.Message.WriterData from marshal to the balancer.
type explicitPartition int

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
		km.WriterData = explicitPartition(n)
	}
	hs := make([]kafka.Header, 0, len(m.Metadata)+3)
	hs = append(hs, kafka.Header{Key: HeaderSpecVersion, Value: []byte("1.0")}, kafka.Header{Key: HeaderID, Value: []byte(m.UUID)})
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
