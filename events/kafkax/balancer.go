package kafkax

import (
	"sync/atomic"

	"github.com/convmeter/convmeter/events"
	"github.com/segmentio/kafka-go"
)

// Balancer is a kafka.Balancer that agrees with the Java client's default partitioner:
//
//   - a message marked with ToPartition goes to that partition;
//   - a message with a non-nil key goes to events.Partition(key, n), toPositive(murmur2(key)) % n,
//     as Java and librdkafka's murmur2_random do (an empty, non-nil key is hashed, as in Java);
//   - a message with a nil key and no mark goes round robin.
//
// The zero value is ready to use and safe for concurrent use.
type Balancer struct {
	next atomic.Uint32
}

var _ kafka.Balancer = (*Balancer)(nil)

// explicitPartition is the mark ToPartition leaves in kafka.Message.WriterData (which kafka-go
// never puts on the wire).
type explicitPartition int

// ToPartition marks m to be written to partition p by a writer whose balancer is a *Balancer.
// It uses m.WriterData, so a Completion callback sees the mark rather than its own data.
func ToPartition(m kafka.Message, p int) kafka.Message {
	m.WriterData = explicitPartition(p)
	return m
}

// ExplicitPartition returns the partition ToPartition marked m with.
func ExplicitPartition(m kafka.Message) (int, bool) {
	p, ok := m.WriterData.(explicitPartition)
	return int(p), ok
}

// Balance implements kafka.Balancer. kafka-go passes the partition ids 0..n-1 in order.
//
// A Balancer cannot return an error: a marked partition outside 0..n-1 is returned as is, and the
// broker rejects the write (UNKNOWN_TOPIC_OR_PARTITION) rather than the record landing elsewhere.
// Broadcast and the producer check the partition before writing.
func (b *Balancer) Balance(msg kafka.Message, partitions ...int) int {
	if p, ok := ExplicitPartition(msg); ok {
		return p
	}
	n := len(partitions)
	if n == 0 {
		return 0
	}
	if msg.Key == nil {
		return partitions[int((b.next.Add(1)-1)%uint32(n))]
	}
	return partitions[events.Partition(msg.Key, n)]
}
