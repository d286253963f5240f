package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestFullPayloadsSetEveryField keeps the round-trip test honest: a field added to a payload
// without a value in fullPayloads would round-trip as a zero and prove nothing.
func TestFullPayloadsSetEveryField(t *testing.T) {
	for _, p := range fullPayloads() {
		for _, path := range zeroFields(reflect.ValueOf(p).Elem(), string(p.EventType())) {
			t.Errorf("%s is zero in fullPayloads; set it so the round trip covers it", path)
		}
	}
}

func zeroFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return zeroFields(v.Elem(), path)
	case reflect.Struct:
		var out []string
		for i := 0; i < v.NumField(); i++ {
			out = append(out, zeroFields(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
		return out
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

func TestFullEventsCoverEveryType(t *testing.T) {
	have := map[Type]bool{}
	for _, e := range fullEvents() {
		have[e.Type] = true
	}
	for _, ty := range append(append([]Type{}, InputTypes...), OutputTypes...) {
		if !have[ty] {
			t.Errorf("fullEvents has no %s", ty)
		}
		p, ok := NewPayload(ty)
		if !ok || p.EventType() != ty {
			t.Errorf("NewPayload(%s) = %T, %v", ty, p, ok)
		}
	}
}

func TestRoundTripEveryType(t *testing.T) {
	for _, e := range fullEvents() {
		t.Run(string(e.Type), func(t *testing.T) {
			b, err := Marshal(e)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("round trip changed the event\n got %#v\nwant %#v\nwire %s", got, e, b)
			}
			again, err := Encode([]byte("prefix"), got)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if !bytes.Equal(again[len("prefix"):], b) || string(again[:6]) != "prefix" {
				t.Fatalf("re-encoding is not byte-identical\nfirst  %s\nsecond %s", b, again)
			}
		})
	}
}

func TestEncodeIsDeterministicAcrossMapOrder(t *testing.T) {
	dl := &DeadLetter{Reason: "r", ErrorKind: "malformed", Original: []byte("x"),
		Headers: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"}}
	e := Event{ID: "i/0", Key: "k", Time: 1, Data: dl}
	first, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		b, _ := Marshal(e)
		if !bytes.Equal(b, first) {
			t.Fatalf("encoding %d differs:\n%s\n%s", i, first, b)
		}
	}
	if !bytes.Contains(first, []byte(`{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6"}`)) {
		t.Fatalf("headers not in key order: %s", first)
	}
}

func TestEncodeEnvelopeShape(t *testing.T) {
	e := Event{ID: "abc/0", Type: TypeCharge, Key: "1/2", Time: 1750030073, Cause: &Cause{Partition: 1, Offset: 2, Index: 3},
		Data: &Charge{Account: Account{PhoneNumberID: "1", User: "2"}, Unit: UnitMessage}}
	b, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	const wantPrefix = `{"v":1,"id":"abc/0","type":"charge.v1","key":"1/2","time":1750030073,"cause":{"partition":1,"offset":2,"index":3},"data":{`
	if !strings.HasPrefix(string(b), wantPrefix) {
		t.Fatalf("envelope\n got %s\nwant prefix %s", b, wantPrefix)
	}
	// Without a cause the field is absent, and the type comes from the payload when unset.
	b, err = Marshal(Event{ID: "x", Key: "1/2", Time: 5, Data: &Tick{Partition: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":1,"id":"x","type":"clock.tick.v1","key":"1/2","time":5,"data":{"partition":1}}`; string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestEncodeEscapesEnvelopeStrings(t *testing.T) {
	// Strings in the envelope are JSON strings, not Go literals: control bytes, quotes, invalid
	// UTF-8 and HTML-sensitive characters must come back exactly (invalid UTF-8 as U+FFFD).
	id := "a\"b\\c\x00\x07\x1f\n\t<>&\u2028é"
	e := Event{ID: id, Key: "k\x7f\xff", Time: 1, Data: &Tick{Partition: 0}}
	b, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if got.ID != id || got.Key != "k\x7f\uFFFD" {
		t.Fatalf("got id %q key %q from %s", got.ID, got.Key, b)
	}
	if bytes.ContainsAny(b, "\x00\x07<>&") {
		t.Fatalf("unescaped bytes in %q", b)
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := []struct {
		name string
		e    Event
		want string
	}{
		{"no data", Event{ID: "x", Type: TypeTick}, "data: missing"},
		{"type disagrees with data", Event{ID: "x", Type: TypeCharge, Data: &Tick{}}, "data is clock.tick.v1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Encode([]byte("keep"), c.e)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if string(b) != "keep" {
				t.Fatalf("dst changed to %q on error", b)
			}
		})
	}
}

const statusJSON = `{"v":1,"id":"e1","type":"message.status.v1","key":"106540352242922/16505551234","time":1750030073,` +
	`"data":{"phone_number_id":"106540352242922","recipient_id":"16505551234","wamid":"wamid.X","status":"delivered","timestamp":1750030073,` +
	`"pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"},` +
	`"conversation":{"id":"c1","expiration_timestamp":1750116480,"origin_type":"marketing"}}}`

func mustDecode(t *testing.T, s string) Event {
	t.Helper()
	e, err := Decode([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return e
}

func TestNumericStringTimes(t *testing.T) {
	want := mustDecode(t, statusJSON)
	r := strings.NewReplacer(`"time":1750030073`, `"time":"1750030073"`,
		`"timestamp":1750030073`, `"timestamp":"1750030073"`,
		`"expiration_timestamp":1750116480`, `"expiration_timestamp":"1750116480"`)
	s := r.Replace(statusJSON)
	if s == statusJSON || strings.Count(s, `:"17500`)+strings.Count(s, `:"175011`) != 3 {
		t.Fatalf("replacement did not apply: %s", s)
	}
	got := mustDecode(t, s)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("numeric strings decode differently\n got %#v\nwant %#v", got.Data, want.Data)
	}
	st := got.Data.(*StatusUpdate)
	if got.Time != 1750030073 || st.Timestamp != 1750030073 || st.Conversation.ExpirationTimestamp != 1750116480 {
		t.Fatalf("times %d %d %d", got.Time, st.Timestamp, st.Conversation.ExpirationTimestamp)
	}
	// Every UnixTime field of every payload accepts both forms.
	for _, e := range fullEvents() {
		b, _ := Marshal(e)
		quoted := quoteTimes(t, b)
		got, err := Decode(quoted)
		if err != nil {
			t.Fatalf("%s with quoted times: %v\n%s", e.Type, err, quoted)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("%s with quoted times decodes differently\n%s", e.Type, quoted)
		}
	}
}

// quoteTimes rewrites every 10-digit number in b (all our Unix times) as a string.
func quoteTimes(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	n := 0
	for i := 0; i < len(b); i++ {
		if b[i] == ':' && i+11 <= len(b) && isDigits(b[i+1:i+11]) && (i+11 == len(b) || b[i+11] == ',' || b[i+11] == '}') {
			out = append(out, ':', '"')
			out = append(out, b[i+1:i+11]...)
			out = append(out, '"')
			i += 10
			n++
			continue
		}
		out = append(out, b[i])
	}
	if n == 0 {
		t.Fatalf("no times to quote in %s", b)
	}
	return out
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func TestTimeNullAndEmptyStringAreZero(t *testing.T) {
	for _, v := range []string{`null`, `""`} {
		s := strings.Replace(statusJSON, `"expiration_timestamp":1750116480`, `"expiration_timestamp":`+v, 1)
		if got := mustDecode(t, s).Data.(*StatusUpdate).Conversation.ExpirationTimestamp; got != 0 {
			t.Errorf("%s: got %d", v, got)
		}
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	want := mustDecode(t, statusJSON)
	s := strings.Replace(statusJSON, `"status":"delivered",`, `"status":"delivered","biz_opaque_callback_data":"x","recipient_identity_key_hash":{"a":[1,2,{"b":null}]},`, 1)
	s = strings.Replace(s, `"category":"marketing"}`, `"category":"marketing","future":true}`, 1)
	s = strings.Replace(s, `{"v":1,`, `{"v":1,"traceparent":"00-abc","extra":[{"}":"{"}],`, 1)
	got := mustDecode(t, s)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unknown fields changed the event\n got %#v\nwant %#v", got, want)
	}
}

func TestWhitespaceAndFieldOrder(t *testing.T) {
	want := mustDecode(t, statusJSON)
	s := " \n{ \"data\" : " + statusJSON[strings.Index(statusJSON, `{"phone`):len(statusJSON)-1] +
		" ,\t\"time\":1750030073 , \"key\" :\"106540352242922/16505551234\",\"type\":\"message.status.v1\",\r\n\"id\":\"e1\",\"v\":1 } \n"
	if got := mustDecode(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("reordered envelope decodes differently\n got %#v\nwant %#v", got, want)
	}
}

func TestEnvelopeStringEscapes(t *testing.T) {
	s := strings.Replace(statusJSON, `"id":"e1"`, `"id":"e\u00e9\n\"\/\\\ud83d\ude00"`, 1)
	if got := mustDecode(t, s).ID; got != "eé\n\"/\\😀" {
		t.Fatalf("id %q", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	rep := func(old, new string) string {
		if !strings.Contains(statusJSON, old) {
			t.Fatalf("%q not in statusJSON", old)
		}
		return strings.Replace(statusJSON, old, new, 1)
	}
	huge := `{"v":1,"id":"x","type":"clock.tick.v1","time":1,"data":{"partition":1,"pad":"` + strings.Repeat("a", MaxEventSize) + `"}}`
	cases := []struct {
		name string
		in   string
		kind ErrorKind
		want []string // substrings of the message
	}{
		{"empty", ``, ErrKindMalformed, []string{"malformed"}},
		{"not json", `hello`, ErrKindMalformed, []string{"malformed"}},
		{"not an object", `[1,2]`, ErrKindMalformed, []string{"malformed", "object"}},
		{"truncated", statusJSON[:len(statusJSON)-7], ErrKindMalformed, []string{"malformed"}},
		{"truncated in envelope", statusJSON[:20], ErrKindMalformed, []string{"malformed"}},
		{"trailing garbage", statusJSON + `x`, ErrKindMalformed, []string{"malformed"}},
		{"two objects", statusJSON + statusJSON, ErrKindMalformed, []string{"malformed"}},
		{"bad data json", rep(`"status":"delivered"`, `"status":"delivered"]`), ErrKindMalformed, []string{"malformed"}},
		{"too large", huge, ErrKindTooLarge, []string{"too_large", "limit 1048576"}},
		{"unknown type", rep(`message.status.v1`, `message.status.v9`), ErrKindUnknownType, []string{"unknown_type", `"message.status.v9"`}},
		{"missing type", rep(`"type":"message.status.v1",`, ``), ErrKindUnknownType, []string{"unknown_type"}},
		{"missing version", rep(`"v":1,`, ``), ErrKindInvalid, []string{"invalid", "v: missing"}},
		{"version 2", rep(`"v":1`, `"v":2`), ErrKindVersion, []string{"version 2"}},
		{"version 0", rep(`"v":1`, `"v":0`), ErrKindVersion, []string{"version 0"}},
		{"version as string", rep(`"v":1`, `"v":"1"`), ErrKindFieldType, []string{"field_type", "v:"}},
		{"version fraction", rep(`"v":1`, `"v":1.5`), ErrKindFieldType, []string{"field_type", "v:"}},
		{"id number", rep(`"id":"e1"`, `"id":17`), ErrKindFieldType, []string{"field_type", "id:"}},
		{"missing id", rep(`"id":"e1",`, ``), ErrKindInvalid, []string{"invalid", "id: missing"}},
		{"key object", rep(`"key":"106540352242922/16505551234"`, `"key":{}`), ErrKindFieldType, []string{"field_type", "key:"}},
		{"time not numeric", rep(`"time":1750030073`, `"time":"soon"`), ErrKindFieldType, []string{"field_type", "time:", "soon"}},
		{"time bool", rep(`"time":1750030073`, `"time":true`), ErrKindFieldType, []string{"field_type", "time:"}},
		{"cause offset string", rep(`"time":1750030073,`, `"time":1750030073,"cause":{"partition":1,"offset":"x","index":0},`), ErrKindFieldType, []string{"field_type", "cause.offset"}},
		{"missing data", rep(`"data":`, `"dada":`), ErrKindInvalid, []string{"invalid", "data: missing"}},
		{"null data", `{"v":1,"id":"x","type":"clock.tick.v1","time":1,"data":null}`, ErrKindInvalid, []string{"invalid", "data: missing"}},
		{"data not object", `{"v":1,"id":"x","type":"clock.tick.v1","time":1,"data":[1]}`, ErrKindFieldType, []string{"field_type", "data"}},
		{"data string field number", rep(`"wamid":"wamid.X"`, `"wamid":12`), ErrKindFieldType, []string{"field_type", "data.wamid"}},
		{"nested bool as string", rep(`"billable":true`, `"billable":"yes"`), ErrKindFieldType, []string{"field_type", "data.pricing.billable"}},
		{"timestamp not numeric", rep(`"timestamp":1750030073`, `"timestamp":"yesterday"`), ErrKindFieldType, []string{"field_type", "data.timestamp", "yesterday"}},
		{"nested time not numeric", rep(`"expiration_timestamp":1750116480`, `"expiration_timestamp":[1]`), ErrKindFieldType, []string{"field_type", "data.conversation.expiration_timestamp"}},
		{"timestamp fraction", rep(`"timestamp":1750030073`, `"timestamp":1750030073.5`), ErrKindFieldType, []string{"field_type", "data.timestamp"}},
		{"missing wamid", rep(`"wamid":"wamid.X",`, ``), ErrKindInvalid, []string{"invalid", "data.wamid: missing"}},
		{"missing timestamp", rep(`"timestamp":1750030073,`, ``), ErrKindInvalid, []string{"invalid", "data.timestamp"}},
		{"missing user", rep(`"recipient_id":"16505551234",`, ``), ErrKindInvalid, []string{"invalid", "data.recipient_id"}},
		{"bad status", rep(`"status":"delivered"`, `"status":"seen"`), ErrKindInvalid, []string{"invalid", "data.status", `"seen"`}},
		{"two missing", rep(`"phone_number_id":"106540352242922","recipient_id":"16505551234","wamid":"wamid.X",`, `"recipient_id":"16505551234",`), ErrKindInvalid, []string{"data.phone_number_id: missing", "data.wamid: missing"}},
		{"tick without time", `{"v":1,"id":"x","type":"clock.tick.v1","data":{"partition":1}}`, ErrKindInvalid, []string{"time:"}},
		{"outbound bad kind", `{"v":1,"id":"x","type":"message.outbound.v1","data":{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"kind":"sms"}}`, ErrKindInvalid, []string{"data.kind", `"sms"`}},
		{"outbound template without category", `{"v":1,"id":"x","type":"message.outbound.v1","data":{"phone_number_id":"1","wa_id":"2","wamid":"w","timestamp":5,"kind":"template"}}`, ErrKindInvalid, []string{"data.template_category"}},
		{"inbound missing user", `{"v":1,"id":"x","type":"message.inbound.v1","data":{"phone_number_id":"1","wamid":"w","timestamp":5}}`, ErrKindInvalid, []string{"data.wa_id"}},
		{"config missing currency", `{"v":1,"id":"x","type":"account.config.v1","data":{"phone_number_id":"1","waba_id":"2","time_zone":"UTC"}}`, ErrKindInvalid, []string{"data.currency: missing"}},
		{"limit missing tier", `{"v":1,"id":"x","type":"account.limit.v1","data":{"scope":"portfolio","id":"2"}}`, ErrKindInvalid, []string{"data.tier: missing"}},
		{"volume tier missing month", `{"v":1,"id":"x","type":"account.volume_tier.v1","data":{"waba_id":"1","tier":"0:1"}}`, ErrKindInvalid, []string{"data.effective_month: missing"}},
		{"template category missing", `{"v":1,"id":"x","type":"template.category.v1","data":{"template_id":"1"}}`, ErrKindInvalid, []string{"data.new_category: missing"}},
		{"huge unknown type", `{"v":1,"id":"` + strings.Repeat("i", 5000) + `","type":"` + strings.Repeat("é", 5000) + `","data":{}}`, ErrKindUnknownType, []string{"unknown_type", "éé…"}},
		{"unterminated string", `{"v":1,"id":"x`, ErrKindMalformed, []string{"malformed"}},
		{"bad escape", `{"v":1,"id":"\q","type":"clock.tick.v1","time":1,"data":{}}`, ErrKindMalformed, []string{"malformed"}},
		{"control char in string", "{\"v\":1,\"id\":\"a\x01\",\"type\":\"clock.tick.v1\",\"time\":1,\"data\":{}}", ErrKindMalformed, []string{"malformed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := Decode([]byte(c.in))
			if err == nil {
				t.Fatalf("decoded %#v, want a %s error", e, c.kind)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			if de.Kind != c.kind || KindOf(err) != c.kind {
				t.Fatalf("kind %q, want %q: %v", de.Kind, c.kind, err)
			}
			if !errors.Is(err, c.kind.sentinel()) {
				t.Fatalf("errors.Is(%v, sentinel of %s) is false", err, c.kind)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not contain %q", err, w)
				}
			}
			if !utf8.ValidString(err.Error()) {
				t.Errorf("message is not valid UTF-8: %q", err)
			}
			if len(err.Error()) > 600 {
				t.Errorf("message is %d bytes long; errors must stay readable", len(err.Error()))
			}
			if e != (Event{}) {
				t.Errorf("event %#v returned beside the error", e)
			}
		})
	}
}

func TestDecodeErrorCarriesTypeAndID(t *testing.T) {
	_, err := Decode([]byte(strings.Replace(statusJSON, `"wamid":"wamid.X",`, ``, 1)))
	var de *DecodeError
	if !errors.As(err, &de) || de.Type != TypeStatusUpdate || de.ID != "e1" {
		t.Fatalf("got %#v", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "data.wamid" {
		t.Fatalf("no FieldError for data.wamid in %v", err)
	}
	if !strings.HasPrefix(err.Error(), "decode event message.status.v1 e1: invalid: ") {
		t.Fatalf("message %q", err)
	}
}

func TestKindOf(t *testing.T) {
	if KindOf(errors.New("x")) != "" || KindOf(nil) != "" {
		t.Fatal("KindOf of a plain error is not empty")
	}
	wrapped := errors.Join(errors.New("ctx"), &DecodeError{Kind: ErrKindVersion, Err: errors.New("v9")})
	if KindOf(wrapped) != ErrKindVersion || !errors.Is(wrapped, ErrVersion) {
		t.Fatalf("KindOf(wrapped) = %q", KindOf(wrapped))
	}
}

func TestNewDerivesIdentity(t *testing.T) {
	st := &StatusUpdate{PhoneNumberID: "1", RecipientUserID: "US.9", WAMID: "w", Status: StatusRead, Timestamp: 7}
	e := New(st)
	if e.Type != TypeStatusUpdate || e.Key != "1/US.9" || e.Time != 7 || e.Cause != nil {
		t.Fatalf("New gave %#v", e)
	}
	if e.ID != New(st).ID || len(e.ID) != 32 {
		t.Fatalf("id %q is not a stable 32-hex id", e.ID)
	}
	other := *st
	other.Status = StatusDelivered
	if New(&other).ID == e.ID {
		t.Fatal("a different status has the same id")
	}
	if InputID("a", "bc") == InputID("ab", "c") {
		t.Fatal("InputID parts are not separated")
	}
	tk := NewTick(4, 100)
	if tk.Key != "" || tk.Time != 100 || tk.Data.(*Tick).Partition != 4 || tk.ID != NewTick(4, 100).ID || tk.ID == NewTick(5, 100).ID {
		t.Fatalf("NewTick gave %#v", tk)
	}
	if DerivedID("abc", 3) != "abc/3" {
		t.Fatal(DerivedID("abc", 3))
	}
}

func TestCauseAfter(t *testing.T) {
	a := Cause{Offset: 5, Index: 1}
	for _, c := range []struct {
		o    Cause
		want bool
	}{{Cause{Offset: 4, Index: 9}, true}, {Cause{Offset: 5, Index: 0}, true}, {a, false}, {Cause{Offset: 5, Index: 2}, false}, {Cause{Offset: 6}, false}} {
		if got := a.After(c.o); got != c.want {
			t.Errorf("%v.After(%v) = %v", a, c.o, got)
		}
	}
}

func TestEscapedEnvelopeKeys(t *testing.T) {
	s := strings.Replace(statusJSON, `{"v":1,"id":"e1"`, `{"\u0076":1,"i\u0064":"e1"`, 1)
	if s == statusJSON {
		t.Fatal("no replacement")
	}
	if got, want := mustDecode(t, s), mustDecode(t, statusJSON); !reflect.DeepEqual(got, want) {
		t.Fatalf("escaped keys decode differently: %#v", got)
	}
}

func TestDeepNesting(t *testing.T) {
	wrap := func(n int) []byte {
		return []byte(`{"v":1,"id":"x","type":"clock.tick.v1","time":1,"data":{"partition":1,"deep":` +
			strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`)
	}
	e, err := Decode(wrap(9990))
	if err != nil || e.Data.(*Tick).Partition != 1 {
		t.Fatalf("9990 levels in an unknown field: %v", err)
	}
	if _, err := Decode(wrap(20000)); KindOf(err) != ErrKindMalformed || !strings.Contains(err.Error(), "nested too deeply") {
		t.Fatalf("20000 levels: %v", err)
	}
	deepEnvelope := []byte(`{"x":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `}`)
	if _, err := Decode(deepEnvelope); KindOf(err) != ErrKindMalformed {
		t.Fatalf("deep envelope field: %v", err)
	}
}

// TestStringScanEveryPosition puts each interesting byte at every offset of a string, across the
// 8-byte words the scanner skips, and checks the scanner against encoding/json.
func TestStringScanEveryPosition(t *testing.T) {
	specials := []string{`"`, `\\`, `\"`, `\u00e9`, "\x01", "\x1f", " ", "!", "\x7f", "\x80", "\xff", "é", `\x`, "\x00", "[", "#"}
	for _, sp := range specials {
		for pos := 0; pos < 24; pos++ {
			lit := `"` + strings.Repeat("a", pos) + sp + strings.Repeat("b", 17) + `"`
			sc := scanner{b: []byte(lit)}
			_, end, _, err := sc.stringSpan()
			if sp == `"` { // the string ends there
				if err != nil || end != 1+pos {
					t.Fatalf("%q: end %d, err %v; want end %d", lit, end, err, 1+pos)
				}
				continue
			}
			var want string
			stdErr := json.Unmarshal([]byte(lit), &want)
			if (err == nil) != (stdErr == nil) {
				t.Fatalf("%q: scanner error %v, encoding/json error %v", lit, err, stdErr)
			}
			if err == nil && (end != len(lit)-1 || sc.i != len(lit)) {
				t.Fatalf("%q: string ends at %d (next %d), want %d", lit, end, sc.i, len(lit)-1)
			}
		}
	}
	// Two bytes that are not plain next to each other in one word: the scanner jumps to the
	// lowest one, which the word tests flag exactly even when the one above borrows from it.
	pairs := []string{"\x00", "\x1f", `"`, `\\`, "\x80", "\xff", " ", "é"}
	for _, a := range pairs {
		for _, c := range pairs {
			for pos := 0; pos < 17; pos++ {
				lit := `"` + strings.Repeat("a", pos) + a + c + strings.Repeat("b", 9) + `"`
				sc := scanner{b: []byte(lit)}
				_, end, _, err := sc.stringSpan()
				if a == `"` {
					if err != nil || end != 1+pos {
						t.Fatalf("%q: end %d, err %v; want end %d", lit, end, err, 1+pos)
					}
					continue
				}
				var want string
				stdErr := json.Unmarshal([]byte(lit), &want)
				if c == `"` {
					stdErr = json.Unmarshal([]byte(lit[:2+pos+len(a)]), &want)
					if (err == nil) != (stdErr == nil) || (err == nil && end != 1+pos+len(a)) {
						t.Fatalf("%q: end %d, scanner error %v, encoding/json error %v", lit, end, err, stdErr)
					}
					continue
				}
				if (err == nil) != (stdErr == nil) {
					t.Fatalf("%q: scanner error %v, encoding/json error %v", lit, err, stdErr)
				}
			}
		}
	}
}

func TestCauseMatchesEncodingJSON(t *testing.T) {
	for _, c := range []string{
		`null`, `{}`, `{"partition":1,"offset":2,"index":3}`, `{"PARTITION":1,"Offset":2,"iNdex":3}`,
		`{"offset":9223372036854775807}`, `{"offset":-1}`, `{"partition":2147483648}`, `{"index":-2147483649}`,
		`{"offset":1.0}`, `{"offset":1e3}`, `{"offset":"1"}`, `{"offset":null,"partition":null}`, `{"offset":true}`,
		`{"extra":{"offset":5},"offset":6}`, `{"offset":1,"offset":2}`, `{"\u006ffset":7}`, `[1]`, `"x"`, `5`,
	} {
		rec := `{"v":1,"id":"x","type":"clock.tick.v1","time":1,"cause":` + c + `,"data":{"partition":0}}`
		e, err := Decode([]byte(rec))
		var want *Cause
		stdErr := json.Unmarshal([]byte(c), &want)
		if (err == nil) != (stdErr == nil) {
			t.Errorf("cause %s: Decode error %v, encoding/json error %v", c, err, stdErr)
			continue
		}
		if err != nil {
			if KindOf(err) != ErrKindFieldType || !strings.Contains(err.Error(), "cause") {
				t.Errorf("cause %s: %v, want a field_type error naming cause", c, err)
			}
			continue
		}
		if !reflect.DeepEqual(e.Cause, want) {
			t.Errorf("cause %s: got %+v, want %+v", c, e.Cause, want)
		}
	}
}

// TestDecodedEventDoesNotAliasInput: Kafka clients reuse record buffers, so a decoded event must
// own its memory.
func TestDecodedEventDoesNotAliasInput(t *testing.T) {
	for _, want := range fullEvents() {
		b, _ := Marshal(want)
		e, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = 'X'
		}
		if !reflect.DeepEqual(e, want) {
			t.Fatalf("%s changed when its input buffer was overwritten", want.Type)
		}
	}
}

// TestInputIDValues pins InputID to its definition (the first 16 bytes of SHA-256 over the
// NUL-separated parts, in hex) on both sides of the stack buffer's size.
func TestInputIDValues(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, parts := range [][]string{
		{"a", "bc"}, {""}, {"", ""}, {"conversation", "pnid/user", "1750000000", "marketing", "wamid.1"},
		{long}, {long[:255]}, {long[:256]}, {long[:257]}, {long[:128], long[:127]}, {long[:128], long[:128]},
	} {
		sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
		if got, want := InputID(parts...), hex.EncodeToString(sum[:16]); got != want {
			t.Errorf("InputID(%d parts, %d bytes) = %s, want %s", len(parts), len(strings.Join(parts, "\x00")), got, want)
		}
	}
}
