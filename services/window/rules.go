package window

import (
	"strconv"
	"strings"

	"github.com/convmeter/convmeter/events"
)

// sink receives what the rules derive: outputs, and retractions of outputs derived earlier that a
// later fact of the same pair proved wrong (for example a policy violation whose message was
// delivered after all).
type sink interface {
	emit(e events.Event)
	retract(id string)
}

// rules applies the platform's rules to one pair. It reads account facts and the timeline from the
// engine and never the clock.
type rules struct {
	e    *Engine
	key  string
	pnid string
	user string
	// quiet: the sink drops every output, so the output builders make none (each returns the zero
	// event) and only the state changes. Folding facts into a base and replaying the facts a
	// recompute shares run quiet: building outputs nobody reads was a third of the engine's work.
	quiet bool
	// lookups, when set, gets what message asks the partition's settled messages, so that a
	// checkpoint of the derivation can tell whether the answers still hold (checkpoint.valid).
	lookups *[]settledLookup
}

// advance moves st forward to time to, emitting every expiry at or before it in time order
// (windows are half-open, A13: something opened at t is gone at t+24h).
func (r *rules) advance(st *pairState, to int64, out sink) {
	for {
		next := st.nextExpiry()
		if next == 0 || next > to {
			break
		}
		if st.open && st.csw+cswLength == next {
			st.open = false
			out.emit(r.windowExpired(st.csw))
		}
		if st.entry != 0 && st.entry+fepReply == next {
			st.entry = 0
		}
		// Conversations expiring at next, in category order (deterministic).
		kept := st.convs[:0]
		var closed []conv
		for _, c := range st.convs {
			if c.expires == next {
				closed = append(closed, c)
				continue
			}
			kept = append(kept, c)
		}
		st.convs = kept
		sortConvs(closed)
		for _, c := range closed {
			out.emit(r.conversationClosed(c, next, events.CloseExpired))
		}
	}
	if to > st.at {
		st.at = to
	}
}

func sortConvs(cs []conv) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].cat < cs[j-1].cat; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// step applies fact f to st, which has been advanced to f.t.
func (r *rules) step(st *pairState, f *fact, out sink) {
	switch f.kind {
	case factInbound:
		r.inbound(st, f, out)
	case factSend:
		r.send(st, f, out)
	default:
		r.status(st, f, out)
	}
}

func (r *rules) inbound(st *pairState, f *fact, out sink) {
	if f.flags&flagOpensCSW == 0 {
		return
	}
	refresh := st.open
	st.csw, st.open = f.t, true
	entry := f.flags&flagEntryPoint != 0
	if entry {
		st.entry = f.t
	}
	out.emit(r.windowOpened(f, refresh, entry))
}

func (r *rules) send(st *pairState, f *fact, out sink) {
	m := r.message(st, f.wamid)
	if m == nil {
		return // settled long ago; a duplicate
	}
	switch {
	case f.flags&flagTemplate != 0:
		m.kind, m.cat = kindTemplate, f.cat
	case f.flags&flagFreeForm != 0:
		m.kind, m.cat = kindFreeForm, catNone
	}
	m.kindSrc = kindSrcSend
	r.dispatch(m, f.t, out)
	if m.kind == kindFreeForm && !st.insideCSW(f.t) && !m.violation && m.delivered == 0 {
		m.violation = true
		out.emit(r.violation(m, f.t, false))
	}
}

func (r *rules) dispatch(m *msg, t int64, out sink) {
	if m.sentAt != 0 {
		return
	}
	m.sentAt = t
	out.emit(r.dispatched(m, t))
}

// message returns the pair's record of wamid, creating it, or nil when the partition remembers
// the message as settled and forgotten (a late status of an old message).
func (r *rules) message(st *pairState, wamid string) *msg {
	if m := st.msg(wamid); m != nil {
		return m
	}
	settled := r.e.settled.has(wamid)
	if r.lookups != nil {
		*r.lookups = append(*r.lookups, settledLookup{wamidHash(wamid), settled})
	}
	if settled {
		return nil
	}
	st.msgs = append(st.msgs, msg{wamid: wamid})
	return &st.msgs[len(st.msgs)-1]
}

func (r *rules) status(st *pairState, f *fact, out sink) {
	m := r.message(st, f.wamid)
	if m == nil {
		return
	}
	if f.meta != nil && (m.meta == nil || f.meta.rank >= m.meta.rank) {
		m.meta = f.meta
	}
	r.dispatch(m, f.t, out)
	rank := f.rank()
	switch {
	case rank == rankFailed:
		if m.delivered == 0 && !m.failed {
			m.failed = true
			if f.flags&flag131047 != 0 && !m.violation {
				m.violation = true
				out.emit(r.violation(m, f.t, false))
			}
		}
	case rank >= rankDelivered && rank <= rankPlayed:
		if m.delivered == 0 && !m.failed {
			r.deliver(st, m, f.t, out)
		}
	}
}

// deliver applies the billing rules to a business message delivered at t (A1, A2, §1, §3).
func (r *rules) deliver(st *pairState, m *msg, t int64, out sink) {
	m.delivered = t
	acct := r.e.accounts.resolve(r.pnid, t)
	period := r.e.timeline.At(acct.date(t))
	model := period.Model
	r.resolveKind(st, m, model)
	category := m.cat
	if m.kind == kindFreeForm {
		category = catService
	}
	if category == catAuthentication && period.AuthIntl && acct.authIntl(r.user, t) {
		category = catAuthIntl
	}
	inCSW := st.insideCSW(t)
	d := delivery{m: m, t: t, acct: acct, model: model, cat: category, inCSW: inCSW, allowance: period.FreeServiceMessagesPerNumber}

	switch {
	case st.fep() != nil:
		// Inside a free-entry-point window: free, and under CBP nothing new opens (§1.9).
		fep := st.fep()
		d.verdict = events.Verdict{Billable: false, Category: fepCategory(model, category), PricingType: events.PricingFreeEntryPoint, ConversationID: fep.ref()}
		d.conv = fep
		if !model.IsCBP() {
			out.emit(r.charge(d, events.UnitMessage, events.PricingFreeEntryPoint, false, events.ReasonFEPWindow))
		}
	case st.entry != 0 && st.entry <= t && t < st.entry+fepReply:
		// The business's reply to an entry-point message opens the FEP (A9): it closes every
		// other open conversation (CBP) and lasts 72 h.
		st.entry = 0
		sortConvs(st.convs)
		for _, c := range st.convs {
			out.emit(r.conversationClosed(c, t, events.CloseFEPOpened))
		}
		st.convs = st.convs[:0]
		c := r.open(st, &d, catReferral, fepLength, false, out)
		d.verdict = events.Verdict{Billable: false, Category: fepCategory(model, category), PricingType: events.PricingFreeEntryPoint, ConversationID: c.ref()}
		unit := events.UnitMessage
		if model.IsCBP() {
			unit = events.UnitConversation
		}
		out.emit(r.charge(d, unit, events.PricingFreeEntryPoint, false, events.ReasonFEPWindow))
	case m.kind == kindUnknown:
		// Neither a send event nor Meta's fields said what it was (A12): never priced silently.
		d.verdict = events.Verdict{Billable: false, Category: catNone.category()}
		out.emit(r.charge(d, events.UnitMessage, "", false, events.ReasonUnknownKind))
	case model.IsCBP():
		r.deliverCBP(st, &d, out)
	default:
		if c := coveringConv(st, &d); c != nil {
			// A CBP conversation open across the switch keeps its terms (§3.2).
			d.conv = c
			d.verdict = events.Verdict{Billable: false, Category: c.cat.category(), PricingType: events.PricingRegular, ConversationID: c.ref()}
			out.emit(r.charge(d, events.UnitMessage, events.PricingRegular, false, events.ReasonCBPConversation))
			break
		}
		r.deliverPMP(&d, out)
	}
	d.verdict.PricingModel = model.MetaModel()
	if d.conv != nil {
		d.verdict.PricingModel = d.conv.model.MetaModel()
	}
	if m.violation {
		// The message was recorded as a violation and was delivered anyway (A10).
		out.retract(r.violation(m, m.sentAt, false).ID)
		out.emit(r.violation(m, t, true))
	}
	out.emit(r.delivered(d))
}

// fepCategory is the category of a message delivered inside a free-entry-point window: under CBP
// Meta counts it in the referral_conversion conversation; under PMP the message keeps its own
// category and only the pricing type says free_entry_point (§2.2; Meta's analytics show
// FREE_ENTRY_POINT with the message's category).
func fepCategory(model events.PricingModel, own cat) events.Category {
	if model.IsCBP() {
		return catReferral.category()
	}
	return own.category()
}

// delivery is the working set of one delivery decision.
type delivery struct {
	m       *msg
	t       int64
	acct    *account
	model   events.PricingModel
	cat     cat // billing category of the message (service for free-form)
	inCSW   bool
	conv    *conv // the conversation that covers or was opened by it
	verdict events.Verdict
	// allowance: the period's unconfirmed free service messages per number (0 = off).
	allowance int
}

func (r *rules) deliverCBP(st *pairState, d *delivery, out sink) {
	var covering *conv
	if d.model == events.ModelCBP2022 {
		if len(st.convs) > 0 {
			covering = &st.convs[0]
		}
	} else {
		covering = coveringConv(st, d)
	}
	if covering != nil {
		d.conv = covering
		d.verdict = events.Verdict{Billable: covering.billable, Category: covering.cat.category(), PricingType: covering.pricingType(), ConversationID: covering.ref()}
		return
	}
	c := d.cat
	if d.model == events.ModelCBP2022 {
		c = catBusinessInitiated
		if d.inCSW {
			c = catUserInitiated
		}
	}
	period := r.e.timeline.At(d.acct.date(d.t))
	free := c == catService && period.ServiceFree
	conv := r.open(st, d, c, convLength, !free, out)
	d.verdict = events.Verdict{Billable: !free, Category: c.category(), PricingType: conv.pricingType(), ConversationID: conv.ref()}
	if free {
		out.emit(r.charge(*d, events.UnitConversation, events.PricingFreeCustomerService, false, events.ReasonServiceFree))
		return
	}
	out.emit(r.charge(*d, events.UnitConversation, events.PricingRegular, true, events.ReasonConversationOpened))
}

// coveringConv finds the open CBP-2023 conversation that covers a delivery (§1.4): a template of
// category C is covered by an open C; a non-template by any open conversation. When Meta named the
// conversation, the id decides (A12).
func coveringConv(st *pairState, d *delivery) *conv {
	if d.m.kindSrc == kindSrcMetaConversation && d.m.meta != nil && d.m.meta.conversation != nil {
		id := d.m.meta.conversation.ID
		for i := range st.convs {
			if st.convs[i].metaID == id {
				return &st.convs[i]
			}
		}
		return nil
	}
	for i := range st.convs {
		c := &st.convs[i]
		if !c.model.IsCBP() {
			continue
		}
		if d.m.kind == kindFreeForm || c.cat == d.cat {
			return c
		}
	}
	return nil
}

func (r *rules) deliverPMP(d *delivery, out sink) {
	pmp2026 := d.model == events.ModelPMP2026
	var (
		typ      = events.PricingRegular
		billable = true
		reason   = events.ReasonTemplateDelivered
	)
	switch {
	case d.m.kind == kindFreeForm && !d.inCSW:
		reason = events.ReasonFreeFormOutsideCSW
		if !pmp2026 {
			typ, billable = events.PricingFreeCustomerService, false
		}
	case d.m.kind == kindFreeForm:
		if pmp2026 {
			reason = events.ReasonServiceCharged
		} else {
			typ, billable, reason = events.PricingFreeCustomerService, false, events.ReasonNonTemplateInCSW
		}
	case d.cat == catUtility && d.inCSW && !pmp2026:
		typ, billable, reason = events.PricingFreeCustomerService, false, events.ReasonUtilityInCSW
	}
	d.verdict = events.Verdict{Billable: billable, Category: d.cat.category(), PricingType: typ}
	ch := r.charge(*d, events.UnitMessage, typ, billable, reason)
	if c, ok := ch.Data.(*events.Charge); ok && reason == events.ReasonServiceCharged && d.allowance > 0 {
		// Counted per number and month across pairs, so the billing projection applies it.
		c.FreeAllowance = d.allowance
	}
	out.emit(ch)
}

// open opens a conversation of category c at the delivery.
func (r *rules) open(st *pairState, d *delivery, c cat, length int64, billable bool, out sink) *conv {
	cv := conv{cat: c, model: d.model, opened: d.t, expires: d.t + length, billable: billable}
	if d.m.meta != nil && d.m.meta.conversation != nil {
		cv.metaID = d.m.meta.conversation.ID
	}
	var t [20]byte // d.t's digits, converted on the stack: InputID keeps none of its parts
	cv.id = events.InputID("conversation", r.key, string(strconv.AppendInt(t[:0], d.t, 10)), string(c.category()), d.m.wamid)
	st.convs = append(st.convs, cv)
	p := &st.convs[len(st.convs)-1]
	d.conv = p
	out.emit(r.conversationOpened(*p, d))
	return p
}

// ref is the conversation id reconciliation compares: Meta's when a status named it, else ours.
func (c *conv) ref() string {
	if c.metaID != "" {
		return c.metaID
	}
	return c.id
}

func (c *conv) pricingType() events.PricingType {
	switch {
	case c.cat == catReferral:
		return events.PricingFreeEntryPoint
	case !c.billable:
		return events.PricingFreeCustomerService
	}
	return events.PricingRegular
}

// resolveKind fills in what a message was from Meta's fields when no send event told us (A12).
func (r *rules) resolveKind(st *pairState, m *msg, model events.PricingModel) {
	if m.kindSrc == kindSrcSend || m.meta == nil {
		return
	}
	p, c := m.meta.pricing, m.meta.conversation
	metaCBP := model.IsCBP()
	if p != nil && p.PricingModel != "" {
		metaCBP = strings.EqualFold(p.PricingModel, "CBP")
	}
	var category events.Category
	switch {
	case !metaCBP && p != nil && p.Category != "":
		category = p.Category
		m.kindSrc = kindSrcMetaPricing
	case metaCBP && c != nil && c.OriginType != "":
		category = c.OriginType
		m.kindSrc = kindSrcMetaConversation
	case metaCBP && p != nil && p.Category != "":
		category = p.Category
		m.kindSrc = kindSrcMetaPricing
	default:
		return
	}
	k := catOf(events.NormalizeCategory(string(category)))
	switch {
	case k.isTemplate():
		m.kind, m.cat = kindTemplate, k
	case k == catService || k == catUserInitiated:
		m.kind = kindFreeForm
	case k == catBusinessInitiated:
		m.kind, m.cat = kindTemplate, catBusinessInitiated // CBP-2022 did not say which template category
	case k == catReferral:
		// Meta counted it in an FEP: what it was is not said; a reply in an FEP is usually free-form.
		m.kind = kindFreeForm
	default:
		m.kindSrc = kindSrcNone
	}
}
