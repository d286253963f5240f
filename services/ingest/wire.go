package ingest

import (
	"bytes"
	"fmt"
	json "github.com/segmentio/encoding/json"
	"strconv"
	"strings"

	"github.com/convmeter/convmeter/events"
)

// Meta's webhook JSON, decoded tolerantly: ids and numbers may come as strings or numbers, unknown
// fields are ignored, and arrays of elements stay raw so that one bad element is set aside alone.

type wireWebhook struct {
	Object string            `json:"object"`
	Entry  []json.RawMessage `json:"entry"`
}

type wireEntry struct {
	ID      flexString        `json:"id"`
	Time    events.UnixTime   `json:"time"`
	Changes []json.RawMessage `json:"changes"`
}

type wireChange struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
}

type wireMessagesValue struct {
	MessagingProduct string `json:"messaging_product"`
	Metadata         struct {
		DisplayPhoneNumber flexString `json:"display_phone_number"`
		PhoneNumberID      flexString `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []json.RawMessage `json:"contacts"`
	Messages []json.RawMessage `json:"messages"`
	Statuses []json.RawMessage `json:"statuses"`
	Errors   []json.RawMessage `json:"errors"`
}

type wireContact struct {
	WaID   flexString `json:"wa_id"`
	UserID flexString `json:"user_id"`
}

type wireInbound struct {
	From       flexString      `json:"from"`
	FromUserID flexString      `json:"from_user_id"`
	UserID     flexString      `json:"user_id"`
	ID         string          `json:"id"`
	Timestamp  events.UnixTime `json:"timestamp"`
	Type       string          `json:"type"`
	Context    *struct {
		ID string `json:"id"`
	} `json:"context"`
	Referral *struct {
		SourceType string `json:"source_type"`
		SourceID   string `json:"source_id"`
		SourceURL  string `json:"source_url"`
		CtwaClid   string `json:"ctwa_clid"`
	} `json:"referral"`
	Errors []struct {
		Code flexInt `json:"code"`
	} `json:"errors"`
	System *struct {
		Type     string     `json:"type"`
		NewWaID  flexString `json:"new_wa_id"`
		WaID     flexString `json:"wa_id"`
		Customer flexString `json:"customer"`
	} `json:"system"`
}

type wireStatus struct {
	ID                     string          `json:"id"`
	Status                 string          `json:"status"`
	Timestamp              events.UnixTime `json:"timestamp"`
	RecipientID            flexString      `json:"recipient_id"`
	RecipientUserID        flexString      `json:"recipient_user_id"`
	RecipientType          string          `json:"recipient_type"`
	RecipientParticipantID flexString      `json:"recipient_participant_id"`
	Conversation           *struct {
		ID                  string          `json:"id"`
		ExpirationTimestamp events.UnixTime `json:"expiration_timestamp"`
		Origin              *struct {
			Type string `json:"type"`
		} `json:"origin"`
	} `json:"conversation"`
	Pricing *struct {
		Billable     *flexBool `json:"billable"`
		PricingModel string    `json:"pricing_model"`
		Type         string    `json:"type"`
		PricingType  string    `json:"pricing_type"`
		Category     string    `json:"category"`
	} `json:"pricing"`
	Errors []struct {
		Code  flexInt `json:"code"`
		Title string  `json:"title"`
	} `json:"errors"`
}

type wireQualityUpdate struct {
	DisplayPhoneNumber flexString      `json:"display_phone_number"`
	Event              string          `json:"event"`
	CurrentLimit       json.RawMessage `json:"current_limit"`
	PerBusiness        json.RawMessage `json:"max_daily_conversations_per_business"`
}

type wireCapabilityUpdate struct {
	PerPhone    json.RawMessage `json:"max_daily_conversation_per_phone"`
	PerBusiness json.RawMessage `json:"max_daily_conversations_per_business"`
}

type wireAccountUpdate struct {
	Event          string `json:"event"`
	VolumeTierInfo *struct {
		TierUpdateTime  events.UnixTime `json:"tier_update_time"`
		PricingCategory string          `json:"pricing_category"`
		Tier            string          `json:"tier"`
		EffectiveMonth  string          `json:"effective_month"`
		Region          string          `json:"region"`
	} `json:"volume_tier_info"`
}

type wireTemplateCategory struct {
	TemplateID       flexString `json:"message_template_id"`
	TemplateName     string     `json:"message_template_name"`
	PreviousCategory string     `json:"previous_category"`
	NewCategory      string     `json:"new_category"`
}

// flexString accepts a JSON string or number (Meta's ids are strings, some clients send numbers).
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		*s = flexString(b[1 : len(b)-1])
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return &events.FieldError{Field: "id", Problem: "want a string or a number, got " + truncate(string(b), 40)}
	}
	*s = flexString(n.String())
	return nil
}

// flexInt accepts a JSON number or a numeric string.
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := string(bytes.Trim(b, `"`))
	v, err := strconv.Atoi(s)
	if err != nil {
		return &events.FieldError{Field: "code", Problem: "want an integer, got " + truncate(string(b), 40)}
	}
	*n = flexInt(v)
	return nil
}

// flexBool accepts true/false or "true"/"false".
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	switch string(bytes.Trim(b, `"`)) {
	case "true":
		*v = true
	case "false":
		*v = false
	default:
		return &events.FieldError{Field: "billable", Problem: "want a boolean, got " + truncate(string(b), 40)}
	}
	return nil
}

// tierOf reads a messaging-limit tier given as a Meta enum ("TIER_2K") or a number (2000; -1 is
// unlimited, as in business_capability_update). ok is false when raw is absent.
func tierOf(raw json.RawMessage) (tier string, ok bool, err error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", false, nil
	}
	s := string(bytes.Trim(raw, `"`))
	if n, perr := strconv.Atoi(s); perr == nil {
		t, known := tierByNumber[n]
		if !known {
			return "", true, &events.FieldError{Field: "limit", Problem: fmt.Sprintf("%d is not a known messaging limit", n)}
		}
		return t, true, nil
	}
	switch {
	case s == "UNLIMITED" || s == "unlimited":
		return "TIER_UNLIMITED", true, nil
	case len(s) > 5 && (s[:5] == "TIER_" || s[:5] == "tier_"):
		return "TIER_" + upper(s[5:]), true, nil
	}
	return "", true, &events.FieldError{Field: "limit", Problem: fmt.Sprintf("%q is not a messaging-limit tier", truncate(s, 40))}
}

var tierByNumber = map[int]string{
	-1: "TIER_UNLIMITED", 50: "TIER_50", 250: "TIER_250", 1000: "TIER_1K", 2000: "TIER_2K",
	10000: "TIER_10K", 100000: "TIER_100K",
}

func upper(s string) string { return string(bytes.ToUpper([]byte(s))) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
