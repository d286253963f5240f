package window

import (
	"runtime"
	"testing"
	"unsafe"
	"weak"

	"github.com/convmeter/convmeter/events"
)

// The engine keeps nothing of a decoded input event once it is applied: the pair it changed
// stays decoded in the cache (as in a replay or an audit, where most pairs do), but its facts
// hold copies of the wamids and of Meta's pricing and conversation fields, not the event's
// strings (one buffer per event) or its payload.
func TestEngineKeepsNoInputMemory(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	off := int64(0)
	apply := func(ev events.Event) {
		t.Helper()
		if out, err = e.Apply(ev, off, out[:0]); err != nil {
			t.Fatal(err)
		}
		off++
	}
	apply(events.New(accountConfig(testNumber, "UTC", 0)))
	billable := true
	t0 := int64(1_722_470_400) // 2024-08-01: CBP, Meta's conversation object on statuses
	inputs := []events.Payload{
		&events.InboundMessage{PhoneNumberID: testNumber, WaID: testUser, WAMID: "wamid.in-1", MessageType: "text", Timestamp: events.UnixTime(t0)},
		&events.OutboundSend{PhoneNumberID: testNumber, WaID: testUser, WAMID: "wamid.out-1", Kind: events.KindTemplate, MessageType: "template",
			TemplateCategory: events.CategoryMarketing, Timestamp: events.UnixTime(t0 + 60)},
		&events.StatusUpdate{PhoneNumberID: testNumber, RecipientID: testUser, WAMID: "wamid.out-1", Status: events.StatusDelivered,
			Timestamp: events.UnixTime(t0 + 70), Pricing: &events.MetaPricing{Billable: &billable, PricingModel: "CBP", Type: "regular", Category: "marketing_special"},
			Conversation: &events.MetaConversation{ID: "conv-meta-1", ExpirationTimestamp: events.UnixTime(t0 + 86_400), OriginType: "marketing"}},
	}
	var held []weak.Pointer[byte] // the first byte of each decoded event's string buffer
	var payloads []weak.Pointer[events.StatusUpdate]
	for _, p := range inputs {
		b, err := events.Marshal(events.New(p))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := events.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, weak.Make(unsafe.StringData(ev.ID))) // the event's strings share one buffer, the id first
		if s, ok := ev.Data.(*events.StatusUpdate); ok {
			payloads = append(payloads, weak.Make(s))
		}
		apply(ev)
	}
	tick := events.New(&events.Tick{})
	tick.Time = events.UnixTime(t0 + 80)
	apply(tick) // the outputs above are dropped
	clear(out[:cap(out)])
	key := events.PairKey(testNumber, testUser, "")
	if s := find(&e.cache, hashKey(key), key); s == nil || len(s.p.cur.msgs) == 0 || len(s.p.pending) == 0 {
		t.Fatal("the pair is not decoded in the cache with its facts and messages: the test would prove nothing")
	}
	runtime.GC()
	runtime.GC()
	for i, w := range held {
		if w.Value() != nil {
			t.Errorf("input %d (%T): the engine still holds the decoded event's strings", i, inputs[i])
		}
	}
	for _, w := range payloads {
		if w.Value() != nil {
			t.Error("the engine still holds the decoded status payload")
		}
	}
	runtime.KeepAlive(e)
}

// A pair whose current state is empty while its base (the state at the cut, which a late event
// would replay from) still holds an open window is evicted once the cut passes that window, and
// is left alone until then: it used to be maintained at every stream advance for up to the
// lateness (on a month of loadgen traffic, 2.6 maintains per input event, most of the engine's
// time).
func TestIdlePairIsNotMaintainedAtEveryStreamAdvance(t *testing.T) {
	h := configured(t, "UTC")
	t0 := at("2025-07-01T00:00:00Z")
	h.inbound(t0) // opens the service window: expires at t0+24h, leaves the base at t0+24h+lateness
	const step = 60
	end := t0 + 5*24*hour
	for ts := t0 + step; ts <= end; ts += step { // stream time advances a minute at a time, 5 days
		h.tick(ts)
	}
	st := h.e.Stats()
	if st.Evicted != 1 || h.e.Pairs() != 0 {
		t.Fatalf("evicted %d, %d pairs left: the pair should be gone once the cut passed its window", st.Evicted, h.e.Pairs())
	}
	// Its deadlines: the window's expiry, folding the inbound past the lateness, and the eviction
	// once the cut passes the window; a few more at most. 4,320 minutes are in the lateness.
	if st.Maintained > 8 {
		t.Errorf("the pair was maintained %d times over %d stream advances; want a handful", st.Maintained, (end-t0)/step)
	}
	if got := len(of[*events.WindowExpired](h.out)); got != 1 {
		t.Errorf("%d window expiries, want 1", got)
	}
}
