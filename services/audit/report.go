package audit

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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

// BadLine is a line (Path empty) or an element of a line that could not become an event.
type BadLine struct {
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

// WriteText writes the report as tables, each aligned on its own cells: a month's line list
// does not widen the totals above it, and the writer holds one table at a time, not the report.
func (r *Report) WriteText(w io.Writer) error {
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
	if len(r.BadLines) > 0 {
		table()
		p("\nBAD INPUT\nline\telement\tkind\treason\n")
		for _, b := range r.BadLines {
			p("%d\t%s\t%s\t%s\n", b.Line, orDash(b.Path), orDash(b.Kind), b.Reason)
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
	for _, m := range r.Ledger {
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
		p("delivered\tnumber\tmarket\tcategory\tmodel\ttype\treason\tamount\tunpriced\twamid\n")
		for _, l := range m.Lines {
			p("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.At, l.Number, orDash(l.Market), l.Category, l.Model, l.SettledType,
				l.Reason, l.Amount, orDash(l.Unpriced), l.WAMID)
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

// Line returns the settled line of a wamid, or a zero line.
func (m Month) Line(wamid string) billing.Settled {
	for _, l := range m.Lines {
		if l.WAMID == wamid {
			return l
		}
	}
	return billing.Settled{}
}
