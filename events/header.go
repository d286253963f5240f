package events

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"
)

// header is the envelope read by the hand-written scanner below. It reads the envelope fields in
// one pass, checks the JSON syntax of the whole record (so a malformed record is reported as
// malformed whatever else is wrong with it), and leaves data as a byte span for the payload
// decoder. This replaces a two-pass json.Unmarshal into a RawMessage, which scanned the data
// bytes twice before the payload decoder scanned them twice more.
type header struct {
	hasV  bool
	v     int64
	id    string
	typ   Type
	key   string
	time  UnixTime
	cause *Cause
	data  []byte // the raw data value, or nil when absent

	// fast asks scan to decode data with the hand-written decoder of the type (decodeFast) in
	// the same pass, when the type came before data; payload is then the result, or nil when
	// there was none or it gave up.
	fast    bool
	payload Payload

	// The id and key when they need no decoding, as spans of the record: scan makes them with the
	// payload's strings (scanner.makeStrings).
	idAt, keyAt span
}

// span is a string value's bytes b[start:end] when set.
type span struct {
	start, end int
	set        bool
}

// maxDepth bounds nesting, as encoding/json does, so hostile input cannot exhaust the stack.
const maxDepth = 10000

type scanner struct {
	b []byte
	i int

	// Strings read with later (spans of b that need no decoding) are made together by
	// makeStrings: one allocation holds an envelope's id and key and its payload's strings.
	waiting [16]laterString
	nLater  int
}

// laterString is a string to make from b[start:end] and store in *dst.
type laterString struct {
	dst        *string
	start, end int
}

// later stores b[start:end] in *dst when makeStrings runs, or at once when too many wait. dst
// must stay where it is until then (a field of the header or of a payload's allocation, not of
// a value that is copied).
func (s *scanner) later(dst *string, start, end int) {
	if s.nLater == len(s.waiting) {
		*dst = string(s.b[start:end])
		return
	}
	s.waiting[s.nLater] = laterString{dst: dst, start: start, end: end}
	s.nLater++
}

// makeStrings stores the strings later queued and, when h is not nil, h's id and key when they
// are spans: all slices of one new string.
func (s *scanner) makeStrings(h *header) {
	later := s.waiting[:s.nLater]
	s.nLater = 0
	var id, key span
	if h != nil {
		id, key = h.idAt, h.keyAt
	}
	n := 0
	if id.set {
		n += id.end - id.start
	}
	if key.set {
		n += key.end - key.start
	}
	for _, l := range later {
		n += l.end - l.start
	}
	if n == 0 && !id.set && !key.set && len(later) == 0 {
		return
	}
	var sb strings.Builder
	sb.Grow(n)
	if id.set {
		sb.Write(s.b[id.start:id.end])
	}
	if key.set {
		sb.Write(s.b[key.start:key.end])
	}
	for _, l := range later {
		sb.Write(s.b[l.start:l.end])
	}
	all := sb.String()
	off := 0
	take := func(start, end int) string {
		v := all[off : off+end-start]
		off += end - start
		return v
	}
	if id.set {
		h.id = take(id.start, id.end)
	}
	if key.set {
		h.key = take(key.start, key.end)
	}
	for _, l := range later {
		*l.dst = take(l.start, l.end)
	}
}

// malformed is the error for bytes that are not one JSON object.
func (s *scanner) malformed(what string) error {
	if s.i >= len(s.b) {
		return &DecodeError{Kind: ErrKindMalformed, Err: fmt.Errorf("unexpected end of input, %s", what)}
	}
	return &DecodeError{Kind: ErrKindMalformed, Err: fmt.Errorf("at byte %d (%s): %s", s.i, jsonKind(s.b[s.i]), what)}
}

// more reads what follows a member or element: ',' (another follows: true) or the closing
// bracket (false); anything else is malformed.
func (s *scanner) more(closer byte) (bool, error) {
	i := s.i
	if i < len(s.b) && s.b[i] == ',' { // the common case, compact JSON
		s.i = i + 1
		return true, nil
	}
	s.ws()
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case ',':
			s.i++
			return true, nil
		case closer:
			s.i++
			return false, nil
		}
	}
	return false, s.malformed("want ',' or '" + string(closer) + "'")
}

// ws skips white space. It is inlined where it is called, and most often there is none.
func (s *scanner) ws() {
	if i := s.i; i >= len(s.b) || s.b[i] > ' ' {
		return
	}
	s.wsLoop()
}

func (s *scanner) wsLoop() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// scan reads the envelope from b.
func (h *header) scan(b []byte) error {
	var s scanner
	err := h.scanWith(&s, b)
	s.makeStrings(h) // the id is wanted in errors too
	return err
}

func (h *header) scanWith(sp *scanner, b []byte) error {
	s := sp
	s.b = b
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		return s.malformed("want a JSON object")
	}
	s.i++
	s.ws()
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
	} else {
		next := 0
		for {
			s.ws()
			f, kStart, kEnd, esc, err := s.memberName(envelopeFields, next)
			if err != nil {
				return err
			}
			if esc {
				// A key written with escapes ("\u0076") still names its field.
				var k string
				if err := json.Unmarshal(b[kStart-1:kEnd+1], &k); err != nil {
					return &DecodeError{Kind: ErrKindMalformed, Err: fmt.Errorf("object key at byte %d: %w", kStart, err)}
				}
				f = lookupName(envelopeFields, []byte(k))
			}
			if f >= 0 {
				next = f + 1
			}
			s.ws()
			if s.i >= len(b) || b[s.i] != ':' {
				return s.malformed("want ':' after an object key")
			}
			s.i++
			s.ws()
			if err := h.field(s, f); err != nil {
				return err
			}
			more, err := s.more('}')
			if err != nil {
				return err
			}
			if !more {
				break
			}
		}
	}
	s.ws()
	if s.i != len(b) {
		return s.malformed("data after the envelope object")
	}
	return nil
}

// envelopeFields are the envelope's field names, in the order Encode writes them.
var envelopeFields = []string{"v", "id", "type", "key", "time", "cause", "data"}

// field reads the value of the envelope field envelopeFields[f], or skips an unknown one (f < 0).
func (h *header) field(s *scanner, f int) error {
	start := s.i
	switch f {
	case 0: // v
		if err := s.skipValue(0); err != nil {
			return err
		}
		raw := s.b[start:s.i]
		if raw[0] == 'n' {
			h.hasV = false
			return nil
		}
		v, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || raw[0] == '"' {
			return fieldType("v", "want an integer, got JSON "+strings.ToValidUTF8(truncate(string(raw), 40), "\uFFFD"))
		}
		h.hasV, h.v = true, v
	case 2: // type
		if sp, ok, err := s.plainString(); err != nil || ok {
			if ok {
				h.typ = internType(s.b[sp.start:sp.end])
			}
			return err
		}
		str, err := s.stringValue("type")
		if err != nil {
			return err
		}
		h.typ = Type(str)
	case 1: // id
		return s.stringField("id", &h.id, &h.idAt)
	case 3: // key
		return s.stringField("key", &h.key, &h.keyAt)
	case 4: // time
		if err := s.skipValue(0); err != nil {
			return err
		}
		t, err := parseUnixTime(s.b[start:s.i])
		if err != nil {
			return fieldType("time", err.Error())
		}
		h.time = t
	case 5: // cause
		c, err := s.cause()
		if err != nil {
			return err
		}
		h.cause = c
	case 6: // data
		h.payload = nil
		if h.fast {
			// The fast decoders check the syntax of what they read; when one gives up, the
			// generic path starts over from the same byte (and its strings are not made).
			n := s.nLater
			if p := s.fastPayload(h.typ); p != nil {
				h.payload, h.data = p, s.b[start:s.i]
				return nil
			}
			s.i, s.nLater = start, n
		}
		if err := s.skipValue(0); err != nil {
			return err
		}
		h.data = s.b[start:s.i]
	default:
		return s.skipValue(0)
	}
	return nil
}

func fieldType(field, problem string) error {
	return &DecodeError{Kind: ErrKindFieldType, Err: &FieldError{Field: field, Problem: problem}}
}

// stringField reads a JSON string (null reads as "") for envelope field name, as stringValue
// does: one without escapes is left as a span in *at for makeStrings to make, any other is
// stored in *dst (and *at unset, so that a repeated field keeps its last value).
func (s *scanner) stringField(name string, dst *string, at *span) error {
	if sp, ok, err := s.plainString(); err != nil || ok {
		*at = sp
		return err
	}
	str, err := s.stringValue(name)
	if err != nil {
		return err
	}
	*at = span{}
	*dst = str
	return nil
}

// plainString reads a JSON string without escapes and returns its span (set). When the value
// is not a string, or is one with escapes, it reads nothing and returns false: the caller reads
// it another way.
func (s *scanner) plainString() (span, bool, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return span{}, false, nil
	}
	save := s.i
	start, end, esc, err := s.stringSpan()
	if err != nil {
		return span{}, false, err
	}
	if esc {
		s.i = save
		return span{}, false, nil
	}
	return span{start: start, end: end, set: true}, true, nil
}

// stringValue reads a JSON string (null reads as ""), for envelope field name.
func (s *scanner) stringValue(name string) (string, error) {
	if s.i < len(s.b) && s.b[s.i] == 'n' {
		if err := s.skipValue(0); err != nil {
			return "", err
		}
		return "", nil
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		start := s.i
		if err := s.skipValue(0); err != nil {
			return "", err
		}
		return "", fieldType(name, "want a string, got JSON "+jsonKind(s.b[start]))
	}
	start, end, esc, err := s.stringSpan()
	if err != nil {
		return "", err
	}
	if !esc {
		return string(s.b[start:end]), nil
	}
	var str string
	if err := json.Unmarshal(s.b[start-1:end+1], &str); err != nil {
		return "", &DecodeError{Kind: ErrKindMalformed, Err: fmt.Errorf("string at byte %d: %w", start, err)}
	}
	return str, nil
}

// cause reads the cause object, or null. Member names match as encoding/json matches them (exact,
// then case-insensitively); unknown members are skipped.
func (s *scanner) cause() (*Cause, error) {
	b := s.b
	if s.i >= len(b) {
		return nil, s.malformed("want a value")
	}
	if b[s.i] != '{' {
		start := s.i
		if err := s.skipValue(0); err != nil {
			return nil, err
		}
		if b[start] == 'n' {
			return nil, nil
		}
		return nil, fieldType("cause", "want an object, got JSON "+jsonKind(b[start]))
	}
	var c Cause
	s.i++
	s.ws()
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
		return &c, nil
	}
	for {
		s.ws()
		kStart, kEnd, esc, err := s.stringSpan()
		if err != nil {
			return nil, err
		}
		key := b[kStart:kEnd]
		if esc {
			var k string
			if err := json.Unmarshal(b[kStart-1:kEnd+1], &k); err != nil {
				return nil, &DecodeError{Kind: ErrKindMalformed, Err: fmt.Errorf("object key at byte %d: %w", kStart, err)}
			}
			key = []byte(k)
		}
		s.ws()
		if s.i >= len(b) || b[s.i] != ':' {
			return nil, s.malformed("want ':' after an object key")
		}
		s.i++
		s.ws()
		start := s.i
		if err := s.skipValue(0); err != nil {
			return nil, err
		}
		raw := b[start:s.i]
		var (
			name string
			bits int
		)
		switch {
		case string(key) == "partition" || bytes.EqualFold(key, []byte("partition")):
			name, bits = "partition", 32
		case string(key) == "offset" || bytes.EqualFold(key, []byte("offset")):
			name, bits = "offset", 64
		case string(key) == "index" || bytes.EqualFold(key, []byte("index")):
			name, bits = "index", 32
		}
		if name != "" && raw[0] != 'n' {
			v, err := strconv.ParseInt(string(raw), 10, bits)
			if err != nil || raw[0] == '"' {
				return nil, fieldType("cause."+name, fmt.Sprintf("want int%d, got JSON %s", bits, strings.ToValidUTF8(truncate(string(raw), 40), "\uFFFD")))
			}
			switch name {
			case "partition":
				c.Partition = int32(v)
			case "offset":
				c.Offset = v
			default:
				c.Index = int32(v)
			}
		}
		more, err := s.more('}')
		if err != nil {
			return nil, err
		}
		if !more {
			return &c, nil
		}
	}
}

// stringSpan reads a JSON string starting at s.i and returns the span of its contents (without
// quotes) and whether it holds escapes or non-ASCII bytes that need decoding.
func (s *scanner) stringSpan() (start, end int, esc bool, err error) {
	b := s.b
	if s.i >= len(b) || b[s.i] != '"' {
		return 0, 0, false, s.malformed("want a string")
	}
	// The position is kept in a local and stored back before every return: a loop that updates
	// s.i in memory runs at a fraction of the speed.
	i := s.i + 1
	start = i
	for {
		// Skip 8 plain bytes at a time: none is a quote, a backslash, a control character or
		// non-ASCII (the classic has-zero-byte and has-less-than tests on a 64-bit word), then go
		// straight to the first byte that is not plain: the tests' lowest flagged byte is exact
		// (a borrow only flags bytes above a flagged one).
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ (lsb * '"')
			bs := x ^ (lsb * '\\')
			if m := ((x-lsb*0x20)&^x | (q-lsb)&^q | (bs-lsb)&^bs | x) & msb; m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return start, i, esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(b) {
				s.i = i
				return 0, 0, false, s.malformed("unterminated string")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(b) {
					s.i = len(b)
					return 0, 0, false, s.malformed("unterminated string")
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						s.i = i
						return 0, 0, false, s.malformed("bad \\u escape")
					}
				}
				i += 5
			default:
				s.i = i
				return 0, 0, false, s.malformed("bad escape")
			}
		case c < 0x20:
			s.i = i
			return 0, 0, false, s.malformed("control character in string")
		case c >= utf8.RuneSelf:
			esc = true // may be invalid UTF-8, which decodes to U+FFFD
			i++
		default:
			i++
		}
	}
	s.i = i
	return 0, 0, false, s.malformed("unterminated string")
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// skipValue checks and skips one JSON value.
func (s *scanner) skipValue(depth int) error {
	b := s.b
	if s.i >= len(b) {
		return s.malformed("want a value")
	}
	switch c := b[s.i]; {
	case c == '"':
		_, _, _, err := s.stringSpan()
		return err
	case c == '{':
		if depth >= maxDepth {
			return s.malformed("nested too deeply")
		}
		s.i++
		s.ws()
		if s.i < len(b) && b[s.i] == '}' {
			s.i++
			return nil
		}
		for {
			s.ws()
			if _, _, _, err := s.stringSpan(); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(b) || b[s.i] != ':' {
				return s.malformed("want ':' after an object key")
			}
			s.i++
			s.ws()
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			if more, err := s.more('}'); !more || err != nil {
				return err
			}
		}
	case c == '[':
		if depth >= maxDepth {
			return s.malformed("nested too deeply")
		}
		s.i++
		s.ws()
		if s.i < len(b) && b[s.i] == ']' {
			s.i++
			return nil
		}
		for {
			s.ws()
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			if more, err := s.more(']'); !more || err != nil {
				return err
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.malformed("want a value")
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.malformed("want " + lit)
	}
	s.i += len(lit)
	return nil
}

// number checks and skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	b := s.b
	if b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(b) && b[s.i] == '0':
		s.i++
	case s.i < len(b) && b[s.i] >= '1' && b[s.i] <= '9':
		for s.i < len(b) && b[s.i] >= '0' && b[s.i] <= '9' {
			s.i++
		}
	default:
		return s.malformed("bad number")
	}
	if s.i < len(b) && b[s.i] == '.' {
		s.i++
		if s.i >= len(b) || b[s.i] < '0' || b[s.i] > '9' {
			return s.malformed("bad number")
		}
		for s.i < len(b) && b[s.i] >= '0' && b[s.i] <= '9' {
			s.i++
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(b) || b[s.i] < '0' || b[s.i] > '9' {
			return s.malformed("bad number")
		}
		for s.i < len(b) && b[s.i] >= '0' && b[s.i] <= '9' {
			s.i++
		}
	}
	return nil
}

// jsonKind names the JSON kind of a value starting with c, for error messages.
func jsonKind(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "bool"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "number"
	}
	return "invalid character " + strconv.QuoteRune(rune(c))
}

// internType returns the constant for a known wire name, so decoded events share the constant's
// memory; an unknown name is returned as is.
func internType(s []byte) Type {
	for _, t := range InputTypes {
		if string(t) == string(s) {
			return t
		}
	}
	for _, t := range OutputTypes {
		if string(t) == string(s) {
			return t
		}
	}
	return Type(string(s))
}
