package window

import (
	"testing"

	"github.com/convmeter/convmeter/events"
)

// Meta's worked examples (domain.md §1.4, §1.9, §3.2), as table tests.

func TestMetaExampleCBPMarketingThenService(t *testing.T) {
	h := configured(t, "UTC")
	h0 := at("2024-03-04T00:00:00Z")
	m0 := h.template(h0, events.CategoryMarketing) // h0: marketing conversation opens
	h.inbound(h0 + 4*hour)                         // h4: user writes, CSW opens
	h.text(h0 + 5*hour)                            // h5: interactive, nothing opens
	h.tick(h0 + 24*hour)                           // h24: marketing expires
	s25 := h.text(h0 + 25*hour)                    // h25: service opens
	h.text(h0 + 26*hour)                           // h26: nothing opens
	got := h.net()
	wantLines(t, "charges", chargeLines(got), []string{
		m0 + " conversation marketing CBP-2023 billable conversation_opened",
		s25 + " conversation service CBP-2023 billable conversation_opened",
	})
	wantLines(t, "conversations", convLines(got), []string{
		"marketing CBP-2023 2024-03-04T00:00:00Z+24h",
		"service CBP-2023 2024-03-05T01:00:00Z+24h",
	})
	closed := of[*events.ConversationClosed](got)
	if len(closed) != 1 || closed[0].Category != events.CategoryMarketing || int64(closed[0].ClosedAt) != h0+24*hour {
		t.Fatalf("want the marketing conversation closed at h24, got %+v", closed)
	}
	// Every delivered message is reported with our verdict.
	if n := len(of[*events.MessageDelivered](got)); n != 4 {
		t.Fatalf("want 4 deliveries, got %d", n)
	}
}

func TestMetaExampleCBPUtility(t *testing.T) {
	h := configured(t, "UTC")
	h0 := at("2024-03-04T00:00:00Z")
	m0 := h.template(h0, events.CategoryMarketing)
	u4 := h.template(h0+4*hour, events.CategoryUtility)
	h.template(h0+10*hour, events.CategoryUtility)
	wantLines(t, "charges", chargeLines(h.net()), []string{
		m0 + " conversation marketing CBP-2023 billable conversation_opened",
		u4 + " conversation utility CBP-2023 billable conversation_opened",
	})
}

func TestMetaExampleFEP(t *testing.T) {
	h := configured(t, "UTC")
	ad := at("2024-03-04T10:00:00Z")
	h.inbound(ad, fromAd)                                   // 10am: user comes from the ad
	t22 := h.template(ad+12*hour, events.CategoryMarketing) // 10pm: template → FEP for 72 h
	h.template(ad+20*hour, events.CategoryMarketing)        // next day 6am: free, nothing opens
	late := h.wamid("txt")
	h.send(ad+25*hour, late, "") // next day 11am: free-form after the CSW closed at 10am
	got := h.net()
	wantLines(t, "conversations", convLines(got), []string{"referral_conversion CBP-2023 2024-03-04T22:00:00Z+72h"})
	wantLines(t, "charges", chargeLines(got), []string{t22 + " conversation referral_conversion CBP-2023 free fep_window"})
	v := of[*events.PolicyViolation](got)
	if len(v) != 1 || v[0].WAMID != late || v[0].Code != 131047 || v[0].Delivered {
		t.Fatalf("want one undelivered 131047 violation for %s, got %+v", late, v)
	}
}

func TestMetaExamplePMP(t *testing.T) {
	h := configured(t, "UTC")
	h0 := at("2025-09-01T00:00:00Z")
	m0 := h.template(h0, events.CategoryMarketing) // charged
	h.inbound(h0 + 2*hour)                         // CSW opens
	t3 := h.text(h0 + 3*hour)                      // free
	u4 := h.template(h0+4*hour, events.CategoryUtility)
	h.tick(h0 + 26*hour) // CSW closes
	u30 := h.template(h0+30*hour, events.CategoryUtility)
	got := h.net()
	wantLines(t, "charges", chargeLines(got), []string{
		m0 + " message marketing PMP billable template_delivered",
		t3 + " message service PMP free non_template_in_csw",
		u4 + " message utility PMP free utility_in_csw",
		u30 + " message utility PMP billable template_delivered",
	})
	exp := of[*events.WindowExpired](got)
	if len(exp) != 1 || int64(exp[0].ExpiredAt) != h0+26*hour {
		t.Fatalf("want the CSW expired at h26, got %+v", exp)
	}
}

func TestCBPConversationSpansPMPSwitch(t *testing.T) {
	h := configured(t, "UTC")
	open := at("2025-06-30T20:00:00Z")
	u0 := h.template(open, events.CategoryUtility)
	u1 := h.template(at("2025-07-01T02:00:00Z"), events.CategoryUtility)   // keeps CBP terms
	m1 := h.template(at("2025-07-01T03:00:00Z"), events.CategoryMarketing) // PMP: not covered
	u2 := h.template(at("2025-07-01T21:00:00Z"), events.CategoryUtility)   // CBP conversation over
	wantLines(t, "charges", chargeLines(h.net()), []string{
		u0 + " conversation utility CBP-2023 billable conversation_opened",
		u1 + " message utility CBP-2023 free cbp_conversation_open",
		m1 + " message marketing PMP billable template_delivered",
		u2 + " message utility PMP billable template_delivered",
	})
}

func TestSwitchIsAtMidnightInTheWABATimeZone(t *testing.T) {
	// 2025-06-30T19:00Z is already 2025-07-01 00:30 in Kolkata: PMP there, CBP in UTC.
	for _, tc := range []struct{ tz, model string }{{"Asia/Kolkata", "PMP"}, {"UTC", "CBP-2023"}} {
		h := configured(t, tc.tz)
		w := h.template(at("2025-06-30T19:00:00Z"), events.CategoryMarketing)
		cs := of[*events.Charge](h.net())
		if len(cs) != 1 || string(cs[0].PricingModel) != tc.model || cs[0].WAMID != w {
			t.Fatalf("%s: want one %s charge, got %+v", tc.tz, tc.model, cs)
		}
		wantMonth := map[string]string{"Asia/Kolkata": "2025-07", "UTC": "2025-06"}[tc.tz]
		if cs[0].Month != wantMonth {
			t.Fatalf("%s: month %q, want %q", tc.tz, cs[0].Month, wantMonth)
		}
	}
}

func TestCBP2022TwoCategories(t *testing.T) {
	h := configured(t, "UTC")
	h0 := at("2022-05-02T00:00:00Z")
	b := h.template(h0, events.CategoryMarketing)
	h.template(h0+hour, events.CategoryUtility) // covered: one conversation at a time
	h.inbound(h0 + 30*hour)
	u := h.text(h0 + 31*hour)
	wantLines(t, "charges", chargeLines(h.net()), []string{
		b + " conversation business_initiated CBP-2022 billable conversation_opened",
		u + " conversation user_initiated CBP-2022 billable conversation_opened",
	})
}

func TestServiceConversationsFreeFromNovember2024(t *testing.T) {
	h := configured(t, "UTC")
	h0 := at("2024-11-05T00:00:00Z")
	h.inbound(h0)
	s := h.text(h0 + hour)
	wantLines(t, "charges", chargeLines(h.net()), []string{s + " conversation service CBP-2023 free service_free"})
}

func TestPMP2026ChargesServiceAndUtilityInsideCSW(t *testing.T) {
	h := configured(t, "UTC")
	h0 := at("2026-10-05T00:00:00Z")
	h.inbound(h0)
	s := h.text(h0 + hour)
	u := h.template(h0+2*hour, events.CategoryUtility)
	wantLines(t, "charges", chargeLines(h.net()), []string{
		s + " message service PMP-2026 billable service_charged",
		u + " message utility PMP-2026 billable template_delivered",
	})
}

func TestAuthenticationInternational(t *testing.T) {
	h := newHarness(t, Config{})
	cfg := accountConfig(testNumber, "UTC", 0)
	cfg.AuthIntl = &events.AuthIntl{StartTime: events.UnixTime(at("2025-01-01T00:00:00Z")), CallingCodes: []string{"91", "1650"}}
	h.apply(events.New(cfg))
	before := h.template(at("2024-12-01T00:00:00Z"), events.CategoryAuthentication)
	after := h.template(at("2025-09-01T00:00:00Z"), events.CategoryAuthentication)
	wantLines(t, "charges", chargeLines(h.net()), []string{
		before + " conversation authentication CBP-2023 billable conversation_opened",
		after + " message authentication_international PMP billable template_delivered",
	})
}
