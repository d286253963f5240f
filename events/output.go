package events

// Account carries the account facts in force for an output event, resolved by the event's own
// time from AccountConfig events, so projections need no lookups of their own. Month is the
// calendar month of the event in the WABA's time zone ("YYYY-MM"): free tiers and volume tiers
// count per month there.
type Account struct {
	PhoneNumberID string `json:"phone_number_id"`
	User          string `json:"user"` // wa_id, or the BSUID when wa_id is empty (A3)
	WABAID        string `json:"waba_id,omitempty"`
	PortfolioID   string `json:"portfolio_id,omitempty"`
	TimeZone      string `json:"time_zone,omitempty"`
	Currency      string `json:"currency,omitempty"`
	Month         string `json:"month,omitempty"`
	// Configured is false when no AccountConfig covered the event: the output still flows, and the
	// billing projection records it as unpriced with that reason.
	Configured bool `json:"configured"`
}

// WindowOpened says a user message opened or refreshed the customer service window (A1, A8).
type WindowOpened struct {
	Account
	WAMID      string   `json:"wamid"`
	OpenedAt   UnixTime `json:"opened_at"` // time of the newest user message
	ExpiresAt  UnixTime `json:"expires_at"`
	Refresh    bool     `json:"refresh"`               // the window was already open
	EntryPoint bool     `json:"entry_point,omitempty"` // came from an ad/page button: FEP eligible (A9)
}

// EventType implements Payload.
func (*WindowOpened) EventType() Type { return TypeWindowOpened }

// WindowExpired says a customer service window closed: stream time passed its expiry.
type WindowExpired struct {
	Account
	OpenedAt  UnixTime `json:"opened_at"`
	ExpiredAt UnixTime `json:"expired_at"`
}

// EventType implements Payload.
func (*WindowExpired) EventType() Type { return TypeWindowExpired }

// ConversationOpened says a delivery opened a conversation: a CBP billing conversation, or a
// free-entry-point window (Category referral_conversion, 72 h) under any model.
type ConversationOpened struct {
	Account
	ConversationID     string       `json:"conversation_id"`
	Category           Category     `json:"category"`
	PricingModel       PricingModel `json:"pricing_model"`
	OpenedAt           UnixTime     `json:"opened_at"`
	ExpiresAt          UnixTime     `json:"expires_at"`
	OpenedBy           string       `json:"opened_by"` // wamid of the delivered message
	MetaConversationID string       `json:"meta_conversation_id,omitempty"`
}

// EventType implements Payload.
func (*ConversationOpened) EventType() Type { return TypeConversationOpened }

// Reasons a conversation closed.
const (
	CloseExpired   = "expired"
	CloseFEPOpened = "fep_opened" // a free-entry-point conversation closed it (§1.9)
)

// ConversationClosed says a conversation ended.
type ConversationClosed struct {
	Account
	ConversationID string       `json:"conversation_id"`
	Category       Category     `json:"category"`
	PricingModel   PricingModel `json:"pricing_model"`
	OpenedAt       UnixTime     `json:"opened_at"`
	ClosedAt       UnixTime     `json:"closed_at"`
	Reason         string       `json:"reason"`
}

// EventType implements Payload.
func (*ConversationClosed) EventType() Type { return TypeConversationClosed }

// MessageDispatched says a business message left the business: first of the send event and any
// status. Throughput and pair-rate counters count these.
type MessageDispatched struct {
	Account
	WAMID  string      `json:"wamid"`
	SentAt UnixTime    `json:"sent_at"`
	Kind   MessageKind `json:"kind"`
}

// EventType implements Payload.
func (*MessageDispatched) EventType() Type { return TypeMessageDispatched }

// Verdict is one side's view of a delivered message's billing: ours or Meta's.
type Verdict struct {
	Billable       bool        `json:"billable"`
	Category       Category    `json:"category,omitempty"`
	PricingType    PricingType `json:"pricing_type,omitempty"`
	PricingModel   string      `json:"pricing_model,omitempty"` // "CBP" or "PMP"
	ConversationID string      `json:"conversation_id,omitempty"`
}

// MessageDelivered says a business message reached the user (first of delivered/read, A7). It
// carries our verdict and, when a status brought them, Meta's fields (A6), so reconciliation and
// the messaging-limit counters need nothing else.
type MessageDelivered struct {
	Account
	WAMID            string            `json:"wamid"`
	DeliveredAt      UnixTime          `json:"delivered_at"`
	Kind             MessageKind       `json:"kind"`
	KindSource       string            `json:"kind_source"` // "send", "meta_pricing", "meta_conversation", "none" (A12)
	TemplateCategory Category          `json:"template_category,omitempty"`
	InsideCSW        bool              `json:"inside_csw"`
	InsideFEP        bool              `json:"inside_fep"`
	Ours             Verdict           `json:"ours"`
	Meta             *Verdict          `json:"meta,omitempty"`
	MetaConversation *MetaConversation `json:"meta_conversation,omitempty"`
}

// EventType implements Payload.
func (*MessageDelivered) EventType() Type { return TypeMessageDelivered }

// Charge reasons. The list is only appended to.
const (
	ReasonConversationOpened = "conversation_opened"   // CBP: a delivery opened a conversation
	ReasonTemplateDelivered  = "template_delivered"    // PMP: a delivered template, charged
	ReasonUtilityInCSW       = "utility_in_csw"        // PMP: utility template inside the CSW, free
	ReasonNonTemplateInCSW   = "non_template_in_csw"   // PMP: free-form inside the CSW, free
	ReasonServiceCharged     = "service_charged"       // PMP-2026: free-form charged at the utility rate
	ReasonFEPWindow          = "fep_window"            // inside a free-entry-point window, free
	ReasonServiceFree        = "service_free"          // CBP from 2024-11-01: service conversations free
	ReasonUnknownKind        = "unknown_kind"          // neither send event nor Meta fields (A12)
	ReasonFreeFormOutsideCSW = "free_form_outside_csw" // delivered although outside the CSW (A10)
	ReasonCBPConversation    = "cbp_conversation_open" // PMP time, covered by a CBP conversation opened before the switch (§3.2)
)

// Charge is the billing consequence of one delivery: per conversation under CBP, per message under
// PMP. Every delivered template under PMP yields exactly one, billable or free with its reason. The
// amount is not here: the billing projection prices it from rate cards (market from Recipient, the
// card in force at DeliveredAt for Currency), and applies free tiers and volume tiers, which need
// counts across pairs.
type Charge struct {
	Account
	Unit           ChargeUnit   `json:"unit"`
	PricingModel   PricingModel `json:"pricing_model"`
	Category       Category     `json:"category"`
	PricingType    PricingType  `json:"pricing_type"`
	Billable       bool         `json:"billable"`
	Reason         string       `json:"reason"`
	WAMID          string       `json:"wamid"`
	ConversationID string       `json:"conversation_id,omitempty"`
	Kind           MessageKind  `json:"kind"`
	Recipient      string       `json:"recipient,omitempty"` // wa_id digits: the market comes from its calling code
	DeliveredAt    UnixTime     `json:"delivered_at"`
	// FreeAllowance is, on a charged PMP-2026 service message, the operator's UNCONFIRMED monthly
	// allowance of free service messages per business number (the pricing timeline's
	// free_service_messages_per_number; absent when off, the default). The billing projection
	// makes the first FreeAllowance such charges of a number's month (in the WABA's time zone, by
	// delivery time then id) free.
	FreeAllowance int `json:"free_allowance,omitempty"`
}

// EventType implements Payload.
func (*Charge) EventType() Type { return TypeCharge }

// PolicyViolation records a free-form business message outside the CSW (A10). Meta answers 131047.
type PolicyViolation struct {
	Account
	WAMID     string   `json:"wamid"`
	Code      int      `json:"code"`
	Reason    string   `json:"reason"`
	At        UnixTime `json:"at"`
	Delivered bool     `json:"delivered"` // a delivery arrived anyway (a discrepancy with Meta)
}

// EventType implements Payload.
func (*PolicyViolation) EventType() Type { return TypePolicyViolation }

// Correction retracts earlier outputs that a late (but not too late) event proved wrong. The
// replacement outputs follow it in the same batch. A consumer undoes the effect of every retracted
// id it applied; ids it never saw are ignored.
type Correction struct {
	Key      string   `json:"key"`
	Retracts []string `json:"retracts"`
	Reason   string   `json:"reason"`
	CausedBy string   `json:"caused_by"` // id of the late input event
}

// EventType implements Payload.
func (*Correction) EventType() Type { return TypeCorrection }

// Set-aside reasons.
const (
	SetAsideTooLate = "too_late"
)

// EventSetAside records an input event the engine did not apply, with the reason (A11). The
// original envelope is kept so the audit can show and re-run it.
type EventSetAside struct {
	Reason     string   `json:"reason"`
	InputID    string   `json:"input_id"`
	InputType  Type     `json:"input_type"`
	InputTime  UnixTime `json:"input_time"`
	StreamTime UnixTime `json:"stream_time"`
	Original   []byte   `json:"original,omitempty"` // the encoded input envelope
}

// EventType implements Payload.
func (*EventSetAside) EventType() Type { return TypeEventSetAside }

// DeadLetter keeps input that could not be decoded or validated, with the reason and the original
// bytes, so nothing is lost and the audit shows it.
type DeadLetter struct {
	Reason    string            `json:"reason"`
	ErrorKind string            `json:"error_kind"`
	Topic     string            `json:"topic,omitempty"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       []byte            `json:"key,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Original  []byte            `json:"original"`
}

// EventType implements Payload.
func (*DeadLetter) EventType() Type { return TypeDeadLetter }
