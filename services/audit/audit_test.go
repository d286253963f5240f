package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
)

func runFixture(t *testing.T) *Report {
	t.Helper()
	file, cfg := fixture(t)
	rep, err := Run(context.Background(), cfg, bytes.NewReader(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// fixture is the fixture month (testdata/month.jsonl) and the audit configuration it is checked
// with: its accounts and the example rate cards.
func fixture(t *testing.T) ([]byte, Config) {
	t.Helper()
	accts, err := LoadAccounts("testdata/accounts.json")
	if err != nil {
		t.Fatal(err)
	}
	book, err := ratecard.Examples()
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile("testdata/month.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return file, Config{Accounts: accts, Book: book}
}

// line is the part of a settled line the fixture checks.
type line struct {
	wamid, category, market, settled, reason string
	micros                                   ratecard.Micros
	unpriced                                 string
}

func lines(m Month) []line {
	var out []line
	for _, l := range m.Lines {
		out = append(out, line{l.WAMID, string(l.Category), l.Market, string(l.SettledType), l.Reason, l.Amount, l.Unpriced})
	}
	return out
}

// TestAuditFixture runs the fixture month (testdata/month.jsonl, see testdata/README.md) and
// checks the ledger by hand against the example rate cards:
//
// March 2024, CBP-2023, card example-usd-2023-06 (India: marketing 0.0099, utility 0.0042,
// service 0.004):
//   - wamid.c1 opens a service conversation: first of the month's 1,000 free → 0;
//   - wamid.c2 opens a marketing conversation → 0.0099 (its duplicate webhook changes nothing);
//   - wamid.c3: read arrives before delivered; delivered at 10:06:40 opens utility → 0.0042;
//   - wamid.c4 (sent, then failed) and wamid.c5 (sent only) charge nothing.
//     Total 0.0141 USD, 3 lines, 3 billable.
//
// August 2025, PMP, card example-usd-2025-07:
//   - wamid.p1 free-form inside the user's window → free (non_template_in_csw);
//   - wamid.p2 marketing to India → 0.0107;
//   - wamid.p3 utility to India outside any window → 0.0014 (tier 0:1000); duplicate: no-op;
//   - wamid.p4 utility inside the window → free, but Meta says regular/billable: reconciliation;
//   - wamid.p5 authentication to Indonesia, eligible for authentication-international: the
//     example card has no Indonesia rate → unpriced (no_rate), billable;
//   - wamid.p7 marketing after an ad referral → free-entry-point window, free.
//     Total 0.0121 USD, 6 lines, 3 billable, 1 unpriced.
func TestAuditFixture(t *testing.T) {
	rep := runFixture(t)
	if rep.Lines != 20 || rep.Webhooks != 19 || rep.Events != 22 {
		t.Errorf("lines %d, webhooks %d, events %d; want 20, 19, 22", rep.Lines, rep.Webhooks, rep.Events)
	}
	if len(rep.BadLines) != 2 || rep.BadLines[0].Line != 9 || rep.BadLines[0].Path != "" ||
		rep.BadLines[1].Line != 10 || rep.BadLines[1].Path != "entry[0].changes[0].value.statuses[1]" ||
		!strings.Contains(rep.BadLines[1].Reason, "wamid") {
		t.Errorf("bad lines: %+v", rep.BadLines)
	}
	if len(rep.Ledger) != 2 {
		t.Fatalf("ledger months: %d", len(rep.Ledger))
	}
	mar, aug := rep.Ledger[0], rep.Ledger[1]
	if mar.WABA != "102290129340398" || mar.Month != "2024-03" || aug.Month != "2025-08" {
		t.Fatalf("months %s %s, %s", mar.WABA, mar.Month, aug.Month)
	}
	wantMar := []line{
		{"wamid.c1", "service", "India", string(billing.PricingFreeTier), events.ReasonConversationOpened, 0, ""},
		{"wamid.c2", "marketing", "India", "regular", events.ReasonConversationOpened, 9_900, ""},
		{"wamid.c3", "utility", "India", "regular", events.ReasonConversationOpened, 4_200, ""},
	}
	wantAug := []line{
		{"wamid.p1", "service", "India", "free_customer_service", events.ReasonNonTemplateInCSW, 0, ""},
		{"wamid.p2", "marketing", "India", "regular", events.ReasonTemplateDelivered, 10_700, ""},
		{"wamid.p3", "utility", "India", "regular", events.ReasonTemplateDelivered, 1_400, ""},
		{"wamid.p4", "utility", "India", "free_customer_service", events.ReasonUtilityInCSW, 0, ""},
		{"wamid.p5", "authentication_international", "Indonesia", "regular", events.ReasonTemplateDelivered, 0, billing.UnpricedNoRate},
		{"wamid.p7", "marketing", "Brazil", "free_entry_point", events.ReasonFEPWindow, 0, ""},
	}
	for _, c := range []struct {
		m    Month
		want []line
	}{{mar, wantMar}, {aug, wantAug}} {
		got := lines(c.m)
		if len(got) != len(c.want) {
			t.Fatalf("%s: %d lines, want %d: %+v", c.m.Month, len(got), len(c.want), got)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s line %d:\n got %+v\nwant %+v", c.m.Month, i, got[i], c.want[i])
			}
		}
	}
	if got := mar.Line("wamid.c3").At; got != events.UnixTime(1709633200) {
		t.Errorf("wamid.c3 delivered at %s, want 10:06:40 (the delivered status, not the earlier-arriving read)", got)
	}
	tot := func(m Month, lines, billable, unpriced int64, micros ratecard.Micros, cents string) {
		t.Helper()
		b := m.Totals.Total
		if b.Lines != lines || b.Billable != billable || b.Unpriced != unpriced || b.AmountMicros != micros {
			t.Errorf("%s totals %+v, want %d lines, %d billable, %d unpriced, %d micros", m.Month, b, lines, billable, unpriced, micros)
		}
		if got := Money(b.AmountMicros, "USD"); got != cents {
			t.Errorf("%s total %s, want %s", m.Month, got, cents)
		}
	}
	tot(mar, 3, 3, 0, 14_100, "0.01")
	tot(aug, 6, 3, 1, 12_100, "0.01")
	if ft := mar.Totals.FreeTier; ft == nil || ft.Eligible != 1 || ft.Used != 1 {
		t.Errorf("free tier %+v", ft)
	}
	if c := aug.Totals.ByCategory["marketing"]; c.Lines != 2 || c.Billable != 1 || c.AmountMicros != 10_700 {
		t.Errorf("August marketing %+v", c)
	}
	// Reconciliation: wamid.p4, where Meta charged a utility template we find inside the window.
	var p4 *billing.Diff
	for i, d := range aug.Reconciliation {
		if d.WAMID == "wamid.p4" {
			p4 = &aug.Reconciliation[i]
		}
	}
	if p4 == nil || !p4.Meta.Billable || p4.Ours.Billable || !contains(p4.Kinds, "billable") {
		t.Errorf("wamid.p4 reconciliation: %+v (all: %+v)", p4, aug.Reconciliation)
	}
	// Counters at the end (2025-08-04T09:18:20Z, before the portfolio switch): two users reached
	// outside a service window in 24 h on the number (wamid.p3's and wamid.p5's), none counted
	// per portfolio.
	want := map[ratelimit.Scope]int64{"pn:106540352242922": 2, "pf:pf-1": 0}
	for _, l := range rep.Limits {
		if w, ok := want[l.Scope]; !ok || l.Used != w || l.Limit != 1000 {
			t.Errorf("limit %s: used %d of %d, want %d of 1000", l.Scope, l.Used, l.Limit, w)
		}
	}
	if len(rep.Limits) != 2 {
		t.Errorf("limits: %+v", rep.Limits)
	}
	// Both renderings work.
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), "LEDGER 102290129340398 2025-08 (USD)") {
		t.Errorf("text: %v\n%s", err, b.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestAuditEmptyAndGarbage(t *testing.T) {
	book, err := ratecard.Examples()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Config{Book: book}, strings.NewReader("\n{\"object\":\n[]\n\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 2 || len(rep.BadLines) != 2 || rep.BadLines[0].Line != 2 || rep.BadLines[1].Line != 3 || len(rep.Ledger) != 0 {
		t.Fatalf("%+v", rep)
	}
	if _, err := Run(context.Background(), Config{}, strings.NewReader(""), nil); err != ErrNoBook {
		t.Fatalf("no book: %v", err)
	}
}

// TestAuditDeterministic: the same file gives byte-identical JSON reports.
func TestAuditDeterministic(t *testing.T) {
	a, err := json.Marshal(runFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(runFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatalf("two audits of one file differ:\n%s\n%s", a, b)
	}
}

// The text report aligns each table on its own cells: every column is as wide as its widest
// cell plus the two spaces of padding, never wider because another table (the line list, the
// reconciliation's long verdicts) shares the column. The fixture has all the tables.
func TestWriteTextAlignsEachTable(t *testing.T) {
	rep := runFixture(t)
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	headers := []string{"line ", "category ", "delivered ", "scope ", "number "}
	var table [][]cell // the rows of the table being read
	var raw []string
	check := func() {
		defer func() { table, raw = nil, nil }()
		if len(table) < 2 {
			t.Errorf("a table with no rows:\n%s", strings.Join(raw, "\n"))
			return
		}
		for c := 0; c < len(table[0])-1; c++ {
			widest := 0
			for _, row := range table {
				widest = max(widest, len(row[c].text))
				if row[c].at != table[0][c].at {
					t.Errorf("column %d starts at %d and at %d:\n%s", c, table[0][c].at, row[c].at, strings.Join(raw, "\n"))
					return
				}
			}
			if w := table[0][c+1].at - table[0][c].at; w != widest+2 {
				t.Errorf("column %d (%q) is %d wide for cells of at most %d:\n%s", c, table[0][c].text, w, widest, strings.Join(raw, "\n"))
			}
		}
	}
	seen := map[string]int{}
	for _, l := range strings.Split(b.String(), "\n") {
		cells := cellsOf(l)
		if table != nil && len(cells) == len(table[0]) && len(cells) > 1 {
			table, raw = append(table, cells), append(raw, l)
			continue
		}
		if table != nil {
			check()
		}
		for _, h := range headers {
			if strings.HasPrefix(l, h) && len(cells) > 1 {
				seen[h]++
				table, raw = [][]cell{cells}, []string{l}
			}
		}
	}
	if table != nil {
		check()
	}
	// Both months have a totals and a line table, August a reconciliation; one counters table,
	// one throughput table; the fixture's bad lines.
	if seen["category "] != 2 || seen["delivered "] != 3 || seen["scope "] != 1 || seen["number "] != 1 || seen["line "] != 1 {
		t.Errorf("tables found: %v\n%s", seen, b.String())
	}
}

// cell is one cell of a tabwriter row: its offset in the row and its text.
type cell struct {
	at   int
	text string
}

// cellsOf splits a tabwriter row into its cells, which are separated by two spaces or more (a
// cell may hold single spaces).
func cellsOf(row string) []cell {
	var out []cell
	for i := 0; i < len(row); {
		for i < len(row) && row[i] == ' ' {
			i++
		}
		if i == len(row) {
			break
		}
		end := strings.Index(row[i:], "  ")
		if end < 0 {
			end = len(row) - i
		}
		out = append(out, cell{at: i, text: strings.TrimRight(row[i:i+end], " ")})
		i += end
	}
	return out
}

// The report does not depend on how the outputs are batched: many small batches (the engine
// running ahead while the projections apply the previous one) give the same report, byte for
// byte, as one batch of everything.
func TestAuditBatchInvariant(t *testing.T) {
	file, accounts := loadgenFile(t, 5, 20_000)
	book, err := ratecard.Examples()
	if err != nil {
		t.Fatal(err)
	}
	report := func(batch int) []byte {
		rep, err := Run(context.Background(), Config{Accounts: accounts, Book: book, BatchSize: batch}, bytes.NewReader(file), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Lines != 20_000 || len(rep.Ledger) == 0 || len(rep.Limits) == 0 {
			t.Fatalf("batch %d: %d lines, %d months, %d limits", batch, rep.Lines, len(rep.Ledger), len(rep.Limits))
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	one, small := report(1<<30), report(700)
	if !bytes.Equal(one, small) {
		t.Fatalf("batches of 700 outputs and one batch give different reports:\n%s\n%s", small, one)
	}
}

// An open audit prints what Run's Report prints, byte for byte, as text and as the indented JSON
// `convmeter audit -json` wrote with a json.Encoder: over the fixture (two months, bad lines,
// reconciliation), over loadgen traffic with months of more than a page of lines (EachLine reads
// 1,000 at a time), and over input with no ledger at all. Its lines CSV holds the same lines
// (checkLinesCSV).
func TestOpenPrintsAsRun(t *testing.T) {
	month, cfg := fixture(t)
	generated, accounts := loadgenFile(t, 7, 8_000)
	for _, c := range []struct {
		name     string
		file     []byte
		accounts []*events.AccountConfig
		months   int // at least
	}{
		{"fixture", month, cfg.Accounts, 2},
		{"loadgen", generated, accounts, 1},
		{"no ledger", []byte("\n{\"object\":\n[]\n\n"), nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Accounts: c.accounts, Book: cfg.Book}
			rep, err := Run(context.Background(), cfg, bytes.NewReader(c.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Open(context.Background(), cfg, bytes.NewReader(c.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			if len(rep.Ledger) < c.months || len(res.Ledger) != len(rep.Ledger) {
				t.Fatalf("%d months from Run, %d open, want at least %d", len(rep.Ledger), len(res.Ledger), c.months)
			}
			paged := false
			for i, m := range rep.Ledger {
				paged = paged || len(m.Lines) > 1000
				if res.Ledger[i].Lines != nil {
					t.Errorf("month %s %s: the open audit holds %d lines", m.WABA, m.Month, len(res.Ledger[i].Lines))
				}
			}
			if c.name == "loadgen" && !paged {
				t.Error("no month of more than a page of lines")
			}
			var wantText, gotText, gotAgain, wantJSON, gotJSON, gotRunJSON bytes.Buffer
			enc := json.NewEncoder(&wantJSON)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				t.Fatal(err)
			}
			for _, err := range []error{rep.WriteText(&wantText), res.WriteText(&gotText), res.WriteJSON(&gotJSON),
				rep.WriteJSON(&gotRunJSON)} {
				if err != nil {
					t.Fatal(err)
				}
			}
			// The open audit prints again, after both prints read its store: reading changes nothing.
			if err := res.WriteText(&gotAgain); err != nil {
				t.Fatal(err)
			}
			for _, p := range []struct {
				what      string
				got, want *bytes.Buffer
			}{
				{"open text", &gotText, &wantText},
				{"open text printed again", &gotAgain, &wantText},
				{"open JSON", &gotJSON, &wantJSON},
				{"Run's WriteJSON", &gotRunJSON, &wantJSON},
			} {
				if !bytes.Equal(p.got.Bytes(), p.want.Bytes()) {
					t.Errorf("%s differs from Run's report (%d bytes, want %d):\n%s", p.what, p.got.Len(), p.want.Len(), firstDiff(p.got.String(), p.want.String()))
				}
			}
			if !json.Valid(gotJSON.Bytes()) {
				t.Error("open JSON is not valid JSON")
			}
			if rows := checkLinesCSV(t, rep, res); c.months > 0 && rows == 0 {
				t.Error("the CSV of a ledger has no rows")
			}
		})
	}
}

// checkLinesCSV checks the open audit's CSV against Run's report: a header, then every settled
// line of every month in order, in the billing API's columns, each month's amounts adding up to
// its settled total to the micro. It returns the number of rows after the header.
func checkLinesCSV(t *testing.T, rep *Report, res *Result) int {
	t.Helper()
	var got bytes.Buffer
	if err := res.WriteCSV(&got); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&got).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], billing.CSVHeader) {
		t.Fatalf("CSV: no header row: %.200v", rows)
	}
	rows = rows[1:]
	col := func(name string) int { return slices.Index(billing.CSVHeader, name) }
	n := 0
	for _, m := range rep.Ledger {
		var sum int64
		for _, l := range m.Lines {
			if n >= len(rows) || !slices.Equal(rows[n], l.CSV()) {
				t.Fatalf("CSV row %d: %v, want line %s of %s %s", n+1, rows[min(n, len(rows)-1)], l.ID, m.WABA, m.Month)
			}
			micros, err := strconv.ParseInt(rows[n][col("amount_micros")], 10, 64)
			if err != nil || rows[n][col("waba_id")] != m.WABA || rows[n][col("month")] != m.Month {
				t.Fatalf("CSV row %d: %v (%v)", n+1, rows[n], err)
			}
			sum += micros
			n++
		}
		if total := int64(m.Totals.Total.AmountMicros); sum != total || len(m.Lines) != int(m.Totals.Total.Lines) {
			t.Errorf("CSV of %s %s: %d rows adding to %d micros; the settled totals say %d lines, %d micros",
				m.WABA, m.Month, len(m.Lines), sum, m.Totals.Total.Lines, total)
		}
	}
	if n != len(rows) {
		t.Errorf("CSV: %d rows, %d settled lines in the report", len(rows), n)
	}
	return n
}

// firstDiff shows where two texts first differ.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(i-200, 0)
	return fmt.Sprintf("at byte %d:\n got …%s\nwant …%s", i, a[from:min(i+200, len(a))], b[from:min(i+200, len(b))])
}

// writeLines lays out a month's line table as text/tabwriter lays out the report's other tables
// (the layout the report had when the tab writer held the whole table): columns as wide as their
// widest cell plus two spaces, widths counted in characters (a market name with an accent), the
// last column as is; a month with no lines gets the header alone.
func TestWriteLinesAsTabwriter(t *testing.T) {
	l := func(at int64, market, category, reason string, micros ratecard.Micros, unpriced, wamid string) billing.Settled {
		s := billing.Settled{Amount: micros, SettledType: "regular"}
		s.At, s.Number, s.Market, s.Category, s.Model, s.Reason, s.Unpriced, s.WAMID = events.UnixTime(at), "106540352242922",
			market, events.Category(category), "PMP", reason, unpriced, wamid
		return s
	}
	for _, m := range []Month{
		{Lines: []billing.Settled{
			l(1754000000, "Côte d’Ivoire", "marketing", "template_delivered", 10_700, "", "wamid.a"),
			l(1754000001, "", "authentication_international", "template_delivered", 0, "no_rate", "wamid.bb"),
			l(1754000002, "India", "utility", "utility_in_csw", 1_234_567, "", "wamid.ccc"),
		}},
		{},
	} {
		var want bytes.Buffer
		tw := tabwriter.NewWriter(&want, 0, 4, 2, ' ', 0)
		fmt.Fprint(tw, "delivered\tnumber\tmarket\tcategory\tmodel\ttype\treason\tamount\tunpriced\twamid\n")
		for _, l := range m.Lines {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.At, l.Number, orDash(l.Market), l.Category, l.Model, l.SettledType,
				l.Reason, l.Amount, orDash(l.Unpriced), l.WAMID)
		}
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := writeLines(&got, &m, heldLines); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("line table of %d lines:\n%s\nwant\n%s", len(m.Lines), got.String(), want.String())
		}
	}
}

// readLine gives whole lines, newline included, however long they are against the reader's
// buffer, and the last line without a newline with io.EOF.
func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	br := bufio.NewReaderSize(strings.NewReader("a\n"+long+"\n\nlast"), 16)
	var b []byte
	for i, want := range []string{"a\n", long + "\n", "\n", "last"} {
		var err error
		b, err = readLine(br, b[:0])
		if string(b) != want || (err != nil) != (i == 3) {
			t.Fatalf("line %d: %q, %v; want %q", i, b, err, want)
		}
	}
}

// An audit with Progress set reports the lines read against TotalLines, and its last report
// comes once every line is read and applied.
func TestAuditProgress(t *testing.T) {
	file, cfg := fixture(t)
	var out strings.Builder
	cfg.Progress, cfg.TotalLines, cfg.ProgressEvery = &out, int64(bytes.Count(file, []byte("\n"))), time.Hour
	if _, err := Run(context.Background(), cfg, bytes.NewReader(file), nil); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "audit: 21/21 lines (100.0%), ") || strings.Count(got, "\n") != 1 {
		t.Fatalf("progress %q, want one last line of 21/21 lines", got)
	}
}
