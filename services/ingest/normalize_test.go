package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/events"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.jsonl from today's output")

func load(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func normalize(t *testing.T, name string) Result {
	t.Helper()
	res, err := Normalize(load(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

// TestNormalizeGolden normalises every fixture and compares the encoded events, the rejected
// elements and the skip counts with testdata/<fixture>.golden.jsonl. Each encoded event is also
// decoded back, so every event passes the codec's validation.
func TestNormalizeGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			res := normalize(t, name)
			var out bytes.Buffer
			for _, e := range res.Events {
				b, err := events.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := events.Decode(b); err != nil {
					t.Errorf("event %s does not decode: %v", e.ID, err)
				}
				out.Write(b)
				out.WriteByte('\n')
			}
			for _, r := range res.Rejected {
				b, _ := json.Marshal(map[string]any{"rejected": r.Path, "kind": r.Kind, "reason": r.Reason})
				out.Write(b)
				out.WriteByte('\n')
			}
			keys := make([]string, 0, len(res.Skipped))
			for k := range res.Skipped {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				b, _ := json.Marshal(map[string]any{"skipped": k, "count": res.Skipped[k]})
				out.Write(b)
				out.WriteByte('\n')
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(name, ".json")+".golden.jsonl")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update once and review the file)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s:\n got: %s\nwant: %s", golden, out.Bytes(), want)
			}
		})
	}
}

func TestNormalizeInbound(t *testing.T) {
	res := normalize(t, "inbound_text.json")
	if len(res.Events) != 1 || len(res.Rejected) != 0 {
		t.Fatalf("events %d rejected %d, want 1 and 0", len(res.Events), len(res.Rejected))
	}
	e := res.Events[0]
	in := e.Data.(*events.InboundMessage)
	if e.Key != "106540352242922/16505551234" || e.Time != 1749416383 || e.Type != events.TypeInboundMessage {
		t.Errorf("key %q time %d type %s", e.Key, e.Time, e.Type)
	}
	if in.ContextID != "wamid.OUT-TEMPLATE-9" || in.Referral == nil || in.Referral.SourceType != "ad" || in.Referral.CtwaClid != "clid-1" || in.WABAID != "102290129340398" {
		t.Errorf("inbound %+v referral %+v", in, in.Referral)
	}
	if e.ID != events.InputID(string(events.TypeInboundMessage), "106540352242922", "wamid.IN-TEXT-1") {
		t.Errorf("id %s is not the deterministic one", e.ID)
	}

	res = normalize(t, "inbound_types.json")
	if len(res.Events) != 9 || len(res.Rejected) != 0 {
		t.Fatalf("events %d rejected %d, want 9 and 0", len(res.Events), len(res.Rejected))
	}
	types := []string{}
	for _, e := range res.Events {
		types = append(types, e.Data.(*events.InboundMessage).MessageType)
	}
	if got := strings.Join(types, ","); got != "image,button,interactive,reaction,location,audio,order,unsupported,system" {
		t.Errorf("types %s", got)
	}
	if k := res.Events[2].Key; k != "106540352242922/5511987654321" {
		t.Errorf("second contact's key %s", k)
	}
	uns := res.Events[7].Data.(*events.InboundMessage)
	sys := res.Events[8].Data.(*events.InboundMessage)
	if len(uns.ErrorCodes) != 1 || uns.ErrorCodes[0] != 131051 || sys.SystemType != "customer_changed_number" || sys.NewWaID != "16505559999" {
		t.Errorf("unsupported %+v system %+v", uns, sys)
	}

	res = normalize(t, "inbound_bsuid.json")
	if len(res.Events) != 1 {
		t.Fatalf("bsuid: %d events, rejected %+v", len(res.Events), res.Rejected)
	}
	in = res.Events[0].Data.(*events.InboundMessage)
	if in.WaID != "" || in.UserID != "US.13491208655302741918" || res.Events[0].Key != "106540352242922/US.13491208655302741918" {
		t.Errorf("bsuid %+v key %s", in, res.Events[0].Key)
	}
}

func TestNormalizeStatuses(t *testing.T) {
	res := normalize(t, "statuses_pmp.json")
	if len(res.Events) != 5 || len(res.Rejected) != 0 {
		t.Fatalf("events %d rejected %+v", len(res.Events), res.Rejected)
	}
	st := func(i int) *events.StatusUpdate { return res.Events[i].Data.(*events.StatusUpdate) }
	if p := st(0).Pricing; p == nil || !p.IsBillable() || p.Category != events.CategoryMarketing || p.Billable == nil {
		t.Errorf("sent pricing %+v", p)
	}
	if p := st(1).Pricing; p.Billable != nil || p.IsBillable() || p.Type != "free_customer_service" {
		t.Errorf("missing billable must stay missing and derive from type: %+v", p)
	}
	if p := st(2).Pricing; p.Category != events.CategoryAuthenticationInternational || p.Type != "regular" || !p.IsBillable() {
		t.Errorf("hyphenated category, pricing_type, string billable: %+v", p)
	}
	if s := st(3); s.Status != events.StatusFailed || len(s.Errors) != 1 || s.Errors[0].Code != 131049 {
		t.Errorf("failed %+v", s)
	}
	if s := st(4); s.RecipientUserID != "US.1" || s.Conversation.OriginType != events.CategoryReferralConversion || s.Pricing.Category != events.CategoryService {
		t.Errorf("fep %+v %+v", s, s.Conversation)
	}
	if e := res.Events[1]; e.ID != events.InputID(string(events.TypeStatusUpdate), "wamid.OUT-1", "delivered", "1752000005", "") || e.Time != 1752000005 {
		t.Errorf("status id %s time %d", e.ID, e.Time)
	}

	res = normalize(t, "statuses_cbp.json")
	c0 := res.Events[0].Data.(*events.StatusUpdate).Conversation
	c1 := res.Events[1].Data.(*events.StatusUpdate).Conversation
	if c0.ExpirationTimestamp != 1700086400 || c0.OriginType != events.CategoryUserInitiated || c1.OriginType != events.CategoryUserInitiated {
		t.Errorf("cbp conversations %+v %+v", c0, c1)
	}

	res = normalize(t, "status_group.json")
	if len(res.Events) != 2 || res.Events[0].ID == res.Events[1].ID {
		t.Errorf("group statuses need distinct ids per participant: %+v", res.Events)
	}
}

func TestNormalizeAccount(t *testing.T) {
	res := normalize(t, "account_quality.json")
	if len(res.Events) != 2 || res.Skipped[FieldQualityUpdate+":no_limit"] != 1 {
		t.Fatalf("events %d skipped %v", len(res.Events), res.Skipped)
	}
	l0, l1 := res.Events[0].Data.(*events.LimitUpdate), res.Events[1].Data.(*events.LimitUpdate)
	if l0.Tier != "TIER_2K" || l1.Tier != "TIER_10K" || l0.Scope != ScopeWABA || l0.ID != "102290129340398" || l0.EffectiveFrom != 1759900000 {
		t.Errorf("limits %+v %+v", l0, l1)
	}
	if res.Events[0].Key != events.AccountKey("102290129340398") {
		t.Errorf("account key %s", res.Events[0].Key)
	}

	res = normalize(t, "account_capability.json")
	if len(res.Events) != 2 {
		t.Fatalf("events %d rejected %+v", len(res.Events), res.Rejected)
	}
	if l := res.Events[0].Data.(*events.LimitUpdate); l.Tier != "TIER_UNLIMITED" || l.EffectiveFrom != 1759900100 {
		t.Errorf("-1 must be unlimited: %+v", l)
	}
	if l := res.Events[1].Data.(*events.LimitUpdate); l.Tier != "TIER_1K" || l.Event != "max_daily_conversation_per_phone" {
		t.Errorf("per-phone limit %+v", l)
	}

	res = normalize(t, "account_volume_tier.json")
	if len(res.Events) != 1 || res.Skipped["account_update:PARTNER_ADDED"] != 1 {
		t.Fatalf("events %d skipped %v", len(res.Events), res.Skipped)
	}
	if v := res.Events[0].Data.(*events.VolumeTier); v.PricingCategory != events.CategoryUtility || v.Tier != "25000001:50000000" || v.EffectiveMonth != "2025-08" || v.TierUpdateTime != 1754000000 {
		t.Errorf("volume tier %+v", v)
	}

	res = normalize(t, "template_category.json")
	if len(res.Events) != 1 {
		t.Fatalf("events %d rejected %+v", len(res.Events), res.Rejected)
	}
	if tc := res.Events[0].Data.(*events.TemplateCategory); tc.TemplateID != "1234567890" || tc.NewCategory != events.CategoryMarketing || tc.PreviousCategory != events.CategoryUtility || tc.EffectiveFrom != 1751000000 {
		t.Errorf("template category %+v", tc)
	}
}

func TestNormalizeBadElements(t *testing.T) {
	res := normalize(t, "batch_bad_elements.json")
	var wamids []string
	for _, e := range res.Events {
		wamids = append(wamids, e.Data.(*events.StatusUpdate).WAMID)
	}
	if strings.Join(wamids, ",") != "wamid.OK-1,wamid.OK-4" {
		t.Errorf("published %v, want OK-1 and OK-4", wamids)
	}
	if len(res.Rejected) != 3 {
		t.Fatalf("rejected %+v, want 3", res.Rejected)
	}
	want := []struct {
		path string
		kind events.ErrorKind
		in   string
	}{
		{"entry[0].changes[0].value.statuses[1]", events.ErrKindInvalid, "wamid"},
		{"entry[0].changes[0].value.statuses[2]", events.ErrKindInvalid, "exploded"},
		{"entry[0].changes[0].value.statuses[3]", events.ErrKindFieldType, "yesterday"},
	}
	for i, w := range want {
		r := res.Rejected[i]
		if r.Path != w.path || r.Kind != w.kind || !strings.Contains(r.Reason, w.in) || !json.Valid(r.Original) || r.WABAID != "102290129340398" {
			t.Errorf("rejected[%d] = %+v, want path %s kind %s reason containing %q", i, r, w.path, w.kind, w.in)
		}
	}
	if res.Skipped["field:message_template_status_update"] != 1 || res.Skipped["field:smb_message_echoes"] != 1 || res.Skipped["value_errors"] != 1 {
		t.Errorf("skipped %v", res.Skipped)
	}
}

func TestNormalizeRequestErrors(t *testing.T) {
	for _, body := range []string{``, `{`, `[]`, `{"entry":{}}`, `"x"`} {
		_, err := Normalize([]byte(body))
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%q: err %v, want *RequestError", body, err)
		}
	}
	res, err := Normalize([]byte(`{"object":"page","entry":[{"id":"1"}]}`))
	if err != nil || len(res.Events) != 0 || res.Skipped["object:page"] != 1 {
		t.Errorf("other object: %v %+v", err, res)
	}
	// An entry or change of the wrong shape is rejected alone.
	res, err = Normalize([]byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":"no"},{"id":"2","changes":[7]}]}`))
	if err != nil || len(res.Rejected) != 2 || res.Rejected[0].Path != "entry[0]" || res.Rejected[1].Path != "entry[1].changes[0]" {
		t.Errorf("bad entry/change: %v %+v", err, res.Rejected)
	}
}

func FuzzNormalize(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := Normalize(body)
		if err != nil {
			return
		}
		for _, e := range res.Events {
			if err := events.Validate(e); err != nil {
				t.Fatalf("emitted invalid event: %v", err)
			}
			if _, err := events.Marshal(e); err != nil {
				t.Fatalf("emitted unencodable event: %v", err)
			}
		}
		for _, r := range res.Rejected {
			if r.Kind == "" || r.Reason == "" {
				t.Fatalf("rejection without kind or reason: %+v", r)
			}
		}
	})
}

// TestNormalizeThousandChanges: Meta batches up to 1000 updates per POST, here as 1000 changes of
// one status each, across two entries; every one becomes an event, in order.
func TestNormalizeThousandChanges(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"object":"whatsapp_business_account","entry":[`)
	for e := range 2 {
		if e > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":"waba` + strconv.Itoa(e) + `","changes":[`)
		for c := range 500 {
			if c > 0 {
				b.WriteByte(',')
			}
			n := strconv.Itoa(e*500 + c)
			b.WriteString(`{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.K` + n + `","status":"sent","timestamp":1752000000,"recipient_id":"` + n + `"}]}}`)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	res, err := Normalize([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1000 || len(res.Rejected) != 0 {
		t.Fatalf("%d events, %d rejected", len(res.Events), len(res.Rejected))
	}
	for i, e := range res.Events {
		if w := e.Data.(*events.StatusUpdate).WAMID; w != "wamid.K"+strconv.Itoa(i) {
			t.Fatalf("event %d is %s", i, w)
		}
	}
	if res.Events[999].Data.(*events.StatusUpdate).WABAID != "waba1" {
		t.Errorf("second entry's WABA lost")
	}
}
