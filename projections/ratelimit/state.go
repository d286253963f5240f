package ratelimit

import (
	"sort"
	"strconv"
	"strings"

	"github.com/convmeter/convmeter/events"
)

// Key names inside one partition's hash tag (see doc.go for the full layout). Wire data: only
// appended to.
const (
	kMeta        = "meta" // HASH: hw (high-water cause "offset:index"), st (stream time), lc (last counter trim), next (log position)
	kLimitPrefix = "lim:" // ZSET per scope: user → latest counted delivery time
	kLimitIdx    = "limk" // ZSET: scope → latest counted delivery time, to trim the counters
	kDeliveries  = "dlx:" // ZSET per day of delivery, score 0, lex members "scope|user|time12|id"
	kDeliveryIdx = "dlxk" // ZSET: day → its last second, to drop whole days
	kUndo        = "fx:"  // per hour of event time: "fx:<hour>:<bucket>" LIST logs of undo records of large batches, "fx:<hour>" HASH id → record of small ones (undolog.go)
	kUndoIdx     = "fxk"  // ZSET: hour → its last second, to drop whole hours
	kTputPrefix  = "tp:"  // HASH per phone number and hour: unix second → messages (inbound + outbound)
	kTputIdx     = "tpk"  // ZSET: "pn|hour" → the hour's last second
	kBuckets     = "pb:"  // HASH per hour of the bucket's time: pair key → token bucket "units:at"
	kBucketIdx   = "pbk"  // ZSET: hour → the last moment a bucket of that hour can still be short of full
	kPairs       = "pr"   // HASH: pair state fields, "pair|w" (service window) and "pair|c|category"
	kPairIdx     = "prt"  // ZSET: pair field → expiry, for trimming (written before the hour lists; still trimmed)
	kPairHour    = "prt:" // LIST per hour: pair fields set with an expiry in that hour, for trimming
	kPairHourIdx = "prtk" // ZSET: hour → its last second, to trim the fields of whole hours
	kHitPrefix   = "hit:" // ZSET per phone number: "user|wamid|id" → time of a would-be 131056
	kHitIdx      = "hitt" // ZSET: "pn|user|wamid|id" → time, for trimming
	kAccounts    = "acct" // ZSET, score 0, lex members: account facts by effective time
)

// Time buckets: undo records, buckets and throughput seconds live in hourly keys and counted
// deliveries in daily keys, so trimming drops whole keys instead of indexing every element.
func hourOf(t events.UnixTime) int64 { return int64(t) / int64(Hour) }

func dayOf(t events.UnixTime) int64 { return int64(t) / int64(Day) }

func hourEnd(h int64) events.UnixTime { return events.UnixTime((h+1)*int64(Hour) - 1) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func undoKey(t events.UnixTime) string { return kUndo + itoa(hourOf(t)) }

func bucketKey(h int64) string { return kBuckets + itoa(h) }

func deliveryKey(t events.UnixTime) string { return kDeliveries + itoa(dayOf(t)) }

func tputKey(pn string, h int64) string { return kTputPrefix + pn + ":" + itoa(h) }

const sep = "|"

// Scope names a messaging-limit counter: "pn:<phone_number_id>" before the portfolio switch and
// "pf:<portfolio_id>" from it on.
type Scope string

// PhoneScope and PortfolioScope build scopes.
func PhoneScope(phoneNumberID string) Scope { return Scope("pn:" + phoneNumberID) }

// PortfolioScope is the scope of a business portfolio.
func PortfolioScope(portfolioID string) Scope { return Scope("pf:" + portfolioID) }

// WABAScope names the tier Meta announced for a WABA (account webhooks name the WABA, not the
// number or portfolio). It is never a counter: TierOf consults it for the WABA's numbers and, from
// the portfolio era on, for the portfolio the WABA belongs to.
func WABAScope(wabaID string) Scope { return Scope("waba:" + wabaID) }

// ScopeFor is the counter a delivery of a counts toward at t: the number before the switch, the
// portfolio from then on (the number when its portfolio is unknown).
func ScopeFor(a events.Account, t events.UnixTime) Scope {
	if EraAt(t) == EraPortfolio && a.PortfolioID != "" {
		return PortfolioScope(a.PortfolioID)
	}
	return PhoneScope(a.PhoneNumberID)
}

// pad12 formats t with leading zeros so lexicographic order is time order.
func pad12(t events.UnixTime) string {
	s := strconv.FormatInt(int64(t), 10)
	if len(s) >= 12 {
		return s
	}
	return strings.Repeat("0", 12-len(s)) + s
}

func deliveryMember(s Scope, user string, t events.UnixTime, id string) string {
	return string(s) + sep + user + sep + pad12(t) + sep + id
}

// parseDeliveryMember splits a dlx member. Ids contain no "|".
func parseDeliveryMember(m string) (s Scope, user string, t events.UnixTime, id string, ok bool) {
	parts := strings.Split(m, sep)
	if len(parts) != 4 {
		return "", "", 0, "", false
	}
	v, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", "", 0, "", false
	}
	return Scope(parts[0]), parts[1], events.UnixTime(v), parts[3], true
}

func windowField(pair string) string { return pair + sep + "w" }

func convField(pair string, c events.Category) string { return pair + sep + "c" + sep + string(c) }

// ConvCategories are the conversation categories whose state is tracked per pair.
var ConvCategories = []events.Category{
	events.CategoryMarketing, events.CategoryUtility, events.CategoryAuthentication,
	events.CategoryAuthenticationInternational, events.CategoryMarketingLite, events.CategoryService,
	events.CategoryReferralConversion, events.CategoryBusinessInitiated, events.CategoryUserInitiated,
}

// Window is a pair's customer service window as the projection last saw it.
type Window struct {
	OpenedAt  events.UnixTime `json:"opened_at"`
	ExpiresAt events.UnixTime `json:"expires_at"`
	// EntryAt is the time of the newest entry-point (ad / page button) user message, 0 if none:
	// a reply delivered before EntryAt+24h opens a free-entry-point window (A9).
	EntryAt events.UnixTime `json:"entry_at,omitempty"`
}

// OpenAt reports whether the window is open at t (half-open [opened, expires), A13).
func (w Window) OpenAt(t events.UnixTime) bool { return w.OpenedAt <= t && t < w.ExpiresAt }

func (w Window) encode() string {
	var buf [64]byte // one allocation: the string
	b := strconv.AppendInt(buf[:0], int64(w.OpenedAt), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(w.ExpiresAt), 10)
	b = append(b, ' ')
	return string(strconv.AppendInt(b, int64(w.EntryAt), 10))
}

// ints parses n space-separated integers at the start of s and returns the rest.
// n is at most 3.
func ints(s string, n int) ([3]int64, string, bool) {
	var out [3]int64
	for i := range n {
		f, rest, _ := strings.Cut(s, " ")
		v, ok := parseInt(f)
		if !ok {
			return out, "", false
		}
		out[i], s = v, rest
	}
	return out, s, true
}

// parseInt is strconv.ParseInt(s, 10, 64) without the error value, which allocates on every
// failure (decoding a value of the wrong shape is routine here).
func parseInt(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	if len(s) > 18 { // 18 characters cannot overflow
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	}
	neg := s[0] == '-'
	if neg || s[0] == '+' {
		s = s[1:]
		if s == "" {
			return 0, false
		}
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

func decodeWindow(s string) (Window, bool) {
	v, rest, ok := ints(s, 3)
	if !ok || rest != "" {
		return Window{}, false
	}
	return Window{OpenedAt: events.UnixTime(v[0]), ExpiresAt: events.UnixTime(v[1]), EntryAt: events.UnixTime(v[2])}, true
}

// Conversation is an open conversation of a pair (a CBP conversation or a free-entry-point window).
type Conversation struct {
	ID        string          `json:"conversation_id"`
	Category  events.Category `json:"category"`
	OpenedAt  events.UnixTime `json:"opened_at"`
	ExpiresAt events.UnixTime `json:"expires_at"`
}

// OpenAt reports whether the conversation is open at t.
func (c Conversation) OpenAt(t events.UnixTime) bool { return c.OpenedAt <= t && t < c.ExpiresAt }

func (c Conversation) encode() string {
	var buf [64]byte
	b := strconv.AppendInt(buf[:0], int64(c.OpenedAt), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(c.ExpiresAt), 10)
	b = append(b, ' ')
	return string(append(b, c.ID...))
}

func decodeConversation(cat events.Category, s string) (Conversation, bool) {
	v, id, ok := ints(s, 2)
	if !ok {
		return Conversation{}, false
	}
	return Conversation{ID: id, Category: cat, OpenedAt: events.UnixTime(v[0]), ExpiresAt: events.UnixTime(v[1])}, true
}

// sortedKeys returns m's keys in order, so ops are emitted deterministically.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
