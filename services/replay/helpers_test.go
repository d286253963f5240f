package replay

import (
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
)

// encodeAll encodes events as the records of one partition.
func encodeAll(tb testing.TB, evs []events.Event) []kafka.Message {
	tb.Helper()
	out := make([]kafka.Message, len(evs))
	for i, e := range evs {
		b, err := events.Marshal(e)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = kafka.Message{Offset: int64(i), Key: []byte(e.Key), Value: b}
	}
	return out
}
