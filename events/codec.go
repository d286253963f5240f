package events

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	segjson "github.com/segmentio/encoding/json"
)

// ContentType is the media type of the JSON wire format.
const ContentType = "application/json"

// NewPayload returns an empty payload for wire name t, or false when t is unknown.
func NewPayload(t Type) (Payload, bool) {
	switch t {
	case TypeInboundMessage:
		return new(InboundMessage), true
	case TypeOutboundSend:
		return new(OutboundSend), true
	case TypeStatusUpdate:
		return new(StatusUpdate), true
	case TypeTick:
		return new(Tick), true
	case TypeAccountConfig:
		return new(AccountConfig), true
	case TypeLimitUpdate:
		return new(LimitUpdate), true
	case TypeVolumeTier:
		return new(VolumeTier), true
	case TypeTemplateCategory:
		return new(TemplateCategory), true
	case TypeWindowOpened:
		return new(WindowOpened), true
	case TypeWindowExpired:
		return new(WindowExpired), true
	case TypeConversationOpened:
		return new(ConversationOpened), true
	case TypeConversationClosed:
		return new(ConversationClosed), true
	case TypeMessageDispatched:
		return new(MessageDispatched), true
	case TypeMessageDelivered:
		return new(MessageDelivered), true
	case TypeCharge:
		return new(Charge), true
	case TypePolicyViolation:
		return new(PolicyViolation), true
	case TypeCorrection:
		return new(Correction), true
	case TypeEventSetAside:
		return new(EventSetAside), true
	case TypeDeadLetter:
		return new(DeadLetter), true
	}
	return nil, false
}

// Encode appends the JSON envelope of e to dst. The envelope fields are written by hand, in a fixed
// order, and the payload's fields in struct order (map keys sorted), so equal events encode to
// equal bytes. An event without data, or whose Type disagrees with its data, is refused with an
// error matching ErrInvalid, and dst is returned unchanged. Encode does not run Validate: the
// producer decides what it sends, and Decode refuses what it cannot accept.
func Encode(dst []byte, e Event) ([]byte, error) { return encode(dst, e, appendPayload) }

// encode is Encode with the payload written by appendData. Benchmarks pass appendPayloadGeneric
// to compare the hand-written encoders with the generic one.
func encode(dst []byte, e Event, appendData func([]byte, Payload) ([]byte, error)) ([]byte, error) {
	if e.Data == nil {
		return dst, fmt.Errorf("encode event %s %s: %w: %w", e.Type, e.ID, ErrInvalid, &FieldError{Field: "data", Problem: "missing"})
	}
	if dt := e.Data.EventType(); e.Type == "" {
		e.Type = dt
	} else if e.Type != dt {
		return dst, fmt.Errorf("encode event %s %s: %w: %w", e.Type, e.ID, ErrInvalid, &FieldError{Field: "type", Problem: "data is " + string(dt)})
	}
	start := len(dst)
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, EnvelopeVersion, 10)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, string(e.Type))
	dst = append(dst, `,"key":`...)
	dst = appendJSONString(dst, e.Key)
	dst = append(dst, `,"time":`...)
	dst = strconv.AppendInt(dst, int64(e.Time), 10)
	if e.Cause != nil {
		dst = append(dst, `,"cause":{"partition":`...)
		dst = strconv.AppendInt(dst, int64(e.Cause.Partition), 10)
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, e.Cause.Offset, 10)
		dst = append(dst, `,"index":`...)
		dst = strconv.AppendInt(dst, int64(e.Cause.Index), 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"data":`...)
	dst, err := appendData(dst, e.Data)
	if err != nil {
		return dst[:start], fmt.Errorf("encode event %s %s: %w", e.Type, e.ID, err)
	}
	dst = append(dst, '}')
	return dst, nil
}

// Marshal is Encode into a new slice.
func Marshal(e Event) ([]byte, error) { return Encode(nil, e) }

const hexDigits = "0123456789abcdef"

// jsonSafe marks the bytes appendJSONString copies as they are.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// hasByte has the high bit set in each byte of x that equals c (and possibly in bytes above the
// first such byte): the classic has-zero-byte test on x^c.
func hasByte(x uint64, c byte) uint64 {
	y := x ^ (lsb * uint64(c))
	return (y - lsb) &^ y
}

// appendJSONString appends s as a JSON string exactly as encoding/json writes it: HTML-sensitive
// characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD. The payload is written
// by encoding/json, so envelope and payload strings follow the same rules.
func appendJSONString(dst []byte, s string) []byte {
	// Most strings (ids, phone numbers, wamids, enum values) need no escaping: find the first
	// byte that does, 8 bytes at a time, and copy everything before it at once.
	i := 0
	for i+8 <= len(s) {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if ((x-lsb*0x20)&^x|hasByte(x, '"')|hasByte(x, '\\')|hasByte(x, '<')|hasByte(x, '>')|hasByte(x, '&')|x)&msb != 0 {
			break
		}
		i += 8
	}
	for i < len(s) && jsonSafe[s[i]] {
		i++
	}
	dst = append(dst, '"')
	if i == len(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Decode parses one envelope. It is strict about the envelope (JSON syntax of the whole record,
// known version, known type, id and data present, field types) and tolerant where Meta and older
// clients differ: times may be numbers or numeric strings, and unknown fields are ignored, in the
// envelope and inside data. Envelope field names match exactly (encoding/json would also accept
// other cases). It validates the payload (see Validate). Every failure is a *DecodeError naming
// the problem; the returned Event is then zero.
func Decode(b []byte) (Event, error) { return decode(b, true) }

// decode is Decode, with the hand-written payload decoders (decodeFast) when fast is set. Tests
// and benchmarks call it with fast unset to compare the fast path with the generic one.
func decode(b []byte, fast bool) (Event, error) {
	if len(b) > MaxEventSize {
		return Event{}, &DecodeError{Kind: ErrKindTooLarge, Err: fmt.Errorf("%d bytes, limit %d", len(b), MaxEventSize)}
	}
	h := header{fast: fast}
	if err := h.scan(b); err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			de.Type, de.ID = h.typ, h.id // what was read before the problem, if anything
		}
		return Event{}, err
	}
	if !h.hasV {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Type: h.typ, ID: h.id, Err: &FieldError{Field: "v", Problem: "missing"}}
	}
	if h.v < 1 || h.v > EnvelopeVersion {
		return Event{}, &DecodeError{Kind: ErrKindVersion, Type: h.typ, ID: h.id, Err: fmt.Errorf("version %d, this build reads 1..%d", h.v, EnvelopeVersion)}
	}
	if !knownType(h.typ) {
		return Event{}, &DecodeError{Kind: ErrKindUnknownType, Type: h.typ, ID: h.id, Err: fmt.Errorf("%q", truncate(string(h.typ), 80))}
	}
	if h.id == "" {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Type: h.typ, Err: &FieldError{Field: "id", Problem: "missing"}}
	}
	if len(h.data) == 0 || h.data[0] == 'n' {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Type: h.typ, ID: h.id, Err: &FieldError{Field: "data", Problem: "missing"}}
	}
	if h.data[0] != '{' {
		return Event{}, &DecodeError{Kind: ErrKindFieldType, Type: h.typ, ID: h.id, Err: &FieldError{Field: "data", Problem: "want an object, got JSON " + jsonKind(h.data[0])}}
	}
	p := h.payload
	if p == nil && fast {
		p = decodeFast(h.typ, h.data) // data came before type
	}
	if p == nil {
		p, _ = NewPayload(h.typ)
		if err := unmarshalPayload(h.data, p); err != nil {
			return Event{}, classify(err, h.typ, h.id, p, h.data)
		}
	}
	e := Event{ID: h.id, Type: h.typ, Key: h.key, Time: h.time, Cause: h.cause, Data: p}
	if err := Validate(e); err != nil {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Type: h.typ, ID: h.id, Err: err}
	}
	return e, nil
}

// knownType reports whether t is a wire name NewPayload knows.
func knownType(t Type) bool {
	for _, x := range InputTypes {
		if x == t {
			return true
		}
	}
	for _, x := range OutputTypes {
		if x == t {
			return true
		}
	}
	return false
}

// unmarshalPayload decodes the data object into p. The envelope scanner has already checked the
// syntax of data, so it is decoded in one pass by segmentio/encoding/json, which follows
// encoding/json's semantics (case-insensitive field names, unknown fields ignored, the same error
// types) at a fraction of the cost.
func unmarshalPayload(data []byte, p Payload) error {
	rest, err := segjson.Parse(data, p, 0)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%d bytes after the data object", len(rest))
	}
	return err
}

// classify turns a payload decoding error into a DecodeError naming the field.
func classify(err error, t Type, id string, p Payload, data []byte) error {
	var (
		syn *json.SyntaxError
		ute *json.UnmarshalTypeError
		fe  *FieldError
		b64 base64.CorruptInputError
	)
	switch {
	case errors.As(err, &ute):
		return &DecodeError{Kind: ErrKindFieldType, Type: t, ID: id, Err: &FieldError{Field: "data." + jsonPath(ute.Field), Problem: "want " + ute.Type.String() + ", got JSON " + ute.Value}}
	case errors.As(err, &fe): // from UnixTime, which does not know its field
		field := "data"
		if path := badTimePath(reflect.TypeOf(p).Elem(), data); path != "" {
			field += "." + path
		}
		return &DecodeError{Kind: ErrKindFieldType, Type: t, ID: id, Err: &FieldError{Field: field, Problem: fe.Problem}}
	case errors.As(err, &b64):
		return &DecodeError{Kind: ErrKindFieldType, Type: t, ID: id, Err: &FieldError{Field: "data", Problem: "a bytes field is not base64: " + b64.Error()}}
	case errors.As(err, &syn):
		return &DecodeError{Kind: ErrKindMalformed, Type: t, ID: id, Err: fmt.Errorf("data at byte %d: %w", syn.Offset, err)}
	}
	return &DecodeError{Kind: ErrKindMalformed, Type: t, ID: id, Err: err}
}

// jsonPath drops the Go names of embedded structs ("Account.user") from an encoding/json field
// path: every JSON name in this package is lower case.
func jsonPath(p string) string {
	parts := strings.Split(p, ".")
	out := parts[:0]
	for _, s := range parts {
		if s != "" && (s[0] < 'A' || s[0] > 'Z') {
			out = append(out, s)
		}
	}
	return strings.Join(out, ".")
}

// badTimePath finds the first UnixTime field of struct type t whose value in data does not parse,
// and returns its JSON path. It runs only on the error path, so it may be slow.
func badTimePath(t reflect.Type, data []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return ""
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		ft := f.Type
		if f.Anonymous && ft.Kind() == reflect.Struct {
			if p := badTimePath(ft, data); p != "" {
				return p
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		raw, ok := fields[name]
		if name == "" || name == "-" || !ok {
			continue
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft == reflect.TypeOf(UnixTime(0)):
			if _, err := parseUnixTime(raw); err != nil {
				return name
			}
		case ft.Kind() == reflect.Struct && len(raw) > 0 && raw[0] == '{':
			if p := badTimePath(ft, raw); p != "" {
				return name + "." + p
			}
		}
	}
	return ""
}

// Validate checks the fields an event cannot do without. Field names in its errors are paths in
// the envelope: "data.wamid", or "time" for a tick.
func Validate(e Event) error {
	req := func(field, v string) error {
		if v == "" {
			return &FieldError{Field: "data." + field, Problem: "missing"}
		}
		return nil
	}
	pos := func(field string, v UnixTime) error {
		if v <= 0 {
			return &FieldError{Field: "data." + field, Problem: "missing or not positive"}
		}
		return nil
	}
	user := func(wa, waName, uid, uidName string) error {
		if wa == "" && uid == "" {
			return &FieldError{Field: "data." + waName, Problem: "missing, and no " + uidName + " either"}
		}
		return nil
	}
	switch p := e.Data.(type) {
	case *InboundMessage:
		return errors.Join(req("phone_number_id", p.PhoneNumberID), req("wamid", p.WAMID), user(p.WaID, "wa_id", p.UserID, "user_id"), pos("timestamp", p.Timestamp))
	case *OutboundSend:
		var kind error
		switch p.Kind {
		case KindTemplate:
			if !p.TemplateCategory.IsTemplateCategory() {
				kind = &FieldError{Field: "data.template_category", Problem: fmt.Sprintf("%q is not a template category", truncate(string(p.TemplateCategory), 40))}
			}
		case KindFreeForm:
		default:
			kind = &FieldError{Field: "data.kind", Problem: fmt.Sprintf("%q, want template or free_form", truncate(string(p.Kind), 40))}
		}
		return errors.Join(req("phone_number_id", p.PhoneNumberID), req("wamid", p.WAMID), user(p.WaID, "wa_id", p.UserID, "user_id"), pos("timestamp", p.Timestamp), kind)
	case *StatusUpdate:
		var st error
		if !p.Status.Valid() {
			st = &FieldError{Field: "data.status", Problem: fmt.Sprintf("%q is not a status", truncate(string(p.Status), 40))}
		}
		return errors.Join(req("phone_number_id", p.PhoneNumberID), req("wamid", p.WAMID), user(p.RecipientID, "recipient_id", p.RecipientUserID, "recipient_user_id"), pos("timestamp", p.Timestamp), st)
	case *Tick:
		if e.Time <= 0 {
			return &FieldError{Field: "time", Problem: "missing or not positive"}
		}
		return nil
	case *AccountConfig:
		return errors.Join(req("phone_number_id", p.PhoneNumberID), req("waba_id", p.WABAID), req("time_zone", p.TimeZone), req("currency", p.Currency))
	case *LimitUpdate:
		return errors.Join(req("scope", p.Scope), req("id", p.ID), req("tier", p.Tier))
	case *VolumeTier:
		return errors.Join(req("waba_id", p.WABAID), req("tier", p.Tier), req("effective_month", p.EffectiveMonth))
	case *TemplateCategory:
		return errors.Join(req("template_id", p.TemplateID), req("new_category", string(p.NewCategory)))
	}
	return nil
}
