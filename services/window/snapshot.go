package window

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/convmeter/convmeter/events"
)

// Snapshot format, version 2. Everything is little-endian varints and length-prefixed strings:
//
//	magic "CVMW" | version uvarint | partition varint | lateness varint | retention varint
//	stream varint | nextSweep varint
//	accounts: n uvarint, then n × (len uvarint, AccountConfig JSON)
//	settled:  n uvarint, then n × (hash uint64 fixed, time varint), ordered by hash
//	pairs:    n uvarint, then n × (len uvarint, pair), ordered by FNV-64 of the key, then key
//
// A pair is its pair-table record (codec.go), so writing and restoring pairs copies bytes.
// Version 1 (pairs without a length, absolute times) is not read: the aggregator replays the log
// instead (ErrSnapshotVersion).
//
// The engine's behaviour after Restore is identical to the engine that wrote the snapshot: the
// deadline queue is rebuilt from each pair's deadline, which is all the queue decides.
const (
	snapshotMagic   = "CVMW"
	snapshotVersion = 2
)

// ErrSnapshot marks a snapshot that cannot be read.
var ErrSnapshot = errors.New("window: bad snapshot")

// ErrSnapshotVersion marks a well-formed snapshot of another format version: a cache this build
// cannot use, to be rebuilt from the log.
var ErrSnapshotVersion = fmt.Errorf("%w: format version", ErrSnapshot)

// Snapshot writes the engine's whole state to w.
func (e *Engine) Snapshot(w io.Writer) error {
	e.flush()
	if g, ok := w.(interface{ Grow(int) }); ok {
		g.Grow(e.pairs.liveBytes() + 1<<16) // a bytes.Buffer grows once
	}
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
	slices.Sort(hashes)
	enc.uint(uint64(len(hashes)))
	for _, h := range hashes {
		enc.fixed(h)
		enc.int(e.settled.at[h])
	}
	// Pairs are written in a deterministic order: by a 64-bit hash of the key (ties by key), which
	// sorts an order of magnitude faster than 10M string keys.
	pairs := e.pairs.sorted()
	enc.uint(uint64(len(pairs)))
	for _, r := range pairs {
		enc.bytes(e.pairs.record(int(r.off)))
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
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	return RestoreBytes(b, cfg)
}

// RestoreBytes is Restore from a snapshot in memory; b is not retained.
func RestoreBytes(b []byte, cfg Config) (*Engine, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	d := &reader{b: b}
	if string(d.raw(len(snapshotMagic))) != snapshotMagic {
		return nil, fmt.Errorf("%w: not a window snapshot", ErrSnapshot)
	}
	if v := d.uint(); v != snapshotVersion {
		return nil, fmt.Errorf("%w %d, this build reads %d", ErrSnapshotVersion, v, snapshotVersion)
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
			d.fail(fmt.Errorf("account: %w", err))
		}
		if d.err == nil {
			if err := e.accounts.put(&a); err != nil {
				d.fail(err)
			}
		}
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		h := d.fixed()
		e.settled.at[h] = d.int()
	}
	n := d.count()
	// Sized once: growing the index and the arena is most of a large restore.
	e.pairs.reserve(n)
	e.due = make(deadlines, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		body := d.bytes()
		// Decode each record once, so a damaged one fails here rather than when its pair is
		// next touched.
		pr := reader{b: body}
		key := string(pr.bytes())
		pr.b, pr.check = body, true
		pr.pair(&e.scratch, key)
		if pr.err == nil && len(pr.b) != 0 {
			pr.fail(fmt.Errorf("%d bytes after the record", len(pr.b)))
		}
		if pr.err != nil {
			d.fail(fmt.Errorf("pair %d: %w", i, pr.err))
			break
		}
		e.pairs.put(key, body)
		if e.pairs.Len() != i+1 {
			d.fail(fmt.Errorf("pair %q twice", key))
			break
		}
		if e.scratch.deadline != 0 {
			e.due = append(e.due, due{t: e.scratch.deadline, h: hashKey(key)})
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d bytes after the pairs", len(d.b)))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, d.err)
	}
	e.due.init()
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
