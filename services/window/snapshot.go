package window

import (
	"bufio"
	"cmp"
	"container/heap"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/convmeter/convmeter/events"
)

// Snapshot format, version 1. Everything is little-endian varints and length-prefixed strings:
//
//	magic "CVMW" | version uvarint | partition varint | lateness varint | retention varint
//	stream varint | nextSweep varint
//	accounts: n uvarint, then n × (len uvarint, AccountConfig JSON)
//	settled:  n uvarint, then n × (hash uint64 fixed, time varint), ordered by hash
//	pairs:    n uvarint, then n × pair, ordered by FNV-64 of the key, then key
//	pair:     key | cut | deadline | base state | cur state | facts
//
// The engine's behaviour after Restore is identical to the engine that wrote the snapshot: the
// deadline queue is rebuilt from each pair's deadline, which is all the queue decides.
const (
	snapshotMagic   = "CVMW"
	snapshotVersion = 1
)

// ErrSnapshot marks a snapshot that cannot be read.
var ErrSnapshot = errors.New("window: bad snapshot")

// Snapshot writes the engine's whole state to w.
func (e *Engine) Snapshot(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := &encoder{w: bw}
	enc.raw([]byte(snapshotMagic))
	enc.uint(snapshotVersion)
	enc.int(int64(e.partition))
	enc.int(e.lateness)
	enc.int(e.retention)
	enc.int(e.stream)
	enc.int(e.settled.nextSweep)
	accts := e.accounts.all()
	enc.uint(uint64(len(accts)))
	for _, a := range accts {
		b, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("snapshot account %s: %w", a.PhoneNumberID, err)
		}
		enc.bytes(b)
	}
	hashes := make([]uint64, 0, len(e.settled.at))
	for h := range e.settled.at {
		hashes = append(hashes, h)
	}
	sort.Slice(hashes, func(i, j int) bool { return hashes[i] < hashes[j] })
	enc.uint(uint64(len(hashes)))
	for _, h := range hashes {
		enc.fixed(h)
		enc.int(e.settled.at[h])
	}
	// Pairs are written in a deterministic order: by a 64-bit hash of the key (ties by key), which
	// sorts an order of magnitude faster than 10M string keys.
	type entry struct {
		h uint64
		p *pair
	}
	pairs := make([]entry, 0, len(e.pairs))
	for k, p := range e.pairs {
		pairs = append(pairs, entry{wamidHash(k), p})
	}
	slices.SortFunc(pairs, func(a, b entry) int {
		if c := cmp.Compare(a.h, b.h); c != 0 {
			return c
		}
		return strings.Compare(a.p.key, b.p.key)
	})
	enc.uint(uint64(len(pairs)))
	for _, en := range pairs {
		p := en.p
		enc.str(p.key)
		enc.int(p.cut)
		enc.int(p.deadline)
		base := p.baseState()
		enc.state(&base)
		enc.state(&p.cur)
		enc.uint(uint64(len(p.pending)))
		for i := range p.pending {
			enc.fact(&p.pending[i])
		}
	}
	if enc.err != nil {
		return fmt.Errorf("write snapshot: %w", enc.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// Restore reads a snapshot written by Snapshot into a new engine configured by cfg. The snapshot's
// partition and lateness must match cfg: a state built under other rules is refused.
func Restore(r io.Reader, cfg Config) (*Engine, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	d := &decoder{r: bufio.NewReaderSize(r, 1<<16)}
	if string(d.raw(len(snapshotMagic))) != snapshotMagic {
		return nil, fmt.Errorf("%w: not a window snapshot", ErrSnapshot)
	}
	if v := d.uint(); v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrSnapshot, v, snapshotVersion)
	}
	part, late, ret := d.int(), d.int(), d.int()
	if d.err == nil && (int32(part) != e.partition || late != e.lateness || ret != e.retention) {
		return nil, fmt.Errorf("%w: written for partition %d lateness %ds retention %ds, configured %d/%ds/%ds",
			ErrSnapshot, part, late, ret, e.partition, e.lateness, e.retention)
	}
	e.stream = d.int()
	e.settled.nextSweep = d.int()
	for n := d.count(); n > 0 && d.err == nil; n-- {
		var a events.AccountConfig
		if err := json.Unmarshal(d.bytes(), &a); err != nil && d.err == nil {
			d.err = fmt.Errorf("account: %w", err)
		}
		if d.err == nil {
			if err := e.accounts.put(&a); err != nil {
				d.err = err
			}
		}
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		h := d.fixed()
		e.settled.at[h] = d.int()
	}
	n := d.count()
	e.pairs = make(map[string]*pair, n) // sized once: growing a 10M-entry map is most of a restore
	e.due = make(deadlines, 0, n)
	for ; n > 0 && d.err == nil; n-- {
		p := &pair{}
		p.key = d.str()
		p.cut, p.deadline = d.int(), d.int()
		var base pairState
		d.state(&base)
		p.setBase(base)
		d.state(&p.cur)
		p.pending = make([]fact, d.count())
		for i := range p.pending {
			d.fact(&p.pending[i])
		}
		e.pairs[p.key] = p
		if p.deadline != 0 {
			e.due = append(e.due, due{t: p.deadline, key: p.key})
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, d.err)
	}
	heap.Init(&e.due)
	return e, nil
}

type encoder struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *encoder) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}
func (e *encoder) uint(v uint64) { e.raw(binary.AppendUvarint(e.buf[:0], v)) }
func (e *encoder) int(v int64)   { e.raw(binary.AppendVarint(e.buf[:0], v)) }
func (e *encoder) fixed(v uint64) {
	e.raw(binary.LittleEndian.AppendUint64(e.buf[:0], v))
}
func (e *encoder) bytes(b []byte) { e.uint(uint64(len(b))); e.raw(b) }
func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}
func (e *encoder) bool(b bool) {
	if b {
		e.uint(1)
	} else {
		e.uint(0)
	}
}

func (e *encoder) state(s *pairState) {
	e.int(s.at)
	e.int(s.csw)
	e.bool(s.open)
	e.int(s.entry)
	e.uint(uint64(len(s.convs)))
	for _, c := range s.convs {
		e.uint(uint64(c.cat))
		e.str(string(c.model))
		e.int(c.opened)
		e.int(c.expires)
		e.str(c.id)
		e.str(c.metaID)
		e.bool(c.billable)
	}
	e.uint(uint64(len(s.msgs)))
	for i := range s.msgs {
		m := &s.msgs[i]
		e.str(m.wamid)
		e.uint(uint64(m.kind))
		e.uint(uint64(m.kindSrc))
		e.uint(uint64(m.cat))
		e.int(m.sentAt)
		e.int(m.delivered)
		e.bool(m.failed)
		e.bool(m.violation)
		e.meta(m.meta)
	}
}

func (e *encoder) fact(f *fact) {
	e.int(f.t)
	e.uint(uint64(f.kind))
	e.uint(uint64(f.cat))
	e.uint(uint64(f.flags))
	e.str(f.wamid)
	e.meta(f.meta)
}

func (e *encoder) meta(m *metaFacts) {
	if m == nil {
		e.uint(0)
		return
	}
	var flags uint64 = 1
	if m.pricing != nil {
		flags |= 2
	}
	if m.conversation != nil {
		flags |= 4
	}
	e.uint(flags)
	e.int(int64(m.rank))
	if p := m.pricing; p != nil {
		switch {
		case p.Billable == nil:
			e.uint(0)
		case *p.Billable:
			e.uint(1)
		default:
			e.uint(2)
		}
		e.str(p.PricingModel)
		e.str(p.Type)
		e.str(string(p.Category))
	}
	if c := m.conversation; c != nil {
		e.str(c.ID)
		e.int(int64(c.ExpirationTimestamp))
		e.str(string(c.OriginType))
	}
}

type decoder struct {
	r   *bufio.Reader
	err error
}

// maxLen bounds any length read from a snapshot, so a corrupt one fails instead of allocating.
const maxLen = 1 << 26

func (d *decoder) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	b := make([]byte, n)
	_, d.err = io.ReadFull(d.r, b)
	return b
}
func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	d.err = err
	return v
}
func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	d.err = err
	return v
}
func (d *decoder) fixed() uint64 {
	b := d.raw(8)
	if d.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}
func (d *decoder) count() int {
	n := d.uint()
	if n > maxLen {
		d.err = fmt.Errorf("count %d out of range", n)
		return 0
	}
	return int(n)
}
func (d *decoder) bytes() []byte { return d.raw(d.count()) }
func (d *decoder) str() string   { return string(d.bytes()) }
func (d *decoder) bool() bool    { return d.uint() == 1 }

func (d *decoder) state(s *pairState) {
	s.at, s.csw, s.open, s.entry = d.int(), d.int(), d.bool(), d.int()
	if n := d.count(); n > 0 {
		s.convs = make([]conv, n)
		for i := range s.convs {
			c := &s.convs[i]
			c.cat = cat(d.uint())
			c.model = events.PricingModel(d.str())
			c.opened, c.expires = d.int(), d.int()
			c.id, c.metaID = d.str(), d.str()
			c.billable = d.bool()
		}
	}
	if n := d.count(); n > 0 {
		s.msgs = make([]msg, n)
		for i := range s.msgs {
			m := &s.msgs[i]
			m.wamid = d.str()
			m.kind, m.kindSrc, m.cat = kind(d.uint()), uint8(d.uint()), cat(d.uint())
			m.sentAt, m.delivered = d.int(), d.int()
			m.failed, m.violation = d.bool(), d.bool()
			m.meta = d.meta()
		}
	}
}

func (d *decoder) fact(f *fact) {
	f.t = d.int()
	f.kind, f.cat, f.flags = factKind(d.uint()), cat(d.uint()), uint8(d.uint())
	f.wamid = d.str()
	f.meta = d.meta()
}

func (d *decoder) meta() *metaFacts {
	flags := d.uint()
	if flags == 0 || d.err != nil {
		return nil
	}
	m := &metaFacts{rank: int(d.int())}
	if flags&2 != 0 {
		p := &events.MetaPricing{}
		switch d.uint() {
		case 1:
			t := true
			p.Billable = &t
		case 2:
			f := false
			p.Billable = &f
		}
		p.PricingModel, p.Type, p.Category = d.str(), d.str(), events.Category(d.str())
		m.pricing = p
	}
	if flags&4 != 0 {
		m.conversation = &events.MetaConversation{ID: d.str(), ExpirationTimestamp: events.UnixTime(d.int()), OriginType: events.Category(d.str())}
	}
	return m
}
