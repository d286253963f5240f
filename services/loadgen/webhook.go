package loadgen

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/convmeter/convmeter/events"
)

// Meta's webhook shapes (domain.md §6), only the fields convmeter reads.
type whBody struct {
	Object string    `json:"object"`
	Entry  []whEntry `json:"entry"`
}

type whEntry struct {
	ID      string     `json:"id"`
	Changes []whChange `json:"changes"`
}

type whChange struct {
	Field string  `json:"field"`
	Value whValue `json:"value"`
}

type whValue struct {
	MessagingProduct string      `json:"messaging_product"`
	Metadata         whMetadata  `json:"metadata"`
	Contacts         []whContact `json:"contacts,omitempty"`
	Messages         []whMessage `json:"messages,omitempty"`
	Statuses         []whStatus  `json:"statuses,omitempty"`
}

type whMetadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

type whContact struct {
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
	WaID string `json:"wa_id"`
}

type whMessage struct {
	From      string `json:"from"`
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`
	Text      *struct {
		Body string `json:"body"`
	} `json:"text,omitempty"`
	Referral *events.Referral `json:"referral,omitempty"`
}

type whStatus struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Timestamp   string     `json:"timestamp"`
	RecipientID string     `json:"recipient_id"`
	Pricing     *whPricing `json:"pricing,omitempty"`
	Errors      []whError  `json:"errors,omitempty"`
}

type whPricing struct {
	Billable     *bool  `json:"billable,omitempty"`
	PricingModel string `json:"pricing_model"`
	Type         string `json:"type,omitempty"`
	Category     string `json:"category"`
}

type whError struct {
	Code  int    `json:"code"`
	Title string `json:"title"`
}

// Webhook renders webhook items as one Meta webhook POST body (object
// whatsapp_business_account): one entry per WABA, one messages change per phone number, in the
// order given. Items Meta does not send (outbound sends, account configs) are ErrNotWebhook.
func Webhook(items ...Item) ([]byte, error) {
	body := whBody{Object: "whatsapp_business_account"}
	entries := map[string]int{}
	changes := map[string][2]int{}
	for _, it := range items {
		var pn, display, waba string
		switch d := it.Event.Data.(type) {
		case *events.InboundMessage:
			pn, display, waba = d.PhoneNumberID, d.DisplayPhoneNumber, d.WABAID
		case *events.StatusUpdate:
			pn, waba = d.PhoneNumberID, d.WABAID
		default:
			return nil, fmt.Errorf("%s: %w", it.Event.Type, ErrNotWebhook)
		}
		ei, ok := entries[waba]
		if !ok {
			ei = len(body.Entry)
			entries[waba] = ei
			body.Entry = append(body.Entry, whEntry{ID: waba})
		}
		ci, ok := changes[pn]
		if !ok {
			ci = [2]int{ei, len(body.Entry[ei].Changes)}
			changes[pn] = ci
			body.Entry[ei].Changes = append(body.Entry[ei].Changes, whChange{Field: "messages",
				Value: whValue{MessagingProduct: "whatsapp", Metadata: whMetadata{PhoneNumberID: pn}}})
		}
		v := &body.Entry[ci[0]].Changes[ci[1]].Value
		if display != "" {
			v.Metadata.DisplayPhoneNumber = display
		}
		switch d := it.Event.Data.(type) {
		case *events.InboundMessage:
			c := whContact{WaID: d.WaID}
			c.Profile.Name = "User " + d.WaID[len(d.WaID)-4:]
			v.Contacts = append(v.Contacts, c)
			msg := whMessage{From: d.WaID, ID: d.WAMID, Timestamp: strconv.FormatInt(int64(d.Timestamp), 10), Type: d.MessageType,
				Referral: d.Referral}
			if d.MessageType == "text" {
				msg.Text = &struct {
					Body string `json:"body"`
				}{Body: "hello"}
			}
			v.Messages = append(v.Messages, msg)
		case *events.StatusUpdate:
			s := whStatus{ID: d.WAMID, Status: string(d.Status), Timestamp: strconv.FormatInt(int64(d.Timestamp), 10),
				RecipientID: d.RecipientID}
			if p := d.Pricing; p != nil {
				s.Pricing = &whPricing{Billable: p.Billable, PricingModel: p.PricingModel, Type: p.Type, Category: string(p.Category)}
			}
			for _, e := range d.Errors {
				s.Errors = append(s.Errors, whError{Code: e.Code, Title: e.Title})
			}
			v.Statuses = append(v.Statuses, s)
		}
	}
	return json.Marshal(body)
}
