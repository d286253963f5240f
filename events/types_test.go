package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestNormalizeCategory(t *testing.T) {
	cases := map[string]Category{
		"":                             CategoryNone,
		"authentication-international": CategoryAuthenticationInternational,
		"authentication_international": CategoryAuthenticationInternational,
		"AUTHENTICATION_INTERNATIONAL": CategoryAuthenticationInternational,
		"MARKETING":                    CategoryMarketing,
		"marketing":                    CategoryMarketing,
		" Utility ":                    CategoryUtility,
		"AUTHENTICATION":               CategoryAuthentication,
		"MARKETING_LITE":               CategoryMarketingLite,
		"SERVICE":                      CategoryService,
		"referral_conversion":          CategoryReferralConversion,
		"FREE_ENTRY_POINT":             CategoryReferralConversion,
		"customer_initiated":           CategoryUserInitiated,
		"user_initiated":               CategoryUserInitiated,
		"business_initiated":           CategoryBusinessInitiated,
		"Meta-Business-Agent":          Category("meta_business_agent"), // unknown: kept, lower-cased
	}
	for in, want := range cases {
		if got := NormalizeCategory(in); got != want {
			t.Errorf("NormalizeCategory(%q) = %q, want %q", in, got, want)
		}
		// Normalising is idempotent.
		if got := NormalizeCategory(string(want)); got != want {
			t.Errorf("NormalizeCategory(%q) = %q, not idempotent", want, got)
		}
	}
}

func TestIsTemplateCategory(t *testing.T) {
	yes := []Category{CategoryMarketing, CategoryUtility, CategoryAuthentication, CategoryAuthenticationInternational, CategoryMarketingLite}
	no := []Category{CategoryNone, CategoryService, CategoryReferralConversion, CategoryBusinessInitiated, CategoryUserInitiated, "MARKETING"}
	for _, c := range yes {
		if !c.IsTemplateCategory() {
			t.Errorf("%q is a template category", c)
		}
	}
	for _, c := range no {
		if c.IsTemplateCategory() {
			t.Errorf("%q is not a template category", c)
		}
	}
}

func TestStatusRankLattice(t *testing.T) {
	// A7 and A13: sent < delivered < read < played < failed, legacy values after, unknown 0.
	order := []Status{StatusSent, StatusDelivered, StatusRead, StatusPlayed, StatusFailed}
	for i := 1; i < len(order); i++ {
		if order[i-1].Rank() >= order[i].Rank() {
			t.Errorf("%s (rank %d) is not below %s (rank %d)", order[i-1], order[i-1].Rank(), order[i], order[i].Rank())
		}
	}
	for _, s := range append(order, StatusDeleted, StatusWarning) {
		if !s.Valid() || s.Rank() < 1 {
			t.Errorf("%s not valid", s)
		}
	}
	if StatusDeleted.Rank() <= StatusFailed.Rank() || StatusWarning.Rank() <= StatusFailed.Rank() {
		t.Error("legacy statuses must rank after failed")
	}
	for _, s := range []Status{"", "SENT", "seen", "pending"} {
		if s.Valid() || s.Rank() != 0 {
			t.Errorf("%q ranks %d, want 0 and invalid", s, s.Rank())
		}
	}
}

func TestPairKey(t *testing.T) {
	cases := []struct {
		pn, wa, uid, want, user string
	}{
		{"106540352242922", "16505551234", "", "106540352242922/16505551234", "16505551234"},
		{"106540352242922", "16505551234", "US.1349", "106540352242922/16505551234", "16505551234"}, // wa_id wins
		{"106540352242922", "", "US.1349", "106540352242922/US.1349", "US.1349"},                    // BSUID when wa_id is empty
	}
	for _, c := range cases {
		k := PairKey(c.pn, c.wa, c.uid)
		if k != c.want {
			t.Errorf("PairKey(%q,%q,%q) = %q, want %q", c.pn, c.wa, c.uid, k, c.want)
		}
		if UserIdentity(c.wa, c.uid) != c.user {
			t.Errorf("UserIdentity(%q,%q) = %q", c.wa, c.uid, UserIdentity(c.wa, c.uid))
		}
		pn, user, ok := SplitPairKey(k)
		if !ok || pn != c.pn || user != c.user {
			t.Errorf("SplitPairKey(%q) = %q, %q, %v", k, pn, user, ok)
		}
	}
	// A BSUID may itself contain a slash: the first slash splits.
	if pn, user, ok := SplitPairKey("1/US/9"); !ok || pn != "1" || user != "US/9" {
		t.Errorf("SplitPairKey(1/US/9) = %q %q %v", pn, user, ok)
	}
	for _, bad := range []string{"", "/", "123", "/16505551234", "123/"} {
		if pn, user, ok := SplitPairKey(bad); ok || pn != "" || user != "" {
			t.Errorf("SplitPairKey(%q) = %q, %q, %v; want not ok", bad, pn, user, ok)
		}
	}
	if AccountKey("102290129340398") != "acct/102290129340398" {
		t.Error(AccountKey("102290129340398"))
	}
}

func TestMetaPricingIsBillable(t *testing.T) {
	cases := []struct {
		p    MetaPricing
		want bool
	}{
		{MetaPricing{Type: "regular"}, true}, // A6: billable missing, derived from type
		{MetaPricing{Type: "free_customer_service"}, false},
		{MetaPricing{Type: "free_entry_point"}, false},
		{MetaPricing{}, false},
		{MetaPricing{Billable: ptrBool(false), Type: "regular"}, false}, // the flag wins when present
		{MetaPricing{Billable: ptrBool(true), Type: "free_customer_service"}, true},
		{MetaPricing{Billable: ptrBool(true)}, true},
	}
	for _, c := range cases {
		if got := c.p.IsBillable(); got != c.want {
			t.Errorf("%+v.IsBillable() = %v, want %v", c.p, got, c.want)
		}
	}
	// Missing billable survives the wire as missing, not as false.
	e := mustDecode(t, `{"v":1,"id":"x","type":"message.status.v1","data":{"phone_number_id":"1","recipient_id":"2","wamid":"w","status":"sent","timestamp":5,"pricing":{"type":"regular","pricing_model":"PMP","category":"utility"}}}`)
	p := e.Data.(*StatusUpdate).Pricing
	if p.Billable != nil || !p.IsBillable() {
		t.Fatalf("decoded pricing %+v", p)
	}
}

func TestPricingModel(t *testing.T) {
	for m, want := range map[PricingModel]string{ModelCBP2022: "CBP", ModelCBP2023: "CBP", ModelPMP: "PMP", ModelPMP2026: "PMP"} {
		if m.MetaModel() != want || m.IsCBP() != (want == "CBP") {
			t.Errorf("%s: MetaModel %s IsCBP %v", m, m.MetaModel(), m.IsCBP())
		}
	}
}

func TestTypeLists(t *testing.T) {
	seen := map[Type]bool{}
	for _, ty := range InputTypes {
		if !ty.IsInput() {
			t.Errorf("%s not IsInput", ty)
		}
		seen[ty] = true
	}
	for _, ty := range OutputTypes {
		if ty.IsInput() || seen[ty] {
			t.Errorf("%s listed twice or IsInput", ty)
		}
		seen[ty] = true
	}
	if _, ok := NewPayload("message.status.v2"); ok {
		t.Error("NewPayload accepted an unknown type")
	}
}

func TestUnixTime(t *testing.T) {
	ut := UnixTime(1750030073)
	if ut.String() != "2025-06-15T23:27:53Z" || FromTime(ut.Time()) != ut {
		t.Fatalf("%s", ut)
	}
	for in, want := range map[string]UnixTime{`1750030073`: 1750030073, `"1750030073"`: 1750030073, `null`: 0, `""`: 0, `-5`: -5, `"-5"`: -5, `"9223372036854775807"`: 1<<63 - 1} {
		var got UnixTime
		if err := got.UnmarshalJSON([]byte(in)); err != nil || got != want {
			t.Errorf("UnmarshalJSON(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{`"abc"`, `1.5`, `1e9`, `"9223372036854775808"`, `true`, `"-"`, `-`, `"`} {
		var got UnixTime
		if err := got.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("UnmarshalJSON(%s) = %d, want an error", in, got)
		}
	}
	b, err := ut.MarshalJSON()
	if err != nil || string(b) != "1750030073" {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
}

func TestUnixTimeErrorIsFieldError(t *testing.T) {
	// Code that decodes Meta's webhooks with encoding/json (ingest) branches on *FieldError.
	var ut UnixTime
	err := json.Unmarshal([]byte(`"soon"`), &ut)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "" || !strings.Contains(err.Error(), `"soon"`) {
		t.Fatalf("got %#v", err)
	}
}
