package ratecard

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/convmeter/convmeter/events"
)

// Typed errors a caller branches on (errors.Is).
var (
	// ErrNoCard: no rate card for the currency is in force on the day.
	ErrNoCard = errors.New("no rate card in force")
	// ErrUnknownMarket: the market is not declared, or a recipient maps to no market.
	ErrUnknownMarket = errors.New("unknown market")
	// ErrNoRate: the card in force has no row for the market and category.
	ErrNoRate = errors.New("no rate for market and category")
)

// MaxTier is the upper bound written "MAX" in a tier range.
const MaxTier int64 = 1<<63 - 1

// Tier is one volume tier of a rate: it covers the n-th charged message of the month for
// Lower < n <= Upper (Meta's "lower:upper", so "0:1000" is messages 1..1000).
type Tier struct {
	Lower int64  `json:"lower"`
	Upper int64  `json:"upper"`
	Price Micros `json:"price_micros"`
}

// String formats t the way Meta does: "0:1000", "1000:MAX".
func (t Tier) String() string {
	u := "MAX"
	if t.Upper != MaxTier {
		u = strconv.FormatInt(t.Upper, 10)
	}
	return strconv.FormatInt(t.Lower, 10) + ":" + u
}

// Rate is the price of one (card, market, category): one tier, or several volume tiers ordered by
// Lower, contiguous from 0 to MAX.
type Rate struct {
	CardID   string          `json:"card_id"`
	Currency string          `json:"currency"`
	Market   string          `json:"market"`
	Category events.Category `json:"category"`
	Tiers    []Tier          `json:"tiers"`
}

// Tiered reports whether r has more than one volume tier.
func (r Rate) Tiered() bool { return len(r.Tiers) > 1 }

// TierAt returns the index of the tier the n-th (1-based) charged message falls in.
func (r Rate) TierAt(n int64) int {
	for i, t := range r.Tiers {
		if n <= t.Upper {
			return i
		}
	}
	return len(r.Tiers) - 1
}

// PriceAt is the price of the n-th (1-based) charged message of the month in r's volume group.
func (r Rate) PriceAt(n int64) Micros { return r.Tiers[r.TierAt(n)].Price }

// List is the price of the first tier: what a message costs before volume discounts.
func (r Rate) List() Micros { return r.Tiers[0].Price }

// Price is a quote: the card, the tier and the amount for one unit.
type Price struct {
	CardID string `json:"card_id"`
	Tier   Tier   `json:"tier"`
	Amount Micros `json:"amount_micros"`
}

type rateKey struct {
	market   string
	category events.Category
}

// Card is one rate-card file: prices for one currency from an effective day (inclusive, in the
// WABA's time zone) until an optional day (exclusive; otherwise until the next card).
type Card struct {
	ID       string
	Currency string
	From     string // YYYY-MM-DD
	Until    string // YYYY-MM-DD or ""
	File     string
	rates    map[rateKey]Rate
}

type prefixRow struct {
	prefix, market string
	from, until    string
	file           string
	line           int
}

// Book is a loaded, validated set of rate cards and market mappings. It is immutable and safe for
// concurrent use.
type Book struct {
	cards    map[string][]*Card // currency → cards sorted by From
	byID     map[string]*Card
	markets  map[string]bool
	prefixes map[string][]prefixRow // prefix → rows sorted by from
	maxLen   int
	digest   string
}

// Digest identifies what the book was loaded from: a SHA-256 over the files' contents in load
// order, names aside, so the shipped examples and a copy of them on disk have the same digest. A
// replay records it and refuses to resume with another book, which would price the lines before
// and after the interruption differently.
func (b *Book) Digest() string { return b.digest }

// LoadError names the file and line of a problem found while loading.
type LoadError struct {
	File string
	Line int
	Msg  string
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// KnownCategories are the categories a rate row may price.
var KnownCategories = []events.Category{
	events.CategoryMarketing, events.CategoryUtility, events.CategoryAuthentication,
	events.CategoryAuthenticationInternational, events.CategoryMarketingLite, events.CategoryService,
	events.CategoryBusinessInitiated, events.CategoryUserInitiated,
}

func knownCategory(c events.Category) bool {
	for _, k := range KnownCategories {
		if k == c {
			return true
		}
	}
	return false
}

// Load reads rate-card and market-map files (see the package doc for the format). A path that is a
// directory contributes every *.csv file in it, in name order. All problems found are returned
// together, each naming file and line.
func Load(paths ...string) (*Book, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("load rate cards: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.csv"))
		if err != nil {
			return nil, fmt.Errorf("load rate cards from %s: %w", p, err)
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	l := newLoader()
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("load rate cards: %w", err)
		}
		l.read(f, fh)
		_ = fh.Close()
	}
	return l.finish()
}

// Parse builds a Book from in-memory files (name → content); tests and embedded defaults use it.
func Parse(files map[string]string) (*Book, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	l := newLoader()
	for _, n := range names {
		l.read(n, strings.NewReader(files[n]))
	}
	return l.finish()
}

type pendingRate struct {
	card   *Card
	market string
	cat    events.Category
	tier   Tier
	line   int
}

type loader struct {
	sums    hash.Hash // of the files' own SHA-256 sums, in load order
	errs    []error
	book    *Book
	pending []pendingRate
	cardsIn []*Card
}

func newLoader() *loader {
	return &loader{sums: sha256.New(), book: &Book{
		cards: map[string][]*Card{}, byID: map[string]*Card{}, markets: map[string]bool{},
		prefixes: map[string][]prefixRow{},
	}}
}

func (l *loader) fail(file string, line int, format string, a ...any) {
	l.errs = append(l.errs, &LoadError{File: file, Line: line, Msg: fmt.Sprintf(format, a...)})
}

func validDay(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

func (l *loader) read(file string, r io.Reader) {
	data, err := io.ReadAll(r)
	if err != nil {
		l.fail(file, 0, "read: %v", err)
		return
	}
	sum := sha256.Sum256(data)
	l.sums.Write(sum[:])
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var card *Card
	kind := ""
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			l.fail(file, line, "%v", err)
			return
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		want := func(n int) bool {
			if len(rec) != n {
				l.fail(file, line, "%s row has %d fields, want %d", rec[0], len(rec), n)
				return false
			}
			return true
		}
		rowKind := "card"
		if rec[0] == "market" || rec[0] == "prefix" {
			rowKind = "markets"
		}
		if kind == "" {
			kind = rowKind
		} else if kind != rowKind {
			l.fail(file, line, "%s row in a %s file: a file is either a rate card or a market map", rec[0], kind)
			continue
		}
		switch rec[0] {
		case "card":
			if !want(3) {
				continue
			}
			if card == nil {
				card = &Card{File: file, rates: map[rateKey]Rate{}}
				l.cardsIn = append(l.cardsIn, card)
			}
			switch rec[1] {
			case "id":
				card.ID = rec[2]
			case "currency":
				if len(rec[2]) != 3 || strings.ToUpper(rec[2]) != rec[2] {
					l.fail(file, line, "currency %q is not an ISO 4217 code", rec[2])
				}
				card.Currency = rec[2]
			case "effective_from":
				if !validDay(rec[2]) {
					l.fail(file, line, "effective_from %q is not YYYY-MM-DD", rec[2])
				}
				card.From = rec[2]
			case "effective_until":
				if !validDay(rec[2]) {
					l.fail(file, line, "effective_until %q is not YYYY-MM-DD", rec[2])
				}
				card.Until = rec[2]
			default:
				l.fail(file, line, "unknown card attribute %q", rec[1])
			}
		case "rate":
			if !want(5) {
				continue
			}
			if card == nil {
				card = &Card{File: file, rates: map[rateKey]Rate{}}
				l.cardsIn = append(l.cardsIn, card)
			}
			cat := events.NormalizeCategory(rec[2])
			if !knownCategory(cat) {
				l.fail(file, line, "unknown category %q", rec[2])
				continue
			}
			tier, ok := l.parseTier(file, line, rec[3])
			if !ok {
				continue
			}
			p, err := ParseMicros(rec[4])
			if err != nil {
				l.fail(file, line, "price: %v", err)
				continue
			}
			if p < 0 {
				l.fail(file, line, "negative price %s", rec[4])
				continue
			}
			tier.Price = p
			l.pending = append(l.pending, pendingRate{card: card, market: rec[1], cat: cat, tier: tier, line: line})
		case "market":
			if !want(2) {
				continue
			}
			if rec[1] == "" {
				l.fail(file, line, "empty market name")
				continue
			}
			l.book.markets[rec[1]] = true
		case "prefix":
			if !want(5) {
				continue
			}
			if rec[1] == "" || strings.Trim(rec[1], "0123456789") != "" {
				l.fail(file, line, "calling-code prefix %q is not digits", rec[1])
				continue
			}
			if (rec[3] != "" && !validDay(rec[3])) || (rec[4] != "" && !validDay(rec[4])) {
				l.fail(file, line, "prefix dates %q, %q are not YYYY-MM-DD", rec[3], rec[4])
				continue
			}
			if rec[3] != "" && rec[4] != "" && rec[4] <= rec[3] {
				l.fail(file, line, "prefix %s: until %s is not after from %s", rec[1], rec[4], rec[3])
				continue
			}
			l.book.prefixes[rec[1]] = append(l.book.prefixes[rec[1]], prefixRow{
				prefix: rec[1], market: rec[2], from: rec[3], until: rec[4], file: file, line: line,
			})
		default:
			l.fail(file, line, "unknown row kind %q (want card, rate, market or prefix)", rec[0])
		}
	}
	if card != nil {
		if card.Currency == "" {
			l.fail(file, 0, "rate card has no currency (card,currency,XXX)")
		}
		if card.From == "" {
			l.fail(file, 0, "rate card has no effective date (card,effective_from,YYYY-MM-DD)")
		}
		if card.Until != "" && card.From != "" && card.Until <= card.From {
			l.fail(file, 0, "effective_until %s is not after effective_from %s", card.Until, card.From)
		}
		if card.ID == "" {
			card.ID = card.Currency + "@" + card.From
		}
	}
}

func (l *loader) parseTier(file string, line int, s string) (Tier, bool) {
	if s == "" {
		return Tier{Lower: 0, Upper: MaxTier}, true
	}
	lo, hi, ok := strings.Cut(s, ":")
	if !ok {
		l.fail(file, line, "tier %q is not lower:upper", s)
		return Tier{}, false
	}
	lower, err := strconv.ParseInt(lo, 10, 64)
	if err != nil || lower < 0 {
		l.fail(file, line, "tier %q: bad lower bound", s)
		return Tier{}, false
	}
	upper := MaxTier
	if hi != "MAX" && hi != "" {
		upper, err = strconv.ParseInt(hi, 10, 64)
		if err != nil || upper <= lower {
			l.fail(file, line, "tier %q: bad upper bound", s)
			return Tier{}, false
		}
	}
	return Tier{Lower: lower, Upper: upper}, true
}

func (l *loader) finish() (*Book, error) {
	b := l.book
	b.digest = hex.EncodeToString(l.sums.Sum(nil))
	// Rates: known markets, no duplicates, tiers contiguous from 0 to MAX.
	for _, p := range l.pending {
		if !b.markets[p.market] {
			l.fail(p.card.File, p.line, "unknown market %q (declare it with a market row in a market map)", p.market)
			continue
		}
		k := rateKey{p.market, p.cat}
		r := p.card.rates[k]
		r.Market, r.Category = p.market, p.cat
		for _, t := range r.Tiers {
			if t.Lower == p.tier.Lower {
				l.fail(p.card.File, p.line, "duplicate rate for %s %s tier %s", p.market, p.cat, p.tier)
			}
		}
		r.Tiers = append(r.Tiers, p.tier)
		p.card.rates[k] = r
	}
	for _, c := range l.cardsIn {
		for k, r := range c.rates {
			sort.Slice(r.Tiers, func(i, j int) bool { return r.Tiers[i].Lower < r.Tiers[j].Lower })
			next := int64(0)
			for _, t := range r.Tiers {
				if t.Lower != next {
					l.fail(c.File, 0, "%s %s: tiers not contiguous at %d (want lower bound %d)", k.market, k.category, t.Lower, next)
					break
				}
				next = t.Upper
			}
			if next != MaxTier {
				l.fail(c.File, 0, "%s %s: last tier must end at MAX", k.market, k.category)
			}
			r.CardID, r.Currency = c.ID, c.Currency
			c.rates[k] = r
		}
		if c.Currency == "" || c.From == "" {
			continue
		}
		if o, dup := b.byID[c.ID]; dup {
			l.fail(c.File, 0, "card id %q already used by %s", c.ID, o.File)
			continue
		}
		b.byID[c.ID] = c
		b.cards[c.Currency] = append(b.cards[c.Currency], c)
	}
	// Cards of one currency: no two in force on the same day.
	for _, cs := range b.cards {
		sort.Slice(cs, func(i, j int) bool { return cs[i].From < cs[j].From })
		for i := 1; i < len(cs); i++ {
			a, c := cs[i-1], cs[i]
			if a.From == c.From || (a.Until != "" && a.Until > c.From) {
				l.fail(c.File, 0, "card %s (%s from %s) overlaps card %s in %s (from %s until %q)", c.ID, c.Currency, c.From, a.ID, a.File, a.From, a.Until)
			}
		}
	}
	// Prefixes: known markets, no overlapping date ranges for one prefix.
	for p, rows := range b.prefixes {
		sort.Slice(rows, func(i, j int) bool { return rows[i].from < rows[j].from })
		for i, r := range rows {
			if !b.markets[r.market] {
				l.fail(r.file, r.line, "prefix %s maps to unknown market %q", p, r.market)
			}
			if i > 0 {
				prev := rows[i-1]
				if prev.until == "" || prev.until > r.from {
					l.fail(r.file, r.line, "prefix %s: dates overlap the row at %s:%d", p, prev.file, prev.line)
				}
			}
		}
		if len(p) > b.maxLen {
			b.maxLen = len(p)
		}
	}
	if len(l.errs) > 0 {
		return nil, fmt.Errorf("load rate cards: %w", errors.Join(l.errs...))
	}
	return b, nil
}

// Day is the civil date of t in t's own location, "YYYY-MM-DD". Callers pass the event time in the
// WABA's time zone: rate changes take effect at 12:00 AM there.
func Day(t time.Time) string { return t.Format(time.DateOnly) }

// Market returns the market of a recipient's wa_id digits on the day of at (in at's location), by
// longest calling-code prefix among the mappings in force that day.
func (b *Book) Market(recipient string, at time.Time) (string, bool) {
	return b.MarketOn(recipient, Day(at))
}

// MarketOn is Market for a civil date "YYYY-MM-DD".
func (b *Book) MarketOn(recipient, day string) (string, bool) {
	digits := strings.TrimPrefix(recipient, "+")
	n := min(len(digits), b.maxLen)
	for ; n > 0; n-- {
		for _, r := range b.prefixes[digits[:n]] {
			if (r.from == "" || r.from <= day) && (r.until == "" || day < r.until) {
				return r.market, true
			}
		}
	}
	return "", false
}

// Markets lists the declared markets, sorted.
func (b *Book) Markets() []string {
	out := make([]string, 0, len(b.markets))
	for m := range b.markets {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Card returns the card of currency in force on the day of at (in at's location).
func (b *Book) Card(currency string, at time.Time) (*Card, error) {
	return b.CardOn(currency, Day(at))
}

// CardOn is Card for a civil date "YYYY-MM-DD".
func (b *Book) CardOn(currency, day string) (*Card, error) {
	if c := b.cardOn(currency, day); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%s on %s: %w", currency, day, ErrNoCard)
}

func (b *Book) cardOn(currency, day string) *Card {
	cs := b.cards[currency]
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		if c.From <= day {
			if c.Until != "" && day >= c.Until {
				break
			}
			return c
		}
	}
	return nil
}

// Rate returns the rate for market and category on the card of currency in force on the day of
// at (in at's location).
func (b *Book) Rate(currency, market string, cat events.Category, at time.Time) (Rate, error) {
	return b.RateOn(currency, market, cat, Day(at))
}

// RateOn is Rate for a civil date "YYYY-MM-DD".
func (b *Book) RateOn(currency, market string, cat events.Category, day string) (Rate, error) {
	r, err := b.Lookup(currency, market, cat, day)
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, ErrUnknownMarket):
		return Rate{}, fmt.Errorf("market %q: %w", market, err)
	case errors.Is(err, ErrNoCard):
		return Rate{}, fmt.Errorf("%s on %s: %w", currency, day, err)
	default:
		return Rate{}, fmt.Errorf("card %s: %s %s: %w", b.cardOn(currency, day).ID, market, cat, err)
	}
}

// Lookup is RateOn returning the bare ErrUnknownMarket, ErrNoCard or ErrNoRate, without the
// context a message needs: for callers that price every event and only test the kind (a fifth
// of a batch in an unpriced market formatted an error each).
func (b *Book) Lookup(currency, market string, cat events.Category, day string) (Rate, error) {
	if !b.markets[market] {
		return Rate{}, ErrUnknownMarket
	}
	c := b.cardOn(currency, day)
	if c == nil {
		return Rate{}, ErrNoCard
	}
	r, ok := c.rates[rateKey{market, cat}]
	if !ok {
		return Rate{}, ErrNoRate
	}
	return r, nil
}

// CardRate returns the rate of a card by id, as the billing projection does when it settles lines
// priced earlier.
func (b *Book) CardRate(cardID, market string, cat events.Category) (Rate, bool) {
	c, ok := b.byID[cardID]
	if !ok {
		return Rate{}, false
	}
	r, ok := c.rates[rateKey{market, cat}]
	return r, ok
}

// Price quotes the n-th (1-based) charged message of the month in its volume group; n = 1 gives
// the list price. at is the delivery time in the WABA's time zone.
func (b *Book) Price(currency, market string, cat events.Category, n int64, at time.Time) (Price, error) {
	r, err := b.Rate(currency, market, cat, at)
	if err != nil {
		return Price{}, err
	}
	t := r.Tiers[r.TierAt(n)]
	return Price{CardID: r.CardID, Tier: t, Amount: t.Price}, nil
}
