package window

import (
	"strings"

	"github.com/convmeter/convmeter/events"
)

// Durations, in seconds of event time.
const (
	day        = 24 * 3600
	cswLength  = day     // customer service window (A1)
	convLength = day     // CBP conversation (A1)
	fepLength  = 3 * day // free-entry-point conversation / window (A9)
	fepReply   = day     // a business reply within 24 h of the ad message opens the FEP (A9)
)

// cat is a compact category code; its order is the deterministic order of simultaneous outputs.
type cat uint8

const (
	catNone cat = iota
	catMarketing
	catUtility
	catAuthentication
	catAuthIntl
	catMarketingLite
	catService
	catReferral
	catBusinessInitiated
	catUserInitiated
	catOther // a category Meta sent that we do not know; kept as text in meta
)

var catNames = [...]events.Category{
	catNone:              events.CategoryNone,
	catMarketing:         events.CategoryMarketing,
	catUtility:           events.CategoryUtility,
	catAuthentication:    events.CategoryAuthentication,
	catAuthIntl:          events.CategoryAuthenticationInternational,
	catMarketingLite:     events.CategoryMarketingLite,
	catService:           events.CategoryService,
	catReferral:          events.CategoryReferralConversion,
	catBusinessInitiated: events.CategoryBusinessInitiated,
	catUserInitiated:     events.CategoryUserInitiated,
	catOther:             "other",
}

func (c cat) category() events.Category { return catNames[c] }

func catOf(c events.Category) cat {
	for i, n := range catNames[:catOther] {
		if n == c {
			return cat(i)
		}
	}
	return catOther
}

func (c cat) isTemplate() bool {
	return c == catMarketing || c == catUtility || c == catAuthentication || c == catAuthIntl || c == catMarketingLite
}

// kind codes.
type kind uint8

const (
	kindUnknown kind = iota
	kindTemplate
	kindFreeForm
)

func (k kind) wire() events.MessageKind {
	switch k {
	case kindTemplate:
		return events.KindTemplate
	case kindFreeForm:
		return events.KindFreeForm
	default:
		return events.KindUnknown
	}
}

// factKind orders facts of one second canonically (A13): inbound, send, then statuses by rank.
type factKind uint8

const (
	factInbound factKind = 1
	factSend    factKind = 2
	// statuses: factStatusBase + Status.Rank()
	factStatusBase factKind = 2
	factStatusMax  factKind = factStatusBase + 6 // deleted, warning
)

func statusFact(s events.Status) factKind { return factStatusBase + factKind(s.Rank()) }

const (
	rankSent      = 1
	rankDelivered = 2
	rankPlayed    = 4
	rankFailed    = 5
)

// fact is one pair input, compact. Facts of a pair are kept, in canonical order, for as long as a
// late event could still land before them (the allowed lateness), so the pair can be recomputed.
type fact struct {
	t     int64
	kind  factKind
	cat   cat   // send: template category
	flags uint8 // see flag*
	wamid string
	meta  *metaFacts // status: Meta's pricing/conversation/errors, when present
}

const (
	flagOpensCSW   uint8 = 1 << iota // inbound: opens or refreshes the CSW
	flagEntryPoint                   // inbound: came from an ad or page button (A9)
	flagTemplate                     // send: a template
	flagFreeForm                     // send: a free-form message
	flag131047                       // status: Meta answered re-engagement required
)

func (f *fact) rank() int {
	if f.kind <= factSend {
		return 0
	}
	return int(f.kind - factStatusBase)
}

// less is the canonical order (A13): time, then inbound < send < sent < delivered < read <
// played < failed, then wamid.
func (f *fact) less(o *fact) bool {
	if f.t != o.t {
		return f.t < o.t
	}
	if f.kind != o.kind {
		return f.kind < o.kind
	}
	return f.wamid < o.wamid
}

// same reports whether o is a duplicate of f: same inbound wamid, same send wamid, or same wamid,
// status and timestamp (domain §7.1).
func (f *fact) same(o *fact) bool {
	if f.kind != o.kind || !sameWAMID(f.wamid, o.wamid) {
		return false
	}
	return f.kind <= factSend || f.t == o.t
}

// metaFacts is what Meta said about a message on a status.
type metaFacts struct {
	pricing      *events.MetaPricing // nil, or &own.pricing
	conversation *events.MetaConversation
	rank         int // rank of the status that carried it
	own          struct {
		pricing  events.MetaPricing
		billable bool
	}
}

// newMetaFacts copies Meta's fields of a status into memory of their own (the pricing, which
// statuses carry since July 2025, into the same allocation). A pair keeps them for as long as
// the message can be recomputed; pointing into the decoded event instead would keep all of it
// alive with them (every string of the event shares one buffer): on an audit, where every pair
// stays decoded, the events kept that way were a quarter of the heap.
func newMetaFacts(p *events.MetaPricing, c *events.MetaConversation, rank int) *metaFacts {
	m := &metaFacts{rank: rank}
	if p != nil {
		o := &m.own.pricing
		o.PricingModel, o.Type, o.Category = detach(p.PricingModel), detach(p.Type), events.Category(detach(string(p.Category)))
		if p.Billable != nil {
			m.own.billable = *p.Billable
			o.Billable = &m.own.billable
		}
		m.pricing = o
	}
	if c != nil {
		m.conversation = &events.MetaConversation{ID: strings.Clone(c.ID), ExpirationTimestamp: c.ExpirationTimestamp,
			OriginType: events.Category(detach(string(c.OriginType)))}
	}
	return m
}

// metaConstants are the values Meta's pricing and conversation fields take.
var metaConstants = [...]string{"PMP", "CBP", string(events.PricingRegular), string(events.PricingFreeCustomerService),
	string(events.PricingFreeEntryPoint), string(events.CategoryMarketing), string(events.CategoryUtility),
	string(events.CategoryAuthentication), string(events.CategoryAuthenticationInternational), string(events.CategoryService),
	string(events.CategoryReferralConversion), string(events.CategoryMarketingLite), string(events.CategoryBusinessInitiated),
	string(events.CategoryUserInitiated)}

// detach returns s as a string that shares no memory with the event it came from: the constant
// for a value Meta uses, a copy otherwise.
func detach(s string) string {
	for _, k := range metaConstants {
		if s == k {
			return k
		}
	}
	return strings.Clone(s)
}

// msg is the billing state of one business message.
type msg struct {
	wamid     string
	kind      kind
	kindSrc   uint8 // kindSrc*
	cat       cat   // template category (from the send event, or Meta's fields)
	sentAt    int64 // first dispatch
	delivered int64 // 0 until delivered (first of delivered/read/played)
	failed    bool
	violation bool // a policy violation was recorded for it
	meta      *metaFacts
}

const (
	kindSrcNone uint8 = iota
	kindSrcSend
	kindSrcMetaPricing
	kindSrcMetaConversation
)

var kindSrcNames = [...]string{"none", "send", "meta_pricing", "meta_conversation"}

func (m *msg) settled() bool { return m.delivered != 0 || m.failed }

func (m *msg) settledAt() int64 { return max(m.delivered, m.sentAt) }

// conv is an open conversation (CBP) or free-entry-point window (any model).
type conv struct {
	cat      cat
	model    events.PricingModel
	opened   int64
	expires  int64
	id       string // ours
	metaID   string // Meta's conversation.id, when a status told us
	billable bool
}

// pairState is everything the rules need about one pair at one instant.
type pairState struct {
	at    int64 // event time the state has been advanced to
	csw   int64 // time of the newest CSW-opening user message; 0 = none yet
	open  bool  // the CSW is open (its WindowExpired has not been emitted)
	entry int64 // time of the newest entry-point user message not yet used for an FEP; 0 = none
	convs []conv
	msgs  []msg
}

func (s *pairState) clone() pairState {
	c := *s
	c.convs = append([]conv(nil), s.convs...)
	c.msgs = append([]msg(nil), s.msgs...)
	return c
}

// into makes dst a copy of s in dst's own storage (a checkpoint kept across recomputes).
func (s *pairState) into(dst *pairState) {
	convs, msgs := append(dst.convs[:0], s.convs...), append(dst.msgs[:0], s.msgs...)
	*dst = *s
	dst.convs, dst.msgs = convs, msgs
}

func (s *pairState) insideCSW(t int64) bool { return s.open && t < s.csw+cswLength }

// sameWAMID is a == b, deciding most unequal pairs on the last byte: one pair's wamids share
// their leading bytes (Meta's encode the user's number; ours count), so the full comparison of two
// different ones runs to near their end, and most lookups compare against messages of other ids.
func sameWAMID(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || a[len(a)-1] == b[len(b)-1]) && a == b
}

func (s *pairState) msg(wamid string) *msg {
	for i := range s.msgs {
		if sameWAMID(s.msgs[i].wamid, wamid) {
			return &s.msgs[i]
		}
	}
	return nil
}

func (s *pairState) fep() *conv {
	for i := range s.convs {
		if s.convs[i].cat == catReferral {
			return &s.convs[i]
		}
	}
	return nil
}

// empty reports whether nothing is open or remembered: the pair can be forgotten.
func (s *pairState) empty() bool {
	return !s.open && s.entry == 0 && len(s.convs) == 0 && len(s.msgs) == 0
}

// nextExpiry returns the earliest time something in s expires, or 0.
func (s *pairState) nextExpiry() int64 {
	var next int64
	take := func(t int64) {
		if next == 0 || t < next {
			next = t
		}
	}
	if s.open {
		take(s.csw + cswLength)
	}
	if s.entry != 0 {
		take(s.entry + fepReply)
	}
	for i := range s.convs {
		take(s.convs[i].expires)
	}
	return next
}
