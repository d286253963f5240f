package billing

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
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

// TestAppendDiffIsJSON: appendDiff writes what json.Marshal writes, for diffs whose strings are
// plain (its own encoder) or not (quotes, backslashes, HTML characters, control characters,
// non-ASCII and invalid UTF-8: json.Marshal), with and without kinds and verdict fields.
func TestAppendDiffIsJSON(t *testing.T) {
	// A field added to Diff or Verdict must be added to appendDiff too.
	if n, m := reflect.TypeFor[Diff]().NumField(), reflect.TypeFor[events.Verdict]().NumField(); n != 10 || m != 5 {
		t.Fatalf("Diff has %d fields, Verdict %d: appendDiff writes 10 and 5", n, m)
	}
	r := rand.New(rand.NewPCG(8, 9))
	plain := []string{"", "x", "wamid.HBgLMTY1MDU1NTAwMDEVAgARGBI", "102200000000001", "2025-07", "N1/919800000001",
		"utility", "PMP", "regular", "0123456789abcdef/7", "a b-c_d.e:f|g#h~"}
	odd := []string{`a"b`, `back\slash`, "<b>", "a&b", "tab\there", "nl\n", "\x00", "\x1f", "\x7f", "é", "\u2028",
		"\xff\xfe", "日本"}
	str := func() string {
		if r.IntN(30) == 0 { // one diff in two has an odd string
			return odd[r.IntN(len(odd))]
		}
		return plain[r.IntN(len(plain))]
	}
	verdict := func() events.Verdict {
		return events.Verdict{Billable: r.IntN(2) == 0, Category: events.Category(str()), PricingType: events.PricingType(str()),
			PricingModel: str(), ConversationID: str()}
	}
	fast := 0
	for n := 0; n < 20000; n++ {
		d := Diff{ID: str(), WAMID: str(), Pair: str(), WABA: str(), Number: str(), Month: str(),
			At: events.UnixTime(r.Int64N(1<<40) - 1<<20), Ours: verdict(), Meta: verdict()}
		switch k := r.IntN(5); k {
		case 0: // nil: null
		case 1:
			d.Kinds = []string{}
		default:
			for range k {
				d.Kinds = append(d.Kinds, str())
			}
		}
		if all := append([]string{d.ID, d.WAMID, d.Pair, d.WABA, d.Number, d.Month, string(d.Ours.Category),
			string(d.Ours.PricingType), d.Ours.PricingModel, d.Ours.ConversationID, string(d.Meta.Category),
			string(d.Meta.PricingType), d.Meta.PricingModel, d.Meta.ConversationID}, d.Kinds...); !slices.ContainsFunc(all, func(s string) bool { return !plainJSON(s) }) {
			fast++
		}
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendDiff([]byte("prefix"), &d); string(got) != "prefix"+string(want) {
			t.Fatalf("appendDiff of %+v:\n got %s\nwant prefix%s", d, got, want)
		}
	}
	if fast < 5000 || fast > 15000 {
		t.Fatalf("only %d diffs took the plain path", fast)
	}
}

// TestPlainJSON: plainJSON (8 bytes at a time) agrees with a test of each byte on strings of
// every length up to 40 with any byte anywhere, and a plain string is one json.Marshal writes as
// it is.
func TestPlainJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	each := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c > 0x7e || strings.ContainsRune(`"\<>&`, rune(c)) {
				return false
			}
		}
		return true
	}
	const alphabet = "abcXYZ019 ./:|#-_~"
	plain := 0
	for n := 0; n < 200000; n++ {
		b := make([]byte, r.IntN(41))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if len(b) > 0 && r.IntN(2) == 0 {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		s := string(b)
		if got, want := plainJSON(s), each(s); got != want {
			t.Fatalf("plainJSON(%q) = %v, want %v", s, got, want)
		}
		if plainJSON(s) {
			plain++
			if j, _ := json.Marshal(s); string(j) != `"`+s+`"` {
				t.Fatalf("json.Marshal(%q) = %s", s, j)
			}
		}
	}
	if plain < 50000 {
		t.Fatalf("only %d plain strings", plain)
	}
}
