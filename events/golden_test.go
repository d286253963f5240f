package events

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// goldenFiles returns the fixtures under testdata/golden, keyed "<wire name>/<file>".
func goldenFiles(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "golden", "*", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden fixtures: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p)] = b
	}
	return out
}

// goldenChecks asserts the key fields of every fixture. A new fixture needs an entry here; the
// fixtures themselves are never edited (testdata/README.md).
var goldenChecks = map[string]func(t *testing.T, e Event){
	"message.inbound.v1/text.json": func(t *testing.T, e Event) {
		p := e.Data.(*InboundMessage)
		eq(t, e.Key, "106540352242922/16505551234")
		eq(t, p.Timestamp, UnixTime(1752001200)) // written as the string "1752001200"
		eq(t, p.MessageType, "text")
		eq(t, p.WaID, "16505551234")
	},
	"message.inbound.v1/ad_referral.json": func(t *testing.T, e Event) {
		p := e.Data.(*InboundMessage)
		eq(t, p.Referral.SourceType, "ad")
		eq(t, p.Referral.SourceID, "120210987654321")
		eq(t, e.Key, "106540352242922/919812345678")
	},
	"message.inbound.v1/bsuid_only.json": func(t *testing.T, e Event) {
		p := e.Data.(*InboundMessage)
		eq(t, p.WaID, "")
		eq(t, e.Key, "106540352242922/US.13491208655302741918")
		eq(t, p.ContextID, "wamid.HBgUVVMuMTM0OTEyMDg2NTUzMDI3NDE5MTgVAgARGBI0")
	},
	"message.inbound.v1/system_changed_number.json": func(t *testing.T, e Event) {
		p := e.Data.(*InboundMessage)
		eq(t, p.MessageType, "system")
		eq(t, p.SystemType, "customer_changed_number")
		eq(t, p.NewWaID, "16505559876")
	},
	"message.outbound.v1/template_marketing.json": func(t *testing.T, e Event) {
		p := e.Data.(*OutboundSend)
		eq(t, p.Kind, KindTemplate)
		eq(t, p.TemplateCategory, CategoryMarketing)
		eq(t, p.TemplateID, "1146895412843923")
		eq(t, e.Time, UnixTime(1752001500))
	},
	"message.outbound.v1/free_form.json": func(t *testing.T, e Event) {
		p := e.Data.(*OutboundSend)
		eq(t, p.Kind, KindFreeForm)
		eq(t, p.TemplateCategory, CategoryNone)
	},
	"message.status.v1/delivered_pmp.json": func(t *testing.T, e Event) {
		p := e.Data.(*StatusUpdate)
		eq(t, p.Status, StatusDelivered)
		eq(t, p.Pricing.PricingModel, "PMP")
		eq(t, p.Pricing.Category, CategoryMarketing)
		eq(t, p.Pricing.IsBillable(), true)
		eq(t, p.Conversation == nil, true)
	},
	"message.status.v1/sent_cbp_conversation.json": func(t *testing.T, e Event) {
		p := e.Data.(*StatusUpdate)
		eq(t, e.Time, UnixTime(1718000000)) // all three times are numeric strings here
		eq(t, p.Timestamp, UnixTime(1718000000))
		eq(t, p.Conversation.ExpirationTimestamp, UnixTime(1718086400))
		eq(t, p.Conversation.OriginType, CategoryUtility)
		eq(t, p.Pricing.PricingModel, "CBP")
	},
	"message.status.v1/read_missing_billable.json": func(t *testing.T, e Event) {
		p := e.Data.(*StatusUpdate)
		eq(t, p.Status, StatusRead)
		eq(t, p.Pricing.Billable == nil, true)
		eq(t, p.Pricing.IsBillable(), false) // type free_customer_service
	},
	"message.status.v1/failed.json": func(t *testing.T, e Event) {
		p := e.Data.(*StatusUpdate)
		eq(t, p.Status, StatusFailed)
		eq(t, len(p.Errors), 1)
		eq(t, p.Errors[0].Code, 131047)
	},
	"clock.tick.v1/tick.json": func(t *testing.T, e Event) {
		eq(t, e.Data.(*Tick).Partition, int32(5))
		eq(t, e.Time, UnixTime(1752001510))
		eq(t, e.Key, "")
	},
	"account.config.v1/with_auth_intl.json": func(t *testing.T, e Event) {
		p := e.Data.(*AccountConfig)
		eq(t, e.Key, "acct/106540352242922")
		eq(t, p.TimeZone, "Asia/Kolkata")
		eq(t, p.Currency, "INR")
		eq(t, p.AuthIntl.StartTime, UnixTime(1719792000))
		eq(t, slices.Contains(p.AuthIntl.CallingCodes, "91"), true)
		eq(t, p.ThroughputMPS, 80)
	},
	"account.config.v1/minimal.json": func(t *testing.T, e Event) {
		p := e.Data.(*AccountConfig)
		eq(t, p.AuthIntl == nil, true)
		eq(t, p.EffectiveFrom, UnixTime(1672531200))
	},
	"account.limit.v1/portfolio_upgrade.json": func(t *testing.T, e Event) {
		p := e.Data.(*LimitUpdate)
		eq(t, p.Scope, "portfolio")
		eq(t, p.Tier, "TIER_10K")
		eq(t, e.Key, "acct/3339822332211")
	},
	"account.volume_tier.v1/utility_tier.json": func(t *testing.T, e Event) {
		p := e.Data.(*VolumeTier)
		eq(t, p.Tier, "250001:2000000")
		eq(t, p.EffectiveMonth, "2025-07")
		eq(t, p.PricingCategory, CategoryUtility)
	},
	"template.category.v1/utility_to_marketing.json": func(t *testing.T, e Event) {
		p := e.Data.(*TemplateCategory)
		eq(t, p.PreviousCategory, CategoryUtility)
		eq(t, p.NewCategory, CategoryMarketing)
	},
	"window.opened.v1/opened.json": func(t *testing.T, e Event) {
		p := e.Data.(*WindowOpened)
		eq(t, p.ExpiresAt-p.OpenedAt, UnixTime(24*3600))
		eq(t, p.Configured, true)
		eq(t, e.Cause.Offset, int64(1200))
	},
	"window.expired.v1/expired.json": func(t *testing.T, e Event) {
		p := e.Data.(*WindowExpired)
		eq(t, p.ExpiredAt, UnixTime(1752087600))
	},
	"conversation.opened.v1/cbp_utility.json": func(t *testing.T, e Event) {
		p := e.Data.(*ConversationOpened)
		eq(t, p.PricingModel, ModelCBP2023)
		eq(t, p.Category, CategoryUtility)
		eq(t, p.Month, "2024-06")
		eq(t, p.MetaConversationID, "72b14d6bd5407799e66f64d1b338e567")
	},
	"conversation.closed.v1/expired.json": func(t *testing.T, e Event) {
		p := e.Data.(*ConversationClosed)
		eq(t, p.Reason, CloseExpired)
		eq(t, e.Cause.Index, int32(1))
	},
	"message.dispatched.v1/template.json": func(t *testing.T, e Event) {
		eq(t, e.Data.(*MessageDispatched).Kind, KindTemplate)
	},
	"message.delivered.v1/pmp_marketing.json": func(t *testing.T, e Event) {
		p := e.Data.(*MessageDelivered)
		eq(t, p.KindSource, "send")
		eq(t, p.Ours.Billable, true)
		eq(t, p.Meta.PricingType, PricingRegular)
		eq(t, p.InsideCSW, true)
	},
	"charge.v1/pmp_marketing.json": func(t *testing.T, e Event) {
		p := e.Data.(*Charge)
		eq(t, p.Billable, true)
		eq(t, p.Reason, ReasonTemplateDelivered)
		eq(t, p.Unit, UnitMessage)
		eq(t, p.Currency, "USD")
		eq(t, p.Recipient, "16505551234")
		eq(t, e.ID, "1f2e3d4c5b6a79880716253443526170/1")
	},
	"charge.v1/pmp_utility_in_csw.json": func(t *testing.T, e Event) {
		p := e.Data.(*Charge)
		eq(t, p.Billable, false)
		eq(t, p.Reason, ReasonUtilityInCSW)
		eq(t, p.PricingType, PricingFreeCustomerService)
	},
	"policy.violation.v1/free_form_outside_csw.json": func(t *testing.T, e Event) {
		p := e.Data.(*PolicyViolation)
		eq(t, p.Code, 131047)
		eq(t, p.Delivered, false)
	},
	"correction.v1/late_status.json": func(t *testing.T, e Event) {
		p := e.Data.(*Correction)
		eq(t, len(p.Retracts), 2)
		eq(t, p.Retracts[1], "1f2e3d4c5b6a79880716253443526170/1")
		eq(t, p.Key, e.Key)
	},
	"event.set_aside.v1/too_late.json": func(t *testing.T, e Event) {
		p := e.Data.(*EventSetAside)
		eq(t, p.InputType, TypeStatusUpdate)
		orig, err := Decode(p.Original) // the kept envelope decodes on its own
		if err != nil {
			t.Fatalf("original: %v", err)
		}
		eq(t, orig.Data.(*StatusUpdate).WAMID, "wamid.OLD")
	},
	"deadletter.v1/malformed.json": func(t *testing.T, e Event) {
		p := e.Data.(*DeadLetter)
		eq(t, p.ErrorKind, string(ErrKindMalformed))
		eq(t, string(p.Key), "106540352242922/16505551234")
		eq(t, p.Headers["ce_type"], "message.status.v1")
		_, err := Decode(p.Original)
		eq(t, KindOf(err), ErrKindMalformed)
	},
	"deadletter.v1/ingest_rejected_message.json": func(t *testing.T, e Event) {
		p := e.Data.(*DeadLetter)
		eq(t, e.Cause == nil, true) // ingest has no input record to name
		eq(t, p.Partition, int32(-1))
		eq(t, p.Offset, int64(-1))
		eq(t, p.Headers["source"], "ingest")
		eq(t, p.ErrorKind, string(ErrKindFieldType))
		eq(t, strings.Contains(string(p.Original), `"timestamp":"yesterday"`), true)
	},
}

func eq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestGoldenFixturesDecode(t *testing.T) {
	files := goldenFiles(t)
	for name, b := range files {
		t.Run(name, func(t *testing.T) {
			e, err := Decode(bytes.TrimSpace(b))
			if err != nil {
				t.Fatalf("today's code cannot decode a golden fixture: %v", err)
			}
			if dir := strings.Split(name, "/")[0]; string(e.Type) != dir {
				t.Fatalf("type %s in directory %s", e.Type, dir)
			}
			check, ok := goldenChecks[name]
			if !ok {
				t.Fatalf("no goldenChecks entry for %s", name)
			}
			check(t, e)
			if e.Type.IsInput() {
				// Identity is part of the contract: ids dedupe retried webhooks across versions.
				want := New(e.Data)
				if e.Type == TypeTick {
					want = NewTick(e.Data.(*Tick).Partition, e.Time)
				}
				if e.ID != want.ID || e.Key != want.Key || e.Time != want.Time {
					t.Errorf("identity drifted: fixture id %s key %s time %d, New gives %s %s %d", e.ID, e.Key, e.Time, want.ID, want.Key, want.Time)
				}
			} else if e.Cause == nil && e.Type != TypeDeadLetter {
				t.Errorf("output event without a cause")
			}
			// Today's encoding of the decoded event decodes to the same event.
			re, err := Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Decode(re)
			if err != nil || !reflect.DeepEqual(again, e) {
				t.Fatalf("re-encoded fixture does not round-trip: %v\n%s", err, re)
			}
		})
	}
	for name := range goldenChecks {
		if _, ok := files[name]; !ok {
			t.Errorf("goldenChecks names %s, which is not a fixture", name)
		}
	}
}

func compileSchemas(t *testing.T) map[Type]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	out := map[Type]*jsonschema.Schema{}
	for _, ty := range append(append([]Type{}, InputTypes...), OutputTypes...) {
		p := filepath.Join("schemas", string(ty)+".json")
		sch, err := c.Compile(p)
		if err != nil {
			t.Errorf("schema for %s: %v", ty, err)
			continue
		}
		out[ty] = sch
	}
	return out
}

func TestEveryTypeHasSchemaAndFixture(t *testing.T) {
	files := goldenFiles(t)
	schemas, _ := filepath.Glob(filepath.Join("schemas", "*.json"))
	known := map[string]bool{}
	for _, ty := range append(append([]Type{}, InputTypes...), OutputTypes...) {
		known[string(ty)] = true
		if _, err := os.Stat(filepath.Join("schemas", string(ty)+".json")); err != nil {
			t.Errorf("%s has no schema: %v", ty, err)
		}
		n := 0
		for name := range files {
			if strings.HasPrefix(name, string(ty)+"/") {
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s has no golden fixture", ty)
		}
	}
	for _, s := range schemas {
		if !known[strings.TrimSuffix(filepath.Base(s), ".json")] {
			t.Errorf("schema %s names no known type", s)
		}
	}
}

func TestGoldenFixturesMatchSchemas(t *testing.T) {
	schemas := compileSchemas(t)
	for name, b := range goldenFiles(t) {
		ty := Type(strings.Split(name, "/")[0])
		sch := schemas[ty]
		if sch == nil {
			t.Errorf("%s: no schema for %s", name, ty)
			continue
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := sch.Validate(doc); err != nil {
			t.Errorf("%s does not match its schema: %v", name, err)
		}
	}
}

// TestSchemasAcceptTodaysEncoding validates the encoding of fullEvents (every field set) and
// checks that each schema rejects what Decode rejects for the usual mistakes, so the schemas
// cannot drift into accepting anything.
func TestSchemasAcceptTodaysEncoding(t *testing.T) {
	schemas := compileSchemas(t)
	for _, e := range fullEvents() {
		b, err := Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas[e.Type].Validate(doc); err != nil {
			t.Errorf("%s: today's encoding does not match the schema: %v\n%s", e.Type, err, b)
		}
		// Quoted times are accepted too.
		doc, _ = jsonschema.UnmarshalJSON(bytes.NewReader(quoteTimes(t, b)))
		if err := schemas[e.Type].Validate(doc); err != nil {
			t.Errorf("%s with quoted times: %v", e.Type, err)
		}
	}
	bad := map[string]string{
		"wrong version":       strings.Replace(statusJSON, `"v":1`, `"v":2`, 1),
		"time not numeric":    strings.Replace(statusJSON, `"time":1750030073`, `"time":"soon"`, 1),
		"bad status":          strings.Replace(statusJSON, `"status":"delivered"`, `"status":"seen"`, 1),
		"missing wamid":       strings.Replace(statusJSON, `"wamid":"wamid.X",`, ``, 1),
		"billable string":     strings.Replace(statusJSON, `"billable":true`, `"billable":"yes"`, 1),
		"wrong type constant": strings.Replace(statusJSON, `message.status.v1`, `message.inbound.v1`, 1),
		"missing data":        strings.Replace(statusJSON, `"data":`, `"dada":`, 1),
		"timestamp zero":      strings.Replace(statusJSON, `"timestamp":1750030073`, `"timestamp":0`, 1),
		"no recipient":        strings.Replace(statusJSON, `"recipient_id":"16505551234",`, ``, 1),
		"empty recipient":     strings.Replace(statusJSON, `"recipient_id":"16505551234",`, `"recipient_id":"",`, 1),
	}
	outbound := map[string]string{
		"template without category": `{"v":1,"id":"x","type":"message.outbound.v1","key":"1/2","time":5,"data":{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"kind":"template"}}`,
		"no user":                   `{"v":1,"id":"x","type":"message.outbound.v1","key":"1/2","time":5,"data":{"phone_number_id":"1","wamid":"w","timestamp":5,"kind":"free_form"}}`,
		"unknown kind":              `{"v":1,"id":"x","type":"message.outbound.v1","key":"1/2","time":5,"data":{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"kind":"sms"}}`,
	}
	for name, s := range outbound {
		if _, err := Decode([]byte(s)); err == nil {
			t.Errorf("outbound %s: Decode accepts it; the case is wrong", name)
		}
		doc, _ := jsonschema.UnmarshalJSON(strings.NewReader(s))
		if err := schemas[TypeOutboundSend].Validate(doc); err == nil {
			t.Errorf("outbound %s: the message.outbound.v1 schema accepts it", name)
		}
	}
	okOutbound := `{"v":1,"id":"x","type":"message.outbound.v1","key":"1/US.2","time":5,"data":{"phone_number_id":"1","user_id":"US.2","wamid":"w","timestamp":5,"kind":"free_form"}}`
	if _, err := Decode([]byte(okOutbound)); err != nil {
		t.Fatal(err)
	}
	doc, _ := jsonschema.UnmarshalJSON(strings.NewReader(okOutbound))
	if err := schemas[TypeOutboundSend].Validate(doc); err != nil {
		t.Errorf("a free-form send to a BSUID is valid: %v", err)
	}
	for name, s := range bad {
		if _, err := Decode([]byte(s)); err == nil && name != "wrong type constant" {
			t.Errorf("%s: Decode accepts it; the case is wrong", name)
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas[TypeStatusUpdate].Validate(doc); err == nil {
			t.Errorf("%s: the message.status.v1 schema accepts it", name)
		}
	}
}

// TestSchemasMatchStructs keeps each schema's data properties equal to the payload's JSON fields,
// and its required list equal to the fields written even when empty (no omitempty).
func TestSchemasMatchStructs(t *testing.T) {
	for _, ty := range append(append([]Type{}, InputTypes...), OutputTypes...) {
		b, err := os.ReadFile(filepath.Join("schemas", string(ty)+".json"))
		if err != nil {
			t.Errorf("%s: %v", ty, err)
			continue
		}
		var s struct {
			Defs struct {
				Data struct {
					Required   []string                   `json:"required"`
					Properties map[string]json.RawMessage `json:"properties"`
				} `json:"data"`
			} `json:"$defs"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", ty, err)
		}
		p, _ := NewPayload(ty)
		names, required := jsonFields(reflect.TypeOf(p).Elem())
		var props []string
		for k := range s.Defs.Data.Properties {
			props = append(props, k)
		}
		sort.Strings(props)
		sort.Strings(names)
		req := append([]string(nil), s.Defs.Data.Required...)
		sort.Strings(req)
		sort.Strings(required)
		if !slices.Equal(props, names) {
			t.Errorf("%s: schema properties %v, struct fields %v", ty, props, names)
		}
		if !slices.Equal(req, required) {
			t.Errorf("%s: schema required %v, struct fields without omitempty %v", ty, req, required)
		}
	}
}

func jsonFields(t reflect.Type) (names, required []string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			n, r := jsonFields(f.Type)
			names, required = append(names, n...), append(required, r...)
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	return names, required
}
