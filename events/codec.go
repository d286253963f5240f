package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
// order, so equal events encode to equal bytes.
func Encode(dst []byte, e Event) ([]byte, error) {
	if e.Data == nil {
		return dst, &DecodeError{Kind: ErrKindInvalid, Type: e.Type, ID: e.ID, Err: errors.New("no data")}
	}
	if e.Type == "" {
		e.Type = e.Data.EventType()
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return dst, fmt.Errorf("encode %s %s: %w", e.Type, e.ID, err)
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, EnvelopeVersion, 10)
	dst = append(dst, `,"id":`...)
	dst = strconv.AppendQuote(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = strconv.AppendQuote(dst, string(e.Type))
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
	dst = append(dst, data...)
	dst = append(dst, '}')
	return dst, nil
}

// Marshal is Encode into a new slice.
func Marshal(e Event) ([]byte, error) { return Encode(nil, e) }

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

type wireEnvelope struct {
	V     *int            `json:"v"`
	ID    string          `json:"id"`
	Type  Type            `json:"type"`
	Key   string          `json:"key"`
	Time  UnixTime        `json:"time"`
	Cause *Cause          `json:"cause"`
	Data  json.RawMessage `json:"data"`
}

// Decode parses one envelope. It is strict about the envelope (known version, known type, data
// present) and about field types, tolerant of numeric strings and of unknown fields inside data,
// and it validates the payload. Every failure is a *DecodeError naming the problem.
func Decode(b []byte) (Event, error) {
	if len(b) > MaxEventSize {
		return Event{}, &DecodeError{Kind: ErrKindTooLarge, Err: fmt.Errorf("%d bytes, limit %d", len(b), MaxEventSize)}
	}
	var w wireEnvelope
	if err := json.Unmarshal(b, &w); err != nil {
		return Event{}, classify(err, "", "")
	}
	if w.V == nil {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Type: w.Type, ID: w.ID, Err: &FieldError{Field: "v", Problem: "missing"}}
	}
	if *w.V < 1 || *w.V > EnvelopeVersion {
		return Event{}, &DecodeError{Kind: ErrKindVersion, Type: w.Type, ID: w.ID, Err: fmt.Errorf("version %d, this build reads 1..%d", *w.V, EnvelopeVersion)}
	}
	p, ok := NewPayload(w.Type)
	if !ok {
		return Event{}, &DecodeError{Kind: ErrKindUnknownType, Type: w.Type, ID: w.ID, Err: fmt.Errorf("%q", truncate(string(w.Type), 80))}
	}
	if w.ID == "" {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Type: w.Type, Err: &FieldError{Field: "id", Problem: "missing"}}
	}
	if len(w.Data) == 0 || string(w.Data) == "null" {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Type: w.Type, ID: w.ID, Err: &FieldError{Field: "data", Problem: "missing"}}
	}
	if err := json.Unmarshal(w.Data, p); err != nil {
		return Event{}, classify(err, w.Type, w.ID)
	}
	e := Event{ID: w.ID, Type: w.Type, Key: w.Key, Time: w.Time, Cause: w.Cause, Data: p}
	if err := Validate(e); err != nil {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Type: w.Type, ID: w.ID, Err: err}
	}
	return e, nil
}

func classify(err error, t Type, id string) error {
	var (
		syn *json.SyntaxError
		ute *json.UnmarshalTypeError
		fe  *FieldError
	)
	switch {
	case errors.As(err, &ute):
		return &DecodeError{Kind: ErrKindFieldType, Type: t, ID: id, Err: &FieldError{Field: ute.Field, Problem: "want " + ute.Type.String() + ", got JSON " + ute.Value}}
	case errors.As(err, &fe):
		return &DecodeError{Kind: ErrKindFieldType, Type: t, ID: id, Err: fe}
	case errors.As(err, &syn):
		return &DecodeError{Kind: ErrKindMalformed, Type: t, ID: id, Err: fmt.Errorf("at byte %d: %w", syn.Offset, err)}
	}
	return &DecodeError{Kind: ErrKindMalformed, Type: t, ID: id, Err: err}
}

// Validate checks the fields an event cannot do without.
func Validate(e Event) error {
	req := func(field, v string) error {
		if v == "" {
			return &FieldError{Field: field, Problem: "missing"}
		}
		return nil
	}
	pos := func(field string, v UnixTime) error {
		if v <= 0 {
			return &FieldError{Field: field, Problem: "missing or not positive"}
		}
		return nil
	}
	user := func(wa, uid string) error {
		if wa == "" && uid == "" {
			return &FieldError{Field: "wa_id", Problem: "missing, and no user_id either"}
		}
		return nil
	}
	switch p := e.Data.(type) {
	case *InboundMessage:
		return errors.Join(req("phone_number_id", p.PhoneNumberID), req("wamid", p.WAMID), user(p.WaID, p.UserID), pos("timestamp", p.Timestamp))
	case *OutboundSend:
		var kind error
		switch p.Kind {
		case KindTemplate:
			if !p.TemplateCategory.IsTemplateCategory() {
				kind = &FieldError{Field: "template_category", Problem: fmt.Sprintf("%q is not a template category", p.TemplateCategory)}
			}
		case KindFreeForm:
		default:
			kind = &FieldError{Field: "kind", Problem: fmt.Sprintf("%q, want template or free_form", p.Kind)}
		}
		return errors.Join(req("phone_number_id", p.PhoneNumberID), req("wamid", p.WAMID), user(p.WaID, p.UserID), pos("timestamp", p.Timestamp), kind)
	case *StatusUpdate:
		var st error
		if !p.Status.Valid() {
			st = &FieldError{Field: "status", Problem: fmt.Sprintf("%q is not a status", p.Status)}
		}
		return errors.Join(req("phone_number_id", p.PhoneNumberID), req("wamid", p.WAMID), user(p.RecipientID, p.RecipientUserID), pos("timestamp", p.Timestamp), st)
	case *Tick:
		return pos("time", e.Time)
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
