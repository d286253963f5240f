package billing

import (
	"errors"
	"strconv"
	"strings"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
)

// Stored line format, version 1: "1" then the fields below in this order, separated by the ASCII
// unit separator (0x1F), which no id, name or category contains (it is removed if one does).
// Positional and short, because a million lines sit in Redis and every apply writes thousands.
// A new version adds fields at the end and a new leading digit; readers keep decoding old ones.
const (
	lineVersion = "1"
	sep         = "\x1f"
	lineFields  = 21
)

func clean(s string) string {
	if strings.Contains(s, sep) {
		return strings.ReplaceAll(s, sep, "")
	}
	return s
}

// appendLine encodes l in the stored format.
func appendLine(b []byte, l *Line) []byte {
	str := func(s string) {
		b = append(b, sep...)
		if strings.Contains(s, sep) {
			s = clean(s)
		}
		b = append(b, s...)
	}
	b = append(b, lineVersion...)
	str(l.ID)
	str(l.Pair)
	str(l.WABA)
	str(l.Number)
	str(l.Portfolio)
	str(l.Month)
	str(l.Market)
	str(string(l.Category))
	str(string(l.Model))
	str(string(l.PricingType))
	str(string(l.Unit))
	b = append(b, sep...)
	if l.Billable {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	str(l.Reason)
	str(l.WAMID)
	str(l.ConversationID)
	b = append(b, sep...)
	b = strconv.AppendInt(b, int64(l.At), 10)
	str(l.Currency)
	str(l.CardID)
	b = append(b, sep...)
	b = strconv.AppendInt(b, int64(l.List), 10)
	str(l.Unpriced)
	str(l.Group)
	return b
}

var errBadLine = errors.New("billing: stored line is not in a known format")

// decodeLine decodes a stored line.
func decodeLine(s string) (Line, error) {
	f := strings.Split(s, sep)
	if len(f) < lineFields+1 || f[0] != lineVersion {
		return Line{}, errBadLine
	}
	at, err1 := strconv.ParseInt(f[16], 10, 64)
	list, err2 := strconv.ParseInt(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return Line{}, errBadLine
	}
	return Line{
		ID: f[1], Pair: f[2], WABA: f[3], Number: f[4], Portfolio: f[5], Month: f[6], Market: f[7],
		Category: events.Category(f[8]), Model: events.PricingModel(f[9]), PricingType: events.PricingType(f[10]),
		Unit: events.ChargeUnit(f[11]), Billable: f[12] == "1", Reason: f[13], WAMID: f[14], ConversationID: f[15],
		At: events.UnixTime(at), Currency: f[17], CardID: f[18], List: ratecard.Micros(list), Unpriced: f[20], Group: f[21],
	}, nil
}
