package ingest

import (
	"errors"
	"fmt"
	json "github.com/segmentio/encoding/json"
	"strconv"

	"github.com/convmeter/convmeter/events"
)

// Webhook fields this package turns into events. Every other field is counted and skipped.
const (
	FieldMessages         = "messages"
	FieldQualityUpdate    = "phone_number_quality_update"
	FieldCapabilityUpdate = "business_capability_update"
	FieldAccountUpdate    = "account_update"
	FieldTemplateCategory = "template_category_update"
)

// ObjectWABA is the only webhook object Meta sends for WhatsApp Business Accounts.
const ObjectWABA = "whatsapp_business_account"

// ScopeWABA is the LimitUpdate scope of limits announced by account webhooks: they name the WABA
// (entry.id), not the phone_number_id or the portfolio, which account configuration resolves.
const ScopeWABA = "waba"

// Result is what one webhook request normalises to.
type Result struct {
	// Events are the input events, in the order of the request.
	Events []events.Event
	// Rejected are the elements that could not become events; they go to the dead-letter topic.
	Rejected []Rejected
	// Skipped counts what was deliberately not turned into events, by reason ("field:<name>",
	// "account_update:<event>", "value_errors", ...).
	Skipped map[string]int
}

// Rejected is one element of a well-formed webhook that could not become an event.
type Rejected struct {
	Path     string           // where in the request: "entry[0].changes[1].value.statuses[3]"
	Field    string           // the change's field
	WABAID   string           // entry.id
	Kind     events.ErrorKind // why, as a kind
	Reason   string           // why, in words
	Original json.RawMessage  // the element's bytes as received
}

// RequestError says the request body as a whole is not a webhook: it is answered with 400.
type RequestError struct {
	Reason string
	Err    error
}

func (e *RequestError) Error() string {
	if e.Err == nil {
		return "webhook body: " + e.Reason
	}
	return "webhook body: " + e.Reason + ": " + e.Err.Error()
}

func (e *RequestError) Unwrap() error { return e.Err }

// Normalize turns a webhook body into input events. It is pure: no clock, no I/O. A body that is
// not a JSON webhook envelope is a *RequestError; anything wrong below the envelope rejects only
// the smallest element it concerns.
func Normalize(body []byte) (Result, error) {
	n := normalizer{res: Result{Skipped: map[string]int{}}}
	// Fast path: envelope, entries and changes decoded in one pass. If any entry or change has the
	// wrong shape, each entry is decoded on its own so that only the bad one is rejected.
	// The fast paths' slices are made for one element: the JSON decoder makes an empty slice
	// room for 10 at first, through reflection. On webhooks of one status (most of them), that
	// growing was a third of Normalize's time; making these slices for one cut it by 15%.
	// More elements grow the slice as usual.
	f := fastWebhook{Entry: make([]fastEntry, 0, 1)}
	if err := json.Unmarshal(body, &f); err == nil {
		if f.Object != "" && f.Object != ObjectWABA {
			n.res.Skipped["object:"+truncate(f.Object, 40)]++
			return n.res, nil
		}
		for i := range f.Entry {
			e := &f.Entry[i]
			for j, c := range e.Changes {
				n.change(fmt.Sprintf("entry[%d].changes[%d]", i, j), &e.wireEntry, c, nil)
			}
		}
		return n.res, nil
	}
	var w wireWebhook
	if err := json.Unmarshal(body, &w); err != nil {
		return Result{}, &RequestError{Reason: "not a JSON webhook envelope", Err: err}
	}
	if w.Object != "" && w.Object != ObjectWABA {
		n.res.Skipped["object:"+truncate(w.Object, 40)]++
		return n.res, nil
	}
	for i, raw := range w.Entry {
		n.entry(fmt.Sprintf("entry[%d]", i), raw)
	}
	return n.res, nil
}

type fastWebhook struct {
	Object string      `json:"object"`
	Entry  []fastEntry `json:"entry"`
}

type fastEntry struct {
	wireEntry
	Changes []wireChange `json:"changes"`
}

type normalizer struct {
	res Result
}

func (n *normalizer) reject(path, field, waba string, raw json.RawMessage, err error) {
	kind := events.KindOf(err)
	if kind == "" {
		var ute *json.UnmarshalTypeError
		var syn *json.SyntaxError
		var fe *events.FieldError
		switch {
		case errors.As(err, &ute), errors.As(err, &fe):
			kind = events.ErrKindFieldType
		case errors.As(err, &syn):
			kind = events.ErrKindMalformed
		default:
			kind = events.ErrKindInvalid
		}
	}
	n.res.Rejected = append(n.res.Rejected, Rejected{
		Path: path, Field: field, WABAID: waba, Kind: kind, Reason: err.Error(), Original: raw,
	})
}

func (n *normalizer) emit(path, field, waba string, raw json.RawMessage, p events.Payload) {
	e := events.New(p)
	if err := events.Validate(e); err != nil {
		n.reject(path, field, waba, raw, &events.DecodeError{Kind: events.ErrKindInvalid, Type: e.Type, Err: err})
		return
	}
	n.res.Events = append(n.res.Events, e)
}

func (n *normalizer) entry(path string, raw json.RawMessage) {
	var e wireEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		n.reject(path, "", "", raw, err)
		return
	}
	for i, craw := range e.Changes {
		cpath := fmt.Sprintf("%s.changes[%d]", path, i)
		var c wireChange
		if err := json.Unmarshal(craw, &c); err != nil {
			n.reject(cpath, "", string(e.ID), craw, err)
			continue
		}
		n.change(cpath, &e, c, craw)
	}
}

func (n *normalizer) change(path string, e *wireEntry, c wireChange, raw json.RawMessage) {
	waba := string(e.ID)
	orig := func() json.RawMessage {
		if raw == nil {
			// The fast path kept no bytes of the change itself: its field and its value (as
			// received) are all of it.
			raw = changeBytes(c)
		}
		return raw
	}
	switch c.Field {
	case FieldMessages:
		n.messages(path+".value", waba, c.Value)
	case FieldQualityUpdate:
		var v wireQualityUpdate
		if err := json.Unmarshal(c.Value, &v); err != nil {
			n.reject(path, c.Field, waba, orig(), err)
			return
		}
		tier, ok, err := tierOf(v.PerBusiness)
		if !ok && err == nil {
			tier, ok, err = tierOf(v.CurrentLimit)
		}
		n.limit(path, c.Field, e, orig, v.Event, tier, ok, err)
	case FieldCapabilityUpdate:
		var v wireCapabilityUpdate
		if err := json.Unmarshal(c.Value, &v); err != nil {
			n.reject(path, c.Field, waba, orig(), err)
			return
		}
		tier, ok, err := tierOf(v.PerBusiness)
		event := "max_daily_conversations_per_business"
		if !ok && err == nil {
			tier, ok, err = tierOf(v.PerPhone)
			event = "max_daily_conversation_per_phone"
		}
		n.limit(path, c.Field, e, orig, event, tier, ok, err)
	case FieldAccountUpdate:
		var v wireAccountUpdate
		if err := json.Unmarshal(c.Value, &v); err != nil {
			n.reject(path, c.Field, waba, orig(), err)
			return
		}
		if v.Event != "VOLUME_BASED_PRICING_TIER_UPDATE" {
			n.res.Skipped["account_update:"+truncate(v.Event, 60)]++
			return
		}
		if v.VolumeTierInfo == nil {
			n.reject(path, c.Field, waba, orig(), &events.FieldError{Field: "volume_tier_info", Problem: "missing"})
			return
		}
		vt := v.VolumeTierInfo
		t := vt.TierUpdateTime
		if t == 0 {
			t = e.Time
		}
		n.emit(path, c.Field, waba, orig(), &events.VolumeTier{
			WABAID: waba, TierUpdateTime: t, PricingCategory: events.NormalizeCategory(vt.PricingCategory),
			Tier: vt.Tier, EffectiveMonth: vt.EffectiveMonth, Region: vt.Region,
		})
	case FieldTemplateCategory:
		var v wireTemplateCategory
		if err := json.Unmarshal(c.Value, &v); err != nil {
			n.reject(path, c.Field, waba, orig(), err)
			return
		}
		if e.Time <= 0 {
			n.reject(path, c.Field, waba, orig(), &events.FieldError{Field: "entry.time", Problem: "missing: the category change has no time"})
			return
		}
		n.emit(path, c.Field, waba, orig(), &events.TemplateCategory{
			WABAID: waba, TemplateID: string(v.TemplateID), TemplateName: v.TemplateName,
			PreviousCategory: events.NormalizeCategory(v.PreviousCategory),
			NewCategory:      events.NormalizeCategory(v.NewCategory), EffectiveFrom: e.Time,
		})
	default:
		n.res.Skipped["field:"+truncate(c.Field, 60)]++
	}
}

// limit emits the LimitUpdate of an account webhook, or rejects or skips it.
func (n *normalizer) limit(path, field string, e *wireEntry, orig func() json.RawMessage, event, tier string, ok bool, err error) {
	waba := string(e.ID)
	switch {
	case err != nil:
		n.reject(path, field, waba, orig(), err)
	case !ok:
		n.res.Skipped[field+":no_limit"]++
	case e.Time <= 0:
		n.reject(path, field, waba, orig(), &events.FieldError{Field: "entry.time", Problem: "missing: the limit change has no time"})
	default:
		n.emit(path, field, waba, orig(), &events.LimitUpdate{
			Scope: ScopeWABA, ID: waba, WABAID: waba, Tier: tier, Event: event, EffectiveFrom: e.Time,
		})
	}
}

// fastMessagesValue decodes a whole "messages" value in one pass: the common case, where every
// element is well-formed.
type fastMessagesValue struct {
	Metadata struct {
		DisplayPhoneNumber flexString `json:"display_phone_number"`
		PhoneNumberID      flexString `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []wireContact     `json:"contacts"`
	Messages []wireInbound     `json:"messages"`
	Statuses []wireStatus      `json:"statuses"`
	Errors   []json.RawMessage `json:"errors"`
}

func (n *normalizer) messages(path, waba string, raw json.RawMessage) {
	// Fast path: one decode of the whole value. Only if an element does not decode or does not
	// validate is the value decoded again element by element, so that exactly the bad elements
	// are rejected, with their own bytes.
	f := fastMessagesValue{Contacts: make([]wireContact, 0, 1), Messages: make([]wireInbound, 0, 1), Statuses: make([]wireStatus, 0, 1)}
	if err := json.Unmarshal(raw, &f); err == nil {
		pn, display := string(f.Metadata.PhoneNumberID), string(f.Metadata.DisplayPhoneNumber)
		evs := make([]events.Event, 0, len(f.Messages)+len(f.Statuses))
		ok := true
		for i := range f.Messages {
			e := events.New(inbound(pn, display, waba, &f.Messages[i], f.Contacts))
			if events.Validate(e) != nil {
				ok = false
				break
			}
			evs = append(evs, e)
		}
		for i := 0; ok && i < len(f.Statuses); i++ {
			e := events.New(status(pn, waba, &f.Statuses[i]))
			if events.Validate(e) != nil {
				ok = false
				break
			}
			evs = append(evs, e)
		}
		if ok {
			n.res.Events = append(n.res.Events, evs...)
			if len(f.Errors) > 0 && len(f.Messages) == 0 && len(f.Statuses) == 0 {
				n.res.Skipped["value_errors"]++
			}
			return
		}
	}
	n.messagesSlow(path, waba, raw)
}

func (n *normalizer) messagesSlow(path, waba string, raw json.RawMessage) {
	var v wireMessagesValue
	if err := json.Unmarshal(raw, &v); err != nil {
		n.reject(path, FieldMessages, waba, raw, err)
		return
	}
	var contacts []wireContact
	for i, craw := range v.Contacts {
		var c wireContact
		if err := json.Unmarshal(craw, &c); err != nil {
			n.reject(fmt.Sprintf("%s.contacts[%d]", path, i), FieldMessages, waba, craw, err)
			continue
		}
		contacts = append(contacts, c)
	}
	pn, display := string(v.Metadata.PhoneNumberID), string(v.Metadata.DisplayPhoneNumber)
	for i, mraw := range v.Messages {
		mpath := path + ".messages[" + strconv.Itoa(i) + "]"
		var m wireInbound
		if err := json.Unmarshal(mraw, &m); err != nil {
			n.reject(mpath, FieldMessages, waba, mraw, err)
			continue
		}
		n.emit(mpath, FieldMessages, waba, mraw, inbound(pn, display, waba, &m, contacts))
	}
	for i, sraw := range v.Statuses {
		spath := path + ".statuses[" + strconv.Itoa(i) + "]"
		var s wireStatus
		if err := json.Unmarshal(sraw, &s); err != nil {
			n.reject(spath, FieldMessages, waba, sraw, err)
			continue
		}
		n.emit(spath, FieldMessages, waba, sraw, status(pn, waba, &s))
	}
	if len(v.Errors) > 0 && len(v.Messages) == 0 && len(v.Statuses) == 0 {
		n.res.Skipped["value_errors"]++
	}
}

func inbound(pn, display, waba string, m *wireInbound, contacts []wireContact) *events.InboundMessage {
	in := &events.InboundMessage{
		PhoneNumberID: pn, DisplayPhoneNumber: display, WABAID: waba,
		WaID: string(m.From), WAMID: m.ID, MessageType: m.Type, Timestamp: m.Timestamp,
	}
	c := contactFor(string(m.From), contacts)
	in.UserID = firstOf(string(m.FromUserID), string(m.UserID), string(c.UserID))
	if in.WaID == "" {
		in.WaID = string(c.WaID)
	}
	if m.Context != nil {
		in.ContextID = m.Context.ID
	}
	if r := m.Referral; r != nil {
		in.Referral = &events.Referral{SourceType: r.SourceType, SourceID: r.SourceID, SourceURL: r.SourceURL, CtwaClid: r.CtwaClid}
	}
	for _, e := range m.Errors {
		in.ErrorCodes = append(in.ErrorCodes, int(e.Code))
	}
	if s := m.System; s != nil {
		in.SystemType = s.Type
		in.NewWaID = firstOf(string(s.NewWaID), string(s.WaID))
	}
	return in
}

// contactFor finds the contact of the sender: the one with its wa_id, else the only one.
func contactFor(from string, cs []wireContact) wireContact {
	for _, c := range cs {
		if from != "" && string(c.WaID) == from {
			return c
		}
	}
	if len(cs) == 1 {
		return cs[0]
	}
	return wireContact{}
}

func status(pn, waba string, s *wireStatus) *events.StatusUpdate {
	st := &events.StatusUpdate{
		PhoneNumberID: pn, WABAID: waba, RecipientID: string(s.RecipientID),
		RecipientUserID: string(s.RecipientUserID), RecipientType: s.RecipientType,
		RecipientParticipantID: string(s.RecipientParticipantID),
		WAMID:                  s.ID, Status: events.Status(s.Status), Timestamp: s.Timestamp,
	}
	if p := s.Pricing; p != nil {
		mp := &events.MetaPricing{PricingModel: p.PricingModel, Type: firstOf(p.Type, p.PricingType),
			Category: events.NormalizeCategory(p.Category)}
		if p.Billable != nil {
			b := bool(*p.Billable)
			mp.Billable = &b
		}
		st.Pricing = mp
	}
	if c := s.Conversation; c != nil {
		mc := &events.MetaConversation{ID: c.ID, ExpirationTimestamp: c.ExpirationTimestamp}
		if c.Origin != nil {
			mc.OriginType = events.NormalizeCategory(c.Origin.Type)
		}
		st.Conversation = mc
	}
	for _, e := range s.Errors {
		st.Errors = append(st.Errors, events.StatusError{Code: int(e.Code), Title: e.Title})
	}
	return st
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func changeBytes(c wireChange) json.RawMessage {
	b, err := json.Marshal(c)
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}
