package window

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
)

const (
	testNumber = "106540352242922"
	testUser   = "16505551234"
	hour       = int64(3600)
)

// harness drives one engine with events in the order the test gives them.
type harness struct {
	t   testing.TB
	e   *Engine
	off int64
	out []events.Event
	n   int
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, e: e}
}

// configured returns a harness whose test number is configured from 2020 in time zone tz.
func configured(t testing.TB, tz string) *harness {
	h := newHarness(t, Config{})
	h.apply(events.New(accountConfig(testNumber, tz, 0)))
	return h
}

func accountConfig(number, tz string, from int64) *events.AccountConfig {
	return &events.AccountConfig{PhoneNumberID: number, WABAID: "waba-" + number, PortfolioID: "portfolio-1", TimeZone: tz, Currency: "USD", EffectiveFrom: events.UnixTime(from)}
}

func (h *harness) apply(in events.Event) []events.Event {
	h.t.Helper()
	before := len(h.out)
	var err error
	h.out, err = h.e.Apply(in, h.off, h.out)
	if err != nil {
		h.t.Fatalf("apply %s: %v", in.Type, err)
	}
	h.off++
	return h.out[before:]
}

func (h *harness) wamid(prefix string) string {
	h.n++
	return fmt.Sprintf("wamid.%s.%d", prefix, h.n)
}

func (h *harness) inbound(at int64, opts ...func(*events.InboundMessage)) string {
	m := &events.InboundMessage{PhoneNumberID: testNumber, WaID: testUser, WAMID: h.wamid("in"), MessageType: "text", Timestamp: events.UnixTime(at)}
	for _, o := range opts {
		o(m)
	}
	h.apply(events.New(m))
	return m.WAMID
}

func fromAd(m *events.InboundMessage) {
	m.Referral = &events.Referral{SourceType: "ad", SourceID: "ad-1"}
}

// template sends a template of category c at t and delivers it at t.
func (h *harness) template(at int64, c events.Category) string {
	w := h.wamid("tpl")
	h.send(at, w, c)
	h.status(at, w, events.StatusDelivered, nil)
	return w
}

// text sends a free-form message at t and delivers it at t.
func (h *harness) text(at int64) string {
	w := h.wamid("txt")
	h.send(at, w, "")
	h.status(at, w, events.StatusDelivered, nil)
	return w
}

func sendEvent(at int64, wamid string, c events.Category) events.Event {
	s := &events.OutboundSend{PhoneNumberID: testNumber, WaID: testUser, WAMID: wamid, Timestamp: events.UnixTime(at), Kind: events.KindFreeForm}
	if c != "" {
		s.Kind, s.TemplateCategory = events.KindTemplate, c
	}
	return events.New(s)
}

func (h *harness) send(at int64, wamid string, c events.Category) {
	h.apply(sendEvent(at, wamid, c))
}

func statusEvent(at int64, wamid string, st events.Status, pricing *events.MetaPricing) events.Event {
	return events.New(&events.StatusUpdate{PhoneNumberID: testNumber, RecipientID: testUser, WAMID: wamid, Status: st, Timestamp: events.UnixTime(at), Pricing: pricing})
}

func (h *harness) status(at int64, wamid string, st events.Status, pricing *events.MetaPricing) {
	h.apply(statusEvent(at, wamid, st, pricing))
}

func (h *harness) tick(at int64) { h.apply(events.NewTick(0, events.UnixTime(at))) }

// net is the outcome of the outputs so far: every output not retracted by a later correction.
func (h *harness) net() []events.Event { return net(h.out) }

func net(out []events.Event) []events.Event {
	// In log order: an output is in the outcome from its emission until a correction retracts it;
	// a replacement may reuse the id with new content.
	live := map[string]events.Event{}
	var order []string
	for _, ev := range out {
		if c, ok := ev.Data.(*events.Correction); ok {
			for _, id := range c.Retracts {
				delete(live, id)
			}
			continue
		}
		if _, ok := live[ev.ID]; !ok {
			order = append(order, ev.ID)
		}
		live[ev.ID] = ev
	}
	var keep []events.Event
	done := map[string]bool{}
	for _, id := range order {
		if ev, ok := live[id]; ok && !done[id] {
			done[id] = true
			keep = append(keep, ev)
		}
	}
	return keep
}

func of[T events.Payload](evs []events.Event) []T {
	var out []T
	for _, ev := range evs {
		if p, ok := ev.Data.(T); ok {
			out = append(out, p)
		}
	}
	return out
}

// chargeLine renders a charge compactly for table assertions.
func chargeLine(c *events.Charge) string {
	b := "free"
	if c.Billable {
		b = "billable"
	}
	return fmt.Sprintf("%s %s %s %s %s %s", c.WAMID, c.Unit, c.Category, c.PricingModel, b, c.Reason)
}

func chargeLines(evs []events.Event) []string {
	var out []string
	for _, c := range of[*events.Charge](evs) {
		out = append(out, chargeLine(c))
	}
	return out
}

func convLines(evs []events.Event) []string {
	var out []string
	for _, c := range of[*events.ConversationOpened](evs) {
		out = append(out, fmt.Sprintf("%s %s %s+%dh", c.Category, c.PricingModel, c.OpenedAt, (c.ExpiresAt-c.OpenedAt)/3600))
	}
	return out
}

func wantLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func at(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.Unix()
}

// fingerprint renders outputs for comparisons that ignore causes (positions differ between
// arrival orders) but not content.
func fingerprint(evs []events.Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		e := ev
		e.Cause = nil
		b, err := events.Marshal(e)
		if err != nil {
			panic(err)
		}
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}
