package projections

import (
	"errors"
	"testing"
)

func TestCheckPosition(t *testing.T) {
	log := func(first, next int64) Batch { return Batch{Partition: 3, First: first, Next: next} }
	for _, tc := range []struct {
		name   string
		b      Batch
		pos    Position
		hasHW  bool
		next   int64
		record bool
		gap    *GapError
	}{
		{name: "not from the log", b: Batch{Partition: 3}, pos: Position{50, true}},
		{name: "follows the position", b: log(50, 60), pos: Position{50, true}, next: 60, record: true},
		{name: "delivered again after a crash", b: log(40, 50), pos: Position{50, true}, next: 50},
		{name: "overlaps the position", b: log(45, 55), pos: Position{50, true}, next: 55, record: true},
		{name: "records missing before it", b: log(70, 80), pos: Position{50, true}, gap: &GapError{Partition: 3, From: 50, To: 70}},
		{name: "empty store, first batch", b: log(0, 10), next: 10, record: true},
		{name: "empty store, committed offsets", b: log(70, 80), gap: &GapError{Partition: 3, From: 0, To: 70}},
		{name: "state from a replay, no position", b: log(70, 80), hasHW: true, next: 80, record: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, record, err := CheckPosition(tc.b, tc.pos, tc.hasHW)
			var gap *GapError
			switch {
			case tc.gap != nil:
				if !errors.As(err, &gap) || *gap != *tc.gap {
					t.Fatalf("err %v; want %+v", err, tc.gap)
				}
			case err != nil:
				t.Fatal(err)
			case record != tc.record || (record && next != tc.next):
				t.Fatalf("next %d, record %v; want %d, %v", next, record, tc.next, tc.record)
			}
		})
	}
}
