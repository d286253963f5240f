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

// TestCompareCategorySpellings: Compare, which normalises categories only when they are spelled
// differently, finds a category difference exactly when the normalised categories differ.
func TestCompareCategorySpellings(t *testing.T) {
	spellings := []events.Category{"", "marketing", "Marketing", " marketing ", "utility", "UTILITY", "service",
		"customer_initiated", "customer-initiated", "user_initiated", "free_entry", "free_entry_point",
		"referral_conversion", "authentication", "authentication-international", "authentication_international"}
	for _, a := range spellings {
		for _, b := range spellings {
			ours, meta := events.Verdict{Category: a}, events.Verdict{Category: b}
			want := b != "" && events.NormalizeCategory(string(a)) != events.NormalizeCategory(string(b))
			if got := slices.Contains(Compare(ours, meta), DiffCategory); got != want {
				t.Errorf("Compare(%q, %q): category difference %v, want %v", a, b, got, want)
			}
		}
	}
}
