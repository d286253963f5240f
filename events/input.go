package events

// Payload is the data of an event. Each payload type names its wire type.
type Payload interface {
	EventType() Type
}

// Referral is the ad or page-button entry point an inbound message came from (domain §1.9).
type Referral struct {
	SourceType string `json:"source_type,omitempty"` // "ad" starts free-entry-point eligibility
	SourceID   string `json:"source_id,omitempty"`
	SourceURL  string `json:"source_url,omitempty"`
	CtwaClid   string `json:"ctwa_clid,omitempty"`
}

// InboundMessage is a message (or call) a user sent to a business number (§6.2).
type InboundMessage struct {
	PhoneNumberID      string    `json:"phone_number_id"`
	DisplayPhoneNumber string    `json:"display_phone_number,omitempty"`
	WABAID             string    `json:"waba_id,omitempty"`
	WaID               string    `json:"wa_id,omitempty"`
	UserID             string    `json:"user_id,omitempty"` // business-scoped user id (BSUID)
	WAMID              string    `json:"wamid"`
	MessageType        string    `json:"message_type"` // text, image, button, interactive, reaction, system, unsupported, call, …
	Timestamp          UnixTime  `json:"timestamp"`
	ContextID          string    `json:"context_id,omitempty"` // wamid of the message replied to
	Referral           *Referral `json:"referral,omitempty"`
	ErrorCodes         []int     `json:"error_codes,omitempty"`
	// SystemType and NewWaID describe a system message such as customer_changed_number.
	SystemType string `json:"system_type,omitempty"`
	NewWaID    string `json:"new_wa_id,omitempty"`
}

// EventType implements Payload.
func (*InboundMessage) EventType() Type { return TypeInboundMessage }

// OutboundSend is a business message accepted by the Cloud API (the send call's answer), published
// by the business's own sender. It is what tells templates from free-form messages; without it the
// engine falls back on Meta's status fields (A12).
type OutboundSend struct {
	PhoneNumberID    string      `json:"phone_number_id"`
	WABAID           string      `json:"waba_id,omitempty"`
	WaID             string      `json:"wa_id,omitempty"`
	UserID           string      `json:"user_id,omitempty"`
	WAMID            string      `json:"wamid"`
	Timestamp        UnixTime    `json:"timestamp"`
	Kind             MessageKind `json:"kind"` // template or free_form
	MessageType      string      `json:"message_type,omitempty"`
	TemplateName     string      `json:"template_name,omitempty"`
	TemplateID       string      `json:"template_id,omitempty"`
	TemplateCategory Category    `json:"template_category,omitempty"`
}

// EventType implements Payload.
func (*OutboundSend) EventType() Type { return TypeOutboundSend }

// MetaPricing is the pricing object of a status, as Meta sent it (§6.3). Billable is a pointer
// because it may be missing (A6: then derived from Type == regular).
type MetaPricing struct {
	Billable     *bool    `json:"billable,omitempty"`
	PricingModel string   `json:"pricing_model,omitempty"` // "CBP" or "PMP"
	Type         string   `json:"type,omitempty"`          // regular, free_customer_service, free_entry_point
	Category     Category `json:"category,omitempty"`      // normalised
}

// IsBillable is Meta's billable flag, derived from Type when the flag is missing (A6).
func (p *MetaPricing) IsBillable() bool {
	if p.Billable != nil {
		return *p.Billable
	}
	return p.Type == string(PricingRegular)
}

// MetaConversation is the conversation object of a status, as Meta sent it.
type MetaConversation struct {
	ID                  string   `json:"id,omitempty"`
	ExpirationTimestamp UnixTime `json:"expiration_timestamp,omitempty"`
	OriginType          Category `json:"origin_type,omitempty"` // normalised
}

// StatusError is one entry of a status's errors array.
type StatusError struct {
	Code  int    `json:"code"`
	Title string `json:"title,omitempty"`
}

// StatusUpdate is one status of an outbound message (§6.3).
type StatusUpdate struct {
	PhoneNumberID          string            `json:"phone_number_id"`
	WABAID                 string            `json:"waba_id,omitempty"`
	RecipientID            string            `json:"recipient_id,omitempty"` // wa_id
	RecipientUserID        string            `json:"recipient_user_id,omitempty"`
	RecipientType          string            `json:"recipient_type,omitempty"`
	RecipientParticipantID string            `json:"recipient_participant_id,omitempty"`
	WAMID                  string            `json:"wamid"`
	Status                 Status            `json:"status"`
	Timestamp              UnixTime          `json:"timestamp"`
	Pricing                *MetaPricing      `json:"pricing,omitempty"`
	Conversation           *MetaConversation `json:"conversation,omitempty"`
	Errors                 []StatusError     `json:"errors,omitempty"`
}

// EventType implements Payload.
func (*StatusUpdate) EventType() Type { return TypeStatusUpdate }

// Tick moves a quiet partition's stream time forward. The clock service writes one per partition
// per interval with the wall clock as event time, so expiries fire without traffic and replay
// reproduces them exactly.
type Tick struct {
	Partition int32 `json:"partition"`
}

// EventType implements Payload.
func (*Tick) EventType() Type { return TypeTick }

// AuthIntl is a business's authentication-international eligibility (§2.2).
type AuthIntl struct {
	StartTime UnixTime `json:"start_time"`
	// CallingCodes lists the calling-code prefixes of the countries with an auth-international rate
	// that apply to this business (exception countries already removed).
	CallingCodes []string `json:"calling_codes"`
}

// AccountConfig states the facts about one business phone number from a given moment on (A4):
// its WABA and portfolio, the WABA's time zone and currency, and the limits Meta gave it. A later
// EffectiveFrom supersedes an earlier one for events at or after it; the engine resolves facts by
// the event's own time, so the order in which configs arrive does not matter.
type AccountConfig struct {
	PhoneNumberID      string    `json:"phone_number_id"`
	DisplayPhoneNumber string    `json:"display_phone_number,omitempty"`
	WABAID             string    `json:"waba_id"`
	PortfolioID        string    `json:"portfolio_id"`
	TimeZone           string    `json:"time_zone"` // IANA name, e.g. "Asia/Kolkata"
	Currency           string    `json:"currency"`  // ISO 4217
	EffectiveFrom      UnixTime  `json:"effective_from"`
	MessagingLimitTier string    `json:"messaging_limit_tier,omitempty"` // TIER_250, TIER_2K, …
	ThroughputMPS      int       `json:"throughput_mps,omitempty"`
	Coexistence        bool      `json:"coexistence,omitempty"`
	AuthIntl           *AuthIntl `json:"auth_intl,omitempty"`
}

// EventType implements Payload.
func (*AccountConfig) EventType() Type { return TypeAccountConfig }

// LimitUpdate is a messaging-limit change Meta announced (phone_number_quality_update or
// business_capability_update, §4.2). Scope is "phone_number" or "portfolio".
type LimitUpdate struct {
	Scope         string   `json:"scope"`
	ID            string   `json:"id"` // phone_number_id or portfolio id
	WABAID        string   `json:"waba_id,omitempty"`
	Tier          string   `json:"tier"` // TIER_250 … TIER_UNLIMITED; "-1" is normalised to TIER_UNLIMITED
	Event         string   `json:"event,omitempty"`
	EffectiveFrom UnixTime `json:"effective_from"`
}

// EventType implements Payload.
func (*LimitUpdate) EventType() Type { return TypeLimitUpdate }

// VolumeTier is an account_update VOLUME_BASED_PRICING_TIER_UPDATE (§3.2).
type VolumeTier struct {
	WABAID          string   `json:"waba_id"`
	TierUpdateTime  UnixTime `json:"tier_update_time"`
	PricingCategory Category `json:"pricing_category"`
	Tier            string   `json:"tier"`            // "lower:upper"
	EffectiveMonth  string   `json:"effective_month"` // YYYY-MM
	Region          string   `json:"region"`
}

// EventType implements Payload.
func (*VolumeTier) EventType() Type { return TypeVolumeTier }

// TemplateCategory is a template_category_update (§2.2): a template's category from a moment on.
type TemplateCategory struct {
	WABAID           string   `json:"waba_id"`
	TemplateID       string   `json:"template_id"`
	TemplateName     string   `json:"template_name,omitempty"`
	PreviousCategory Category `json:"previous_category,omitempty"`
	NewCategory      Category `json:"new_category"`
	EffectiveFrom    UnixTime `json:"effective_from"`
}

// EventType implements Payload.
func (*TemplateCategory) EventType() Type { return TypeTemplateCategory }
