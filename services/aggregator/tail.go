package aggregator

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/convmeter/convmeter/events"
	"github.com/segmentio/kafka-go"
)

// ErrForeignRecord is a record in an output partition that has no cause from this aggregator:
// something else writes to a topic only the aggregator may write, and positions can no longer
// tell what was already emitted.
var ErrForeignRecord = errors.New("output record without a cause")

// lastCause returns the cause of the last record of topic/partition, or nil when the partition is
// empty. It is where a restarted partition's previous run stopped writing (architecture rule 3).
func lastCause(ctx context.Context, client *kafka.Client, topic string, partition int) (*events.Cause, error) {
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.LastOffsetOf(partition)},
	}})
	if err != nil {
		return nil, fmt.Errorf("last cause of %s/%d: list offsets: %w", topic, partition, err)
	}
	var end int64 = -1
	for _, po := range res.Topics[topic] {
		if po.Partition == partition {
			if po.Error != nil {
				return nil, fmt.Errorf("last cause of %s/%d: list offsets: %w", topic, partition, po.Error)
			}
			end = po.LastOffset
		}
	}
	if end < 0 {
		return nil, fmt.Errorf("last cause of %s/%d: no offsets returned", topic, partition)
	}
	if end == 0 {
		return nil, nil
	}
	// The broker returns the whole record batch holding end-1; the last record read is the one.
	f, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: partition, Offset: end - 1, MinBytes: 1, MaxBytes: 32 << 20})
	if err != nil {
		return nil, fmt.Errorf("last cause of %s/%d: fetch offset %d: %w", topic, partition, end-1, err)
	}
	if f.Error != nil {
		return nil, fmt.Errorf("last cause of %s/%d: fetch offset %d: %w", topic, partition, end-1, f.Error)
	}
	var last []byte
	lastOff := int64(-1)
	for {
		r, err := f.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("last cause of %s/%d: read records: %w", topic, partition, err)
		}
		if r.Offset >= end || r.Value == nil {
			continue
		}
		b, err := io.ReadAll(r.Value)
		if err != nil {
			return nil, fmt.Errorf("last cause of %s/%d: read offset %d: %w", topic, partition, r.Offset, err)
		}
		last, lastOff = b, r.Offset
	}
	if lastOff != end-1 {
		return nil, fmt.Errorf("last cause of %s/%d: fetch at %d returned up to offset %d", topic, partition, end-1, lastOff)
	}
	e, err := events.Decode(last)
	if err != nil {
		return nil, fmt.Errorf("last cause of %s/%d offset %d: %w: %w", topic, partition, lastOff, ErrForeignRecord, err)
	}
	if e.Cause == nil || int(e.Cause.Partition) != partition {
		return nil, fmt.Errorf("last cause of %s/%d offset %d: %w (event %s %s)", topic, partition, lastOff, ErrForeignRecord, e.Type, e.ID)
	}
	return e.Cause, nil
}
