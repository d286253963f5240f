package billing

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// joinLine is the stored format written the plain way: every field cleaned, joined by sep.
func joinLine(l *Line) string {
	bill := "0"
	if l.Billable {
		bill = "1"
	}
	f := []string{lineVersion, l.Pair, l.WABA, l.Number, l.Portfolio, l.Month, l.Market, string(l.Category),
		string(l.Model), string(l.PricingType), string(l.Unit), bill, l.Reason, l.WAMID, l.ConversationID,
		strconv.FormatInt(int64(l.At), 10), l.Currency, l.CardID, strconv.FormatInt(int64(l.List), 10), l.Unpriced, groupRule(l)}
	for i := range f {
		f[i] = clean(f[i])
	}
	return strings.Join(f, sep)
}

// TestAppendLineFastPath: appendLine (fields written as they are, separators counted once, and
// written again with cleaning when a field held one) gives the plain encoding for lines with and
// without separators in any field, after a prefix, within encodedLineSize.
func TestAppendLineFastPath(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pr, _ := NewPricer(smallBook(t))
	strs := func(l *Line) []*string {
		return []*string{&l.Pair, &l.WABA, &l.Number, &l.Portfolio, &l.Month, &l.Market, (*string)(&l.Category),
			(*string)(&l.Model), (*string)(&l.PricingType), (*string)(&l.Unit), &l.Reason, &l.WAMID, &l.ConversationID,
			&l.Currency, &l.CardID, &l.Unpriced, &l.Group}
	}
	n := 0
	for _, evs := range genHistory(r, 400) {
		for _, e := range evs {
			c, ok := e.Data.(*events.Charge)
			if !ok {
				continue
			}
			l := pr.Line(e, c)
			for k := 0; k < 4; k++ {
				m := l
				if k > 0 { // k separators (or more) put into random fields, anywhere in them
					for j := 0; j < k; j++ {
						f := strs(&m)[r.IntN(17)]
						at := r.IntN(len(*f) + 1)
						*f = (*f)[:at] + sep + (*f)[at:]
					}
				}
				prefix := []byte("x" + sep + "y")
				got := appendLine(prefix, &m)
				if want := string(prefix) + joinLine(&m); string(got) != want {
					t.Fatalf("appendLine of %+v:\n got %q\nwant %q", m, got, want)
				}
				if slow := appendLineClean(prefix[:len(prefix):len(prefix)], &m); string(slow) != string(got) {
					t.Fatalf("appendLine %q, appendLineClean %q", got, slow)
				}
				if len(got)-len(prefix) > encodedLineSize(&m) {
					t.Fatalf("encoding of %d bytes, size bound %d", len(got)-len(prefix), encodedLineSize(&m))
				}
				n++
			}
		}
	}
	if n < 1000 {
		t.Fatalf("only %d lines", n)
	}
}
