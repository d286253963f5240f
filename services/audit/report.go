package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
)

// Report is what an audit found.
type Report struct {
	Lines    int            `json:"lines"`    // non-blank lines read
	Webhooks int            `json:"webhooks"` // lines that were webhook bodies
	Events   int            `json:"events"`   // input events fed to the engine (account configs included)
	Skipped  map[string]int `json:"skipped"`  // webhook content deliberately not turned into events
	// Unconfigured lists the numbers the export names that the accounts lack: their billable
	// lines are unpriced (account_not_configured) and their limits unknown.
	Unconfigured []Number `json:"unconfigured_numbers,omitempty"`
	// BadLines lists every line, or element of a line, that could not become an event.
	BadLines     []BadLine                    `json:"bad_lines"`
	DeadLetters  []Problem                    `json:"dead_letters"` // events the engine refused
	SetAside     []Problem                    `json:"set_aside"`    // events too late to count (A11)
	Violations   []events.PolicyViolation     `json:"policy_violations"`
	End          events.UnixTime              `json:"end"` // stream time at the end: counters are as of it
	Ledger       []Month                      `json:"ledger"`
	Limits       []ratelimit.LimitStatus      `json:"messaging_limits"`
	Throughput   []ratelimit.ThroughputStatus `json:"throughput"`
	PairRateHits []ratelimit.PairRateHit      `json:"pair_rate_hits"`
}

// Number is a business phone number as the export names it, with how many of the audit's input
// events are its.
type Number struct {
	PhoneNumberID      string `json:"phone_number_id"`
	DisplayPhoneNumber string `json:"display_phone_number,omitempty"`
	WABAID             string `json:"waba_id"`
	Events             int    `json:"events"`
}

// BadLine is a line (Path empty) or an element of a line that could not become an event.
type BadLine struct {
	File   string `json:"file,omitempty"` // the input file, when the audit read several
	Line   int    `json:"line"`
	Path   string `json:"path,omitempty"`
	Kind   string `json:"kind,omitempty"`
	Reason string `json:"reason"`
}

// Problem is an input the engine did not count, with why.
type Problem struct {
	Reason   string          `json:"reason"`
	ID       string          `json:"id,omitempty"`
	Type     string          `json:"type,omitempty"`
	At       events.UnixTime `json:"at,omitempty"`
	Original string          `json:"original,omitempty"`
}

// Month is the ledger of one WABA-month: settled totals, every settled line, and every
// difference between Meta's verdict and ours.
type Month struct {
	WABA           string            `json:"waba"`
	Month          string            `json:"month"`
	Totals         billing.Totals    `json:"totals"`
	Lines          []billing.Settled `json:"lines"`
	ReconCounts    map[string]int64  `json:"reconciliation_counts"`
	Reconciliation []billing.Diff    `json:"reconciliation"`
}

// Money formats micros in a currency's minor units as a decimal ("0.08" for 83 900 micros of
// USD), rounding half away from zero. Currencies without minor units print whole.
func Money(m ratecard.Micros, currency string) string {
	d := decimals(currency)
	v := m.MinorUnits(d)
	neg := v < 0
	if neg {
		v = -v
	}
	s := fmt.Sprintf("%0*d", d+1, v)
	if d > 0 {
		s = s[:len(s)-d] + "." + s[len(s)-d:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func decimals(currency string) int {
	switch strings.ToUpper(currency) {
	case "JPY", "KRW", "CLP", "VND", "IDR", "COP", "HUF", "TWD":
		return 0
	}
	return 2
}

// currencyOf is the currency of a WABA-month's lines (its WABA bills in one).
func (m Month) currencyOf() string {
	for k := range m.Totals.ByCurrency {
		if k != "" {
			return k
		}
	}
	return ""
}

// lineSource calls fn with every settled line of a month, in (time, id) order.
type lineSource func(m *Month, fn func(billing.Settled) error) error

// heldLines is a Report's lineSource: the lines its months hold.
func heldLines(m *Month, fn func(billing.Settled) error) error {
	for _, l := range m.Lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// WriteText writes the report as tables, each aligned on its own cells: a month's line list
// does not widen the totals above it, and the writer holds one table at a time, not the report.
func (r *Report) WriteText(w io.Writer) error { return r.writeText(w, heldLines) }

// WriteJSON writes the report as indented JSON, as a json.Encoder with SetIndent("", "  ")
// encodes it.
func (r *Report) WriteJSON(w io.Writer) error { return r.writeJSON(w, heldLines) }

// writeText writes the report as WriteText does, with each month's lines from lines.
func (r *Report) writeText(w io.Writer, lines lineSource) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var err error
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	// table ends the table written so far (its columns are aligned and written out).
	table := func() {
		if e := tw.Flush(); err == nil {
			err = e
		}
	}
	p("audit: %d lines, %d webhooks, %d events, %d bad, %d dead letters, %d set aside, %d policy violations\n",
		r.Lines, r.Webhooks, r.Events, len(r.BadLines), len(r.DeadLetters), len(r.SetAside), len(r.Violations))
	if len(r.Unconfigured) > 0 {
		table()
		p("\nNOT IN THE ACCOUNTS: %d numbers of the export; their billable lines are unpriced (account_not_configured)\n", len(r.Unconfigured))
		p("phone_number_id\tdisplay\twaba_id\tevents\n")
		for _, n := range r.Unconfigured {
			p("%s\t%s\t%s\t%d\n", n.PhoneNumberID, orDash(n.DisplayPhoneNumber), orDash(n.WABAID), n.Events)
		}
	}
	if len(r.BadLines) > 0 {
		table()
		p("\nBAD INPUT\nline\telement\tkind\treason\n")
		for _, b := range r.BadLines {
			p("%s%d\t%s\t%s\t%s\n", orNothing(b.File, ":"), b.Line, orDash(b.Path), orDash(b.Kind), b.Reason)
		}
	}
	if len(r.Skipped) > 0 {
		p("skipped (not billing input):")
		for _, k := range sortedKeys(r.Skipped) {
			p(" %s=%d", k, r.Skipped[k])
		}
		p("\n")
	}
	for _, x := range r.DeadLetters {
		p("dead letter: %s\n", x.Reason)
	}
	for _, x := range r.SetAside {
		p("set aside: %s %s at %s: %s\n", x.Type, x.ID, x.At, x.Reason)
	}
	for i := range r.Ledger {
		m := &r.Ledger[i]
		cur := m.currencyOf()
		t := m.Totals
		p("\nLEDGER %s %s (%s): %d lines, %d billable, %d unpriced, total %s %s (exact %s)\n", m.WABA, m.Month, orDash(cur),
			t.Total.Lines, t.Total.Billable, t.Total.Unpriced, Money(t.Total.AmountMicros, cur), cur, t.Total.AmountMicros)
		table()
		p("category\tlines\tbillable\tunpriced\tamount\n")
		for _, c := range sortedKeys(t.ByCategory) {
			b := t.ByCategory[c]
			p("%s\t%d\t%d\t%d\t%s\n", c, b.Lines, b.Billable, b.Unpriced, Money(b.AmountMicros, cur))
		}
		if t.FreeTier != nil {
			p("free tier: %d eligible, %d used of %d\n", t.FreeTier.Eligible, t.FreeTier.Used, t.FreeTier.Limit)
		}
		table()
		if err == nil {
			err = writeLines(w, m, lines)
		}
		if len(m.Reconciliation) > 0 {
			table()
			p("RECONCILIATION (Meta's verdict differs)\ndelivered\twamid\tdifferences\tours\tmeta\n")
			for _, d := range m.Reconciliation {
				p("%s\t%s\t%s\t%s\t%s\n", d.At, d.WAMID, strings.Join(d.Kinds, ","), verdict(d.Ours), verdict(d.Meta))
			}
		}
	}
	if len(r.Limits) > 0 {
		table()
		p("\nCOUNTERS as of %s\nscope\ttier\tused 24h\tlimit\tused 7d\n", r.End)
		for _, l := range r.Limits {
			lim := fmt.Sprint(l.Limit)
			if l.Unlimited {
				lim = "unlimited"
			}
			p("%s\t%s\t%d\t%s\t%d\n", l.Scope, l.Tier, l.Used, lim, l.Used7d)
		}
		table()
		p("number\tpeak mps (last hour)\tlimit\tpair-rate hits\n")
		hits := map[string]int{}
		for _, h := range r.PairRateHits {
			hits[h.PhoneNumberID]++
		}
		for _, t := range r.Throughput {
			p("%s\t%d\t%d\t%d\n", t.PhoneNumberID, t.Peak, t.LimitMPS, hits[t.PhoneNumberID])
		}
	}
	table()
	return err
}

// lineHeader is the header row of a month's line table.
var lineHeader = lineRow{"delivered", "number", "market", "category", "model", "type", "reason", "amount", "unpriced", "wamid"}

// lineRow is a row of a month's line table.
type lineRow [10]string

func rowOf(l billing.Settled) lineRow {
	return lineRow{l.At.String(), l.Number, orDash(l.Market), string(l.Category), string(l.Model), string(l.SettledType),
		l.Reason, l.Amount.String(), orDash(l.Unpriced), l.WAMID}
}

// writeLines writes the line table of m, laid out as the report's tab writer lays out its other
// tables (each column as wide as its widest cell plus two spaces, the last column as is), in one
// pass over the lines: the rows are kept as their cells' bytes (about 130 bytes a line, where
// the tab writer kept 350 and Run's Report keeps a line's 600) until the widths are known.
func writeLines(w io.Writer, m *Month, lines lineSource) error {
	var width [len(lineHeader) - 1]int
	var rows []byte // every row's cells, each as its length (uvarint) and its bytes
	add := func(r lineRow) {
		for c, s := range r {
			if c < len(width) {
				width[c] = max(width[c], utf8.RuneCountInString(s))
			}
			rows = append(binary.AppendUvarint(rows, uint64(len(s))), s...)
		}
	}
	add(lineHeader)
	if err := lines(m, func(l billing.Settled) error { add(rowOf(l)); return nil }); err != nil {
		return err
	}
	var out []byte
	for len(rows) > 0 {
		for c := range lineHeader {
			n, k := binary.Uvarint(rows)
			cell := rows[k : k+int(n)]
			rows = rows[k+int(n):]
			out = append(out, cell...)
			if c < len(width) {
				for range width[c] - utf8.RuneCount(cell) + 2 {
					out = append(out, ' ')
				}
			}
		}
		out = append(out, '\n')
		if len(out) >= 64<<10 || len(rows) == 0 {
			if _, err := w.Write(out); err != nil {
				return err
			}
			out = out[:0]
		}
	}
	return nil
}

// writeJSON writes the report as WriteJSON does, with each month's lines from lines: the months
// and the rest are marshalled whole, the lines one at a time, spliced where the encoder would
// put them.
func (r *Report) writeJSON(w io.Writer, lines lineSource) error {
	head := *r
	head.Ledger = nil
	err := spliceJSON(w, &head, "", "ledger", func() error {
		if r.Ledger == nil {
			_, err := io.WriteString(w, "null")
			return err
		}
		return writeMonthsJSON(w, r.Ledger, lines)
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// writeMonthsJSON writes the ledger's months at the indentation of a top-level field's value.
func writeMonthsJSON(w io.Writer, ms []Month, lines lineSource) error {
	sep := "["
	for i := range ms {
		if _, err := io.WriteString(w, sep+"\n    "); err != nil {
			return err
		}
		sep = ","
		head := ms[i]
		head.Lines = nil
		err := spliceJSON(w, &head, "    ", "lines", func() error {
			n := 0
			err := lines(&ms[i], func(l billing.Settled) error {
				b, err := json.MarshalIndent(&l, "        ", "  ")
				if err != nil {
					return err
				}
				sep := ",\n        "
				if n == 0 {
					sep = "[\n        "
				}
				n++
				_, err = fmt.Fprintf(w, "%s%s", sep, b)
				return err
			})
			end := "\n      ]"
			if n == 0 {
				end = "null" // as a Month with no lines (a nil slice) marshals
			}
			if err == nil {
				_, err = io.WriteString(w, end)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if len(ms) == 0 {
		_, err := io.WriteString(w, "[]")
		return err
	}
	_, err := io.WriteString(w, "\n  ]")
	return err
}

// spliceJSON writes v as json.MarshalIndent(v, prefix, "  ") writes it, but for the value of its
// field name, which v holds as null and value writes in its place (a piece at a time).
func spliceJSON(w io.Writer, v any, prefix, name string, value func() error) error {
	b, err := json.MarshalIndent(v, prefix, "  ")
	if err != nil {
		return err
	}
	field := "\n" + prefix + "  \"" + name + "\": "
	before, after, ok := bytes.Cut(b, []byte(field+"null"))
	if !ok {
		return fmt.Errorf("audit: no null %s field in the JSON of %T", name, v)
	}
	if _, err := fmt.Fprintf(w, "%s%s", before, field); err != nil {
		return err
	}
	if err := value(); err != nil {
		return err
	}
	_, err = w.Write(after)
	return err
}

func verdict(v events.Verdict) string {
	parts := []string{fmt.Sprintf("billable=%t", v.Billable)}
	if v.Category != "" {
		parts = append(parts, string(v.Category))
	}
	if v.PricingType != "" {
		parts = append(parts, string(v.PricingType))
	}
	if v.PricingModel != "" {
		parts = append(parts, v.PricingModel)
	}
	if v.ConversationID != "" {
		parts = append(parts, "conv="+v.ConversationID)
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// orNothing is s followed by suffix, or nothing when s is empty.
func orNothing(s, suffix string) string {
	if s == "" {
		return ""
	}
	return s + suffix
}

// Line returns the settled line of a wamid, or a zero line.
func (m Month) Line(wamid string) billing.Settled {
	for _, l := range m.Lines {
		if l.WAMID == wamid {
			return l
		}
	}
	return billing.Settled{}
}
