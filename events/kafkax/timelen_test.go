package kafkax

import (
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
)

// TestEventTimeLen holds eventTimeLen's fixed length to the formatted time around the range
// where it applies.
func TestEventTimeLen(t *testing.T) {
	for _, ut := range []int64{rfc3339Min - 86400*400, rfc3339Min - 1, rfc3339Min, rfc3339Min + 1, -1, 0, 1, 1750000000, rfc3339Max - 1, rfc3339Max, rfc3339Max + 1, rfc3339Max + 86400*400} {
		e := events.Event{Time: events.UnixTime(ut)}
		if got, want := eventTimeLen(e), len(e.Time.Time().Format(time.RFC3339)); got != want {
			t.Errorf("eventTimeLen(%d) = %d, want %d", ut, got, want)
		}
	}
}
