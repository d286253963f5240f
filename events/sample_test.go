package events

// Shared test data: one event of every type with every field set, so a round trip that drops or
// mistypes a field is caught.

func ptrBool(b bool) *bool { return &b }

var fullAccount = Account{
	PhoneNumberID: "106540352242922",
	User:          "16505551234",
	WABAID:        "102290129340398",
	PortfolioID:   "3339822332211",
	TimeZone:      "Asia/Kolkata",
	Currency:      "INR",
	Month:         "2025-07",
	Configured:    true,
}

var fullCause = &Cause{Partition: 3, Offset: 1289, Index: 2}

// fullPayloads has one payload of every type with every field set to a non-zero value.
func fullPayloads() []Payload {
	return []Payload{
		&InboundMessage{
			PhoneNumberID:      "106540352242922",
			DisplayPhoneNumber: "15550783881",
			WABAID:             "102290129340398",
			WaID:               "16505551234",
			UserID:             "US.13491208655302741918",
			WAMID:              "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUZDNjE5RjcwQ0YwQzY3RjJBQQA=",
			MessageType:        "text",
			Timestamp:          1749416383,
			ContextID:          "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3QjNBRkI4RjI5QjBERjg0MzUA",
			Referral:           &Referral{SourceType: "ad", SourceID: "120212345678", SourceURL: "https://fb.me/3cr4Wqqkw", CtwaClid: "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-ZABe_5nr6W"},
			ErrorCodes:         []int{131051, 131026},
			SystemType:         "customer_changed_number",
			NewWaID:            "16505559999",
		},
		&OutboundSend{
			PhoneNumberID:    "106540352242922",
			WABAID:           "102290129340398",
			WaID:             "16505551234",
			UserID:           "US.13491208655302741918",
			WAMID:            "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
			Timestamp:        1750030070,
			Kind:             KindTemplate,
			MessageType:      "template",
			TemplateName:     "order_shipped",
			TemplateID:       "1146895412843923",
			TemplateCategory: CategoryUtility,
		},
		&StatusUpdate{
			PhoneNumberID:          "106540352242922",
			WABAID:                 "102290129340398",
			RecipientID:            "16505551234",
			RecipientUserID:        "US.13491208655302741918",
			RecipientType:          "group",
			RecipientParticipantID: "16505557777",
			WAMID:                  "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
			Status:                 StatusDelivered,
			Timestamp:              1750030073,
			Pricing:                &MetaPricing{Billable: ptrBool(true), PricingModel: "PMP", Type: "regular", Category: CategoryUtility},
			Conversation:           &MetaConversation{ID: "72b14d6bd5407799e66f64d1b338e567", ExpirationTimestamp: 1750116480, OriginType: CategoryUtility},
			Errors:                 []StatusError{{Code: 131049, Title: "This message was not delivered to maintain healthy ecosystem engagement."}},
		},
		&Tick{Partition: 7},
		&AccountConfig{
			PhoneNumberID:      "106540352242922",
			DisplayPhoneNumber: "15550783881",
			WABAID:             "102290129340398",
			PortfolioID:        "3339822332211",
			TimeZone:           "Asia/Kolkata",
			Currency:           "INR",
			EffectiveFrom:      1748736000,
			MessagingLimitTier: "TIER_2K",
			ThroughputMPS:      80,
			Coexistence:        true,
			AuthIntl:           &AuthIntl{StartTime: 1717200000, CallingCodes: []string{"20", "91", "62"}},
		},
		&LimitUpdate{Scope: "portfolio", ID: "3339822332211", WABAID: "102290129340398", Tier: "TIER_10K", Event: "UPGRADE", EffectiveFrom: 1759881600},
		&VolumeTier{WABAID: "102290129340398", TierUpdateTime: 1752624000, PricingCategory: CategoryUtility, Tier: "250001:2000000", EffectiveMonth: "2025-07", Region: "India"},
		&TemplateCategory{WABAID: "102290129340398", TemplateID: "1146895412843923", TemplateName: "order_shipped", PreviousCategory: CategoryUtility, NewCategory: CategoryMarketing, EffectiveFrom: 1745000000},
		&WindowOpened{Account: fullAccount, WAMID: "wamid.in1", OpenedAt: 1749416383, ExpiresAt: 1749502783, Refresh: true, EntryPoint: true},
		&WindowExpired{Account: fullAccount, OpenedAt: 1749416383, ExpiredAt: 1749502783},
		&ConversationOpened{Account: fullAccount, ConversationID: "c/106540352242922/16505551234/1750030073", Category: CategoryMarketing, PricingModel: ModelCBP2023, OpenedAt: 1750030073, ExpiresAt: 1750116473, OpenedBy: "wamid.out1", MetaConversationID: "72b14d6bd5407799e66f64d1b338e567"},
		&ConversationClosed{Account: fullAccount, ConversationID: "c/106540352242922/16505551234/1750030073", Category: CategoryMarketing, PricingModel: ModelCBP2023, OpenedAt: 1750030073, ClosedAt: 1750116473, Reason: CloseExpired},
		&MessageDispatched{Account: fullAccount, WAMID: "wamid.out1", SentAt: 1750030070, Kind: KindTemplate},
		&MessageDelivered{
			Account: fullAccount, WAMID: "wamid.out1", DeliveredAt: 1750030073, Kind: KindTemplate, KindSource: "send",
			TemplateCategory: CategoryUtility, InsideCSW: true, InsideFEP: true,
			Ours:             Verdict{Billable: true, Category: CategoryUtility, PricingType: PricingRegular, PricingModel: "PMP", ConversationID: "c1"},
			Meta:             &Verdict{Billable: true, Category: CategoryUtility, PricingType: PricingFreeCustomerService, PricingModel: "PMP", ConversationID: "72b1"},
			MetaConversation: &MetaConversation{ID: "72b1", ExpirationTimestamp: 1750116480, OriginType: CategoryUtility},
		},
		&Charge{Account: fullAccount, Unit: UnitMessage, PricingModel: ModelPMP, Category: CategoryMarketing, PricingType: PricingRegular, Billable: true, Reason: ReasonTemplateDelivered, WAMID: "wamid.out1", ConversationID: "c1", Kind: KindTemplate, Recipient: "16505551234", DeliveredAt: 1752000000, FreeAllowance: 1000},
		&PolicyViolation{Account: fullAccount, WAMID: "wamid.out2", Code: 131047, Reason: "free_form_outside_csw", At: 1752000100, Delivered: true},
		&Correction{Key: "106540352242922/16505551234", Retracts: []string{"a1b2/0", "a1b2/1"}, Reason: "late status reordered the pair", CausedBy: "c3d4"},
		&EventSetAside{Reason: SetAsideTooLate, InputID: "e5f6", InputType: TypeStatusUpdate, InputTime: 1750000000, StreamTime: 1750400000, Original: []byte(`{"v":1,"id":"e5f6"}`)},
		&DeadLetter{Reason: "decode event: malformed: unexpected end of JSON input", ErrorKind: string(ErrKindMalformed), Topic: "message-events", Partition: 2, Offset: 991, Key: []byte("106540352242922/16505551234"), Headers: map[string]string{"ce_type": "message.status.v1", "ce_id": "x"}, Original: []byte{'{', '"', 0xff, 0x00}},
	}
}

// fullEvents wraps fullPayloads in envelopes: inputs through New (ticks through NewTick), outputs
// with a cause and a derived id, as the engine writes them.
func fullEvents() []Event {
	var out []Event
	for _, p := range fullPayloads() {
		var e Event
		switch v := p.(type) {
		case *Tick:
			e = NewTick(v.Partition, 1750030080)
		default:
			if p.EventType().IsInput() {
				e = New(p)
			} else {
				e = Event{ID: DerivedID("9f8e7d6c5b4a39281706f5e4d3c2b1a0", 2), Type: p.EventType(), Key: "106540352242922/16505551234", Time: 1750030073, Cause: fullCause, Data: p}
			}
		}
		out = append(out, e)
	}
	return out
}
