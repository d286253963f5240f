// Package traffic generates realistic, deterministic input for the message-events topic: account
// configs broadcast to every partition first, then users writing in, businesses replying with
// free-form messages and sending templates of every category, statuses sent, delivered and read
// (some out of order, some read without delivered, some failed, a few days too late), clock ticks
// on every partition, and a sprinkling of records that do not decode. The same Config gives the
// same records, byte for byte, so a test can compare a run against a reference.
package traffic

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/segmentio/kafka-go"
)

// Config sizes the traffic. Zero values take the defaults noted.
type Config struct {
	Seed       uint64
	Records    int // records to generate (at least); default 10000
	Partitions int // partitions of the target topic; default 4
	Numbers    int // business phone numbers; default 5
	Users      int // users per number; default 5000
	// Start is the simulated time of the first event; default 2025-06-28T00:00:00Z, so the
	// traffic crosses from conversation-based to per-message pricing on 1 July 2025.
	Start time.Time
	// Step is the mean simulated time between actions; default 200ms.
	Step time.Duration
	// TickEvery is the simulated time between clock ticks on each partition; default 1 minute.
	TickEvery time.Duration
	// BadEvery puts a record that does not decode after every BadEvery records; 0 means 5000,
	// negative means none.
	BadEvery int
}

func (c *Config) defaults() {
	if c.Records <= 0 {
		c.Records = 10000
	}
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if c.Numbers <= 0 {
		c.Numbers = 5
	}
	if c.Users <= 0 {
		c.Users = 5000
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2025, 6, 28, 0, 0, 0, 0, time.UTC)
	}
	if c.Step <= 0 {
		c.Step = 200 * time.Millisecond
	}
	if c.TickEvery <= 0 {
		c.TickEvery = time.Minute
	}
	if c.BadEvery == 0 {
		c.BadEvery = 5000
	}
}

// Generate returns the records, in the order they are to be written. Pair events carry their
// pair key (the writer's balancer places them); account configs and ticks are marked with
// kafkax.ToPartition. Use a writer made by kafkax.NewWriter.
func Generate(cfg Config) ([]kafka.Message, error) {
	cfg.defaults()
	g := &gen{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	if err := g.run(); err != nil {
		return nil, err
	}
	return g.out, nil
}

type gen struct {
	cfg     Config
	r       *rand.Rand
	out     []kafka.Message
	pending queue
	seq     int
	now     int64 // simulated time, milliseconds
	err     error
}

// item is an event due to be written at a simulated time (its own timestamp may be earlier:
// a late event).
type item struct {
	at  int64
	seq int
	ev  events.Event
}

type queue []item

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(item)) }
func (q *queue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

var (
	timeZones  = []string{"UTC", "Asia/Kolkata", "America/Sao_Paulo", "Europe/Berlin", "Asia/Jakarta"}
	categories = []events.Category{events.CategoryMarketing, events.CategoryMarketing, events.CategoryUtility, events.CategoryUtility, events.CategoryAuthentication}
	msgTypes   = []string{"text", "text", "text", "image", "button", "interactive", "reaction"}
)

func (g *gen) number(i int) string { return fmt.Sprintf("10654035%07d", i) }
func (g *gen) user(i int) string   { return fmt.Sprintf("5511%09d", i) }

func (g *gen) run() error {
	start := g.cfg.Start.UnixMilli()
	g.now = start
	for i := 0; i < g.cfg.Numbers; i++ {
		n := g.number(i)
		cfg := events.New(&events.AccountConfig{
			PhoneNumberID: n, WABAID: "waba-" + n, PortfolioID: fmt.Sprintf("portfolio-%d", i%2),
			TimeZone: timeZones[i%len(timeZones)], Currency: "USD",
			EffectiveFrom: events.UnixTime(g.cfg.Start.Unix() - 86400), MessagingLimitTier: "TIER_10K",
		})
		for p := 0; p < g.cfg.Partitions; p++ {
			g.write(cfg, p)
		}
	}
	nextTick := start + g.cfg.TickEvery.Milliseconds()
	step := g.cfg.Step.Milliseconds()
	for len(g.out) < g.cfg.Records && g.err == nil {
		g.now += g.r.Int64N(2*step + 1)
		for g.pending.Len() > 0 && g.pending[0].at <= g.now {
			it := heap.Pop(&g.pending).(item)
			g.write(it.ev, -1)
		}
		for nextTick <= g.now {
			for p := 0; p < g.cfg.Partitions; p++ {
				g.write(events.NewTick(int32(p), events.UnixTime(nextTick/1000)), p)
			}
			nextTick += g.cfg.TickEvery.Milliseconds()
		}
		g.action()
	}
	return g.err
}

// write appends e as a record, to partition p when p >= 0 and else by its key; every BadEvery
// records it also appends one that does not decode.
func (g *gen) write(e events.Event, p int) {
	m, err := kafkax.ToMessage(e)
	if err != nil {
		g.err = fmt.Errorf("traffic: %w", err)
		return
	}
	if p >= 0 {
		m = kafkax.ToPartition(m, p)
	}
	g.out = append(g.out, m)
	if g.cfg.BadEvery > 0 && len(g.out)%g.cfg.BadEvery == 0 {
		g.out = append(g.out, g.bad())
	}
}

// bad is a record that does not decode, of one of several kinds.
func (g *gen) bad() kafka.Message {
	key := []byte(events.PairKey(g.number(g.r.IntN(g.cfg.Numbers)), g.user(g.r.IntN(g.cfg.Users)), ""))
	var v string
	switch g.r.IntN(4) {
	case 0:
		v = `{"v":1,"id":"x","type":"message.inbound.v1","key":` // truncated
	case 1:
		v = `{"v":1,"id":"y","type":"message.teleported.v1","key":"k","time":1,"data":{}}`
	case 2:
		v = fmt.Sprintf(`{"v":1,"id":"z%d","type":"message.status.v1","key":%q,"time":1751328000,"data":{"phone_number_id":"1","wamid":"w","status":"sent"}}`, g.seq, key)
	default:
		v = "not json at all"
	}
	g.seq++
	return kafka.Message{Key: key, Value: []byte(v)}
}

func (g *gen) ms(t int64) events.UnixTime { return events.UnixTime(t / 1000) }

func (g *gen) wamid() string {
	g.seq++
	return fmt.Sprintf("wamid.HBgM%012d", g.seq)
}

func (g *gen) later(ev events.Event, at int64) {
	g.seq++
	heap.Push(&g.pending, item{at: at, seq: g.seq, ev: ev})
}

// action does one thing a user or a business does now.
func (g *gen) action() {
	r := g.r
	n := g.number(r.IntN(g.cfg.Numbers))
	// Zipf-like: a few users are busy, most are rare.
	u := g.user(int(float64(g.cfg.Users) * r.Float64() * r.Float64()))
	switch x := r.IntN(100); {
	case x < 40: // a user writes in; the business usually answers free-form
		in := &events.InboundMessage{PhoneNumberID: n, WABAID: "waba-" + n, WaID: u, WAMID: g.wamid(),
			MessageType: msgTypes[r.IntN(len(msgTypes))], Timestamp: g.ms(g.now)}
		if r.IntN(30) == 0 {
			in.Referral = &events.Referral{SourceType: "ad", SourceID: "ad-1", CtwaClid: "clid"}
		}
		g.write(events.New(in), -1)
		if r.IntN(4) > 0 {
			g.send(n, u, events.KindFreeForm, "", g.now+1000+r.Int64N(120_000))
		}
	case x < 75: // the business sends a template
		g.send(n, u, events.KindTemplate, categories[r.IntN(len(categories))], g.now)
	case x < 78: // a status days too late: set aside
		st := &events.StatusUpdate{PhoneNumberID: n, RecipientID: u, WAMID: g.wamid(), Status: events.StatusRead,
			Timestamp: g.ms(g.now - 5*86400_000)}
		g.write(events.New(st), -1)
	default: // a status for a message sent without a send event (Meta's fields only)
		w := g.wamid()
		billable := true
		st := &events.StatusUpdate{PhoneNumberID: n, RecipientID: u, WAMID: w, Status: events.StatusSent, Timestamp: g.ms(g.now),
			Pricing: &events.MetaPricing{Billable: &billable, PricingModel: "PMP", Type: "regular", Category: events.CategoryUtility}}
		g.write(events.New(st), -1)
		d := *st
		d.Status, d.Timestamp = events.StatusDelivered, g.ms(g.now+2000)
		g.later(events.New(&d), g.now+2000)
	}
}

// send writes a send event at t and schedules its statuses: sent, then delivered, then read,
// with some failures, some reads without a delivered, and some statuses arriving late (written
// after later events, within the engine's lateness).
func (g *gen) send(n, u string, kind events.MessageKind, cat events.Category, t int64) {
	r := g.r
	s := &events.OutboundSend{PhoneNumberID: n, WABAID: "waba-" + n, WaID: u, WAMID: g.wamid(), Timestamp: g.ms(t), Kind: kind}
	if kind == events.KindTemplate {
		s.TemplateCategory = cat
		s.TemplateName = "tpl_" + string(cat)
		s.TemplateID = fmt.Sprintf("tpl-%s-%d", cat, r.IntN(3))
		s.MessageType = "template"
	} else {
		s.MessageType = "text"
	}
	g.later(events.New(s), t)
	status := func(st events.Status, at int64, delay int64) {
		su := &events.StatusUpdate{PhoneNumberID: n, WABAID: "waba-" + n, RecipientID: u, WAMID: s.WAMID, Status: st, Timestamp: g.ms(at)}
		if st == events.StatusFailed {
			su.Errors = []events.StatusError{{Code: 131026, Title: "Message undeliverable"}}
		}
		g.later(events.New(su), at+delay)
	}
	sent := t + 500 + r.Int64N(1500)
	status(events.StatusSent, sent, 0)
	if r.IntN(40) == 0 {
		status(events.StatusFailed, sent+1000, 0)
		return
	}
	delivered := sent + 1000 + r.Int64N(30_000)
	var delay int64
	if r.IntN(20) == 0 {
		delay = 60_000 + r.Int64N(3_600_000) // arrives up to an hour late
	}
	if r.IntN(10) > 0 {
		status(events.StatusDelivered, delivered, delay)
	}
	if r.IntN(2) == 0 {
		status(events.StatusRead, delivered+5000+r.Int64N(600_000), 0)
	}
}
