package window

import (
	"fmt"
	"math/rand"
	"sort"

	"github.com/convmeter/convmeter/events"
)

// traffic generates realistic input for property tests and benchmarks: many pairs, days of
// events, templates of every category, free-form replies, ad entries, statuses with and without
// send events and Meta's fields, read without delivered, failures, and hourly clock ticks. The
// result is in event-time order (ties in generation order).
type traffic struct {
	r       *rand.Rand
	numbers []string
	evs     []events.Event
}

var eras = []string{"2023-03-01T00:00:00Z", "2024-03-04T00:00:00Z", "2024-10-30T00:00:00Z", "2025-06-29T00:00:00Z", "2025-09-01T00:00:00Z", "2026-09-29T00:00:00Z"}

var templateCats = []events.Category{events.CategoryMarketing, events.CategoryUtility, events.CategoryAuthentication}

func genTraffic(seed int64, pairs, actions int) []events.Event {
	g := &traffic{r: rand.New(rand.NewSource(seed)), numbers: []string{"1001", "1002", "1003"}}
	start := at(eras[g.r.Intn(len(eras))])
	for _, n := range g.numbers {
		tz := []string{"UTC", "Asia/Kolkata", "America/Sao_Paulo"}[g.r.Intn(3)]
		g.evs = append(g.evs, events.New(&events.AccountConfig{PhoneNumberID: n, WABAID: "waba-" + n, PortfolioID: "p1", TimeZone: tz, Currency: "USD"}))
	}
	end := start
	for p := 0; p < pairs; p++ {
		number := g.numbers[g.r.Intn(len(g.numbers))]
		user := fmt.Sprintf("55%09d", g.r.Intn(1_000_000_000))
		t := start + g.r.Int63n(6*hour)
		for a := 0; a < actions; a++ {
			t += g.r.Int63n(10 * hour)
			g.action(number, user, t)
			end = max(end, t)
		}
	}
	sort.SliceStable(g.evs, func(i, j int) bool { return g.evs[i].Time < g.evs[j].Time })
	out := append([]events.Event(nil), g.evs[:len(g.numbers)]...)
	rest := g.evs[len(g.numbers):]
	for tick := start; tick <= end+4*day; tick += hour {
		for len(rest) > 0 && int64(rest[0].Time) <= tick {
			out = append(out, rest[0])
			rest = rest[1:]
		}
		out = append(out, events.NewTick(0, events.UnixTime(tick)))
	}
	return append(out, rest...)
}

func (g *traffic) action(number, user string, t int64) {
	r := g.r
	switch x := r.Intn(10); {
	case x < 3:
		m := &events.InboundMessage{PhoneNumberID: number, WaID: user, WAMID: g.id("in"), MessageType: "text", Timestamp: events.UnixTime(t)}
		switch r.Intn(10) {
		case 0:
			m.Referral = &events.Referral{SourceType: "ad", SourceID: "ad"}
		case 1:
			m.MessageType = "system"
		case 2:
			m.MessageType = "button"
		}
		g.evs = append(g.evs, events.New(m))
	default:
		w := g.id("out")
		var c events.Category
		if r.Intn(3) > 0 {
			c = templateCats[r.Intn(len(templateCats))]
		}
		hasSend := r.Intn(10) > 0
		if hasSend {
			s := &events.OutboundSend{PhoneNumberID: number, WaID: user, WAMID: w, Timestamp: events.UnixTime(t), Kind: events.KindFreeForm}
			if c != "" {
				s.Kind, s.TemplateCategory = events.KindTemplate, c
			}
			g.evs = append(g.evs, events.New(s))
		}
		pricing := func() *events.MetaPricing {
			if hasSend && r.Intn(2) == 0 {
				return nil
			}
			pc := c
			if pc == "" {
				pc = events.CategoryService
			}
			return &events.MetaPricing{PricingModel: "PMP", Category: pc, Type: "regular"}
		}
		st := func(s events.Status, at int64, p *events.MetaPricing) {
			g.evs = append(g.evs, events.New(&events.StatusUpdate{PhoneNumberID: number, RecipientID: user, WAMID: w, Status: s, Timestamp: events.UnixTime(at), Pricing: p}))
		}
		st(events.StatusSent, t, pricing())
		d := t + r.Int63n(120)
		switch y := r.Intn(20); {
		case y == 0:
			st(events.StatusFailed, d, nil)
		case y == 1:
			// undelivered: never reaches the phone
		case y < 4:
			st(events.StatusRead, d, pricing()) // read without delivered
		default:
			st(events.StatusDelivered, d, pricing())
			if r.Intn(2) == 0 {
				st(events.StatusRead, d+r.Int63n(3*hour), nil)
			}
		}
	}
}

func (g *traffic) id(prefix string) string {
	return fmt.Sprintf("wamid.%s.%016x", prefix, g.r.Uint64())
}

// shuffleWithin reorders arrivals so that no event arrives more than maxDelay after events later
// than it: every event stays within the allowed lateness.
func shuffleWithin(seed int64, evs []events.Event, maxDelay int64) []events.Event {
	r := rand.New(rand.NewSource(seed))
	type arrival struct {
		at int64
		ev events.Event
	}
	as := make([]arrival, len(evs))
	for i, ev := range evs {
		delay := int64(0)
		if ev.Type != events.TypeAccountConfig && r.Intn(3) == 0 {
			delay = r.Int63n(maxDelay)
		}
		as[i] = arrival{at: int64(ev.Time) + delay, ev: ev}
		if ev.Type == events.TypeAccountConfig {
			as[i].at = -1
		}
	}
	sort.SliceStable(as, func(i, j int) bool { return as[i].at < as[j].at })
	out := make([]events.Event, len(as))
	for i, a := range as {
		out[i] = a.ev
	}
	return out
}

// run applies evs to a fresh engine and returns every output.
func run(evs []events.Event) ([]events.Event, *Engine) {
	e, err := New(Config{})
	if err != nil {
		panic(err)
	}
	var out []events.Event
	for i, ev := range evs {
		out, err = e.Apply(ev, int64(i), out)
		if err != nil {
			panic(err)
		}
	}
	return out, e
}
