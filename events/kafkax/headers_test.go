package kafkax

import (
	"testing"

	"github.com/convmeter/convmeter/events"
)

func TestHeadersValues(t *testing.T) {
	e := events.Event{ID: "evt-1", Type: events.TypeCharge, Key: "1001/5511", Time: 1_752_000_000}
	want := map[string]string{
		HeaderSpecVersion: SpecVersion, HeaderID: "evt-1", HeaderType: string(events.TypeCharge),
		HeaderSource: events.Source, HeaderTime: "2025-07-08T18:40:00Z", HeaderSubject: "1001/5511",
		HeaderContentType: events.ContentType,
	}
	h := Headers(e)
	if len(h) != len(want) {
		t.Fatalf("%d headers, want %d", len(h), len(want))
	}
	for _, x := range h {
		if want[x.Key] != string(x.Value) {
			t.Errorf("%s = %q, want %q", x.Key, x.Value, want[x.Key])
		}
		// Values share a buffer: appending to one must not overwrite the next.
		_ = append(x.Value, "XXXXXXXX"...)
	}
	for _, x := range h {
		if want[x.Key] != string(x.Value) {
			t.Errorf("after appends: %s = %q", x.Key, x.Value)
		}
	}
	e.Key = ""
	for _, x := range Headers(e) {
		if x.Key == HeaderSubject {
			t.Errorf("subject header without a key")
		}
	}
	if a := testing.AllocsPerRun(100, func() { Headers(e) }); a > 2 {
		t.Errorf("%v allocations per Headers, want 2", a)
	}
}
