package window

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/convmeter/convmeter/events"
)

// The compact encoding of one pair: the record of the pair table, and the pair's part of a
// snapshot. Little-endian varints and length-prefixed strings; times are written relative to the
// pair's cut (a few bytes instead of five), 0 staying 0 ("none"):
//
//	pair:  key str | cut varint | deadline time | base (0 = none, 1 + state) | cur state |
//	       facts: n uvarint, n × fact
//	state: at time | csw time | open bool | entry time | convs: n, n × conv | msgs: n, n × msg
//	conv:  cat | model str | opened time | expires time | id str | metaID str | billable bool
//	msg:   wamid str | kind | kindSrc | cat | sentAt time | delivered time | failed | violation |
//	       meta
//	fact:  t time | kind | cat | flags | wamid str | meta
//	meta:  flags uvarint (0 = none; 1 | 2 pricing | 4 conversation) | rank varint | pricing |
//	       conversation
//	time:  uvarint 0 for 0, else zigzag(t - cut) + 1

// pairCodec encodes and decodes pairs; it keeps the cut times are relative to.
type pairCodec struct{ cut int64 }

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func (c pairCodec) appendTime(b []byte, t int64) []byte {
	if t == 0 {
		return append(b, 0)
	}
	d := t - c.cut
	return binary.AppendUvarint(b, uint64(d<<1^d>>63)+1)
}

// appendPair appends p's encoding to b.
func appendPair(b []byte, p *pair) []byte {
	c := pairCodec{cut: p.cut}
	b = appendStr(b, p.key)
	b = binary.AppendVarint(b, p.cut)
	b = c.appendTime(b, p.deadline)
	if p.base == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = c.appendState(b, p.base)
	}
	b = c.appendState(b, &p.cur)
	b = binary.AppendUvarint(b, uint64(len(p.pending)))
	for i := range p.pending {
		b = c.appendFact(b, &p.pending[i])
	}
	return b
}

func (c pairCodec) appendState(b []byte, s *pairState) []byte {
	b = c.appendTime(b, s.at)
	b = c.appendTime(b, s.csw)
	b = appendBool(b, s.open)
	b = c.appendTime(b, s.entry)
	b = binary.AppendUvarint(b, uint64(len(s.convs)))
	for i := range s.convs {
		cv := &s.convs[i]
		b = append(b, byte(cv.cat))
		b = appendStr(b, string(cv.model))
		b = c.appendTime(b, cv.opened)
		b = c.appendTime(b, cv.expires)
		b = appendStr(b, cv.id)
		b = appendStr(b, cv.metaID)
		b = appendBool(b, cv.billable)
	}
	b = binary.AppendUvarint(b, uint64(len(s.msgs)))
	for i := range s.msgs {
		m := &s.msgs[i]
		b = appendStr(b, m.wamid)
		b = append(b, byte(m.kind), m.kindSrc, byte(m.cat))
		b = c.appendTime(b, m.sentAt)
		b = c.appendTime(b, m.delivered)
		b = appendBool(b, m.failed)
		b = appendBool(b, m.violation)
		b = appendMeta(b, m.meta)
	}
	return b
}

func (c pairCodec) appendFact(b []byte, f *fact) []byte {
	b = c.appendTime(b, f.t)
	b = append(b, byte(f.kind), byte(f.cat), f.flags)
	b = appendStr(b, f.wamid)
	return appendMeta(b, f.meta)
}

func appendMeta(b []byte, m *metaFacts) []byte {
	if m == nil {
		return append(b, 0)
	}
	var flags byte = 1
	if m.pricing != nil {
		flags |= 2
	}
	if m.conversation != nil {
		flags |= 4
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(m.rank))
	if p := m.pricing; p != nil {
		switch {
		case p.Billable == nil:
			b = append(b, 0)
		case *p.Billable:
			b = append(b, 1)
		default:
			b = append(b, 2)
		}
		b = appendStr(b, p.PricingModel)
		b = appendStr(b, p.Type)
		b = appendStr(b, string(p.Category))
	}
	if cv := m.conversation; cv != nil {
		b = appendStr(b, cv.ID)
		b = binary.AppendVarint(b, int64(cv.ExpirationTimestamp))
		b = appendStr(b, string(cv.OriginType))
	}
	return b
}

// errShort is a record or snapshot that ends inside a value.
var errShort = errors.New("truncated")

// reader decodes the compact encoding from a byte slice. The first error sticks; every later read
// returns zero values.
type reader struct {
	b   []byte
	err error
	cut int64
	// check: strings are checked but not made (a restore validating records it copies as they are).
	check bool
	// whole, when set, is the record being read as one string, and its strings are cut from
	// it: a pair decoded from the table costs one string allocation instead of one per string.
	whole string
}

// shared returns a reader of record whose strings share one allocation.
func shared(record []byte) reader { return reader{b: record, whole: string(record)} }

func (d *reader) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *reader) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) byte() byte {
	if len(d.b) == 0 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *reader) bool() bool { return d.enum(1) == 1 }

// enum reads a byte code that must not exceed hi: an out-of-range code would index past a table.
func (d *reader) enum(hi byte) byte {
	v := d.byte()
	if v > hi {
		d.fail(fmt.Errorf("code %d out of range (max %d)", v, hi))
		return 0
	}
	return v
}

func (d *reader) cat() cat { return cat(d.enum(byte(catOther))) }

// maxLen bounds any length or count read, so a corrupt input fails instead of allocating.
const maxLen = 1 << 26

func (d *reader) count() int {
	n := d.uint()
	if n > maxLen {
		d.fail(fmt.Errorf("count %d out of range", n))
		return 0
	}
	return int(n)
}

func (d *reader) raw(n int) []byte {
	if n > len(d.b) {
		d.fail(errShort)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *reader) bytes() []byte { return d.raw(d.count()) }

func (d *reader) str() string {
	b := d.bytes()
	if len(b) == 0 || d.check {
		return ""
	}
	if d.whole != "" {
		end := len(d.whole) - len(d.b) // b ends where the rest begins
		return d.whole[end-len(b) : end]
	}
	return string(b)
}

func (d *reader) fixed() uint64 {
	b := d.raw(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (d *reader) time() int64 {
	v := d.uint()
	if v == 0 {
		return 0
	}
	v--
	return int64(v>>1) ^ -int64(v&1) + d.cut
}

// pair decodes a pair record into p, reusing p's fact slice; the key is already known to match.
func (d *reader) pair(p *pair, key string) {
	if k := d.bytes(); string(k) != key {
		d.fail(fmt.Errorf("record of %q read for %q", k, key))
		return
	}
	p.key = key
	p.ck = nil
	p.cut = d.int()
	d.cut = p.cut
	p.deadline = d.time()
	p.base = nil
	if d.byte() == 1 {
		base := &pairState{}
		d.state(base)
		p.base = base
	}
	p.cur = pairState{}
	d.state(&p.cur)
	n := d.count()
	p.pending = p.pending[:0]
	for ; n > 0 && d.err == nil; n-- {
		p.pending = append(p.pending, fact{})
		d.fact(&p.pending[len(p.pending)-1])
	}
}

func (d *reader) state(s *pairState) {
	s.at, s.csw, s.open, s.entry = d.time(), d.time(), d.bool(), d.time()
	if n := d.count(); n > 0 && d.err == nil {
		s.convs = make([]conv, n)
		for i := range s.convs {
			c := &s.convs[i]
			c.cat = d.cat()
			c.model = events.PricingModel(d.str())
			c.opened, c.expires = d.time(), d.time()
			c.id, c.metaID = d.str(), d.str()
			c.billable = d.bool()
		}
	}
	if n := d.count(); n > 0 && d.err == nil {
		s.msgs = make([]msg, n)
		for i := range s.msgs {
			m := &s.msgs[i]
			m.wamid = d.str()
			m.kind, m.kindSrc, m.cat = kind(d.enum(byte(kindFreeForm))), d.enum(kindSrcMetaConversation), d.cat()
			m.sentAt, m.delivered = d.time(), d.time()
			m.failed, m.violation = d.bool(), d.bool()
			m.meta = d.meta()
		}
	}
}

func (d *reader) fact(f *fact) {
	f.t = d.time()
	f.kind, f.cat, f.flags = factKind(d.enum(byte(factStatusMax))), d.cat(), d.byte()
	if f.kind == 0 {
		d.fail(errors.New("fact without a kind"))
	}
	f.wamid = d.str()
	f.meta = d.meta()
}

func (d *reader) meta() *metaFacts {
	flags := d.enum(7)
	if flags == 0 || d.err != nil {
		return nil
	}
	m := &metaFacts{rank: int(d.int())}
	if flags&2 != 0 {
		p := &m.own.pricing
		switch d.enum(2) {
		case 1:
			m.own.billable = true
			p.Billable = &m.own.billable
		case 2:
			p.Billable = &m.own.billable
		}
		p.PricingModel, p.Type, p.Category = d.str(), d.str(), events.Category(d.str())
		m.pricing = p
	}
	if flags&4 != 0 {
		m.conversation = &events.MetaConversation{ID: d.str(), ExpirationTimestamp: events.UnixTime(d.int()), OriginType: events.Category(d.str())}
	}
	return m
}
