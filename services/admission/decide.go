package admission

import (
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratelimit"
)

// Request asks: may PhoneNumberID send a message of Kind (and template Category) to User at At
// (0: now), and what will it cost?
type Request struct {
	PhoneNumberID string             `json:"phone_number_id"`
	User          string             `json:"user"` // wa_id digits (the market comes from its calling code), or BSUID
	Kind          events.MessageKind `json:"kind"` // template or free_form
	Category      events.Category    `json:"category,omitempty"`
	At            events.UnixTime    `json:"at,omitempty"`
}

// Reason codes a refusal carries. The list is only appended to.
const (
	ReasonMessagingLimit = "messaging_limit_reached"
	ReasonPairRate       = "pair_rate_limit"
	ReasonOutsideWindow  = "outside_service_window"
	ReasonThroughput     = "throughput_limit"
)

// Refusal is one reason a message would be refused, with Meta's error code where there is one
// and when to try again where that is known.
type Refusal struct {
	Reason    string          `json:"reason"`
	ErrorCode int             `json:"error_code,omitempty"`
	RetryAt   events.UnixTime `json:"retry_at,omitempty"`
	Detail    string          `json:"detail,omitempty"`
}

// Decision answers a Request.
type Decision struct {
	Allowed  bool            `json:"allowed"`
	Refusals []Refusal       `json:"refusals,omitempty"`
	At       events.UnixTime `json:"at"`

	PricingModel events.PricingModel `json:"pricing_model"`
	// Category is the billing category; PriceCategory the rate-card row it is priced at.
	Category          events.Category    `json:"category"`
	PriceCategory     events.Category    `json:"price_category,omitempty"`
	PricingType       events.PricingType `json:"pricing_type,omitempty"`
	Charged           bool               `json:"charged"`
	OpensConversation bool               `json:"opens_conversation"`
	// ConversationCategory is the CBP conversation it opens (referral_conversion for an FEP).
	ConversationCategory events.Category `json:"conversation_category,omitempty"`
	// CoveredBy names the open conversation that already paid for it (CBP).
	CoveredBy string `json:"covered_by,omitempty"`
	OpensFEP  bool   `json:"opens_fep"`
	Why       string `json:"why"`

	ServiceWindow WindowInfo     `json:"service_window"`
	Limit         LimitInfo      `json:"messaging_limit"`
	PairRate      PairRateInfo   `json:"pair_rate"`
	Throughput    ThroughputInfo `json:"throughput"`
	Price         *Price         `json:"price,omitempty"`
	PriceError    string         `json:"price_error,omitempty"`
}

// WindowInfo is the pair's customer service window and free-entry-point state at the moment.
type WindowInfo struct {
	Open      bool            `json:"open"`
	ExpiresAt events.UnixTime `json:"expires_at,omitempty"`
	FEPOpen   bool            `json:"fep_open"`
}

// LimitInfo is the messaging-limit counter the message would count toward.
type LimitInfo struct {
	Scope       ratelimit.Scope `json:"scope"`
	Tier        ratelimit.Tier  `json:"tier"`
	Limit       int64           `json:"limit,omitempty"`
	Unlimited   bool            `json:"unlimited"`
	Used        int64           `json:"used"`
	UsedExact   bool            `json:"used_exact"` // false: an upper bound that already decided
	UserCounted bool            `json:"user_counted"`
	Counts      bool            `json:"counts"` // the delivery would count (outside the window)
}

// PairRateInfo is the pair's token bucket at the moment.
type PairRateInfo struct {
	Tokens     int64 `json:"tokens"`
	RetryAfter int64 `json:"retry_after_s,omitempty"`
}

// ThroughputInfo is the number's messages in the second asked about.
type ThroughputInfo struct {
	Current  int64 `json:"current"`
	LimitMPS int   `json:"limit_mps"`
}

// Timeline gives the pricing model in force at a moment in the WABA's time zone (domain A2).
type Timeline func(t time.Time) events.PricingModel

// DefaultTimeline is the timeline of domain A2 with its switch dates at midnight in the WABA's
// time zone. The operator's timeline file, when the lead wires one, replaces it.
func DefaultTimeline(t time.Time) events.PricingModel {
	d := t.Format(time.DateOnly)
	switch {
	case d >= "2026-10-01":
		return events.ModelPMP2026
	case d >= "2025-07-01":
		return events.ModelPMP
	case d >= "2023-06-01":
		return events.ModelCBP2023
	}
	return events.ModelCBP2022
}

// serviceFreeFrom is when CBP service conversations became free (2024-11-01, §1.1).
const serviceFreeFrom = "2024-11-01"

// Decide answers req from the state snapshot and the pricing model in force. It is pure: the
// price is added by the caller. local is At in the WABA's time zone.
func Decide(req Request, snap ratelimit.Snapshot, model events.PricingModel, local time.Time) Decision {
	at := snap.At
	d := Decision{At: at, PricingModel: model}
	w := snap.Pair.Window
	csw := snap.Pair.WindowKnown && w.OpenAt(at)
	var fep *ratelimit.Conversation
	open := map[events.Category]ratelimit.Conversation{}
	for _, c := range snap.Pair.Conversations {
		if !c.OpenAt(at) {
			continue
		}
		open[c.Category] = c
		if c.Category == events.CategoryReferralConversion {
			c := c
			fep = &c
		}
	}
	d.ServiceWindow = WindowInfo{Open: csw, FEPOpen: fep != nil}
	if csw {
		d.ServiceWindow.ExpiresAt = w.ExpiresAt
	}
	// A reply within 24 h of an entry-point message opens a free-entry-point window (A9).
	entry := snap.Pair.WindowKnown && w.EntryAt > 0 && w.EntryAt <= at && at < w.EntryAt+ratelimit.Day
	d.OpensFEP = fep == nil && entry

	// Refusals.
	if req.Kind == events.KindFreeForm && !csw {
		d.Refusals = append(d.Refusals, Refusal{Reason: ReasonOutsideWindow, ErrorCode: ratelimit.ErrOutsideWindow,
			Detail: "free-form messages need an open customer service window; send a template"})
	}
	limit, limited := snap.Tier.Limit()
	d.Limit = LimitInfo{Scope: snap.Scope, Tier: snap.Tier, Unlimited: !limited, Used: snap.Used,
		UsedExact: snap.Exact, UserCounted: snap.UserCounted, Counts: !csw}
	if !snap.TierSet {
		d.Limit.Tier = ratelimit.DefaultTier
	}
	if limited {
		d.Limit.Limit = limit
		if !csw && !snap.UserCounted && snap.Used+1 > limit {
			r := Refusal{Reason: ReasonMessagingLimit,
				Detail: "the user would be a new distinct user outside a service window in the moving 24 h"}
			if snap.Limit.HeadroomAt > at {
				r.RetryAt = snap.Limit.HeadroomAt
			}
			d.Refusals = append(d.Refusals, r)
		}
	}
	b := snap.Pair.Bucket
	d.PairRate = PairRateInfo{Tokens: b.Tokens(at), RetryAfter: b.RetryAfter(at)}
	if d.PairRate.Tokens < 1 {
		d.Refusals = append(d.Refusals, Refusal{Reason: ReasonPairRate, ErrorCode: ratelimit.ErrPairRate,
			RetryAt: at + events.UnixTime(d.PairRate.RetryAfter)})
	}
	mps := snap.Config.MPS()
	d.Throughput = ThroughputInfo{Current: snap.Second, LimitMPS: mps}
	if snap.Second >= int64(mps) {
		d.Refusals = append(d.Refusals, Refusal{Reason: ReasonThroughput, ErrorCode: ratelimit.ErrThroughput, RetryAt: at + 1})
	}
	d.Allowed = len(d.Refusals) == 0

	// Billing.
	cat := events.NormalizeCategory(string(req.Category))
	if req.Kind == events.KindFreeForm {
		cat = events.CategoryService
	}
	d.Category, d.PriceCategory = cat, cat
	free := func(t events.PricingType, why string) {
		d.PricingType, d.Charged, d.PriceCategory, d.Why = t, false, "", why
	}
	charged := func(why string) { d.PricingType, d.Charged, d.Why = events.PricingRegular, true, why }

	if model.IsCBP() {
		if model == events.ModelCBP2022 {
			if req.Kind == events.KindFreeForm {
				cat = events.CategoryUserInitiated
			} else {
				cat = events.CategoryBusinessInitiated
			}
			d.Category, d.PriceCategory = cat, cat
		}
		switch {
		case fep != nil:
			d.CoveredBy = fep.ID
			free(events.PricingFreeEntryPoint, "inside an open free-entry-point conversation")
			return d
		case d.OpensFEP:
			d.OpensConversation, d.ConversationCategory = true, events.CategoryReferralConversion
			free(events.PricingFreeEntryPoint, "a reply within 24 h of an entry-point message opens a free 72 h conversation")
			return d
		}
		if req.Kind == events.KindFreeForm && len(open) > 0 {
			for _, c := range ratelimit.ConvCategories {
				if oc, ok := open[c]; ok {
					d.CoveredBy = oc.ID
					break
				}
			}
			free("", "a non-template message inside an open conversation opens nothing")
			return d
		}
		if oc, ok := open[cat]; ok {
			d.CoveredBy = oc.ID
			free("", "inside an open conversation of the same category")
			return d
		}
		d.OpensConversation, d.ConversationCategory = true, cat
		if cat == events.CategoryService && local.Format(time.DateOnly) >= serviceFreeFrom {
			free(events.PricingFreeCustomerService, "service conversations are free from 2024-11-01")
			return d
		}
		charged("opens a new conversation")
		return d
	}
	// Per-message pricing.
	switch {
	case fep != nil:
		free(events.PricingFreeEntryPoint, "inside an open free-entry-point window")
	case d.OpensFEP:
		d.OpensConversation, d.ConversationCategory = true, events.CategoryReferralConversion
		free(events.PricingFreeEntryPoint, "a reply within 24 h of an entry-point message opens a free 72 h window")
	case req.Kind == events.KindFreeForm && model == events.ModelPMP2026:
		d.PriceCategory = events.CategoryUtility
		charged("service messages are charged at the utility rate from 2026-10-01")
	case req.Kind == events.KindFreeForm:
		free(events.PricingFreeCustomerService, "non-template messages are free inside the service window")
	case cat == events.CategoryUtility && csw && model == events.ModelPMP:
		free(events.PricingFreeCustomerService, "utility templates are free inside the service window")
	default:
		charged("a delivered template is charged by category")
	}
	return d
}
