package projections

import (
	"context"
	"fmt"

	"github.com/convmeter/convmeter/events"
)

// Batch is a run of output events from one partition of the conversation-events topic, in log
// order. Every event carries its Cause (input partition, offset, index), which is totally ordered
// within the partition.
type Batch struct {
	Partition int32
	Events    []events.Event
	// First and Next are the conversation-events offsets a batch read from the log spans: every
	// record from First up to (excluding) Next has been read, including records that did not
	// decode. Next is 0 for a batch not read from the log (replay, audit): the store then neither
	// checks nor records a position (see CheckPosition).
	First, Next int64
}

// Positioned is a Projection that records its log position with each batch read from the log
// (see CheckPosition), so that a consumer can compare it with its committed offsets.
type Positioned interface {
	Projection
	// Position returns the log position recorded for partition p.
	Position(ctx context.Context, p int32) (Position, error)
}

// GapError is returned by Apply when the log position the store recorded for the partition is
// before the batch's First: the records in between were applied once (their offsets were
// committed) but the store no longer holds their effect. Redis restored from an older state does
// that: a backup, a replica promoted before it had them, an append-only file that lost its last
// second, a flushed or replaced database. The caller reads [From, To) from the log again, applies
// it (the store then records To as its position), and then the batch.
type GapError struct {
	Partition int32
	From, To  int64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("partition %d: the store lacks the effect of log offsets %d to %d, which come before the batch (was it restored from an older state?)", e.Partition, e.From, e.To-1)
}

// Position is the log position a store recorded for a partition: Next, the offset after the last
// batch it applied from the log, when Known.
type Position struct {
	Next  int64
	Known bool
}

// CheckPosition is how a store that records its log position checks a batch before applying
// it: pos is the position recorded for the partition and hasHW says whether
// the store holds a high-water cause for it. With neither, the store holds nothing of the
// partition, so everything before the batch is missing (From 0; records retention deleted are
// skipped by the reader). A high-water cause without a position (a replay's namespace, promoted)
// leaves nothing to check against.
//
// It returns the position to record with the batch's effect, and whether to record it: never
// backwards (a batch delivered again after a crash between the store's write and the offset
// commit is older than the position).
func CheckPosition(b Batch, pos Position, hasHW bool) (next int64, record bool, err error) {
	if b.Next == 0 {
		return 0, false, nil
	}
	from := pos.Next
	switch {
	case pos.Known:
	case hasHW:
		return b.Next, true, nil
	default:
		from = 0
	}
	if b.First > from {
		return 0, false, &GapError{Partition: b.Partition, From: from, To: b.First}
	}
	return b.Next, !pos.Known || b.Next > pos.Next, nil
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
