package window

import (
	"math/bits"
	"strconv"

	"github.com/convmeter/convmeter/events"
)

// Output ids are derived from the output's content (its type, pair and identifying fields), never
// from arrival, so that recomputing a pair reproduces the ids of outputs that did not change and a
// retraction can name an output without the engine remembering what it emitted. The hash is
// 128-bit FNV-1a over the parts, NUL-separated: not cryptographic, but ids only need to be
// distinct, and it costs no allocation but the id string itself.
func (r *rules) id(t events.Type, parts ...string) string {
	h := r.idHash(t)
	for _, p := range parts {
		h.add(p)
	}
	return h.hex()
}

// idHash is the hash of an id of type t of r's pair before its other parts: the ids with a time
// among their parts add it with addInt, which hashes what itoa would give without making it.
func (r *rules) idHash(t events.Type) fnv128 {
	h := newFNV128()
	h.add(string(t))
	h.add(r.key)
	return h
}

// fnv128 is FNV-1a with a 128-bit state held in two words.
type fnv128 struct{ hi, lo uint64 }

const (
	fnv128OffsetHi   = 0x6c62272e07bb0142
	fnv128OffsetLo   = 0x62b821756295c58d
	fnv128PrimeLo    = 0x13b // the prime is 2^88 + 0x13b
	fnv128PrimeShift = 88 - 64
)

func newFNV128() fnv128 { return fnv128{hi: fnv128OffsetHi, lo: fnv128OffsetLo} }

func (h *fnv128) byte(c byte) {
	h.lo ^= uint64(c)
	// (hi, lo) * (2^88 + 0x13b) mod 2^128
	hi, lo := bits.Mul64(h.lo, fnv128PrimeLo)
	hi += h.hi*fnv128PrimeLo + h.lo<<fnv128PrimeShift
	h.hi, h.lo = hi, lo
}

func (h *fnv128) add(s string) {
	// byte's steps on locals: the state stays in registers through the loop.
	hi, lo := h.hi, h.lo
	for i := 0; i < len(s); i++ {
		lo ^= uint64(s[i])
		mhi, mlo := bits.Mul64(lo, fnv128PrimeLo)
		hi, lo = mhi+hi*fnv128PrimeLo+lo<<fnv128PrimeShift, mlo
	}
	h.hi, h.lo = hi, lo
	h.byte(0)
}

// addInt adds the decimal form of n, as add(itoa(n)) does.
func (h *fnv128) addInt(n int64) {
	var b [20]byte
	for _, c := range strconv.AppendInt(b[:0], n, 10) {
		h.byte(c)
	}
	h.byte(0)
}

func (h *fnv128) hex() string {
	var b [32]byte
	const digits = "0123456789abcdef"
	for i := 0; i < 16; i++ {
		b[15-i] = digits[(h.hi>>(4*i))&0xf]
		b[31-i] = digits[(h.lo>>(4*i))&0xf]
	}
	return string(b[:])
}

func itoa(t int64) string { return strconv.FormatInt(t, 10) }

func (r *rules) account(a *account, t int64) events.Account {
	out := events.Account{PhoneNumberID: r.pnid, User: r.user}
	if a.cfg == nil {
		return out
	}
	out.WABAID = a.cfg.WABAID
	out.PortfolioID = a.cfg.PortfolioID
	out.TimeZone = a.cfg.TimeZone
	out.Currency = a.cfg.Currency
	out.Month = a.month(t)
	out.Configured = true
	return out
}

func (r *rules) accountAt(t int64) events.Account {
	return r.account(r.e.accounts.resolve(r.pnid, t), t)
}

func (r *rules) event(t events.Type, at int64, id string, p events.Payload) events.Event {
	return events.Event{ID: id, Type: t, Key: r.key, Time: events.UnixTime(at), Data: p}
}

func (r *rules) windowOpened(f *fact, refresh, entry bool) events.Event {
	if r.quiet {
		return events.Event{}
	}
	h := r.idHash(events.TypeWindowOpened)
	h.add(f.wamid)
	h.addInt(f.t)
	return r.event(events.TypeWindowOpened, f.t, h.hex(), &events.WindowOpened{
		Account:    r.accountAt(f.t),
		WAMID:      f.wamid,
		OpenedAt:   events.UnixTime(f.t),
		ExpiresAt:  events.UnixTime(f.t + cswLength),
		Refresh:    refresh,
		EntryPoint: entry,
	})
}

func (r *rules) windowExpired(opened int64) events.Event {
	if r.quiet {
		return events.Event{}
	}
	at := opened + cswLength
	h := r.idHash(events.TypeWindowExpired)
	h.addInt(opened)
	return r.event(events.TypeWindowExpired, at, h.hex(), &events.WindowExpired{
		Account:   r.accountAt(at),
		OpenedAt:  events.UnixTime(opened),
		ExpiredAt: events.UnixTime(at),
	})
}

func (r *rules) conversationOpened(c conv, d *delivery) events.Event {
	if r.quiet {
		return events.Event{}
	}
	return r.event(events.TypeConversationOpened, c.opened, r.id(events.TypeConversationOpened, c.id), &events.ConversationOpened{
		Account:            r.account(d.acct, d.t),
		ConversationID:     c.id,
		Category:           c.cat.category(),
		PricingModel:       c.model,
		OpenedAt:           events.UnixTime(c.opened),
		ExpiresAt:          events.UnixTime(c.expires),
		OpenedBy:           d.m.wamid,
		MetaConversationID: c.metaID,
	})
}

func (r *rules) conversationClosed(c conv, at int64, reason string) events.Event {
	if r.quiet {
		return events.Event{}
	}
	h := r.idHash(events.TypeConversationClosed)
	h.add(c.id)
	h.addInt(at)
	h.add(reason)
	return r.event(events.TypeConversationClosed, at, h.hex(), &events.ConversationClosed{
		Account:        r.accountAt(at),
		ConversationID: c.id,
		Category:       c.cat.category(),
		PricingModel:   c.model,
		OpenedAt:       events.UnixTime(c.opened),
		ClosedAt:       events.UnixTime(at),
		Reason:         reason,
	})
}

func (r *rules) dispatched(m *msg, t int64) events.Event {
	if r.quiet {
		return events.Event{}
	}
	h := r.idHash(events.TypeMessageDispatched)
	h.add(m.wamid)
	h.addInt(t)
	return r.event(events.TypeMessageDispatched, t, h.hex(), &events.MessageDispatched{
		Account: r.accountAt(t),
		WAMID:   m.wamid,
		SentAt:  events.UnixTime(t),
		Kind:    m.kind.wire(),
	})
}

func (r *rules) violation(m *msg, t int64, delivered bool) events.Event {
	if r.quiet {
		return events.Event{}
	}
	return r.event(events.TypePolicyViolation, t, r.id(events.TypePolicyViolation, m.wamid, strconv.FormatBool(delivered)), &events.PolicyViolation{
		Account:   r.accountAt(t),
		WAMID:     m.wamid,
		Code:      131047,
		Reason:    events.ReasonFreeFormOutsideCSW,
		At:        events.UnixTime(t),
		Delivered: delivered,
	})
}

func (r *rules) charge(d delivery, unit events.ChargeUnit, typ events.PricingType, billable bool, reason string) events.Event {
	if r.quiet {
		return events.Event{}
	}
	c := &events.Charge{
		Account:      r.account(d.acct, d.t),
		Unit:         unit,
		PricingModel: d.model,
		Category:     d.cat.category(),
		PricingType:  typ,
		Billable:     billable,
		Reason:       reason,
		WAMID:        d.m.wamid,
		Kind:         d.m.kind.wire(),
		Recipient:    r.user,
		DeliveredAt:  events.UnixTime(d.t),
	}
	if d.conv != nil {
		c.ConversationID = d.conv.id
		c.PricingModel = d.conv.model
		if unit == events.UnitConversation {
			c.Category = d.conv.cat.category()
		}
	}
	h := r.idHash(events.TypeCharge)
	h.add(d.m.wamid)
	h.addInt(d.t)
	h.add(string(unit))
	h.add(reason)
	h.add(string(c.Category))
	return r.event(events.TypeCharge, d.t, h.hex(), c)
}

func (r *rules) delivered(d delivery) events.Event {
	if r.quiet {
		return events.Event{}
	}
	m := d.m
	out := &events.MessageDelivered{
		Account:          r.account(d.acct, d.t),
		WAMID:            m.wamid,
		DeliveredAt:      events.UnixTime(d.t),
		Kind:             m.kind.wire(),
		KindSource:       kindSrcNames[m.kindSrc],
		TemplateCategory: m.cat.category(),
		InsideCSW:        d.inCSW,
		InsideFEP:        d.conv != nil && d.conv.cat == catReferral,
		Ours:             d.verdict,
	}
	if m.kind != kindTemplate {
		out.TemplateCategory = ""
	}
	if m.meta != nil {
		if p := m.meta.pricing; p != nil {
			out.Meta = &events.Verdict{Billable: p.IsBillable(), Category: p.Category, PricingType: events.PricingType(p.Type), PricingModel: p.PricingModel}
		}
		if c := m.meta.conversation; c != nil {
			out.MetaConversation = c
			if out.Meta == nil {
				out.Meta = &events.Verdict{}
			}
			out.Meta.ConversationID = c.ID
		}
	}
	h := r.idHash(events.TypeMessageDelivered)
	h.add(m.wamid)
	h.addInt(d.t)
	return r.event(events.TypeMessageDelivered, d.t, h.hex(), out)
}
