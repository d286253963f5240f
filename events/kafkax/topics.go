package kafkax

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Topic names. The wire contract: producers in any language write to MessageEvents, downstream
// consumers read ConversationEvents. The list is only appended to.
const (
	MessageEvents      = "convmeter.message-events.v1"      // input events, key = pair key
	ConversationEvents = "convmeter.conversation-events.v1" // derived events, co-partitioned with MessageEvents
	DeadLetter         = "convmeter.deadletter.v1"          // input that could not be decoded or validated
	Snapshots          = "convmeter.snapshots.v1"           // aggregator state per input partition, compacted
)

// Consumer-group names. The list is only appended to: renaming a group loses its offsets.
const (
	GroupAggregator = "convmeter.aggregator.v1"
	GroupBilling    = "convmeter.billing.v1"
	GroupRateLimit  = "convmeter.ratelimit.v1"
)

// Topics names the topics one deployment uses. The zero value is not useful; use DefaultTopics or
// PrefixedTopics (tests, side-by-side replays).
type Topics struct {
	MessageEvents      string
	ConversationEvents string
	DeadLetter         string
	Snapshots          string
}

// DefaultTopics are the production topic names.
func DefaultTopics() Topics {
	return Topics{
		MessageEvents:      MessageEvents,
		ConversationEvents: ConversationEvents,
		DeadLetter:         DeadLetter,
		Snapshots:          Snapshots,
	}
}

// PrefixedTopics puts prefix and a dot before every default name, for isolation
// ("t123.convmeter.message-events.v1"). An empty prefix gives DefaultTopics.
func PrefixedTopics(prefix string) Topics {
	t := DefaultTopics()
	if prefix == "" {
		return t
	}
	prefix = strings.TrimSuffix(prefix, ".") + "."
	t.MessageEvents = prefix + t.MessageEvents
	t.ConversationEvents = prefix + t.ConversationEvents
	t.DeadLetter = prefix + t.DeadLetter
	t.Snapshots = prefix + t.Snapshots
	return t
}

// All lists the topic names.
func (t Topics) All() []string {
	return []string{t.MessageEvents, t.ConversationEvents, t.DeadLetter, t.Snapshots}
}

// Specs are the topics a deployment with the given partition count needs. MessageEvents and
// ConversationEvents have the same count (co-partitioned: partition p of one feeds partition p of
// the other); Snapshots has one partition per input partition and is compacted, so the newest
// snapshot of each partition is kept; DeadLetter has the same count so a partition's bad input stays
// together, and room for a dead letter of the largest record the reader accepts.
func (t Topics) Specs(partitions int) []TopicSpec {
	events := map[string]string{"max.message.bytes": fmt.Sprint(MaxRecordBytes)}
	return []TopicSpec{
		{Name: t.MessageEvents, Partitions: partitions, Configs: events},
		{Name: t.ConversationEvents, Partitions: partitions, Configs: events},
		{Name: t.DeadLetter, Partitions: partitions, Configs: map[string]string{"max.message.bytes": fmt.Sprint(MaxDeadLetterRecordBytes)}},
		{Name: t.Snapshots, Partitions: partitions, Configs: map[string]string{
			"cleanup.policy":    "compact",
			"max.message.bytes": fmt.Sprint(MaxSnapshotRecordBytes),
		}},
	}
}

// MaxRecordBytes bounds one record batch on the event topics: room for an events.MaxEventSize
// envelope plus headers. The writer's BatchBytes and the topics' max.message.bytes both use it.
const MaxRecordBytes = 2 << 20

// MaxDeadLetterRecordBytes is max.message.bytes of the dead-letter topic and the BatchBytes of a
// writer to it. A dead letter carries the original record base64-encoded (4/3 of its size) plus the
// headers, so this leaves room for an original of about 6 MiB; a dead-letter writer must truncate
// anything larger (the original stays in its topic at the recorded partition and offset).
const MaxDeadLetterRecordBytes = 8 << 20

// MaxDeadLetterOriginal bounds the original bytes one dead letter carries, so that the record fits
// MaxDeadLetterRecordBytes after base64 and headers. TruncateOriginal applies it.
const MaxDeadLetterOriginal = 4 << 20

// TruncateOriginal returns original cut to MaxDeadLetterOriginal and the headers to record with
// it: when it was cut, *headers (allocated if nil) gets "truncated_from" (the full length) and
// "sha256" (the hash of the whole).
func TruncateOriginal(original []byte, headers *map[string]string) []byte {
	if len(original) <= MaxDeadLetterOriginal {
		return original
	}
	if *headers == nil {
		*headers = map[string]string{}
	}
	sum := sha256.Sum256(original)
	(*headers)["truncated_from"] = strconv.Itoa(len(original))
	(*headers)["sha256"] = hex.EncodeToString(sum[:])
	return original[:MaxDeadLetterOriginal]
}

// MaxSnapshotRecordBytes is max.message.bytes of the snapshots topic. A snapshot larger than this
// must be written in chunks.
const MaxSnapshotRecordBytes = 16 << 20
