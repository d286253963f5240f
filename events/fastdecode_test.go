package events

import (
	"reflect"
	"strings"
	"testing"
)

// checkFastMatchesGeneric fails t unless decoding b without the hand-written payload decoders
// gives exactly what Decode gave (e, err): an identical event, or an identical error.
func checkFastMatchesGeneric(t *testing.T, b []byte, e Event, err error) {
	t.Helper()
	ge, gerr := decode(b, false)
	if (err == nil) != (gerr == nil) {
		t.Fatalf("fast path error %v, generic path error %v\ninput %q", err, gerr, b)
	}
	if err != nil {
		if KindOf(err) != KindOf(gerr) || err.Error() != gerr.Error() {
			t.Fatalf("errors differ\nfast    %v\ngeneric %v\ninput %q", err, gerr, b)
		}
		return
	}
	if !reflect.DeepEqual(e, ge) {
		t.Fatalf("events differ\nfast    %#v\ngeneric %#v\ninput %q", e.Data, ge.Data, b)
	}
}

// fastTypes are the payload types with a hand-written decoder.
var fastTypes = map[Type]bool{TypeStatusUpdate: true, TypeInboundMessage: true, TypeOutboundSend: true, TypeTick: true}

// TestFastDecodersMatchGeneric decodes the golden fixtures, the full samples and variants of them
// that reach the corners where the hand-written decoders must give up, with and without those
// decoders. It also checks that the fast path is taken for every golden fixture and sample of a
// fast type, so the comparison is not vacuous.
func TestFastDecodersMatchGeneric(t *testing.T) {
	var recs [][]byte
	for name, b := range goldenFiles(t) {
		recs = append(recs, b)
		var h header
		if err := h.scan(b); err != nil {
			t.Fatal(err)
		}
		if fastTypes[h.typ] && decodeFast(h.typ, h.data) == nil {
			t.Errorf("%s: the fast decoder gave up", name)
		}
		h = header{fast: true}
		if err := h.scan(b); err != nil {
			t.Fatal(err)
		}
		if fastTypes[h.typ] && h.payload == nil {
			t.Errorf("%s: the fast decoder gave up inside the envelope scan", name)
		}
	}
	for _, e := range fullEvents() {
		b, err := Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b, quoteTimes(t, b))
		if fastTypes[e.Type] {
			var h header
			if err := h.scan(b); err != nil {
				t.Fatal(err)
			}
			if decodeFast(h.typ, h.data) == nil {
				t.Errorf("%s sample: the fast decoder gave up", e.Type)
			}
		}
	}
	variants := []struct{ old, new string }{
		{`"wamid":"wamid.X"`, `"WAMID":"wamid.X"`},                               // case-insensitive name
		{`"wamid":"wamid.X"`, `"wamid":"wamid.X","wamid":"y"`},                   // duplicate
		{`"wamid":"wamid.X"`, `"wamid":"wamid.X","WamId":"y"`},                   // duplicate by folding
		{`"wamid":"wamid.X"`, `"wamid":"w\u00e9"`},                               // escape
		{`"wamid":"wamid.X"`, "\"wamid\":\"w\xff\""},                             // invalid UTF-8
		{`"wamid":"wamid.X"`, `"wamid":"wé"`},                                    // valid UTF-8
		{`"wamid":"wamid.X"`, `"wamid":null`},                                    // null string
		{`"wamid":"wamid.X"`, `"wamid":12`},                                      // type mismatch
		{`"wamid":"wamid.X"`, `"wamid":"wamid.X","\u0077amid":"y"`},              // escaped name
		{`"wamid":"wamid.X"`, `"wamid":"wamid.X","ſtatus":"read"`},               // non-ASCII name folding to status
		{`"status":"delivered"`, `"status":"DELIVERED"`},                         // unknown enum value
		{`"status":"delivered"`, `"status":"delivered","x":{"a":[1,"\""]}`},      // unknown field
		{`"timestamp":1750030073`, `"timestamp":null`},                           // null time
		{`"timestamp":1750030073`, `"timestamp":""`},                             // empty time
		{`"timestamp":1750030073`, `"timestamp":"1750030073"`},                   // numeric string
		{`"timestamp":1750030073`, `"timestamp":1.75e9`},                         // exponent
		{`"timestamp":1750030073`, `"timestamp":-5`},                             // negative
		{`"timestamp":1750030073`, `"timestamp":99999999999999999999`},           // overflow
		{`"billable":true`, `"billable":null`},                                   // null pointer
		{`"billable":true`, `"billable":"true"`},                                 // bool as string
		{`"pricing":{`, `"pricing":null,"x":{`},                                  // null object
		{`"conversation":{"id":"c1",`, `"conversation":{},"y":{"id":"c1",`},      // empty object
		{`"conversation":{"id":"c1",`, `"conversation":[],"y":{"id":"c1",`},      // array for object
		{`"origin_type":"marketing"}`, `"origin_type":"marketing"},"errors":[]`}, // empty array
		{`"origin_type":"marketing"}`, `"origin_type":"marketing"},"errors":null`},
		{`"origin_type":"marketing"}`, `"origin_type":"marketing"},"errors":[{"code":1},{"code":2,"title":"t"},{}]`},
		{`"origin_type":"marketing"}`, `"origin_type":"marketing"},"errors":[null]`},
		{`"origin_type":"marketing"}`, `"origin_type":"marketing"},"errors":[{"code":1.5}]`},
		{`"origin_type":"marketing"}`, `"origin_type":"marketing"},"errors":[{"code":"1"}]`},
		{`"origin_type":"marketing"}`, `"origin_type":"marketing"},"errors":[{"code":-0}]`},
		{`"origin_type":"marketing"}`, `"origin_type":"marketing"},"errors":[{"Code":3}]`},
		// Names matched on the bytes in the encoder's order (object): other orders, spacing and
		// names that are prefixes or extensions of a field's must read as when scanned.
		{`"wamid":"wamid.X"`, `"wamid" :"wamid.X"`},
		{`"wamid":"wamid.X"`, "\"wamid\"\n:\t\"wamid.X\""},
		{`"wamid":"wamid.X"`, `"wami":"a","wamidx":"b","wamid":"wamid.X","wamid_":"c"`},
		{`"wamid":"wamid.X"`, `"wamid":"wamid.X","phone_number_id":"again"`},                   // duplicate of an earlier field
		{`"wamid":"wamid.X"`, `"wamid":"wamid.X","status":"read","wamid":"wamid.X"`},           // duplicate after a later field
		{`"wamid":"wamid.X"`, `"wamid":"wamid.X","recipient_type":"individual"`},               // an earlier field after a later one
		{`"status":"delivered"`, `"status":"delivered","phone_number_id_":"p","waba_id":null`}, // an earlier field, null
		{`"status":"delivered"`, `"status":"delivered","pricing" : {"category":"utility","billable":false}`},
		{`"status":"delivered"`, `"status":"delivered","status ":"x"`},
		{`"status":"delivered"`, `"status":"delivered","\"":1`},
		{`"status":"delivered"`, `"status":"delivered","":1`},
	}
	for _, v := range variants {
		if !strings.Contains(statusJSON, v.old) {
			t.Fatalf("%q not in statusJSON", v.old)
		}
		recs = append(recs, []byte(strings.Replace(statusJSON, v.old, v.new, 1)))
	}
	inbound := `{"v":1,"id":"x","type":"message.inbound.v1","data":{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5%s}}`
	for _, extra := range []string{
		``, `,"error_codes":[]`, `,"error_codes":null`, `,"error_codes":[1,2,3]`, `,"error_codes":[1e2]`,
		`,"error_codes":[null]`, `,"error_codes":[-2147483649]`, `,"referral":{}`, `,"referral":null`,
		`,"referral":{"source_type":"ad","SOURCE_ID":"1"}`, `,"referral":{"source_type":"ad","extra":1}`,
		`,"message_type":"text"`, `,"message_type":"new_kind"`, `,"timestamp":"5"`,
	} {
		recs = append(recs, []byte(strings.Replace(inbound, "%s", extra, 1)))
	}
	tick := `{"v":1,"id":"x","type":"clock.tick.v1","time":1,"data":%s}`
	for _, d := range []string{`{}`, `{"partition":1}`, `{"partition":null}`, `{"partition":2147483647}`, `{"partition":2147483648}`,
		`{"partition":-2147483648}`, `{"partition":1,"partition":2}`, `{"Partition":1}`, `{"partition":01}`, `{"partition":"1"}`} {
		recs = append(recs, []byte(strings.Replace(tick, "%s", d, 1)))
	}
	outbound := `{"v":1,"id":"x","type":"message.outbound.v1","data":{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"kind":%s}}`
	for _, k := range []string{`"template","template_category":"utility"`, `"free_form"`, `"sms"`, `null`, `1`, `"template","template_category":"UTILITY"`} {
		recs = append(recs, []byte(strings.Replace(outbound, "%s", k, 1)))
	}
	for _, b := range recs {
		e, err := Decode(b)
		checkFastMatchesGeneric(t, b, e, err)
	}
}

// TestEnvelopeRepeatedStrings checks the id and key of envelopes that repeat them, in every form
// (plain, escaped, null): the last one counts, as it did when each was made as it was read.
func TestEnvelopeRepeatedStrings(t *testing.T) {
	const data = `"data":{"phone_number_id":"p1","recipient_id":"u1","wamid":"w\u00e9","status":"sent","timestamp":1}`
	for _, c := range []struct{ fields, id, key string }{
		{`"id":"a","key":"k"`, "a", "k"},
		{`"id":"a","id":"b","key":"k","key":"l"`, "b", "l"},
		{`"id":"a","id":"\u0062","key":"k","key":null`, "b", ""},
		{`"id":"\u0061","id":"b","key":null,"key":"k"`, "b", "k"},
		{`"key":"","id":"a","id":null,"id":"c"`, "c", ""},
		{`"id":"é","key":"k/é"`, "é", "k/é"},
	} {
		for _, rec := range []string{
			`{"v":1,"type":"message.status.v1",` + c.fields + `,"time":1,` + data + `}`,
			`{"v":1,` + data + `,"type":"message.status.v1",` + c.fields + `,"time":1}`,
		} {
			e, err := Decode([]byte(rec))
			if err != nil {
				t.Fatalf("%s: %v", rec, err)
			}
			if e.ID != c.id || e.Key != c.key {
				t.Errorf("%s: id %q key %q, want %q %q", rec, e.ID, e.Key, c.id, c.key)
			}
			if su := e.Data.(*StatusUpdate); su.PhoneNumberID != "p1" || su.RecipientID != "u1" || su.WAMID != "wé" {
				t.Errorf("%s: payload %+v", rec, su)
			}
			checkFastMatchesGeneric(t, []byte(rec), e, err)
		}
	}
}

// TestFieldNamesInAnyOrder: the decoders match field names on the bytes in the order Encode
// writes them, and look up any other name; a record with its fields in another order, spaced,
// or among unknown names that extend a field's must still be read by the hand-written decoder
// (not handed to the generic one) and decode to the same event, envelope included.
func TestFieldNamesInAnyOrder(t *testing.T) {
	want := mustDecode(t, statusJSON)
	for _, rec := range []string{
		`{"data":{"timestamp":1750030073,"status":"delivered","wamid":"wamid.X","recipient_id":"16505551234","phone_number_id":"106540352242922",` +
			`"conversation":{"origin_type":"marketing","expiration_timestamp":1750116480,"id":"c1"},` +
			`"pricing":{"category":"marketing","type":"regular","pricing_model":"PMP","billable":true}},` +
			`"time":1750030073,"key":"106540352242922/16505551234","type":"message.status.v1","id":"e1","v":1}`,
		strings.NewReplacer(`":`, `" : `, `,"`, ` , "`).Replace(statusJSON),
		strings.NewReplacer(`{"`, `{"vv":0,"ids":"x","wami":1,"statuses":2,"`, `,"`, `,"x":[],"`).Replace(statusJSON),
		strings.Replace(statusJSON, `"v":1,"id":"e1"`, `"id":"e1","v":1`, 1),
		strings.Replace(statusJSON, `"time":1750030073,`, `"cause":null,"time":1750030073,`, 1),
	} {
		e, err := Decode([]byte(rec))
		if err != nil {
			t.Fatalf("%s: %v", rec, err)
		}
		if !reflect.DeepEqual(e, want) {
			t.Errorf("%s:\ngot  %#v\nwant %#v", rec, e, want)
		}
		checkFastMatchesGeneric(t, []byte(rec), e, err)
		h := header{fast: true}
		if err := h.scan([]byte(rec)); err != nil || h.payload == nil && decodeFast(h.typ, h.data) == nil {
			t.Errorf("%s: the fast decoder gave up (%v)", rec, err)
		}
	}
}
