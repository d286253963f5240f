package events

import (
	"strings"
)

// Type is an event's wire name, "<noun>.<verb>.v<N>". The list below is only appended to.
type Type string

// Input event types: what upstream producers publish to the message-events topic.
const (
	TypeInboundMessage   Type = "message.inbound.v1"
	TypeOutboundSend     Type = "message.outbound.v1"
	TypeStatusUpdate     Type = "message.status.v1"
	TypeTick             Type = "clock.tick.v1"
	TypeAccountConfig    Type = "account.config.v1"
	TypeLimitUpdate      Type = "account.limit.v1"
	TypeVolumeTier       Type = "account.volume_tier.v1"
	TypeTemplateCategory Type = "template.category.v1"
)

// Output event types: what the window engine derives, on the conversation-events topic.
const (
	TypeWindowOpened       Type = "window.opened.v1"
	TypeWindowExpired      Type = "window.expired.v1"
	TypeConversationOpened Type = "conversation.opened.v1"
	TypeConversationClosed Type = "conversation.closed.v1"
	TypeMessageDispatched  Type = "message.dispatched.v1"
	TypeMessageDelivered   Type = "message.delivered.v1"
	TypeCharge             Type = "charge.v1"
	TypePolicyViolation    Type = "policy.violation.v1"
	TypeCorrection         Type = "correction.v1"
	TypeEventSetAside      Type = "event.set_aside.v1"
	TypeDeadLetter         Type = "deadletter.v1"
)

// InputTypes and OutputTypes list every wire name in the order they were introduced.
var (
	InputTypes = []Type{
		TypeInboundMessage, TypeOutboundSend, TypeStatusUpdate, TypeTick, TypeAccountConfig,
		TypeLimitUpdate, TypeVolumeTier, TypeTemplateCategory,
	}
	OutputTypes = []Type{
		TypeWindowOpened, TypeWindowExpired, TypeConversationOpened, TypeConversationClosed,
		TypeMessageDispatched, TypeMessageDelivered, TypeCharge, TypePolicyViolation, TypeCorrection,
		TypeEventSetAside, TypeDeadLetter,
	}
)

// IsInput reports whether t is an input event type.
func (t Type) IsInput() bool {
	for _, x := range InputTypes {
		if x == t {
			return true
		}
	}
	return false
}

// Category is a conversation or pricing category, in Meta's lower-case webhook spelling with an
// underscore in authentication_international (see NormalizeCategory).
type Category string

// Categories. The list is only appended to.
const (
	CategoryNone                        Category = ""
	CategoryMarketing                   Category = "marketing"
	CategoryUtility                     Category = "utility"
	CategoryAuthentication              Category = "authentication"
	CategoryAuthenticationInternational Category = "authentication_international"
	CategoryMarketingLite               Category = "marketing_lite"
	CategoryService                     Category = "service"
	CategoryReferralConversion          Category = "referral_conversion"
	// CBP-2022 categories.
	CategoryBusinessInitiated Category = "business_initiated"
	CategoryUserInitiated     Category = "user_initiated"
)

// NormalizeCategory maps Meta's spellings onto one: upper-case analytics values, the hyphenated
// "authentication-international" of the pricing table, and the "customer_initiated" of older docs.
// An unknown value is returned lower-cased, so it shows in reconciliation rather than vanishing.
func NormalizeCategory(s string) Category {
	if s == "" {
		return CategoryNone
	}
	c := strings.ToLower(strings.TrimSpace(s))
	c = strings.ReplaceAll(c, "-", "_")
	switch c {
	case "customer_initiated":
		return CategoryUserInitiated
	case "free_entry", "free_entry_point":
		return CategoryReferralConversion
	}
	return Category(c)
}

// IsTemplateCategory reports whether c is a category a template can have.
func (c Category) IsTemplateCategory() bool {
	switch c {
	case CategoryMarketing, CategoryUtility, CategoryAuthentication, CategoryAuthenticationInternational,
		CategoryMarketingLite:
		return true
	default:
		return false
	}
}

// Status is a message status from Meta's statuses webhook.
type Status string

// Statuses. "deleted" and "warning" are legacy On-Premises values, accepted and ignored for billing.
const (
	StatusSent      Status = "sent"
	StatusDelivered Status = "delivered"
	StatusRead      Status = "read"
	StatusPlayed    Status = "played"
	StatusFailed    Status = "failed"
	StatusDeleted   Status = "deleted"
	StatusWarning   Status = "warning"
)

// Rank orders statuses on the lattice sent < delivered < read < played (A7), with failed after
// them as in the canonical tie order (A13). Unknown statuses rank 0.
func (s Status) Rank() int {
	switch s {
	case StatusSent:
		return 1
	case StatusDelivered:
		return 2
	case StatusRead:
		return 3
	case StatusPlayed:
		return 4
	case StatusFailed:
		return 5
	case StatusDeleted, StatusWarning:
		return 6
	}
	return 0
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s.Rank() > 0 }

// MessageKind says what a business message is, as far as billing cares.
type MessageKind string

// Message kinds. Unknown means neither a send event nor Meta's fields told us (A12).
const (
	KindTemplate MessageKind = "template"
	KindFreeForm MessageKind = "free_form"
	KindUnknown  MessageKind = "unknown"
)

// PricingModel names a pricing regime of the timeline (A2). Meta's own pricing_model field only
// says "CBP" or "PMP"; MetaModel maps ours onto it.
type PricingModel string

// Pricing models of the timeline. The list is only appended to.
const (
	ModelCBP2022 PricingModel = "CBP-2022"
	ModelCBP2023 PricingModel = "CBP-2023"
	ModelPMP     PricingModel = "PMP"
	ModelPMP2026 PricingModel = "PMP-2026"
)

// IsCBP reports whether m is a conversation-based model.
func (m PricingModel) IsCBP() bool { return m == ModelCBP2022 || m == ModelCBP2023 }

// MetaModel is the value Meta puts in pricing.pricing_model for m.
func (m PricingModel) MetaModel() string {
	if m.IsCBP() {
		return "CBP"
	}
	return "PMP"
}

// PricingType is Meta's pricing.type: whether a message or conversation is charged.
type PricingType string

// Pricing types. FreeTier is ours: CBP's monthly free conversations, decided by the billing
// projection, never by the engine.
const (
	PricingRegular             PricingType = "regular"
	PricingFreeCustomerService PricingType = "free_customer_service"
	PricingFreeEntryPoint      PricingType = "free_entry_point"
)

// ChargeUnit says what a charge is for.
type ChargeUnit string

// Charge units.
const (
	UnitConversation ChargeUnit = "conversation"
	UnitMessage      ChargeUnit = "message"
)
