package window

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// program turns arbitrary bytes into an input sequence: 5 bytes per event (op, pair, time step,
// message, detail), times moving mostly forward but sometimes back by up to ~4 days, so late,
// too-late, duplicate and disordered events all occur.
func program(data []byte) []events.Event {
	base := at("2025-06-20T00:00:00Z")
	evs := []events.Event{events.New(accountConfig("9", "Asia/Kolkata", 0))}
	t := base
	cats := []events.Category{events.CategoryMarketing, events.CategoryUtility, events.CategoryAuthentication, events.CategoryService, "authentication-international", "bogus"}
	statuses := []events.Status{events.StatusSent, events.StatusDelivered, events.StatusRead, events.StatusPlayed, events.StatusFailed, events.StatusDeleted}
	for len(data) >= 5 {
		op, pr, step, mi, detail := data[0], data[1], data[2], data[3], data[4]
		data = data[5:]
		if step < 200 {
			t += int64(step) * 600
		} else {
			t -= int64(step-200) * 6000
		}
		// Stay within the retention: a status 35 days after its message's delivery is beyond what
		// the engine remembers by design (Meta retries for at most 7 days).
		t = min(max(t, base-10*day), base+30*day)
		user := fmt.Sprintf("91%03d", pr%4)
		w := fmt.Sprintf("wamid.%s.%d", user, mi%16) // wamids are globally unique
		switch op % 6 {
		case 0:
			m := &events.InboundMessage{PhoneNumberID: "9", WaID: user, WAMID: w + ".in", MessageType: []string{"text", "system", "call", "button"}[detail%4], Timestamp: events.UnixTime(t)}
			if detail&8 != 0 {
				m.Referral = &events.Referral{SourceType: "ad"}
			}
			evs = append(evs, events.New(m))
		case 1:
			s := &events.OutboundSend{PhoneNumberID: "9", WaID: user, WAMID: w, Timestamp: events.UnixTime(t), Kind: events.KindFreeForm}
			if detail&1 != 0 {
				s.Kind, s.TemplateCategory = events.KindTemplate, cats[int(detail>>1)%3]
			}
			evs = append(evs, events.New(s))
		case 2, 3:
			s := &events.StatusUpdate{PhoneNumberID: "9", RecipientID: user, WAMID: w, Status: statuses[int(detail)%len(statuses)], Timestamp: events.UnixTime(t)}
			if detail&16 != 0 {
				model := "PMP"
				if detail&32 != 0 {
					model = "CBP"
				}
				s.Pricing = &events.MetaPricing{PricingModel: model, Category: cats[int(detail>>6)%len(cats)], Type: "regular"}
			}
			if detail&64 != 0 {
				s.Conversation = &events.MetaConversation{ID: fmt.Sprintf("c%d", detail%3), OriginType: cats[int(detail)%len(cats)]}
			}
			evs = append(evs, events.New(s))
		case 4:
			evs = append(evs, events.NewTick(0, events.UnixTime(t)))
		case 5:
			if len(evs) > 1 {
				evs = append(evs, evs[1+int(detail)%(len(evs)-1)]) // a duplicate
			}
		}
	}
	return evs
}

func FuzzEngine(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 0, 1, 1, 1, 2, 1, 2, 1, 0, 2, 1, 3, 1, 0, 2, 17})
	f.Add([]byte{1, 0, 5, 0, 3, 2, 0, 0, 0, 1, 4, 0, 250, 0, 0, 2, 0, 1, 0, 2, 5, 0, 0, 0, 9})
	f.Add([]byte{0, 2, 10, 4, 8, 1, 2, 10, 4, 3, 3, 2, 1, 4, 81, 4, 0, 255, 0, 0, 3, 2, 1, 4, 81})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := program(data)
		a, e := run(in)
		b, _ := run(in)
		if !bytes.Equal(encodeAll(t, a), encodeAll(t, b)) {
			t.Fatal("not deterministic")
		}
		checkConservation(t, in, net(a))
		for i, ev := range a {
			if ev.Cause == nil || ev.ID == "" {
				t.Fatalf("output %d has no cause or id: %+v", i, ev)
			}
			if _, err := events.Marshal(ev); err != nil {
				t.Fatalf("output %d does not encode: %v", i, err)
			}
		}
		var snap bytes.Buffer
		if err := e.Snapshot(&snap); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(&snap, Config{}); err != nil {
			t.Fatal(err)
		}
	})
}
