package events

import (
	"bytes"
	"unicode/utf8"
)

// Hand-written payload decoders for the input types every record of the aggregator and of replay
// carries (message.status, message.inbound, message.outbound, clock.tick). They read data with the
// envelope scanner's checking primitives, match field names on the bytes, create each string once,
// share one allocation between a payload and its nested objects, and return the package's
// constants for the small repeated values (status, category, pricing fields, kinds).
//
// They are an accelerator, not a second definition of the format: each one decodes only what it
// is sure encoding/json would decode to the same value, and gives up (returns nil) on anything
// else, for instance an escaped or invalid UTF-8 string, a field name matching only
// case-insensitively, a duplicate field, a fraction where an integer belongs, or a JSON type
// mismatch. Decode then runs the generic decoder (unmarshalPayload) on the same bytes, so every
// error, and every corner of encoding/json's semantics, still comes from one place.
// TestFastDecodersMatchGeneric and FuzzDecode hold the two paths to the same result.

// decodeFast decodes data, one JSON object, into a payload of type t, or returns nil when t has
// no fast decoder or the fast decoder gave up.
func decodeFast(t Type, data []byte) Payload {
	s := scanner{b: data}
	if p := s.fastPayload(t); p != nil && s.i == len(data) {
		s.makeStrings(nil)
		return p
	}
	return nil
}

// fastPayload reads the JSON object at s.i into a payload of type t, checking its syntax as
// skipValue does, or returns nil when t has no fast decoder or the fast decoder gave up; s.i is
// then anywhere.
func (s *scanner) fastPayload(t Type) Payload {
	switch t {
	case TypeStatusUpdate:
		if v := s.status(); v != nil {
			return v
		}
	case TypeInboundMessage:
		if v := s.inbound(); v != nil {
			return v
		}
	case TypeOutboundSend:
		if v := s.outbound(); v != nil {
			return v
		}
	case TypeTick:
		if v := s.tick(); v != nil {
			return v
		}
	default: // the generic decoder's
	}
	return nil
}

// object reads a JSON object at s.i, calling member for each member with the index in names of
// the member's name (-1 for a name not in names), the name's bytes and s at the value; member
// reads the value and reports whether it could. A name repeated gives up (encoding/json would
// merge the second value into the first), as do names with escapes or non-ASCII bytes, as
// encoding/json may match them to a field by Unicode case folding.
//
// The names are matched on the bytes of the record, quotes included, in the order the encoder
// writes them (names' order, the omitted ones skipped): from the name after the previous
// member's on. A record in the encoder's order is so read without scanning its names as strings.
// A name written otherwise (another order, an escape, an unknown field) is scanned as a string
// and looked up in all of names, with the same result.
func (s *scanner) object(names []string, member func(i int, name []byte) bool) bool {
	b := s.b
	if s.i >= len(b) || b[s.i] != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
		return true
	}
	var seen fieldSet
	next := 0
	for {
		s.ws()
		i, start, end, esc, err := s.memberName(names, next)
		if err != nil || esc {
			return false
		}
		name := b[start:end]
		s.ws()
		if s.i >= len(b) || b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if i >= 0 {
			if !seen.first(i) {
				return false
			}
			next = i + 1
		}
		if !member(i, name) {
			return false
		}
		more, err := s.more('}')
		if err != nil {
			return false
		}
		if !more {
			return true
		}
	}
}

// memberName reads the name of an object member at s.i: the index in names of the name (-1 for
// another) and where its bytes are. names are matched on the record's bytes, quotes included, from
// names[from] on (the encoder writes them in order, the omitted ones skipped), so a record in that
// order is read without scanning its names as strings; any other name is scanned as a string and
// looked up in all of names. A name written with escapes is not looked up (esc; i is -1).
func (s *scanner) memberName(names []string, from int) (i, start, end int, esc bool, err error) {
	for k := from; k < len(names); k++ {
		if s.quoted(names[k]) {
			return k, s.i - 1 - len(names[k]), s.i - 1, false, nil
		}
	}
	start, end, esc, err = s.stringSpan()
	if err != nil || esc {
		return -1, start, end, esc, err
	}
	return lookupName(names, s.b[start:end]), start, end, false, nil
}

// lookupName is the index of name in names, or -1.
func lookupName(names []string, name []byte) int {
	for k, n := range names {
		if string(name) == n {
			return k
		}
	}
	return -1
}

// quoted reads the JSON string "name" at s.i and reports whether it is there; otherwise it reads
// nothing. name must need no escaping (no quote, backslash, control or non-ASCII byte), so the
// bytes match exactly when stringSpan would read a string without escapes holding name.
func (s *scanner) quoted(name string) bool {
	j := s.i + 1 + len(name)
	if j >= len(s.b) || s.b[s.i] != '"' || s.b[j] != '"' || string(s.b[s.i+1:j]) != name {
		return false
	}
	s.i = j + 1
	return true
}

// fieldSet records the fields already read, so that a duplicate (where encoding/json merges into
// what the first occurrence decoded) gives up.
type fieldSet uint32

func (f *fieldSet) first(i int) bool {
	bit := fieldSet(1) << i
	if *f&bit != 0 {
		return false
	}
	*f |= bit
	return true
}

// unknown skips the value of a member that is not one of names, nested depth levels deep, and
// gives up when the name matches one of names case-insensitively (encoding/json would use it).
func (s *scanner) unknown(name []byte, names []string, depth int) bool {
	for _, n := range names {
		if len(n) == len(name) && bytes.EqualFold(name, []byte(n)) {
			return false
		}
	}
	return s.skipValue(depth) == nil
}

// isNull consumes a null literal at s.i and reports whether there was one.
func (s *scanner) isNull() bool {
	if s.i+4 <= len(s.b) && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// rawString reads a string value whose bytes need no decoding (no escape, valid UTF-8) and
// returns its contents; ok is false for any other value.
func (s *scanner) rawString() (v []byte, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start, end, esc, err := s.stringSpan()
	if err != nil {
		return nil, false
	}
	v = s.b[start:end]
	if esc && (bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v)) {
		return nil, false
	}
	return v, true
}

// str reads a string field; null leaves it unchanged, as in encoding/json.
func (s *scanner) str(dst *string) bool {
	if s.isNull() {
		return true
	}
	v, ok := s.rawString()
	if ok {
		*dst = string(v)
	}
	return ok
}

// strLater reads a string field as str does, leaving a string without escapes for makeStrings
// to make; dst must not move until then.
func (s *scanner) strLater(dst *string) bool {
	if s.isNull() {
		return true
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	start, end, esc, err := s.stringSpan()
	if err != nil {
		return false
	}
	if esc {
		v := s.b[start:end]
		if bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v) {
			return false
		}
	}
	s.later(dst, start, end)
	return true
}

// enum reads a string field whose common values are in known, returning the constant for them
// so that decoding them allocates nothing; other values are copied as str does.
func enum[T ~string](s *scanner, dst *T, known []T) bool {
	if s.isNull() {
		return true
	}
	v, ok := s.rawString()
	if !ok {
		return false
	}
	for _, k := range known {
		if string(k) == string(v) {
			*dst = k
			return true
		}
	}
	*dst = T(v)
	return true
}

// unixTime reads a UnixTime field: a number, a numeric string, null or "" (see parseUnixTime,
// which UnixTime.UnmarshalJSON also uses).
func (s *scanner) unixTime(dst *UnixTime) bool {
	if s.i >= len(s.b) {
		return false
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		if _, ok := s.rawString(); !ok {
			return false
		}
	case c == 'n':
		if !s.isNull() {
			return false
		}
	case c == '-' || c >= '0' && c <= '9':
		if s.number() != nil {
			return false
		}
	default:
		return false
	}
	t, err := parseUnixTime(s.b[start:s.i])
	if err != nil {
		return false
	}
	*dst = t
	return true
}

// integer reads a JSON number that is a plain integer of at most 18 digits (which cannot
// overflow an int64); null and anything else give up.
func (s *scanner) integer() (int64, bool) {
	b := s.b
	start := s.i
	if s.i < len(b) && b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(b) && b[s.i] >= '0' && b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 18 || n > 1 && b[digits] == '0' {
		return 0, false
	}
	if s.i < len(b) && (b[s.i] == '.' || b[s.i] == 'e' || b[s.i] == 'E') {
		return 0, false
	}
	var v int64
	for _, c := range b[digits:s.i] {
		v = v*10 + int64(c-'0')
	}
	if digits > start {
		v = -v
	}
	return v, true
}

// boolean reads true or false.
func (s *scanner) boolean(dst *bool) bool {
	switch {
	case s.i+4 <= len(s.b) && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		*dst = true
	case s.i+5 <= len(s.b) && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		*dst = false
	default:
		return false
	}
	return true
}

// The common values of the enumerated string fields.
var (
	knownStatuses      = []Status{StatusDelivered, StatusRead, StatusSent, StatusFailed, StatusPlayed, StatusDeleted, StatusWarning}
	knownCategories    = []Category{CategoryMarketing, CategoryUtility, CategoryService, CategoryAuthentication, CategoryAuthenticationInternational, CategoryMarketingLite, CategoryReferralConversion, CategoryBusinessInitiated, CategoryUserInitiated}
	knownMetaModels    = []string{"PMP", "CBP"}
	knownPricingTypes  = []string{string(PricingRegular), string(PricingFreeCustomerService), string(PricingFreeEntryPoint)}
	knownKinds         = []MessageKind{KindTemplate, KindFreeForm, KindUnknown}
	knownMessageTypes  = []string{"text", "template", "image", "interactive", "button", "reaction", "audio", "video", "document", "sticker", "location", "contacts", "order", "system", "unsupported", "call"}
	knownRecipientType = []string{"individual", "group"}
)

var statusFields = []string{"phone_number_id", "waba_id", "recipient_id", "recipient_user_id", "recipient_type", "recipient_participant_id", "wamid", "status", "timestamp", "pricing", "conversation", "errors"}

// statusAlloc holds a status and its pricing in one allocation (240 bytes). The conversation
// (gone with per-message pricing) and the errors (of failed messages only) are allocated when
// present: holding them too would make every status a 320-byte allocation.
type statusAlloc struct {
	u        StatusUpdate
	pricing  MetaPricing
	billable bool
}

func (s *scanner) status() *StatusUpdate {
	a := new(statusAlloc)
	p := &a.u
	ok := s.object(statusFields, func(i int, name []byte) bool {
		switch i {
		case -1:
			return s.unknown(name, statusFields, 1)
		case 0:
			return s.strLater(&p.PhoneNumberID)
		case 1:
			return s.strLater(&p.WABAID)
		case 2:
			return s.strLater(&p.RecipientID)
		case 3:
			return s.strLater(&p.RecipientUserID)
		case 4:
			return enum(s, &p.RecipientType, knownRecipientType)
		case 5:
			return s.strLater(&p.RecipientParticipantID)
		case 6:
			return s.strLater(&p.WAMID)
		case 7:
			return enum(s, &p.Status, knownStatuses)
		case 8:
			return s.unixTime(&p.Timestamp)
		case 9:
			if s.isNull() {
				p.Pricing = nil
				return true
			}
			p.Pricing = &a.pricing
			return s.pricing(&a.pricing, &a.billable)
		case 10:
			if s.isNull() {
				p.Conversation = nil
				return true
			}
			p.Conversation = new(MetaConversation)
			return s.conversation(p.Conversation)
		default:
			return s.statusErrors(&p.Errors, nil)
		}
	})
	if !ok {
		return nil
	}
	return p
}

var pricingFields = []string{"billable", "pricing_model", "type", "category"}

func (s *scanner) pricing(p *MetaPricing, billable *bool) bool {
	return s.object(pricingFields, func(i int, name []byte) bool {
		switch i {
		case -1:
			return s.unknown(name, pricingFields, 2)
		case 0:
			if s.isNull() {
				p.Billable = nil
				return true
			}
			p.Billable = billable
			return s.boolean(billable)
		case 1:
			return enum(s, &p.PricingModel, knownMetaModels)
		case 2:
			return enum(s, &p.Type, knownPricingTypes)
		default:
			return enum(s, &p.Category, knownCategories)
		}
	})
}

var conversationFields = []string{"id", "expiration_timestamp", "origin_type"}

func (s *scanner) conversation(c *MetaConversation) bool {
	return s.object(conversationFields, func(i int, name []byte) bool {
		switch i {
		case -1:
			return s.unknown(name, conversationFields, 2)
		case 0:
			return s.strLater(&c.ID)
		case 1:
			return s.unixTime(&c.ExpirationTimestamp)
		default:
			return enum(s, &c.OriginType, knownCategories)
		}
	})
}

var statusErrorFields = []string{"code", "title"}

// statusErrors reads the errors array into buf's backing array while it has room (and appends
// beyond). Each element must be an object; [] gives an empty, non-nil slice and null a nil one,
// as in encoding/json.
func (s *scanner) statusErrors(dst *[]StatusError, buf []StatusError) bool {
	return scanArray(s, dst, buf, func() (StatusError, bool) {
		var e StatusError
		ok := s.object(statusErrorFields, func(i int, name []byte) bool {
			switch i {
			case -1:
				return s.unknown(name, statusErrorFields, 3)
			case 1:
				return s.str(&e.Title)
			}
			if s.isNull() {
				return true
			}
			v, ok := s.integer()
			e.Code = int(v)
			return ok
		})
		return e, ok
	})
}

// scanArray reads a JSON array with elem into buf's backing array while it has room; [] gives an
// empty, non-nil slice and null a nil one, as in encoding/json. An element elem refuses gives up.
func scanArray[T any](s *scanner, dst *[]T, buf []T, elem func() (T, bool)) bool {
	if s.isNull() {
		*dst = nil
		return true
	}
	b := s.b
	if s.i >= len(b) || b[s.i] != '[' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(b) && b[s.i] == ']' {
		s.i++
		*dst = []T{}
		return true
	}
	for {
		s.ws()
		v, ok := elem()
		if !ok {
			return false
		}
		buf = append(buf, v)
		more, err := s.more(']')
		if err != nil {
			return false
		}
		if !more {
			*dst = buf
			return true
		}
	}
}

var inboundFields = []string{"phone_number_id", "display_phone_number", "waba_id", "wa_id", "user_id", "wamid", "message_type", "timestamp", "context_id", "referral", "error_codes", "system_type", "new_wa_id"}

// inboundAlloc holds an inbound message and its nested objects in one allocation.
type inboundAlloc struct {
	m        InboundMessage
	referral Referral
	codes    [2]int
}

func (s *scanner) inbound() *InboundMessage {
	a := new(inboundAlloc)
	p := &a.m
	ok := s.object(inboundFields, func(i int, name []byte) bool {
		switch i {
		case -1:
			return s.unknown(name, inboundFields, 1)
		case 0:
			return s.strLater(&p.PhoneNumberID)
		case 1:
			return s.strLater(&p.DisplayPhoneNumber)
		case 2:
			return s.strLater(&p.WABAID)
		case 3:
			return s.strLater(&p.WaID)
		case 4:
			return s.strLater(&p.UserID)
		case 5:
			return s.strLater(&p.WAMID)
		case 6:
			return enum(s, &p.MessageType, knownMessageTypes)
		case 7:
			return s.unixTime(&p.Timestamp)
		case 8:
			return s.strLater(&p.ContextID)
		case 9:
			if s.isNull() {
				p.Referral = nil
				return true
			}
			p.Referral = &a.referral
			return s.referral(&a.referral)
		case 10:
			return s.ints(&p.ErrorCodes, a.codes[:0])
		case 11:
			return s.strLater(&p.SystemType)
		default:
			return s.strLater(&p.NewWaID)
		}
	})
	if !ok {
		return nil
	}
	return p
}

var referralFields = []string{"source_type", "source_id", "source_url", "ctwa_clid"}

func (s *scanner) referral(r *Referral) bool {
	return s.object(referralFields, func(i int, name []byte) bool {
		switch i {
		case -1:
			return s.unknown(name, referralFields, 2)
		case 0:
			return s.strLater(&r.SourceType)
		case 1:
			return s.strLater(&r.SourceID)
		case 2:
			return s.strLater(&r.SourceURL)
		default:
			return s.strLater(&r.CtwaClid)
		}
	})
}

// ints reads an array of integers into buf's backing array while it has room; [] gives an empty,
// non-nil slice and null a nil one. A null element gives up.
func (s *scanner) ints(dst *[]int, buf []int) bool {
	return scanArray(s, dst, buf, func() (int, bool) {
		v, ok := s.integer()
		return int(v), ok
	})
}

var outboundFields = []string{"phone_number_id", "waba_id", "wa_id", "user_id", "wamid", "timestamp", "kind", "message_type", "template_name", "template_id", "template_category"}

func (s *scanner) outbound() *OutboundSend {
	p := new(OutboundSend)
	ok := s.object(outboundFields, func(i int, name []byte) bool {
		switch i {
		case -1:
			return s.unknown(name, outboundFields, 1)
		case 0:
			return s.strLater(&p.PhoneNumberID)
		case 1:
			return s.strLater(&p.WABAID)
		case 2:
			return s.strLater(&p.WaID)
		case 3:
			return s.strLater(&p.UserID)
		case 4:
			return s.strLater(&p.WAMID)
		case 5:
			return s.unixTime(&p.Timestamp)
		case 6:
			return enum(s, &p.Kind, knownKinds)
		case 7:
			return enum(s, &p.MessageType, knownMessageTypes)
		case 8:
			return s.strLater(&p.TemplateName)
		case 9:
			return s.strLater(&p.TemplateID)
		default:
			return enum(s, &p.TemplateCategory, knownCategories)
		}
	})
	if !ok {
		return nil
	}
	return p
}

var tickFields = []string{"partition"}

func (s *scanner) tick() *Tick {
	p := new(Tick)
	ok := s.object(tickFields, func(i int, name []byte) bool {
		if i < 0 {
			return s.unknown(name, tickFields, 1)
		}
		if s.isNull() {
			return true
		}
		v, ok := s.integer()
		if !ok || v < -1<<31 || v > 1<<31-1 {
			return false
		}
		p.Partition = int32(v)
		return true
	})
	if !ok {
		return nil
	}
	return p
}
