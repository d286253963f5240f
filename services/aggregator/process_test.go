package aggregator

import (
	"bytes"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/window"
	"github.com/segmentio/kafka-go"
)

func record(t *testing.T, e events.Event, off int64) kafka.Message {
	t.Helper()
	m, err := kafkax.ToMessage(e)
	if err != nil {
		t.Fatal(err)
	}
	m.Offset = off
	return m
}

func TestProcessorDeadLettersSetAsideAndCauses(t *testing.T) {
	eng, err := window.New(window.Config{Partition: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := Processor{Engine: eng, Topic: "in", Partition: 2}
	const day = 86400
	t0 := events.UnixTime(1751500000)
	cfg := events.New(&events.AccountConfig{PhoneNumberID: "111", WABAID: "w", PortfolioID: "pf", TimeZone: "UTC", Currency: "USD", EffectiveFrom: t0 - day})
	in1 := events.New(&events.InboundMessage{PhoneNumberID: "111", WaID: "5511", WAMID: "wamid.1", MessageType: "text", Timestamp: t0})
	late := events.New(&events.StatusUpdate{PhoneNumberID: "111", RecipientID: "5522", WAMID: "wamid.old", Status: events.StatusRead, Timestamp: t0 - 5*day})
	bad := kafka.Message{Key: []byte("111/5511"), Value: []byte(`{"v":1,"id":"x","type":"message.inbound.v1"`), Offset: 3,
		Headers: []kafka.Header{{Key: "ce_id", Value: []byte("x")}}}
	outputType := events.Event{ID: "o", Type: events.TypeWindowExpired, Key: "111/5511", Time: t0, Data: &events.WindowExpired{}}

	badValue := bytes.Clone(bad.Value)

	var out, dead []events.Event
	var typ events.Type
	for i, m := range []kafka.Message{record(t, cfg, 0), record(t, in1, 1), record(t, late, 2), bad, record(t, outputType, 4)} {
		m.Offset = int64(i)
		out, dead, typ = p.Record(m, out, dead)
		if i == 3 && typ != "" {
			t.Errorf("undecodable record typed %q", typ)
		}
		// A reader with Reuse overwrites the record's memory once the loop moves on: nothing
		// returned may point into it.
		for _, b := range append([][]byte{m.Key, m.Value}, m.Headers[0].Value) {
			for j := range b {
				b[j] = 'X'
			}
		}
	}
	// Causes count from 0 within each input and name partition 2.
	seen := map[int64]int32{}
	for _, e := range out {
		if e.Cause == nil || e.Cause.Partition != 2 || e.Cause.Index != seen[e.Cause.Offset] {
			t.Fatalf("output %s %s has cause %+v, want partition 2, index %d", e.Type, e.ID, e.Cause, seen[e.Cause.Offset])
		}
		seen[e.Cause.Offset]++
	}
	var sa *events.EventSetAside
	for _, e := range out {
		if x, ok := e.Data.(*events.EventSetAside); ok {
			sa = x
		}
	}
	lateBytes, _ := events.Marshal(late)
	if sa == nil || sa.InputID != late.ID || !bytes.Equal(sa.Original, lateBytes) {
		t.Fatalf("set-aside %+v, want the late status with its original bytes", sa)
	}
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2 (undecodable, engine-refused)", len(dead))
	}
	d0 := dead[0].Data.(*events.DeadLetter)
	if d0.ErrorKind != string(events.ErrKindMalformed) || d0.Topic != "in" || d0.Partition != 2 || d0.Offset != 3 ||
		!bytes.Equal(d0.Original, badValue) || string(d0.Key) != "111/5511" || d0.Headers["ce_id"] != "x" {
		t.Fatalf("dead letter of the undecodable record: %+v", d0)
	}
	if c := dead[0].Cause; c == nil || *c != (events.Cause{Partition: 2, Offset: 3}) {
		t.Fatalf("dead letter cause %+v", c)
	}
	d1 := dead[1].Data.(*events.DeadLetter)
	if d1.ErrorKind != string(events.ErrKindInvalid) || d1.Offset != 4 {
		t.Fatalf("dead letter of the output-type record: %+v", d1)
	}
	// The dead letters encode and decode (they go through the same codec as everything else).
	for _, d := range dead {
		b, err := events.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := events.Decode(b); err != nil {
			t.Fatalf("dead letter does not decode: %v\n%s", err, b)
		}
	}
}

func TestSuppress(t *testing.T) {
	ev := func(off int64, idx int32) events.Event {
		return events.Event{ID: "x", Cause: &events.Cause{Partition: 0, Offset: off, Index: idx}}
	}
	evs := []events.Event{ev(5, 0), ev(5, 1), ev(6, 0), ev(7, 0), ev(7, 1)}
	for _, tc := range []struct {
		last      *events.Cause
		keep, drp int
	}{
		{nil, 5, 0},
		{&events.Cause{Offset: 4, Index: 9}, 5, 0},
		{&events.Cause{Offset: 5, Index: 0}, 4, 1},
		{&events.Cause{Offset: 5, Index: 1}, 3, 2},
		{&events.Cause{Offset: 6, Index: 0}, 2, 3},
		{&events.Cause{Offset: 7, Index: 1}, 0, 5},
		{&events.Cause{Offset: 9, Index: 0}, 0, 5},
	} {
		kept, dropped := suppress(append([]events.Event(nil), evs...), tc.last)
		if len(kept) != tc.keep || dropped != tc.drp {
			t.Errorf("last %+v: kept %d dropped %d, want %d and %d", tc.last, len(kept), dropped, tc.keep, tc.drp)
		}
		if len(kept) > 0 && tc.last != nil && !kept[0].Cause.After(*tc.last) {
			t.Errorf("last %+v: kept %+v", tc.last, kept[0].Cause)
		}
	}
}
