package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecode checks the decoder's invariants on arbitrary bytes:
//   - it never panics;
//   - every failure is a *DecodeError (not merely wrapping one) with a known kind and a message;
//   - the hand-written payload decoders agree with the generic decoder: the same event, or the
//     same error (checkFastMatchesGeneric);
//   - a success re-encodes to bytes that decode to an equal event, and encoding is then a fixed
//     point (encode(decode(encode(e))) == encode(e)).
//
// Seeds: the golden fixtures, every type with every field set, and malformed variants. The corpus
// the fuzzer found interesting is kept in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, b := range goldenFiles(f) {
		f.Add(b)
	}
	for _, e := range fullEvents() {
		b, err := Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"v":1}`, `{"v":2,"type":"clock.tick.v1","id":"x","data":{}}`,
		strings.Replace(statusJSON, `"timestamp":1750030073`, `"timestamp":"1750030073"`, 1),
		strings.Replace(statusJSON, `"timestamp":1750030073`, `"timestamp":"x"`, 1),
		strings.Replace(statusJSON, `"billable":true`, `"billable":"true"`, 1),
		strings.Replace(statusJSON, `"id":"e1"`, `"id":"\ud800\u00e9\\"`, 1),
		`{"v":1,"id":"x","type":"deadletter.v1","time":1,"data":{"reason":"r","error_kind":"malformed","partition":0,"offset":0,"original":"!!"}}`,
		`{"v":1,"id":"x","type":"message.inbound.v1","data":{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"error_codes":[],"referral":{}}}`,
		`{"v":1,"id":"x","type":"clock.tick.v1","time":1,"cause":{"partition":99999999999},"data":{"partition":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		checkFastMatchesGeneric(t, b, e, err)
		if err != nil {
			de, ok := err.(*DecodeError)
			if !ok {
				t.Fatalf("error is %T, not *DecodeError: %v", err, err)
			}
			if de.Kind.sentinel() == nil || de.Err == nil || de.Error() == "" {
				t.Fatalf("incomplete DecodeError %#v", de)
			}
			if !utf8.ValidString(de.Error()) {
				t.Fatalf("error message is not valid UTF-8: %q", de.Error())
			}
			if !errors.Is(err, de.Kind.sentinel()) {
				t.Fatalf("errors.Is does not match the kind: %v", err)
			}
			return
		}
		// The payload decoder agrees with encoding/json, whose semantics the codec promises.
		var h header
		if err := h.scan(b); err != nil {
			t.Fatalf("Decode accepted what the scanner rejects: %v", err)
		}
		std, _ := NewPayload(e.Type)
		if err := json.Unmarshal(h.data, std); err != nil {
			t.Fatalf("encoding/json rejects data that Decode accepted: %v\n%q", err, h.data)
		}
		if !sameEvent(Event{Data: std}, Event{Data: e.Data}) {
			t.Fatalf("encoding/json decodes data differently\nstd   %#v\nours  %#v\ninput %q", std, e.Data, h.data)
		}
		b1, err := Marshal(e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v\n%#v", err, e)
		}
		e2, err := Decode(b1)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\ninput %q\nre-encoded %s", err, b, b1)
		}
		if !sameEvent(e, e2) {
			t.Fatalf("re-decoded event differs\ninput %q\nfirst  %#v\nsecond %#v", b, e, e2)
		}
		b2, err := Marshal(e2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("encoding is not a fixed point: %v\n%s\n%s", err, b1, b2)
		}
	})
}

// sameEvent is reflect.DeepEqual, except that an empty slice or map equals a nil one: an omitted
// empty list and an explicit [] mean the same thing on the wire.
func sameEvent(a, b Event) bool {
	return equalValue(reflect.ValueOf(a), reflect.ValueOf(b))
}

func equalValue(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case reflect.Slice, reflect.Map:
		if a.Len() == 0 && b.Len() == 0 {
			return a.Type() == b.Type()
		}
		if a.Kind() == reflect.Map {
			return reflect.DeepEqual(a.Interface(), b.Interface())
		}
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !equalValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Kind() == reflect.Interface && a.Elem().Type() != b.Elem().Type() {
			return false
		}
		return equalValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !equalValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return a.Equal(b)
}

func TestSameEvent(t *testing.T) {
	a := Event{ID: "x", Data: &InboundMessage{ErrorCodes: []int{}}}
	b := Event{ID: "x", Data: &InboundMessage{}}
	if !sameEvent(a, b) {
		t.Error("empty and nil slices differ")
	}
	b.Data.(*InboundMessage).ErrorCodes = []int{1}
	if sameEvent(a, b) {
		t.Error("[] equals [1]")
	}
	if sameEvent(Event{Data: &Tick{Partition: 1}}, Event{Data: &Tick{Partition: 2}}) {
		t.Error("different ticks are equal")
	}
	if sameEvent(Event{Data: &Tick{}}, Event{Data: &Correction{}}) {
		t.Error("different payload types are equal")
	}
}

// TestPayloadDecoderMatchesEncodingJSON pins the corners where a fast JSON library could differ
// from encoding/json: both must accept or both reject, and accepted data must decode alike.
func TestPayloadDecoderMatchesEncodingJSON(t *testing.T) {
	cases := []struct {
		typ  Type
		data string
	}{
		{TypeInboundMessage, "{\"phone_number_id\":\"1\",\"wa_id\":\"2\",\"wamid\":\"w\xff\xfe\",\"timestamp\":5}"}, // invalid UTF-8
		{TypeInboundMessage, `{"phone_number_id":"1","wa_id":"2","WAMID":"upper","timestamp":5}`},                   // case-insensitive name
		{TypeInboundMessage, `{"phone_number_id":"1","wa_id":"2","wamid":"a","wamid":"b","timestamp":5}`},           // duplicate: last wins
		{TypeInboundMessage, `{"phone_number_id":"1","wa_id":"2","wamid":"\u0000\ud800x","timestamp":5}`},           // NUL, lone surrogate
		{TypeInboundMessage, `{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"error_codes":[1.5]}`},   // float into int
		{TypeInboundMessage, `{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"error_codes":"x"}`},     // string into slice
		{TypeInboundMessage, `{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"error_codes":null}`},    // null slice
		{TypeInboundMessage, `{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"referral":null}`},       // null pointer
		{TypeInboundMessage, `{"phone_number_id":null,"wa_id":"2","wamid":"w","timestamp":5}`},                      // null string
		{TypeTick, `{"partition":1099511627776}`},                                                                   // int32 overflow
		{TypeTick, `{"partition":-1}`},   // negative
		{TypeTick, `{"partition":1e2}`},  // exponent into int
		{TypeTick, `{"partition":null}`}, // null int
		{TypeAccountConfig, `{"phone_number_id":"1","waba_id":"2","time_zone":"UTC","currency":"USD","coexistence":null}`},
		{TypeAccountConfig, `{"phone_number_id":"1","waba_id":"2","time_zone":"UTC","currency":"USD","coexistence":1}`},
		{TypeDeadLetter, `{"reason":"r","error_kind":"k","partition":0,"offset":0,"original":"aGVsbG8="}`},       // base64
		{TypeDeadLetter, `{"reason":"r","error_kind":"k","partition":0,"offset":0,"original":"aGVsbG8"}`},        // unpadded base64
		{TypeDeadLetter, `{"reason":"r","error_kind":"k","partition":0,"offset":0,"headers":{"b":"2","a":"1"}}`}, // map
		{TypeDeadLetter, `{"reason":"r","error_kind":"k","partition":0,"offset":0,"headers":{"a":1}}`},           // map value type
		{TypeStatusUpdate, `{"phone_number_id":"1","recipient_id":"2","wamid":"w","status":"sent","timestamp":5,"pricing":{"billable":null}}`},
		{TypeStatusUpdate, `{"phone_number_id":"1","recipient_id":"2","wamid":"w","status":"sent","timestamp":5,"errors":[{"code":"131047"}]}`},
	}
	for _, c := range cases {
		std, _ := NewPayload(c.typ)
		stdErr := json.Unmarshal([]byte(c.data), std)
		env := `{"v":1,"id":"x","type":"` + string(c.typ) + `","time":1,"data":` + c.data + `}`
		e, err := Decode([]byte(env))
		if err != nil && KindOf(err) == ErrKindInvalid {
			err = nil // Validate's verdict, not the JSON decoder's
			e.Data = nil
		}
		if (stdErr == nil) != (err == nil) {
			t.Errorf("%s: encoding/json error %v, Decode error %v", c.data, stdErr, err)
			continue
		}
		if err != nil {
			if KindOf(err) == ErrKindMalformed {
				t.Errorf("%s: a type mismatch reported as malformed: %v", c.data, err)
			}
			continue
		}
		if e.Data != nil && !sameEvent(Event{Data: std}, Event{Data: e.Data}) {
			t.Errorf("%s: decoded differently\nstd  %#v\nours %#v", c.data, std, e.Data)
		}
	}
}

// FuzzEncodeMatchesEncodingJSON checks the claim of appendPayload and appendJSONString: payloads
// and envelope strings are written byte for byte as encoding/json writes them, whatever the
// strings hold (invalid UTF-8, control and HTML characters, U+2028). checkFastEncoders does so
// for every payload type, with every field set from the fuzzed values.
func FuzzEncodeMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\x7f", "<script>&amp;</script>", "\u2028\u2029", "\xff\xfe", "é😀", "\xed\xa0\x80"} {
		f.Add(s, int64(1750030073))
	}
	f.Fuzz(func(t *testing.T, s string, n int64) {
		payloads := []Payload{
			&InboundMessage{PhoneNumberID: s, WaID: s, WAMID: s, MessageType: s, Timestamp: UnixTime(n), Referral: &Referral{SourceURL: s}, ErrorCodes: []int{int(n)}},
			&StatusUpdate{PhoneNumberID: s, WAMID: s, Status: Status(s), Timestamp: UnixTime(n), Pricing: &MetaPricing{Category: Category(s)}, Errors: []StatusError{{Code: int(n), Title: s}}},
			&DeadLetter{Reason: s, Key: []byte(s), Original: []byte(s), Headers: map[string]string{s: s, "a" + s: s}},
			&Correction{Key: s, Retracts: []string{s, s}},
		}
		checkFastEncoders(t, s, n)
		for _, p := range payloads {
			want, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendPayload([]byte("x"), p)
			if err != nil || !bytes.Equal(got[1:], want) {
				t.Fatalf("payload %T\n got %s (%v)\nwant %s", p, got[1:], err, want)
			}
		}
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("string %q\n got %s\nwant %s", s, got, want)
		}
	})
}
