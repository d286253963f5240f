package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

// Stored line format: a leading version digit, then the fields below in this order, separated by
// the ASCII unit separator (0x1F), which no id, name or category contains (it is removed if one
// does). Positional and short, because a million lines sit in Redis and every apply writes
// thousands (each byte is parsed, appended to the AOF and kept in memory). A new version adds a new
// leading digit; readers keep decoding old ones.
//
// Version 2 (written): pair, WABA, number, portfolio, month, market, category, model, pricing type,
// unit, billable, reason, WAMID, conversation, delivered at, currency, card, list micros, unpriced,
// group. The id is not stored (it is the hash field) and the group is stored as the rule that made
// it: "f" (free tier) or "v" (volume tier), rebuilt from the line's own fields by ftGroup and
// vtGroup, or "g" and the group itself should it ever differ from both.
//
// Version 1: id first, then the fields of version 2 with the group written out.
const (
	lineVersion = "2"
	sep         = "\x1f"
	lineFields  = 20 // after the version
	line1Fields = 21
)

func clean(s string) string {
	if strings.Contains(s, sep) {
		return strings.ReplaceAll(s, sep, "")
	}
	return s
}

// ftGroup is the free-tier group of a line's WABA-month.
func ftGroup(l *Line) string { return "ft|" + l.WABA + "|" + l.Month }

// vtGroup is the volume-tier group of a priced line: portfolio (the WABA when none), month,
// market, category and card.
func vtGroup(l *Line) string {
	pf := l.Portfolio
	if pf == "" {
		pf = "waba:" + l.WABA
	}
	return "vt|" + pf + "|" + l.Month + "|" + l.Market + "|" + string(l.Category) + "|" + l.CardID
}

// groupRule is the group field of the stored format: the rule the group follows, or the group.
func groupRule(l *Line) string {
	switch {
	case l.Group == "":
		return ""
	case isGroup(l.Group, "ft|", l.WABA, l.Month):
		return "f"
	case l.Portfolio != "" && isGroup(l.Group, "vt|", l.Portfolio, l.Month, l.Market, string(l.Category), l.CardID):
		return "v"
	case l.Portfolio == "" && isGroup(l.Group, "vt|waba:", l.WABA, l.Month, l.Market, string(l.Category), l.CardID):
		return "v"
	}
	return "g" + l.Group
}

// isGroup reports whether g == kind + parts joined by "|" (as ftGroup and vtGroup build it),
// without building the string.
func isGroup(g, kind string, parts ...string) bool {
	g, ok := strings.CutPrefix(g, kind)
	for i, p := range parts {
		if !ok {
			return false
		}
		if i > 0 {
			if g, ok = strings.CutPrefix(g, "|"); !ok {
				return false
			}
		}
		g, ok = strings.CutPrefix(g, p)
	}
	return ok && g == ""
}

// appendLine encodes l in the stored format (the current version). It writes the fields as they
// are and counts the separators it wrote: as many as the format has means no field held one, and
// the encoding is the one appendLineClean gives; otherwise it encodes again with appendLineClean.
// (Counting once, vectorised, costs less than looking for a separator in each of 20 fields.)
func appendLine(b []byte, l *Line) []byte {
	start := len(b)
	b = appendLineFields(b, l, false)
	if bytes.Count(b[start:], []byte(sep)) == lineFields {
		return b
	}
	return appendLineClean(b[:start], l)
}

// appendLineClean encodes l in the stored format, removing separators from every field.
func appendLineClean(b []byte, l *Line) []byte { return appendLineFields(b, l, true) }

// appendLineFields writes the fields of l in the stored format, removing separators from them
// when cleanFields is set.
func appendLineFields(b []byte, l *Line, cleanFields bool) []byte {
	str := func(s string) {
		if cleanFields {
			s = clean(s)
		}
		b = append(b, s...)
	}
	field := func(s string) {
		str(s)
		b = append(b, sep...)
	}
	b = append(b, lineVersion...)
	b = append(b, sep...)
	field(l.Pair)
	field(l.WABA)
	field(l.Number)
	field(l.Portfolio)
	field(l.Month)
	field(l.Market)
	field(string(l.Category))
	field(string(l.Model))
	field(string(l.PricingType))
	field(string(l.Unit))
	if l.Billable {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	b = append(b, sep...)
	field(l.Reason)
	field(l.WAMID)
	field(l.ConversationID)
	b = strconv.AppendInt(b, int64(l.At), 10)
	b = append(b, sep...)
	field(l.Currency)
	field(l.CardID)
	b = strconv.AppendInt(b, int64(l.List), 10)
	b = append(b, sep...)
	field(l.Unpriced)
	str(groupRule(l))
	return b
}

// encodedLineSize is at least the length of l's encoding: the buffer of a batch's lines is
// allocated once.
func encodedLineSize(l *Line) int {
	const numbers = 2 * 20 // delivery time and list micros, at most 20 digits each
	return len(lineVersion) + lineFields + 1 + numbers + len(l.Pair) + len(l.WABA) + len(l.Number) +
		len(l.Portfolio) + len(l.Month) + len(l.Market) + len(l.Category) + len(l.Model) + len(l.PricingType) +
		len(l.Unit) + len(l.Reason) + len(l.WAMID) + len(l.ConversationID) + len(l.Currency) + len(l.CardID) +
		len(l.Unpriced) + 1 + len(l.Group)
}

var errBadLine = errors.New("billing: stored line is not in a known format")

// decodeLine decodes the stored line of id, in any known version.
func decodeLine(id, s string) (Line, error) {
	f := strings.Split(s, sep)
	switch {
	case f[0] == lineVersion && len(f) == lineFields+1:
		l, err := lineFrom(id, f[1:])
		if err != nil {
			return Line{}, err
		}
		switch g := f[20]; {
		case g == "f":
			l.Group = ftGroup(&l)
		case g == "v":
			l.Group = vtGroup(&l)
		case strings.HasPrefix(g, "g"):
			l.Group = g[1:]
		case g != "":
			return Line{}, errBadLine
		}
		return l, nil
	case f[0] == "1" && len(f) >= line1Fields+1:
		l, err := lineFrom(f[1], f[2:])
		l.Group = f[21]
		return l, err
	}
	return Line{}, errBadLine
}

// memberOfStored returns the group member ("WABA#number") of a stored line in any known version,
// without decoding the rest; false when s is not a stored line.
func memberOfStored(s string) (string, bool) {
	f := strings.SplitN(s, sep, 6)
	switch {
	case len(f) == 6 && f[0] == lineVersion:
		return f[2] + "#" + f[3], true
	case len(f) == 6 && f[0] == "1":
		return f[3] + "#" + f[4], true
	}
	return "", false
}

// lineFrom decodes the fields common to all versions, from the pair on.
func lineFrom(id string, f []string) (Line, error) {
	at, err1 := strconv.ParseInt(f[14], 10, 64)
	list, err2 := strconv.ParseInt(f[17], 10, 64)
	if err1 != nil || err2 != nil {
		return Line{}, errBadLine
	}
	return Line{
		ID: id, Pair: f[0], WABA: f[1], Number: f[2], Portfolio: f[3], Month: f[4], Market: f[5],
		Category: events.Category(f[6]), Model: events.PricingModel(f[7]), PricingType: events.PricingType(f[8]),
		Unit: events.ChargeUnit(f[9]), Billable: f[10] == "1", Reason: f[11], WAMID: f[12], ConversationID: f[13],
		At: events.UnixTime(at), Currency: f[15], CardID: f[16], List: ratecard.Micros(list), Unpriced: f[18],
	}, nil
}

// Stored reconciliation records (the ":d" hash) are Diffs as encoding/json writes them. appendDiff
// writes that JSON itself when every string is plain (printable ASCII that JSON does not escape,
// which ids, phone numbers, wamids and enum values are), and calls json.Marshal otherwise.

// appendDiff appends d as json.Marshal encodes it. Each string is checked where it was copied to
// (the copy brings it into the cache; the record's strings are read once).
func appendDiff(b []byte, d *Diff) []byte {
	start, plain := len(b), true
	str := func(s string) {
		at := len(b)
		b = append(b, s...)
		plain = plain && plainJSON(b[at:])
	}
	b = append(b, `{"id":"`...)
	str(d.ID)
	b = append(b, `","wamid":"`...)
	str(d.WAMID)
	b = append(b, `","pair":"`...)
	str(d.Pair)
	b = append(b, `","waba":"`...)
	str(d.WABA)
	b = append(b, `","number":"`...)
	str(d.Number)
	b = append(b, `","month":"`...)
	str(d.Month)
	b = append(b, `","at":`...)
	b = strconv.AppendInt(b, int64(d.At), 10)
	b = append(b, `,"kinds":`...)
	if d.Kinds == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, k := range d.Kinds {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			str(k)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	for i, v := range [...]*events.Verdict{&d.Ours, &d.Meta} {
		b = append(b, [...]string{`,"ours":`, `,"meta":`}[i]...)
		b = append(b, `{"billable":`...)
		b = strconv.AppendBool(b, v.Billable)
		for j, s := range [...]string{string(v.Category), string(v.PricingType), v.PricingModel, v.ConversationID} {
			if s != "" { // omitempty
				b = append(b, [...]string{`,"category":"`, `,"pricing_type":"`, `,"pricing_model":"`, `,"conversation_id":"`}[j]...)
				str(s)
				b = append(b, '"')
			}
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	if !plain {
		j, _ := json.Marshal(d) // a Diff always marshals
		b = append(b[:start], j...)
	}
	return b
}

// plainJSON reports whether encoding/json writes s as it is between quotes: printable ASCII
// without '"', '\\' and the characters it escapes for HTML ('<', '>', '&'). It looks at 8 bytes
// at a time (the has-byte tests on a word: a flag is set in a byte that matches, and possibly in
// bytes above one that does, never when none does).
func plainJSON[S string | []byte](s S) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	has := func(x uint64, c byte) uint64 { y := x ^ (lsb * uint64(c)); return (y - lsb) &^ y }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// below 0x20, 0x7f, '"', '\\', '<', '>', '&', or 0x80 and above
		if ((x-lsb*0x20)&^x|has(x, 0x7f)|has(x, '"')|has(x, '\\')|has(x, '<')|has(x, '>')|has(x, '&')|x)&msb != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
