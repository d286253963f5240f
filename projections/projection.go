package projections

import (
	"context"

	"github.com/convmeter/convmeter/events"
)

// Batch is a run of output events from one partition of the conversation-events topic, in log
// order. Every event carries its Cause (input partition, offset, index), which is totally ordered
// within the partition.
type Batch struct {
	Partition int32
	Events    []events.Event
}

// Projection is the port a projection consumer drives. Apply must write the state change of the
// whole batch and the partition's new high-water cause in one atomic unit, skipping every event
// whose cause is at or below the stored high-water mark, so that a batch applied twice (after a
// crash between the Redis write and the offset commit) changes nothing the second time.
type Projection interface {
	// Name is the projection's stable name (a key prefix and consumer-group suffix, wire data).
	Name() string
	// Apply applies b atomically and idempotently. It keeps no reference to b.Events after it
	// returns: the caller reuses the slice for its next batch (the payloads are not reused).
	Apply(ctx context.Context, b Batch) error
	// HighWater returns the last cause applied for partition p, and false when none was.
	HighWater(ctx context.Context, p int32) (events.Cause, bool, error)
}
