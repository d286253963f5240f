package events

import (
	"strconv"

	segjson "github.com/segmentio/encoding/json"
)

// Hand-written payload encoders for the types the window engine emits for nearly every input
// (charge, message.delivered, message.dispatched, window and conversation events, policy
// violations) and for the input types producers write most. Each appends exactly what
// encoding/json writes for the struct: fields in struct order, the embedded Account's first,
// omitempty fields left out when zero, strings through appendJSONString. Every other type, and a
// nil pointer, goes to the generic encoder. TestFastEncodersMatchGeneric and
// FuzzEncodeMatchesEncodingJSON compare both with encoding/json.

// appendPayload appends the JSON of p.
func appendPayload(dst []byte, p Payload) ([]byte, error) {
	switch v := p.(type) {
	case *Charge:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *MessageDelivered:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *MessageDispatched:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *WindowOpened:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *WindowExpired:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *ConversationOpened:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *ConversationClosed:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *PolicyViolation:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *StatusUpdate:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *InboundMessage:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *OutboundSend:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	case *Tick:
		if v != nil {
			return v.appendJSON(dst), nil
		}
	}
	return appendPayloadGeneric(dst, p)
}

// appendPayloadGeneric appends the JSON of p by reflection. segmentio/encoding/json writes what
// encoding/json writes (HTML escaping, sorted map keys, U+FFFD for invalid UTF-8) without the
// intermediate buffer.
func appendPayloadGeneric(dst []byte, p Payload) ([]byte, error) {
	return segjson.Append(dst, p, segjson.EscapeHTML|segjson.SortMapKeys)
}

// memberKey appends a member name written as `,"name":`, without the comma when it is the object's
// first member.
func memberKey(dst []byte, k string) []byte {
	if dst[len(dst)-1] == '{' {
		return append(dst, k[1:]...)
	}
	return append(dst, k...)
}

func strField(dst []byte, k, v string) []byte {
	return appendJSONString(memberKey(dst, k), v)
}

// strOmitField is strField for an omitempty field.
func strOmitField(dst []byte, k, v string) []byte {
	if v == "" {
		return dst
	}
	return appendJSONString(memberKey(dst, k), v)
}

func intField(dst []byte, k string, v int64) []byte {
	return strconv.AppendInt(memberKey(dst, k), v, 10)
}

func boolField(dst []byte, k string, v bool) []byte {
	dst = memberKey(dst, k)
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendFields writes the Account members that open every output payload (promoted to them).
func (a *Account) appendFields(dst []byte) []byte {
	dst = strField(dst, `,"phone_number_id":`, a.PhoneNumberID)
	dst = strField(dst, `,"user":`, a.User)
	dst = strOmitField(dst, `,"waba_id":`, a.WABAID)
	dst = strOmitField(dst, `,"portfolio_id":`, a.PortfolioID)
	dst = strOmitField(dst, `,"time_zone":`, a.TimeZone)
	dst = strOmitField(dst, `,"currency":`, a.Currency)
	dst = strOmitField(dst, `,"month":`, a.Month)
	return boolField(dst, `,"configured":`, a.Configured)
}

func (p *Charge) appendJSON(dst []byte) []byte {
	dst = p.appendFields(append(dst, '{'))
	dst = strField(dst, `,"unit":`, string(p.Unit))
	dst = strField(dst, `,"pricing_model":`, string(p.PricingModel))
	dst = strField(dst, `,"category":`, string(p.Category))
	dst = strField(dst, `,"pricing_type":`, string(p.PricingType))
	dst = boolField(dst, `,"billable":`, p.Billable)
	dst = strField(dst, `,"reason":`, p.Reason)
	dst = strField(dst, `,"wamid":`, p.WAMID)
	dst = strOmitField(dst, `,"conversation_id":`, p.ConversationID)
	dst = strField(dst, `,"kind":`, string(p.Kind))
	dst = strOmitField(dst, `,"recipient":`, p.Recipient)
	dst = intField(dst, `,"delivered_at":`, int64(p.DeliveredAt))
	if p.FreeAllowance != 0 {
		dst = intField(dst, `,"free_allowance":`, int64(p.FreeAllowance))
	}
	return append(dst, '}')
}

func (v *Verdict) appendJSON(dst []byte) []byte {
	dst = boolField(append(dst, '{'), `,"billable":`, v.Billable)
	dst = strOmitField(dst, `,"category":`, string(v.Category))
	dst = strOmitField(dst, `,"pricing_type":`, string(v.PricingType))
	dst = strOmitField(dst, `,"pricing_model":`, v.PricingModel)
	dst = strOmitField(dst, `,"conversation_id":`, v.ConversationID)
	return append(dst, '}')
}

func (c *MetaConversation) appendJSON(dst []byte) []byte {
	dst = strOmitField(append(dst, '{'), `,"id":`, c.ID)
	if c.ExpirationTimestamp != 0 {
		dst = intField(dst, `,"expiration_timestamp":`, int64(c.ExpirationTimestamp))
	}
	dst = strOmitField(dst, `,"origin_type":`, string(c.OriginType))
	return append(dst, '}')
}

func (p *MessageDelivered) appendJSON(dst []byte) []byte {
	dst = p.appendFields(append(dst, '{'))
	dst = strField(dst, `,"wamid":`, p.WAMID)
	dst = intField(dst, `,"delivered_at":`, int64(p.DeliveredAt))
	dst = strField(dst, `,"kind":`, string(p.Kind))
	dst = strField(dst, `,"kind_source":`, p.KindSource)
	dst = strOmitField(dst, `,"template_category":`, string(p.TemplateCategory))
	dst = boolField(dst, `,"inside_csw":`, p.InsideCSW)
	dst = boolField(dst, `,"inside_fep":`, p.InsideFEP)
	dst = p.Ours.appendJSON(memberKey(dst, `,"ours":`))
	if p.Meta != nil {
		dst = p.Meta.appendJSON(memberKey(dst, `,"meta":`))
	}
	if p.MetaConversation != nil {
		dst = p.MetaConversation.appendJSON(memberKey(dst, `,"meta_conversation":`))
	}
	return append(dst, '}')
}

func (p *MessageDispatched) appendJSON(dst []byte) []byte {
	dst = p.appendFields(append(dst, '{'))
	dst = strField(dst, `,"wamid":`, p.WAMID)
	dst = intField(dst, `,"sent_at":`, int64(p.SentAt))
	dst = strField(dst, `,"kind":`, string(p.Kind))
	return append(dst, '}')
}

func (p *WindowOpened) appendJSON(dst []byte) []byte {
	dst = p.appendFields(append(dst, '{'))
	dst = strField(dst, `,"wamid":`, p.WAMID)
	dst = intField(dst, `,"opened_at":`, int64(p.OpenedAt))
	dst = intField(dst, `,"expires_at":`, int64(p.ExpiresAt))
	dst = boolField(dst, `,"refresh":`, p.Refresh)
	if p.EntryPoint {
		dst = boolField(dst, `,"entry_point":`, true)
	}
	return append(dst, '}')
}

func (p *WindowExpired) appendJSON(dst []byte) []byte {
	dst = p.appendFields(append(dst, '{'))
	dst = intField(dst, `,"opened_at":`, int64(p.OpenedAt))
	dst = intField(dst, `,"expired_at":`, int64(p.ExpiredAt))
	return append(dst, '}')
}

func (p *ConversationOpened) appendJSON(dst []byte) []byte {
	dst = p.appendFields(append(dst, '{'))
	dst = strField(dst, `,"conversation_id":`, p.ConversationID)
	dst = strField(dst, `,"category":`, string(p.Category))
	dst = strField(dst, `,"pricing_model":`, string(p.PricingModel))
	dst = intField(dst, `,"opened_at":`, int64(p.OpenedAt))
	dst = intField(dst, `,"expires_at":`, int64(p.ExpiresAt))
	dst = strField(dst, `,"opened_by":`, p.OpenedBy)
	dst = strOmitField(dst, `,"meta_conversation_id":`, p.MetaConversationID)
	return append(dst, '}')
}

func (p *ConversationClosed) appendJSON(dst []byte) []byte {
	dst = p.appendFields(append(dst, '{'))
	dst = strField(dst, `,"conversation_id":`, p.ConversationID)
	dst = strField(dst, `,"category":`, string(p.Category))
	dst = strField(dst, `,"pricing_model":`, string(p.PricingModel))
	dst = intField(dst, `,"opened_at":`, int64(p.OpenedAt))
	dst = intField(dst, `,"closed_at":`, int64(p.ClosedAt))
	dst = strField(dst, `,"reason":`, p.Reason)
	return append(dst, '}')
}

func (p *PolicyViolation) appendJSON(dst []byte) []byte {
	dst = p.appendFields(append(dst, '{'))
	dst = strField(dst, `,"wamid":`, p.WAMID)
	dst = intField(dst, `,"code":`, int64(p.Code))
	dst = strField(dst, `,"reason":`, p.Reason)
	dst = intField(dst, `,"at":`, int64(p.At))
	dst = boolField(dst, `,"delivered":`, p.Delivered)
	return append(dst, '}')
}

func (p *StatusUpdate) appendJSON(dst []byte) []byte {
	dst = strField(append(dst, '{'), `,"phone_number_id":`, p.PhoneNumberID)
	dst = strOmitField(dst, `,"waba_id":`, p.WABAID)
	dst = strOmitField(dst, `,"recipient_id":`, p.RecipientID)
	dst = strOmitField(dst, `,"recipient_user_id":`, p.RecipientUserID)
	dst = strOmitField(dst, `,"recipient_type":`, p.RecipientType)
	dst = strOmitField(dst, `,"recipient_participant_id":`, p.RecipientParticipantID)
	dst = strField(dst, `,"wamid":`, p.WAMID)
	dst = strField(dst, `,"status":`, string(p.Status))
	dst = intField(dst, `,"timestamp":`, int64(p.Timestamp))
	if pr := p.Pricing; pr != nil {
		dst = append(memberKey(dst, `,"pricing":`), '{')
		if pr.Billable != nil {
			dst = boolField(dst, `,"billable":`, *pr.Billable)
		}
		dst = strOmitField(dst, `,"pricing_model":`, pr.PricingModel)
		dst = strOmitField(dst, `,"type":`, pr.Type)
		dst = strOmitField(dst, `,"category":`, string(pr.Category))
		dst = append(dst, '}')
	}
	if p.Conversation != nil {
		dst = p.Conversation.appendJSON(memberKey(dst, `,"conversation":`))
	}
	if len(p.Errors) > 0 {
		dst = append(memberKey(dst, `,"errors":`), '[')
		for i, e := range p.Errors {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = intField(append(dst, '{'), `,"code":`, int64(e.Code))
			dst = strOmitField(dst, `,"title":`, e.Title)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

func (p *InboundMessage) appendJSON(dst []byte) []byte {
	dst = strField(append(dst, '{'), `,"phone_number_id":`, p.PhoneNumberID)
	dst = strOmitField(dst, `,"display_phone_number":`, p.DisplayPhoneNumber)
	dst = strOmitField(dst, `,"waba_id":`, p.WABAID)
	dst = strOmitField(dst, `,"wa_id":`, p.WaID)
	dst = strOmitField(dst, `,"user_id":`, p.UserID)
	dst = strField(dst, `,"wamid":`, p.WAMID)
	dst = strField(dst, `,"message_type":`, p.MessageType)
	dst = intField(dst, `,"timestamp":`, int64(p.Timestamp))
	dst = strOmitField(dst, `,"context_id":`, p.ContextID)
	if r := p.Referral; r != nil {
		dst = append(memberKey(dst, `,"referral":`), '{')
		dst = strOmitField(dst, `,"source_type":`, r.SourceType)
		dst = strOmitField(dst, `,"source_id":`, r.SourceID)
		dst = strOmitField(dst, `,"source_url":`, r.SourceURL)
		dst = strOmitField(dst, `,"ctwa_clid":`, r.CtwaClid)
		dst = append(dst, '}')
	}
	if len(p.ErrorCodes) > 0 {
		dst = append(memberKey(dst, `,"error_codes":`), '[')
		for i, c := range p.ErrorCodes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(c), 10)
		}
		dst = append(dst, ']')
	}
	dst = strOmitField(dst, `,"system_type":`, p.SystemType)
	dst = strOmitField(dst, `,"new_wa_id":`, p.NewWaID)
	return append(dst, '}')
}

func (p *OutboundSend) appendJSON(dst []byte) []byte {
	dst = strField(append(dst, '{'), `,"phone_number_id":`, p.PhoneNumberID)
	dst = strOmitField(dst, `,"waba_id":`, p.WABAID)
	dst = strOmitField(dst, `,"wa_id":`, p.WaID)
	dst = strOmitField(dst, `,"user_id":`, p.UserID)
	dst = strField(dst, `,"wamid":`, p.WAMID)
	dst = intField(dst, `,"timestamp":`, int64(p.Timestamp))
	dst = strField(dst, `,"kind":`, string(p.Kind))
	dst = strOmitField(dst, `,"message_type":`, p.MessageType)
	dst = strOmitField(dst, `,"template_name":`, p.TemplateName)
	dst = strOmitField(dst, `,"template_id":`, p.TemplateID)
	dst = strOmitField(dst, `,"template_category":`, string(p.TemplateCategory))
	return append(dst, '}')
}

func (p *Tick) appendJSON(dst []byte) []byte {
	return append(intField(append(dst, '{'), `,"partition":`, int64(p.Partition)), '}')
}
