package billing

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // WABA time zones must resolve the same on every machine

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

// PricingFreeTier is the pricing type of a CBP conversation inside the monthly free tier. It is
// ours: the engine never decides it, settlement does (see the package doc).
const PricingFreeTier events.PricingType = "free_tier"

// Unpriced reasons. The list is only appended to.
const (
	UnpricedNotConfigured = "account_not_configured"
	UnpricedNoCurrency    = "no_currency"
	UnpricedBadTimeZone   = "bad_time_zone"
	UnpricedUnknownMarket = "unknown_market"
	UnpricedNoCard        = "no_rate_card"
	UnpricedNoRate        = "no_rate"
)

// FreeTierSize is the CBP monthly free allowance per WABA (domain §1.8).
const FreeTierSize = 1000

// PricingFreeAllowance is the pricing type of a PMP-2026 service message within its number's
// monthly free allowance, an UNCONFIRMED rule the operator switches on in the pricing timeline
// (charge free_allowance). Like the free tier it is decided at query time.
const PricingFreeAllowance events.PricingType = "free_allowance"

// faGroup is the allowance group of a line: its number's month, with the allowance in the name
// (a timeline edit that changes it starts a new group rather than re-ranking the old one).
func faGroup(l *Line, allowance int) string {
	return "fa|" + strconv.Itoa(allowance) + "|" + l.WABA + "|" + l.Number + "|" + l.Month
}

// groupLimit is how many of a free-tier or allowance group's lines (by delivery time, then id)
// are free; ok is false for other groups.
func (s *Store) groupLimit(g string) (limit int64, ok bool) {
	switch {
	case strings.HasPrefix(g, "ft|"):
		return s.freeTier, true
	case strings.HasPrefix(g, "fa|"):
		n, _, _ := strings.Cut(g[3:], "|")
		v, err := strconv.ParseInt(n, 10, 64)
		return v, err == nil && v > 0
	}
	return 0, false
}

// freeType is the settled pricing type of a line a free-tier or allowance group made free.
func freeType(g string) events.PricingType {
	if strings.HasPrefix(g, "fa|") {
		return PricingFreeAllowance
	}
	return PricingFreeTier
}

// UnconfiguredWABA stands for the WABA of events no account configuration covered.
const UnconfiguredWABA = "-"

// Line is one ledger line: the billing consequence of one charge event, priced at apply time at
// the list price (first volume tier, before the free tier). Settle turns it into the final amount.
type Line struct {
	ID             string              `json:"id"`
	Pair           string              `json:"pair"`
	WABA           string              `json:"waba"`
	Number         string              `json:"number"`
	Portfolio      string              `json:"portfolio,omitempty"`
	Month          string              `json:"month"`
	Market         string              `json:"market,omitempty"`
	Category       events.Category     `json:"category"`
	Model          events.PricingModel `json:"pricing_model"`
	PricingType    events.PricingType  `json:"pricing_type"`
	Unit           events.ChargeUnit   `json:"unit"`
	Billable       bool                `json:"billable"`
	Reason         string              `json:"reason"`
	WAMID          string              `json:"wamid"`
	ConversationID string              `json:"conversation_id,omitempty"`
	At             events.UnixTime     `json:"at"`
	Currency       string              `json:"currency,omitempty"`
	CardID         string              `json:"card_id,omitempty"`
	List           ratecard.Micros     `json:"list_micros"`
	Unpriced       string              `json:"unpriced,omitempty"`
	// Group is the free-tier group ("ft|<waba>|<month>") or volume-tier group
	// ("vt|<portfolio>|<month>|<market>|<category>|<card>") the line is ranked in, or "".
	Group string `json:"group,omitempty"`
}

// Key is the line's place in event order: delivery time, then event id.
func (l Line) Key() OrderKey { return OrderKey{At: int64(l.At), ID: l.ID} }

// WM is the WABA-month the line is totalled under.
func (l Line) WM() string { return l.WABA + "|" + l.Month }

// OrderKey orders the lines of a group: by time, then id (bytewise), across all partitions.
type OrderKey struct {
	At int64
	ID string
}

// Less reports whether k comes before o.
func (k OrderKey) Less(o OrderKey) bool {
	if k.At != o.At {
		return k.At < o.At
	}
	return k.ID < o.ID
}

// Pricer turns charge events into lines. It holds the rate book and a cache of time zones; it does
// no I/O beyond loading tzdata and reads no clock.
type Pricer struct {
	book *ratecard.Book
	mu   sync.Mutex                                // serialises additions to locs
	locs atomic.Pointer[map[string]*time.Location] // copied on write: lookups take no lock
}

// NewPricer returns a Pricer over book.
func NewPricer(book *ratecard.Book) (*Pricer, error) {
	if book == nil {
		return nil, errors.New("billing: nil rate book")
	}
	p := &Pricer{book: book}
	p.locs.Store(&map[string]*time.Location{})
	return p, nil
}

func (p *Pricer) loc(tz string) (*time.Location, bool) {
	if l, ok := (*p.locs.Load())[tz]; ok {
		return l, l != nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.locs.Load()
	if l, ok := old[tz]; ok {
		return l, l != nil
	}
	l, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		l = nil
	}
	m := make(map[string]*time.Location, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[tz] = l
	p.locs.Store(&m)
	return l, l != nil
}

// civilDay is ratecard.Day (time.DateOnly) without the formatting machinery.
func civilDay(t time.Time) string {
	y, m, d := t.Date()
	if y < 1000 || y > 9999 {
		return ratecard.Day(t)
	}
	b := [10]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
		byte('0' + int(m)/10), byte('0' + int(m)%10), '-', byte('0' + d/10), byte('0' + d%10)}
	return string(b[:])
}

// freeTierEligible: CBP-2022 conversations of any kind until 2023-05, CBP-2023 service
// conversations until 2024-10 (domain §1.8, §3.4), by the month in the WABA's time zone.
func freeTierEligible(c *events.Charge, month string) bool {
	if c.Unit != events.UnitConversation || !c.Billable {
		return false
	}
	switch c.PricingModel {
	case events.ModelCBP2022:
		return month <= "2023-05"
	case events.ModelCBP2023:
		return c.Category == events.CategoryService && month <= "2024-10"
	default: // PMP models have no free tier
		return false
	}
}

// volumeTiered: PMP utility and authentication messages that are charged (domain §3.2).
func volumeTiered(c *events.Charge) bool {
	if c.Unit != events.UnitMessage || !c.Billable {
		return false
	}
	if c.PricingModel != events.ModelPMP && c.PricingModel != events.ModelPMP2026 {
		return false
	}
	return c.Category == events.CategoryUtility || c.Category == events.CategoryAuthentication
}

// Line prices one charge event.
func (p *Pricer) Line(e events.Event, c *events.Charge) Line {
	l := Line{
		ID: e.ID, Pair: e.Key, WABA: c.WABAID, Number: c.PhoneNumberID, Portfolio: c.PortfolioID,
		Month: c.Month, Category: c.Category, Model: c.PricingModel, PricingType: c.PricingType,
		Unit: c.Unit, Billable: c.Billable, Reason: c.Reason, WAMID: c.WAMID,
		ConversationID: c.ConversationID, At: c.DeliveredAt, Currency: c.Currency,
	}
	if l.WABA == "" {
		l.WABA = UnconfiguredWABA
	}
	if l.Month == "" {
		l.Month = c.DeliveredAt.Time().Format("2006-01")
	}
	if l.Number == "" {
		l.Number, _, _ = events.SplitPairKey(e.Key)
	}
	loc, locOK := p.loc(c.TimeZone)
	var day string // the delivery day in the WABA's time zone
	if locOK {
		day = civilDay(c.DeliveredAt.Time().In(loc))
		l.Market, _ = p.book.MarketOn(c.Recipient, day)
	}
	if freeTierEligible(c, l.Month) {
		l.Group = ftGroup(&l)
	}
	if c.FreeAllowance > 0 && c.Billable && c.Reason == events.ReasonServiceCharged {
		l.Group = faGroup(&l, c.FreeAllowance)
	}
	if !c.Billable {
		return l
	}
	switch {
	case !c.Configured:
		l.Unpriced = UnpricedNotConfigured
	case c.Currency == "":
		l.Unpriced = UnpricedNoCurrency
	case !locOK:
		l.Unpriced = UnpricedBadTimeZone
	case l.Market == "":
		l.Unpriced = UnpricedUnknownMarket
	}
	if l.Unpriced != "" {
		return l
	}
	r, err := p.book.Lookup(c.Currency, l.Market, c.Category, day)
	if errors.Is(err, ratecard.ErrNoRate) && c.Category == events.CategoryService && c.PricingModel == events.ModelPMP2026 {
		// PMP-2026: service messages are charged at the market's utility rate, without tiers (§3.3).
		r, err = p.book.Lookup(c.Currency, l.Market, events.CategoryUtility, day)
		r.Tiers = r.Tiers[:min(1, len(r.Tiers))]
	}
	switch {
	case errors.Is(err, ratecard.ErrNoCard):
		l.Unpriced = UnpricedNoCard
		return l
	case errors.Is(err, ratecard.ErrUnknownMarket):
		l.Unpriced = UnpricedUnknownMarket
		return l
	case err != nil:
		l.Unpriced = UnpricedNoRate
		return l
	}
	l.CardID, l.List = r.CardID, r.List()
	if volumeTiered(c) {
		l.Group = vtGroup(&l)
	}
	return l
}
