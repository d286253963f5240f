package window

import (
	"testing"

	"github.com/convmeter/convmeter/events"
)

// One test per edge case of domain.md §7 that the engine owns. Market mapping (19) and volume-tier
// webhook duplicates (23) belong to the billing projection, the portfolio counter (22) to the
// rate-limit projection; groups (21) are out of scope (A14).

func pmpStart() int64 { return at("2025-09-01T00:00:00Z") }

func TestEdge01DuplicateWebhooks(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	in := h.inbound(t0)
	w := h.template(t0+hour, events.CategoryMarketing)
	before := len(h.net())
	// Meta retries the inbound message and the delivered status.
	h.apply(events.New(&events.InboundMessage{PhoneNumberID: testNumber, WaID: testUser, WAMID: in, MessageType: "text", Timestamp: events.UnixTime(t0)}))
	h.status(t0+hour, w, events.StatusDelivered, nil)
	if after := len(h.net()); after != before {
		t.Fatalf("duplicates changed the outcome: %d → %d outputs", before, after)
	}
	if h.e.Stats().Duplicates != 2 {
		t.Fatalf("want 2 duplicates counted, got %d", h.e.Stats().Duplicates)
	}
}

func TestEdge02OutOfOrderStatuses(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	w := h.wamid("tpl")
	h.send(t0, w, events.CategoryMarketing)
	h.status(t0+30, w, events.StatusRead, nil)      // read arrives first
	h.status(t0+10, w, events.StatusDelivered, nil) // then the earlier delivered
	h.status(t0+1, w, events.StatusSent, nil)       // then sent
	got := h.net()
	d := of[*events.MessageDelivered](got)
	if len(d) != 1 || int64(d[0].DeliveredAt) != t0+10 {
		t.Fatalf("want one delivery at the delivered timestamp, got %+v", d)
	}
	if cs := of[*events.Charge](got); len(cs) != 1 || int64(cs[0].DeliveredAt) != t0+10 {
		t.Fatalf("want one charge at t0+10, got %+v", cs)
	}
}

func TestEdge03ReadWithoutDeliveredIsDelivery(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	w := h.wamid("tpl")
	h.send(t0, w, events.CategoryUtility)
	h.status(t0+5, w, events.StatusRead, nil)
	wantLines(t, "charges", chargeLines(h.net()), []string{w + " message utility PMP billable template_delivered"})
}

func TestEdge04NoReadReceiptsDeliveredIsFinal(t *testing.T) {
	h := configured(t, "UTC")
	w := h.template(pmpStart(), events.CategoryMarketing)
	h.tick(pmpStart() + 10*day)
	if cs := of[*events.Charge](h.net()); len(cs) != 1 || cs[0].WAMID != w {
		t.Fatalf("want the delivery charged without any read, got %+v", cs)
	}
}

func TestEdge05StatusBeforeSendEventSendWins(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	w := h.wamid("tpl")
	// The delivered status (Meta says marketing) arrives before our own send event says utility.
	h.status(t0+5, w, events.StatusDelivered, &events.MetaPricing{PricingModel: "PMP", Category: events.CategoryMarketing, Type: "regular"})
	h.send(t0, w, events.CategoryUtility)
	got := h.net()
	wantLines(t, "charges", chargeLines(got), []string{w + " message utility PMP billable template_delivered"})
	d := of[*events.MessageDelivered](got)
	if len(d) != 1 || d[0].KindSource != "send" || d[0].Meta == nil || d[0].Meta.Category != events.CategoryMarketing {
		t.Fatalf("want our send to win and Meta's marketing kept beside it, got %+v", d)
	}
	if h.e.Stats().Corrections == 0 {
		t.Fatal("the late send event should have corrected the first verdict")
	}
}

func TestEdge05StatusWithoutAnySendUsesMetaPricing(t *testing.T) {
	h := configured(t, "UTC")
	w := h.wamid("x")
	h.status(pmpStart(), w, events.StatusDelivered, &events.MetaPricing{PricingModel: "PMP", Category: "AUTHENTICATION", Type: "regular"})
	got := h.net()
	wantLines(t, "charges", chargeLines(got), []string{w + " message authentication PMP billable template_delivered"})
	if d := of[*events.MessageDelivered](got); d[0].KindSource != "meta_pricing" {
		t.Fatalf("kind source %q, want meta_pricing", d[0].KindSource)
	}
}

func TestEdge05NeitherSendNorMetaFieldsIsUnknown(t *testing.T) {
	h := configured(t, "UTC")
	w := h.wamid("x")
	h.status(pmpStart(), w, events.StatusDelivered, nil)
	wantLines(t, "charges", chargeLines(h.net()), []string{w + " message  PMP free unknown_kind"})
}

func TestEdge06SentThenFailedIsNotCharged(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	w := h.wamid("tpl")
	yes := true
	h.send(t0, w, events.CategoryMarketing)
	h.status(t0, w, events.StatusSent, &events.MetaPricing{Billable: &yes, PricingModel: "PMP", Category: events.CategoryMarketing, Type: "regular"})
	h.status(t0+60, w, events.StatusFailed, nil)
	h.status(t0+90, w, events.StatusDelivered, nil) // multi-device: delivered after failed
	if cs := of[*events.Charge](h.net()); len(cs) != 0 {
		t.Fatalf("want no charge for a failed message, got %+v", cs)
	}
}

func TestEdge07LateDeliveryPricedAtDeliveryTime(t *testing.T) {
	h := configured(t, "UTC")
	sent := at("2025-06-25T12:00:00Z")
	w := h.wamid("tpl")
	h.send(sent, w, events.CategoryMarketing)
	h.status(at("2025-07-02T09:00:00Z"), w, events.StatusDelivered, nil) // delivered after the switch
	cs := of[*events.Charge](h.net())
	if len(cs) != 1 || cs[0].PricingModel != events.ModelPMP || cs[0].Month != "2025-07" {
		t.Fatalf("want a PMP charge in July, got %+v", cs)
	}
}

func TestEdge08WindowCountsFromUserTimestamp(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	h.tick(t0 + 20*hour)
	h.inbound(t0) // arrives 20 h after the user sent it
	h.tick(t0 + 24*hour)
	exp := of[*events.WindowExpired](h.net())
	if len(exp) != 1 || int64(exp[0].ExpiredAt) != t0+24*hour {
		t.Fatalf("want the window expired at user time + 24 h, got %+v", exp)
	}
}

func TestEdge09MessageAtExactExpiryIsOutside(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	h.inbound(t0)
	inside := h.wamid("txt")
	h.send(t0+24*hour-1, inside, "")
	outside := h.wamid("txt")
	h.send(t0+24*hour, outside, "") // half-open window: t+24h is outside
	failed := h.wamid("txt")
	h.send(t0+30*hour, failed, "")
	h.apply(events.New(&events.StatusUpdate{PhoneNumberID: testNumber, RecipientID: testUser, WAMID: failed, Status: events.StatusFailed, Timestamp: events.UnixTime(t0 + 30*hour), Errors: []events.StatusError{{Code: 131047}}}))
	got := h.net()
	v := of[*events.PolicyViolation](got)
	if len(v) != 2 || v[0].WAMID != outside || v[1].WAMID != failed {
		t.Fatalf("want violations for %s and %s only, got %+v", outside, failed, v)
	}
	if len(of[*events.ConversationOpened](got))+len(of[*events.Charge](got)) != 0 {
		t.Fatal("attempts opened or charged something")
	}
}

func TestEdge09ViolationDeliveredAnywayIsRecordedAsDiscrepancy(t *testing.T) {
	h := configured(t, "UTC")
	w := h.text(pmpStart()) // free-form with no window open, delivered anyway
	got := h.net()
	v := of[*events.PolicyViolation](got)
	if len(v) != 1 || !v[0].Delivered || v[0].WAMID != w {
		t.Fatalf("want one delivered violation, got %+v", v)
	}
	wantLines(t, "charges", chargeLines(got), []string{w + " message service PMP free free_form_outside_csw"})
}

func TestEdge10TemplateInsideOpenCSW(t *testing.T) {
	h := configured(t, "UTC")
	t0 := at("2024-03-04T00:00:00Z")
	h.inbound(t0)
	s := h.text(t0 + hour)                               // service opens
	m := h.template(t0+2*hour, events.CategoryMarketing) // opens marketing too
	wantLines(t, "CBP charges", chargeLines(h.net()), []string{
		s + " conversation service CBP-2023 billable conversation_opened",
		m + " conversation marketing CBP-2023 billable conversation_opened",
	})
	p := configured(t, "UTC")
	t1 := pmpStart()
	p.inbound(t1)
	a := p.template(t1+hour, events.CategoryAuthentication)
	u := p.template(t1+2*hour, events.CategoryUtility)
	wantLines(t, "PMP charges", chargeLines(p.net()), []string{
		a + " message authentication PMP billable template_delivered",
		u + " message utility PMP free utility_in_csw",
	})
}

func TestEdge11UserReplyToTemplateOpensWindowNotConversation(t *testing.T) {
	h := configured(t, "UTC")
	t0 := at("2024-03-04T00:00:00Z")
	tpl := h.template(t0, events.CategoryMarketing)
	h.inbound(t0+hour, func(m *events.InboundMessage) { m.MessageType = "button"; m.ContextID = tpl })
	got := h.net()
	if n := len(of[*events.ConversationOpened](got)); n != 1 {
		t.Fatalf("the reply opened a conversation: %d open", n)
	}
	if w := of[*events.WindowOpened](got); len(w) != 1 {
		t.Fatalf("want the reply to open the CSW, got %+v", w)
	}
}

func TestEdge12ConversationSpanningSwitch(t *testing.T) {
	TestCBPConversationSpansPMPSwitch(t)
}

func TestEdge13FEPClosesOtherConversations(t *testing.T) {
	h := configured(t, "UTC")
	t0 := at("2024-03-04T00:00:00Z")
	h.template(t0, events.CategoryMarketing) // marketing open
	h.inbound(t0+hour, fromAd)
	h.template(t0+2*hour, events.CategoryUtility) // reply: opens the FEP, closes marketing
	h.template(t0+3*hour, events.CategoryUtility) // free, nothing opens
	got := h.net()
	closed := of[*events.ConversationClosed](got)
	if len(closed) != 1 || closed[0].Reason != events.CloseFEPOpened || closed[0].Category != events.CategoryMarketing {
		t.Fatalf("want marketing closed by the FEP, got %+v", closed)
	}
	wantLines(t, "conversations", convLines(got), []string{
		"marketing CBP-2023 2024-03-04T00:00:00Z+24h",
		"referral_conversion CBP-2023 2024-03-04T02:00:00Z+72h",
	})
}

func TestEdge14ExpiryBelongsToConversation(t *testing.T) {
	h := configured(t, "UTC")
	t0 := at("2024-03-04T00:00:00Z")
	h.template(t0, events.CategoryMarketing)
	h.template(t0+20*hour, events.CategoryMarketing) // inside: does not extend
	h.tick(t0 + 24*hour)
	closed := of[*events.ConversationClosed](h.net())
	if len(closed) != 1 || int64(closed[0].ClosedAt) != t0+24*hour {
		t.Fatalf("want the conversation closed at its own expiry, got %+v", closed)
	}
}

func TestEdge15NoConversationIDsUnderPMP(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	// v23 under PMP: a per-message conversation id; nothing must be derived from it.
	for i := 0; i < 2; i++ {
		w := h.wamid("x")
		h.apply(events.New(&events.StatusUpdate{PhoneNumberID: testNumber, RecipientID: testUser, WAMID: w, Status: events.StatusDelivered, Timestamp: events.UnixTime(t0 + int64(i)*hour),
			Pricing:      &events.MetaPricing{PricingModel: "PMP", Category: events.CategoryMarketing, Type: "regular"},
			Conversation: &events.MetaConversation{ID: "conv-" + w, OriginType: events.CategoryMarketing}}))
	}
	got := h.net()
	if n := len(of[*events.ConversationOpened](got)); n != 0 {
		t.Fatalf("PMP opened %d conversations from ids", n)
	}
	if n := len(of[*events.Charge](got)); n != 2 {
		t.Fatalf("want 2 message charges, got %d", n)
	}
}

func TestEdge16BillableMissingDerivedFromType(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	w := h.wamid("tpl")
	h.send(t0, w, events.CategoryMarketing)
	h.status(t0, w, events.StatusDelivered, &events.MetaPricing{PricingModel: "PMP", Category: events.CategoryMarketing, Type: "regular"})
	d := of[*events.MessageDelivered](h.net())
	if len(d) != 1 || d[0].Meta == nil || !d[0].Meta.Billable {
		t.Fatalf("want Meta's billable derived as true from type regular, got %+v", d)
	}
}

func TestEdge17CategorySpellingsNormalised(t *testing.T) {
	h := configured(t, "UTC")
	w := h.wamid("x")
	h.status(pmpStart(), w, events.StatusDelivered, &events.MetaPricing{PricingModel: "PMP", Category: "authentication-international", Type: "regular"})
	wantLines(t, "charges", chargeLines(h.net()), []string{w + " message authentication_international PMP billable template_delivered"})
}

func TestEdge18TemplateRecategorisedBetweenSends(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	a := h.template(t0, events.CategoryUtility)
	b := h.template(t0+hour, events.CategoryMarketing) // same template, recategorised
	wantLines(t, "charges", chargeLines(h.net()), []string{
		a + " message utility PMP billable template_delivered",
		b + " message marketing PMP billable template_delivered",
	})
}

func TestEdge20BSUIDIdentityWhenWaIDEmpty(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	h.apply(events.New(&events.InboundMessage{PhoneNumberID: testNumber, UserID: "US.13491208655302741918", WAMID: "wamid.b1", MessageType: "text", Timestamp: events.UnixTime(t0)}))
	h.apply(events.New(&events.OutboundSend{PhoneNumberID: testNumber, UserID: "US.13491208655302741918", WAMID: "wamid.b2", Timestamp: events.UnixTime(t0 + 60), Kind: events.KindTemplate, TemplateCategory: events.CategoryUtility}))
	h.apply(events.New(&events.StatusUpdate{PhoneNumberID: testNumber, RecipientUserID: "US.13491208655302741918", WAMID: "wamid.b2", Status: events.StatusDelivered, Timestamp: events.UnixTime(t0 + 61)}))
	cs := of[*events.Charge](h.net())
	if len(cs) != 1 || cs[0].Reason != events.ReasonUtilityInCSW || cs[0].User != "US.13491208655302741918" {
		t.Fatalf("want the BSUID pair's utility template free inside its window, got %+v", cs)
	}
}

func TestEdge22WindowsArePerNumber(t *testing.T) {
	h := configured(t, "UTC")
	h.apply(events.New(accountConfig("222", "UTC", 0)))
	t0 := pmpStart()
	h.inbound(t0) // opens the window with number testNumber only
	w := "wamid.other"
	h.apply(events.New(&events.OutboundSend{PhoneNumberID: "222", WaID: testUser, WAMID: w, Timestamp: events.UnixTime(t0 + 60), Kind: events.KindTemplate, TemplateCategory: events.CategoryUtility}))
	h.apply(events.New(&events.StatusUpdate{PhoneNumberID: "222", RecipientID: testUser, WAMID: w, Status: events.StatusDelivered, Timestamp: events.UnixTime(t0 + 61)}))
	wantLines(t, "charges", chargeLines(h.net()), []string{w + " message utility PMP billable template_delivered"})
}

func TestEdge24CallOpensWindow(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	h.inbound(t0, func(m *events.InboundMessage) { m.MessageType = "call" })
	u := h.template(t0+hour, events.CategoryUtility)
	wantLines(t, "charges", chargeLines(h.net()), []string{u + " message utility PMP free utility_in_csw"})
}

func TestEdge26NonOpeningInboundTypesAreConfigurable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		mtype string
		codes []int
		opens bool
	}{
		{"system", Config{}, "system", nil, false},
		{"unsupported", Config{}, "unsupported", nil, false},
		{"errors only", Config{}, "", []int{131051}, false},
		{"reaction opens by default", Config{}, "reaction", nil, true},
		{"reaction configured off", Config{NonOpeningTypes: []string{"system", "unsupported", "reaction"}}, "reaction", nil, false},
	} {
		h := newHarness(t, tc.cfg)
		h.apply(events.New(accountConfig(testNumber, "UTC", 0)))
		h.inbound(pmpStart(), func(m *events.InboundMessage) { m.MessageType = tc.mtype; m.ErrorCodes = tc.codes })
		if got := len(of[*events.WindowOpened](h.net())) == 1; got != tc.opens {
			t.Errorf("%s: opens=%v, want %v", tc.name, got, tc.opens)
		}
	}
}

func TestEdge13PMPFEPKeepsTheMessageCategory(t *testing.T) {
	h := configured(t, "UTC")
	t0 := pmpStart()
	h.inbound(t0, fromAd)
	first := h.template(t0+hour, events.CategoryMarketing) // opens the 72 h FEP window, free
	second := h.text(t0 + 2*hour)
	got := h.net()
	wantLines(t, "charges", chargeLines(got), []string{
		first + " message marketing PMP free fep_window",
		second + " message service PMP free fep_window",
	})
	for _, d := range of[*events.MessageDelivered](got) {
		if d.Ours.PricingType != events.PricingFreeEntryPoint || d.Ours.Category == events.CategoryReferralConversion || !d.InsideFEP {
			t.Fatalf("PMP FEP verdict %+v, want the message's own category with free_entry_point", d.Ours)
		}
	}
}

// The unconfirmed PMP-2026 allowance (domain A2) is off in the shipped timeline; switched on in
// the operator's file, every charged service message carries it for the billing projection,
// and nothing else does.
func TestPMP2026AllowanceSwitchedOnInTheTimeline(t *testing.T) {
	tl, err := ParseTimeline([]byte(`{"periods": [
		{"from": "1970-01-01", "model": "CBP-2022"},
		{"from": "2025-07-01", "model": "PMP", "auth_intl": true},
		{"from": "2026-10-01", "model": "PMP-2026", "auth_intl": true, "free_service_messages_per_number": 1000}]}`))
	if err != nil {
		t.Fatal(err)
	}
	at := int64(1_791_000_000) // 2026-10-03
	for _, tc := range []struct {
		timeline *Timeline
		want     int
	}{{nil, 0}, {tl, 1000}} {
		h := newHarness(t, Config{Timeline: tc.timeline})
		h.apply(events.New(accountConfig(testNumber, "UTC", 0)))
		h.inbound(at)
		h.text(at + 60)
		h.template(at+120, events.CategoryMarketing)
		var service, template int
		for _, ev := range h.net() {
			c, ok := ev.Data.(*events.Charge)
			if !ok {
				continue
			}
			switch c.Reason {
			case events.ReasonServiceCharged:
				service++
				if c.FreeAllowance != tc.want || !c.Billable {
					t.Errorf("service charge: allowance %d billable %v, want %d and billable", c.FreeAllowance, c.Billable, tc.want)
				}
			default:
				template++
				if c.FreeAllowance != 0 {
					t.Errorf("%s charge carries allowance %d", c.Reason, c.FreeAllowance)
				}
			}
		}
		if service != 1 || template != 1 {
			t.Fatalf("%d service and %d template charges, want one each", service, template)
		}
	}
}
