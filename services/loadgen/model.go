package loadgen

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/convmeter/convmeter/events"
)

// Config sizes the traffic model. Zero values take the defaults noted.
type Config struct {
	// Seed makes the traffic: equal configs give equal items, in the same order.
	Seed uint64
	// WABAs is the number of business accounts (default 2), each in its own time zone, all in one
	// portfolio; Numbers is the number of business phone numbers spread over them (default 4).
	WABAs, Numbers int
	// UsersPerNumber is the user population each number talks to (default 2000).
	UsersPerNumber int
	// Start is the simulated time of the first session (default 2025-07-01T00:00:00Z, per-message
	// pricing); Duration the simulated span in which sessions start (default 24 h).
	Start    time.Time
	Duration time.Duration
	// SessionsPerHour is how many sessions (a user writing in, or a template sent to a user) each
	// number starts per simulated hour (default 600).
	SessionsPerHour int
	// DuplicateRate is the share of webhooks Meta delivers twice (default 0.02); DisorderRate the
	// share of statuses that arrive after a later one of the same message (default 0.05);
	// AdReferralRate the share of user sessions that come from a click-to-WhatsApp ad (default
	// 0.1); FailRate the share of business messages that fail (default 0.02). Negative = none.
	DuplicateRate, DisorderRate, AdReferralRate, FailRate float64
}

func (c *Config) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.WABAs, 2)
	def(&c.Numbers, 4)
	def(&c.UsersPerNumber, 2000)
	def(&c.SessionsPerHour, 600)
	if c.Start.IsZero() {
		c.Start = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Duration == 0 {
		c.Duration = 24 * time.Hour
	}
	rate := func(v *float64, d float64) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	rate(&c.DuplicateRate, 0.02)
	rate(&c.DisorderRate, 0.05)
	rate(&c.AdReferralRate, 0.1)
	rate(&c.FailRate, 0.02)
	if c.WABAs < 0 || c.Numbers < c.WABAs || c.UsersPerNumber < 0 || c.SessionsPerHour < 0 || c.Duration < 0 {
		return fmt.Errorf("loadgen: bad config: wabas %d, numbers %d (at least one per WABA), users %d, sessions/h %d, duration %v",
			c.WABAs, c.Numbers, c.UsersPerNumber, c.SessionsPerHour, c.Duration)
	}
	return nil
}

// Item is one input event of the model at the moment it reaches convmeter.
type Item struct {
	// Arrival is when the item reaches convmeter, in simulated time. Items come in Arrival order;
	// the event's own time can be earlier (a late or out-of-order status, a duplicate).
	Arrival events.UnixTime
	// Event is the input event (account configs, inbound messages, outbound sends, statuses).
	Event events.Event
	// Webhook says Meta sends the item as a webhook (inbound messages and statuses); outbound
	// sends and account configs come from the business's own systems, not from Meta.
	Webhook bool
	// Duplicate marks a second delivery of a webhook already sent.
	Duplicate bool
}

// number is one business phone number of the model.
type number struct {
	id, display, waba string
}

// Model is the realistic traffic model: many numbers and users, templates of every category,
// user messages and business replies, click-to-WhatsApp ad referrals, failed messages, statuses
// that arrive out of order or twice. It is pure and deterministic (no clock, seeded randomness):
// Next yields the items in arrival order; Play paces them against the wall clock.
type Model struct {
	cfg      Config
	r        *rand.Rand
	numbers  []number
	accounts []*events.AccountConfig
	q        itemQueue
	seq      int64
	next     int64 // simulated time (ms) of the next session
	end      int64 // ms
	step     float64
	started  bool
	csw      map[string]int64 // pair → last user message (s): the model's view of the CSW
	fep      map[string]int64 // pair → free-entry-point window end (s)
	referral map[string]int64 // pair → time of an ad-referral message not yet answered
}

// New returns the model for cfg.
func New(cfg Config) (*Model, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m := &Model{
		cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)),
		csw: map[string]int64{}, fep: map[string]int64{}, referral: map[string]int64{},
	}
	zones := []string{"UTC", "Asia/Kolkata", "America/Sao_Paulo", "Asia/Jakarta"}
	currencies := []string{"USD", "INR", "USD", "USD"}
	from := events.FromTime(cfg.Start.Add(-30 * 24 * time.Hour))
	for i := 0; i < cfg.Numbers; i++ {
		w := i % max(cfg.WABAs, 1)
		n := number{id: fmt.Sprintf("1065%011d", i+1), display: fmt.Sprintf("1555%07d", i+1), waba: fmt.Sprintf("1022%011d", w+1)}
		m.numbers = append(m.numbers, n)
		// TIER_10K: the default `convmeter dev --simulate` (9 numbers of one portfolio, 120
		// sessions an hour each) reaches about 2,800 users a day outside their windows, so its
		// dashboard shows the portfolio's headroom instead of a limit reached from the first day
		// (as TIER_2K did). Heavier models reach it: the limit is still counted and shown.
		ac := &events.AccountConfig{
			PhoneNumberID: n.id, DisplayPhoneNumber: n.display, WABAID: n.waba, PortfolioID: "portfolio-1",
			TimeZone: zones[w%len(zones)], Currency: currencies[w%len(currencies)], EffectiveFrom: from,
			MessagingLimitTier: "TIER_10K", ThroughputMPS: 80,
		}
		if w == 0 {
			ac.AuthIntl = &events.AuthIntl{StartTime: from, CallingCodes: []string{"62"}}
		}
		m.accounts = append(m.accounts, ac)
	}
	m.next = cfg.Start.UnixMilli()
	m.end = cfg.Start.Add(cfg.Duration).UnixMilli()
	if perMs := float64(cfg.SessionsPerHour*cfg.Numbers) / 3.6e6; perMs > 0 {
		m.step = 1 / perMs
	}
	return m, nil
}

// Config returns the model's configuration with defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// Accounts returns the account configuration of every number (also the first items of Next).
func (m *Model) Accounts() []*events.AccountConfig { return m.accounts }

// Next returns the next item in arrival order, and false when the traffic is over.
func (m *Model) Next() (Item, bool) {
	if !m.started {
		m.started = true
		for _, a := range m.accounts {
			m.push(Item{Event: events.New(a)}, m.cfg.Start.UnixMilli()-1000) // configured before traffic starts
		}
	}
	for m.step > 0 && m.next < m.end && (m.q.Len() == 0 || m.q[0].at >= m.next) {
		m.session(m.next)
		m.next += int64(m.step*(0.5+m.r.Float64())) + 1
	}
	if m.q.Len() == 0 {
		return Item{}, false
	}
	return heap.Pop(&m.q).(queued).Item, true
}

// Items returns up to n items (all when n <= 0); a convenience for tests and small runs.
func (m *Model) Items(n int) []Item {
	var out []Item
	for n <= 0 || len(out) < n {
		it, ok := m.Next()
		if !ok {
			break
		}
		out = append(out, it)
	}
	return out
}

type queued struct {
	Item
	at  int64 // arrival in ms
	seq int64 // ties in arrival keep generation order
}

type itemQueue []queued

func (q itemQueue) Len() int { return len(q) }
func (q itemQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q itemQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *itemQueue) Push(x any)   { *q = append(*q, x.(queued)) }
func (q *itemQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

func (m *Model) push(it Item, atMs int64) {
	it.Arrival = events.UnixTime(atMs / 1000)
	m.seq++
	heap.Push(&m.q, queued{Item: it, at: atMs, seq: m.seq})
	if it.Webhook && m.cfg.DuplicateRate > 0 && m.r.Float64() < m.cfg.DuplicateRate {
		d := it
		d.Duplicate = true
		later := atMs + 1000 + m.r.Int64N(600_000)
		d.Arrival = events.UnixTime(later / 1000)
		m.seq++
		heap.Push(&m.q, queued{Item: d, at: later, seq: m.seq})
	}
}

// user returns the wa_id of user u of a number: mostly India and Brazil, some US, Indonesia
// (authentication-international for the first WABA) and the Dominican Republic (+1 809, Rest of
// Latin America, not North America).
func (m *Model) user(n, u int) string {
	prefixes := []string{"91", "91", "91", "55", "55", "1650", "62", "1809"}
	p := prefixes[(u*7+n)%len(prefixes)]
	s := strconv.Itoa(n*1_000_000 + u)
	for len(p)+len(s) < 12 {
		s = "0" + s
	}
	return p + s
}

// Template categories, weighted toward what businesses send most.
var templateCats = []events.Category{
	events.CategoryMarketing, events.CategoryMarketing, events.CategoryMarketing, events.CategoryUtility,
	events.CategoryUtility, events.CategoryAuthentication,
}

var inboundTypes = []string{"text", "text", "text", "image", "button", "interactive", "reaction", "audio"}

func (m *Model) wamid() string {
	m.seq++
	return "wamid.lg" + strconv.FormatUint(m.cfg.Seed, 36) + "." + strconv.FormatInt(m.seq, 36)
}

// session starts one session at t (ms): a user writing in (sometimes from an ad) and the business
// answering, or the business sending a template (and the user sometimes replying).
func (m *Model) session(t int64) {
	ni := m.r.IntN(len(m.numbers))
	n := m.numbers[ni]
	if m.cfg.UsersPerNumber == 0 {
		return
	}
	u := m.user(ni, m.r.IntN(m.cfg.UsersPerNumber))
	if m.r.IntN(100) < 45 {
		m.inbound(n, u, t, m.r.Float64() < m.cfg.AdReferralRate)
		replies := 1 + m.r.IntN(3)
		at := t
		for range replies {
			at += 5_000 + m.r.Int64N(120_000)
			m.outbound(n, u, at, events.KindFreeForm, "")
		}
		if m.r.IntN(4) == 0 { // a utility update inside the window
			m.outbound(n, u, at+m.r.Int64N(3_600_000), events.KindTemplate, events.CategoryUtility)
		}
		return
	}
	cat := templateCats[m.r.IntN(len(templateCats))]
	m.outbound(n, u, t, events.KindTemplate, cat)
	if m.r.IntN(5) == 0 { // the user answers the template with a quick-reply button
		m.inbound(n, u, t+30_000+m.r.Int64N(1_800_000), false)
	}
}

func (m *Model) inbound(n number, u string, t int64, ad bool) {
	typ := inboundTypes[m.r.IntN(len(inboundTypes))]
	in := &events.InboundMessage{PhoneNumberID: n.id, DisplayPhoneNumber: n.display, WABAID: n.waba, WaID: u,
		WAMID: m.wamid(), MessageType: typ, Timestamp: events.UnixTime(t / 1000)}
	if ad {
		in.MessageType = "text"
		in.Referral = &events.Referral{SourceType: "ad", SourceID: "ad-" + strconv.Itoa(m.r.IntN(50)), CtwaClid: "clid-" + in.WAMID}
	}
	pair := n.id + "/" + u
	m.csw[pair] = t / 1000 // every type the model sends opens the window (A8)
	if ad {
		m.referral[pair] = t / 1000
	}
	m.push(Item{Event: events.New(in), Webhook: true}, t+200+m.r.Int64N(2000))
}

// outbound sends a business message at t (ms): the send event, then sent, delivered and read
// statuses carrying Meta's pricing fields, some out of order, some failed.
func (m *Model) outbound(n number, u string, t int64, kind events.MessageKind, cat events.Category) {
	sec := t / 1000
	s := &events.OutboundSend{PhoneNumberID: n.id, WABAID: n.waba, WaID: u, WAMID: m.wamid(), Timestamp: events.UnixTime(sec),
		Kind: kind, TemplateCategory: cat}
	if kind == events.KindTemplate {
		s.MessageType = "template"
		s.TemplateName = string(cat) + "_v1"
		s.TemplateID = "tpl-" + string(cat)
	} else {
		s.MessageType = "text"
	}
	m.push(Item{Event: events.New(s)}, t+50)
	pair := n.id + "/" + u
	inside := m.csw[pair] != 0 && sec < m.csw[pair]+86400
	if kind == events.KindFreeForm && !inside {
		m.status(n, u, s.WAMID, events.StatusFailed, sec+1, t+1500, nil, 131047)
		return
	}
	if m.cfg.FailRate > 0 && m.r.Float64() < m.cfg.FailRate {
		m.status(n, u, s.WAMID, events.StatusSent, sec+1, t+1200, m.pricing(pair, sec, kind, cat, inside), 0)
		m.status(n, u, s.WAMID, events.StatusFailed, sec+5, t+6000, nil, 131026)
		return
	}
	if r := m.referral[pair]; r != 0 && sec < r+86400 && m.fep[pair] < sec {
		m.fep[pair] = sec + 72*3600
		delete(m.referral, pair)
	}
	p := m.pricing(pair, sec, kind, cat, inside)
	sent, deliv, read := sec+1, sec+2+m.r.Int64N(20), sec+30+m.r.Int64N(3600)
	sentAt, delivAt, readAt := t+1200, t+2500+m.r.Int64N(20_000), t+35_000+m.r.Int64N(3_600_000)
	if m.cfg.DisorderRate > 0 && m.r.Float64() < m.cfg.DisorderRate {
		sentAt, delivAt = delivAt+500, sentAt // sent arrives after delivered
	}
	m.status(n, u, s.WAMID, events.StatusSent, sent, sentAt, p, 0)
	skipDelivered := m.r.IntN(50) == 0 // read without delivered (A7)
	if !skipDelivered {
		m.status(n, u, s.WAMID, events.StatusDelivered, deliv, delivAt, p, 0)
	}
	if m.r.IntN(3) != 0 { // the rest have read receipts off
		if m.cfg.DisorderRate > 0 && m.r.Float64() < m.cfg.DisorderRate {
			readAt = delivAt - 300 // read arrives before delivered
		}
		m.status(n, u, s.WAMID, events.StatusRead, read, readAt, p, 0)
	}
}

// pricing is Meta's pricing object as Meta would send it under per-message pricing.
func (m *Model) pricing(pair string, sec int64, kind events.MessageKind, cat events.Category, inside bool) *events.MetaPricing {
	yes, no := true, false
	p := &events.MetaPricing{PricingModel: "PMP", Category: cat}
	switch {
	case m.fep[pair] > sec:
		p.Type, p.Billable = string(events.PricingFreeEntryPoint), &no
		if kind != events.KindTemplate {
			p.Category = events.CategoryService
		}
	case kind != events.KindTemplate:
		p.Category, p.Type, p.Billable = events.CategoryService, string(events.PricingFreeCustomerService), &no
	case cat == events.CategoryUtility && inside:
		p.Type, p.Billable = string(events.PricingFreeCustomerService), &no
	default:
		p.Type, p.Billable = string(events.PricingRegular), &yes
	}
	return p
}

func (m *Model) status(n number, u, wamid string, st events.Status, sec, arrival int64, p *events.MetaPricing, code int) {
	su := &events.StatusUpdate{PhoneNumberID: n.id, WABAID: n.waba, RecipientID: u, WAMID: wamid, Status: st,
		Timestamp: events.UnixTime(sec), Pricing: p}
	if code != 0 {
		su.Errors = []events.StatusError{{Code: code, Title: "error " + strconv.Itoa(code)}}
	}
	m.push(Item{Event: events.New(su), Webhook: true}, arrival)
}

// ErrNotWebhook is returned by Webhook for an item Meta does not send.
var ErrNotWebhook = errors.New("loadgen: not a webhook item")
