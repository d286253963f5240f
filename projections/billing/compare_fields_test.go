package billing

import (
	"slices"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// Fields Meta did not send are not differences; fields it sent are.
func TestCompareOnlyWhatMetaSent(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ours, meta events.Verdict
		want       []string
	}{
		{"CBP webhook without pricing.type",
			events.Verdict{Billable: true, Category: "marketing", PricingType: events.PricingRegular, PricingModel: "CBP", ConversationID: "c1"},
			events.Verdict{Billable: true, Category: "marketing", PricingModel: "CBP", ConversationID: "m1"}, nil},
		{"PMP v23 per-message conversation id",
			events.Verdict{Billable: true, Category: "marketing", PricingType: events.PricingRegular, PricingModel: "PMP"},
			events.Verdict{Billable: true, Category: "marketing", PricingType: events.PricingRegular, PricingModel: "PMP", ConversationID: "per-message"}, nil},
		{"type sent and different",
			events.Verdict{Billable: false, Category: "utility", PricingType: events.PricingFreeCustomerService, PricingModel: "PMP"},
			events.Verdict{Billable: true, Category: "utility", PricingType: events.PricingRegular, PricingModel: "PMP"},
			[]string{DiffBillable, DiffPricingType}},
		{"CBP conversation missing on our side",
			events.Verdict{Billable: false, Category: "service", PricingModel: "CBP"},
			events.Verdict{Billable: false, Category: "service", PricingModel: "CBP", ConversationID: "m2"},
			[]string{DiffConversation}},
		{"category spelling is not a difference",
			events.Verdict{Billable: true, Category: "authentication_international", PricingType: events.PricingRegular, PricingModel: "PMP"},
			events.Verdict{Billable: true, Category: "authentication-international", PricingType: events.PricingRegular, PricingModel: "PMP"}, nil},
	} {
		if got := Compare(tc.ours, tc.meta); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
