package replay

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes the report as human-readable tables.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	verdict := "EQUAL"
	switch {
	case !r.Compared:
		verdict = "NOT COMPARED"
	case !r.Equal():
		verdict = "DIFFERENT"
	}
	p("replay report: rebuilt %q vs live %q: %s\n", r.Rebuilt, r.Live, verdict)
	if r.From != 0 || r.To != 0 {
		p("range: lines delivered in [%s, %s); totals and counters not compared\n", orOpen(r.From.String(), r.From == 0), orOpen(r.To.String(), r.To == 0))
	}
	if s := r.Replay; s != nil && s.AlreadyComplete {
		p("replay: already complete, nothing replayed (resumed a finished replay)\n")
	} else if s != nil {
		if s.Resumed {
			p("resumed an interrupted replay: %d outputs it had applied to both projections were not applied again\n", s.AlreadyApplied)
		}
		p("replayed: %d records in %d partitions, %d outputs, %d dead letters, %d skipped, %.1fs, %.0f records/s\n",
			s.Records, s.Partitions, s.Outputs, s.DeadLetters, s.Skipped, s.Seconds, s.PerSecond)
		for p0, f := range s.First {
			if f > 0 {
				p("WARNING: partition %d starts at offset %d: retention deleted what came before; it cannot be rebuilt\n", p0, f)
			}
		}
	}
	moved := false
	for _, x := range r.Positions {
		if x.Live != x.Rebuilt {
			if !moved {
				p("\nhigh-water marks differ (the sides applied different events):\nprojection\tpartition\tlive\trebuilt\n")
				moved = true
			}
			p("%s\t%d\t%s\t%s\n", x.Projection, x.Partition, orOpen(x.Live, x.Live == ""), orOpen(x.Rebuilt, x.Rebuilt == ""))
		}
	}
	if !r.Compared {
		return tw.Flush()
	}
	b := r.Billing
	p("\nbilling: %d WABA-months, %d lines live, %d rebuilt, %d line differences, %d totals differ\n",
		b.WABAMonths, b.LinesLive, b.LinesRebuilt, b.LineDiffs, len(b.Totals))
	if len(b.Totals) > 0 {
		p("waba\tmonth\tlines live\trebuilt\tbillable live\trebuilt\tamount live\trebuilt\n")
		for _, t := range b.Totals {
			p("%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", t.WABA, t.Month, t.Live.Lines, t.Rebuilt.Lines, t.Live.Billable, t.Rebuilt.Billable,
				t.Live.AmountMicros, t.Rebuilt.AmountMicros)
		}
	}
	if len(b.Lines) > 0 {
		p("kind\twaba\tmonth\tline\twamid\tfield\tlive\trebuilt\n")
		for _, l := range b.Lines {
			if len(l.Fields) == 0 {
				p("%s\t%s\t%s\t%s\t%s\t\t\t\n", l.Kind, l.WABA, l.Month, l.ID, l.WAMID)
			}
			for _, f := range l.Fields {
				p("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Kind, l.WABA, l.Month, l.ID, l.WAMID, f.Field, f.Live, f.Rebuilt)
			}
		}
		if int64(len(b.Lines)) < b.LineDiffs {
			p("… %d more line differences (see --json)\n", b.LineDiffs-int64(len(b.Lines)))
		}
	}
	for _, d := range b.Reconciliation {
		p("reconciliation counts differ for %s %s: live %v, rebuilt %v\n", d.WABA, d.Month, d.Live, d.Rebuilt)
	}
	c := r.RateLimit
	if !c.Compared {
		p("\nrate limits: not compared\n")
	} else {
		p("\nrate limits: %d entries live, %d rebuilt, %d differences\n", c.EntriesLive, c.EntriesRebuilt, c.Differences)
		for fam, n := range c.ByFamily {
			p("  %s\t%d\n", fam, n)
		}
		for _, e := range c.Examples {
			p("  %s\n", strings.TrimSpace(e))
		}
	}
	return tw.Flush()
}

func orOpen(s string, open bool) string {
	if open {
		return "-"
	}
	return s
}
