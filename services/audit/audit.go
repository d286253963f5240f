package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/services/ingest"
	"github.com/convmeter/convmeter/services/internal/progress"
	"github.com/convmeter/convmeter/services/replay"
	"github.com/convmeter/convmeter/services/window"
)

// Config configures an audit.
type Config struct {
	// Accounts states the phone numbers' account facts (A4), as in an accounts file.
	Accounts []*events.AccountConfig
	// Book is the rate book (ratecard.Examples() for the shipped example cards).
	Book *ratecard.Book
	// Engine configures the window engine (lateness, timeline); zero values take the defaults.
	Engine window.Config
	// BatchSize is the number of engine outputs per projection batch (DefaultBatchSize when 0).
	// The report does not depend on it.
	BatchSize int
	// Progress, when set, receives the lines read so far, lines/s and the ETA: a line every
	// ProgressEvery (default 2 s), or with ProgressBar one bar redrawn in place. TotalLines is the
	// number of lines in the input, for the share and the ETA (0: unknown, count and rate only).
	Progress      io.Writer
	ProgressEvery time.Duration
	ProgressBar   bool
	TotalLines    int64
}

// Input is one file of an audit of several (OpenInputs): its name, for the report's bad lines,
// and its lines.
type Input struct {
	Name string
	R    io.Reader
}

// DefaultBatchSize is Config.BatchSize when 0. Fewer, larger batches mean fewer WATCH/MULTI round
// trips to the embedded Redis: auditing 1M lines took 25.9-27.0 CPU-s in batches of 20,000 or
// 50,000 outputs against 28.1-29.4 in batches of 5,000 (alternating, 2026-11-25). A batch of
// 20,000 holds about 9 MB, twice while one applies and the next fills.
const DefaultBatchSize = 20_000

// ErrNoBook is returned when no rate book is given.
var ErrNoBook = errors.New("audit: no rate book")

// LoadAccounts reads an accounts file: a JSON list of account.config.v1 payloads.
func LoadAccounts(path string) ([]*events.AccountConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read accounts: %w", err)
	}
	var as []*events.AccountConfig
	if err := json.Unmarshal(b, &as); err != nil {
		return nil, fmt.Errorf("audit: accounts file %s: %w", path, err)
	}
	for i, a := range as {
		if a == nil || a.PhoneNumberID == "" || a.WABAID == "" {
			return nil, fmt.Errorf("audit: accounts file %s: entry %d needs phone_number_id and waba_id", path, i)
		}
	}
	return as, nil
}

// Run audits a file of raw webhook bodies (JSON lines, one Meta webhook POST body per line): every
// body goes through the ingest normaliser, the resulting events through the window engine in file
// order (the order Meta delivered them), and the outputs into the billing and rate-limit
// projections. The projections' Redis stores run against an embedded in-process Redis
// (miniredis): the billing settlement (free tier, volume tiers) is a query over the stored
// ledger, so the audit runs the exact code the live path runs, with nothing installed.
//
// The Report holds every settled line. To print a large audit, Open holds less: it leaves the
// lines in the embedded Redis and prints them a page at a time.
func Run(ctx context.Context, cfg Config, r io.Reader, log *slog.Logger) (*Report, error) {
	res, err := Open(ctx, cfg, r, log)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	for i := range res.Ledger {
		m := &res.Ledger[i]
		if err := res.ns.Billing.EachLine(ctx, m.WABA, m.Month, func(l billing.Settled) error {
			m.Lines = append(m.Lines, l)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return res.Report, nil
}

// Result is an audit whose settled lines are still in the embedded Redis. Its Report holds
// everything else: every month's totals and reconciliation, with Lines empty. WriteText and
// WriteJSON print the whole report, Run's rendering byte for byte, reading the lines a page at a
// time, where Run holds every line of every month (600 bytes a line) and a json.Encoder of its
// Report the whole JSON text too. `convmeter audit` prints a Result: on the first 3M lines of the
// loadgen month (960k settled lines), its peak RSS went from 3.3 to 2.7-3.2 GB for text and from
// 4.6-4.9 to 3.1-3.2 GB for JSON; the peak is now the run's, no longer the printing's. Close
// releases the embedded Redis.
type Result struct {
	*Report
	mr  *miniredis.Miniredis
	rdb *redis.Client
	ns  *replay.Namespace
}

// Close releases the embedded Redis; the Result's lines are gone with it.
func (res *Result) Close() {
	_ = res.rdb.Close()
	res.mr.Close()
}

// eachLine calls fn with every settled line of m, in (time, id) order, as Month.Lines holds them.
func (res *Result) eachLine(m *Month, fn func(billing.Settled) error) error {
	return res.ns.Billing.EachLine(context.Background(), m.WABA, m.Month, fn)
}

// WriteText writes the report as Report.WriteText does, reading the lines from the store.
func (res *Result) WriteText(w io.Writer) error { return res.writeText(w, res.eachLine) }

// WriteJSON writes the report as indented JSON, as a json.Encoder with SetIndent("", "  ")
// encodes Run's Report, reading the lines from the store.
func (res *Result) WriteJSON(w io.Writer) error { return res.writeJSON(w, res.eachLine) }

// WriteCSV writes every settled line of every WABA-month, in the report's order, as the billing
// API's CSV export writes a month's (billing.CSVHeader once, then a record a line): the ledger for
// a spreadsheet.
func (res *Result) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(billing.CSVHeader); err != nil {
		return err
	}
	for i := range res.Ledger {
		if err := res.eachLine(&res.Ledger[i], func(l billing.Settled) error { return cw.Write(l.CSV()) }); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Open runs the audit as Run does and returns it open: the settled lines stay in the embedded
// Redis until Close.
func Open(ctx context.Context, cfg Config, r io.Reader, log *slog.Logger) (*Result, error) {
	return OpenInputs(ctx, cfg, []Input{{R: r}}, log)
}

// OpenInputs is Open over several files read one after the other, as one export: a month kept as
// a file a day, in the order given (the engine takes events up to the lateness out of order, so
// files in date order is enough). A bad line is reported with its file's name and its line
// number in that file; with a single input, as Open, with the line number only.
func OpenInputs(ctx context.Context, cfg Config, in []Input, log *slog.Logger) (*Result, error) {
	if cfg.Book == nil {
		return nil, ErrNoBook
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return nil, fmt.Errorf("audit: start embedded redis: %w", err)
	}
	res := &Result{mr: mr, rdb: redis.NewClient(&redis.Options{Addr: mr.Addr()})}
	rep, err := res.run(ctx, cfg, in, log)
	if err != nil {
		res.Close()
		return nil, err
	}
	res.Report = rep
	return res, nil
}

// run feeds the accounts and the files through the engine and the projections, then reads
// everything of the report but the lines.
func (res *Result) run(ctx context.Context, cfg Config, in []Input, log *slog.Logger) (*Report, error) {
	rdb := res.rdb
	ns, err := replay.OpenNamespace(rdb, "audit:", cfg.Book, 1, log)
	if err != nil {
		return nil, err
	}
	res.ns = ns
	// The rate-limit script reads a missing counter-trim mark as tonumber('-1e18'), which the Lua
	// of miniredis (gopher-lua) reads as nil. Seeding the mark with an equally "never trimmed"
	// value gives the same behaviour as a fresh real Redis.
	if err := rdb.HSet(ctx, "audit:"+ratelimit.Name+":{rl.p0}:meta", "lc", "-1000000000000").Err(); err != nil {
		return nil, fmt.Errorf("audit: seed embedded redis: %w", err)
	}
	col := &collector{}
	engine := cfg.Engine
	if engine.CachePairs == 0 {
		engine.CachePairs = replay.DefaultCachePairs // a batch job over a month of pairs, as a replay
	}
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	x, err := replay.NewPartition(0, "audit", engine, batch, append(ns.Projections(), col)...)
	if err != nil {
		return nil, err
	}
	// The projections apply a batch while the engine runs the next, as in a replay: batches
	// still apply one at a time and in order, so the report is the same.
	x.Pipeline()
	rep := &Report{Skipped: map[string]int{}}
	seen := newNumbers(cfg.Accounts)
	var off int64
	var value, key []byte // reused: the Processor keeps nothing of a record's memory, as in a replay
	feed := func(ev events.Event) error {
		var err error
		if value, err = events.Encode(value[:0], ev); err != nil {
			return fmt.Errorf("audit: encode %s: %w", ev.Type, err)
		}
		key = append(key[:0], ev.Key...)
		m := kafka.Message{Topic: "audit", Offset: off, Key: key, Value: value}
		off++
		rep.Events++
		return x.Record(ctx, m)
	}
	for _, a := range cfg.Accounts {
		if err := feed(events.New(a)); err != nil {
			return nil, err
		}
	}
	total := cfg.TotalLines
	if total <= 0 {
		total = -1 // unknown
	}
	var read atomic.Int64
	stopProgress := progress.Start(ctx, progress.Config{Out: cfg.Progress, Every: cfg.ProgressEvery, Bar: cfg.ProgressBar,
		Job: "audit", Unit: "lines", Rate: "lines/s", Finishing: "all read, applying the last batches"}, total, &read)
	defer stopProgress() // on an error; once the batches are applied, it stops below
	br := bufio.NewReaderSize(nil, 1<<20)
	var b []byte // reused: Normalize keeps nothing of its input (the decoder copies strings)
	for _, f := range in {
		file := ""
		if len(in) > 1 {
			file = f.Name
		}
		br.Reset(f.R)
		for line := 1; ; line++ {
			var rerr error
			b, rerr = readLine(br, b[:0])
			if len(b) > 0 {
				read.Add(1)
			}
			if len(bytes.TrimSpace(b)) > 0 {
				rep.Lines++
				if err := rep.webhook(file, line, b, seen, feed); err != nil {
					return nil, err
				}
			}
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				// A file that cannot be read to its end (a truncated gzip file, a failing disk) is
				// bad input like a bad line: reported, and the audit goes on with the next file.
				rep.BadLines = append(rep.BadLines, BadLine{File: file, Line: line, Reason: "read: " + rerr.Error()})
				break
			}
		}
	}
	if err := x.Flush(ctx); err != nil {
		return nil, err
	}
	stopProgress()
	for _, d := range x.DeadLetters() {
		dl := d.Data.(*events.DeadLetter)
		rep.DeadLetters = append(rep.DeadLetters, Problem{Reason: dl.ErrorKind + ": " + dl.Reason, Original: string(dl.Original)})
	}
	rep.SetAside, rep.Violations = col.setAside, col.violations
	rep.Unconfigured = seen.unconfigured()
	rep.End = events.UnixTime(x.Engine().StreamTime())
	if err := rep.ledger(ctx, rdb, ns); err != nil {
		return nil, err
	}
	if err := rep.counters(ctx, ns.RateLimit, cfg.Accounts); err != nil {
		return nil, err
	}
	return rep, nil
}

// readLine appends the next line of br, with its newline if it has one, to b.
func readLine(br *bufio.Reader, b []byte) ([]byte, error) {
	for {
		s, err := br.ReadSlice('\n')
		b = append(b, s...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return b, err
		}
	}
}

// webhook normalises one line and feeds its events; what cannot become an event is reported
// with the file (when there are several), the line number and the reason.
func (rep *Report) webhook(file string, line int, b []byte, seen *numbers, feed func(events.Event) error) error {
	res, err := ingest.Normalize(bytes.TrimSpace(b))
	if err != nil {
		rep.BadLines = append(rep.BadLines, BadLine{File: file, Line: line, Reason: err.Error()})
		return nil
	}
	rep.Webhooks++
	for k, n := range res.Skipped {
		rep.Skipped[k] += n
	}
	for _, rj := range res.Rejected {
		rep.BadLines = append(rep.BadLines, BadLine{File: file, Line: line, Path: rj.Path, Kind: string(rj.Kind), Reason: rj.Reason})
	}
	for _, ev := range res.Events {
		seen.note(ev)
		if err := feed(ev); err != nil {
			return err
		}
	}
	return nil
}

// numbers notes the business numbers an export's events name that the accounts do not.
type numbers struct {
	configured map[string]bool
	missing    map[string]*Number
}

func newNumbers(accounts []*events.AccountConfig) *numbers {
	ns := &numbers{configured: map[string]bool{}, missing: map[string]*Number{}}
	for _, a := range accounts {
		ns.configured[a.PhoneNumberID] = true
	}
	return ns
}

// note counts ev toward its number when the accounts lack it.
func (ns *numbers) note(ev events.Event) {
	var pn, display, waba string
	switch d := ev.Data.(type) {
	case *events.InboundMessage:
		pn, display, waba = d.PhoneNumberID, d.DisplayPhoneNumber, d.WABAID
	case *events.StatusUpdate: // webhooks carry no sends: the rest of what names a number
		pn, waba = d.PhoneNumberID, d.WABAID
	default:
		return
	}
	if pn == "" || ns.configured[pn] {
		return
	}
	n := ns.missing[pn]
	if n == nil {
		n = &Number{PhoneNumberID: pn}
		ns.missing[pn] = n
	}
	n.Events++
	n.DisplayPhoneNumber = cmp.Or(n.DisplayPhoneNumber, display)
	n.WABAID = cmp.Or(n.WABAID, waba)
}

// unconfigured lists the numbers noted, by id.
func (ns *numbers) unconfigured() []Number {
	out := make([]Number, 0, len(ns.missing))
	for _, n := range ns.missing {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b Number) int { return strings.Compare(a.PhoneNumberID, b.PhoneNumberID) })
	return out
}

// AccountsTemplate is accounts (an accounts file's entries) followed by an entry for every number
// of Unconfigured, with its id, display number and WABA from the export and the facts only the
// business knows left empty: portfolio, time zone, currency, from when. Filled in, it is the
// accounts file of the next audit.
func (r *Report) AccountsTemplate(accounts []*events.AccountConfig) []*events.AccountConfig {
	out := slices.Clone(accounts)
	for _, n := range r.Unconfigured {
		out = append(out, &events.AccountConfig{PhoneNumberID: n.PhoneNumberID, DisplayPhoneNumber: n.DisplayPhoneNumber, WABAID: n.WABAID})
	}
	return out
}

// collector is a projection that keeps the outputs the report lists one by one: events set aside
// as too late and policy violations.
type collector struct {
	setAside   []Problem
	violations []events.PolicyViolation
}

func (c *collector) Name() string { return "audit" }

func (c *collector) Apply(_ context.Context, b projections.Batch) error {
	for _, e := range b.Events {
		switch d := e.Data.(type) {
		case *events.EventSetAside:
			c.setAside = append(c.setAside, Problem{Reason: d.Reason, ID: d.InputID, Type: string(d.InputType), At: d.InputTime, Original: string(d.Original)})
		case *events.PolicyViolation:
			c.violations = append(c.violations, *d)
		}
	}
	return nil
}

func (c *collector) HighWater(context.Context, int32) (events.Cause, bool, error) {
	return events.Cause{}, false, nil
}

// ledger reads the settled totals and the reconciliation of every WABA-month (the lines are read
// as they are printed, or by Run).
func (rep *Report) ledger(ctx context.Context, rdb redis.UniversalClient, ns *replay.Namespace) error {
	wms, err := ns.WABAMonths(ctx, rdb)
	if err != nil {
		return err
	}
	for _, wm := range wms {
		waba, month, _ := strings.Cut(wm, "|")
		t, err := ns.Billing.Totals(ctx, waba, month)
		if err != nil {
			return err
		}
		m := Month{WABA: waba, Month: month, Totals: t}
		cursor := ""
		for {
			rc, err := ns.Billing.Reconciliation(ctx, waba, month, cursor, 500)
			if err != nil {
				return err
			}
			m.Reconciliation = append(m.Reconciliation, rc.Diffs...)
			m.ReconCounts = rc.Counts
			if cursor = rc.Next; cursor == "" {
				break
			}
		}
		rep.Ledger = append(rep.Ledger, m)
	}
	return nil
}

// counters reads the messaging-limit counters of every number and portfolio, throughput peaks
// and pair-rate hits, as of the end of the audited traffic (the stream time).
func (rep *Report) counters(ctx context.Context, rl *ratelimit.Store, accounts []*events.AccountConfig) error {
	scopes := map[ratelimit.Scope]bool{}
	numbers := map[string]int{}
	for _, a := range accounts {
		scopes[ratelimit.PhoneScope(a.PhoneNumberID)] = true
		if a.PortfolioID != "" {
			scopes[ratelimit.PortfolioScope(a.PortfolioID)] = true
		}
		numbers[a.PhoneNumberID] = a.ThroughputMPS
	}
	for _, sc := range sortedKeys(scopes) {
		st, err := rl.Limit(ctx, sc, rep.End)
		if err != nil {
			return err
		}
		rep.Limits = append(rep.Limits, st)
	}
	for _, pn := range sortedKeys(numbers) {
		mps := numbers[pn]
		if mps <= 0 {
			mps = 80
		}
		tp, err := rl.Throughput(ctx, pn, rep.End, mps)
		if err != nil {
			return err
		}
		rep.Throughput = append(rep.Throughput, tp)
		hits, err := rl.PairRateHits(ctx, pn, 0, rep.End)
		if err != nil {
			return err
		}
		rep.PairRateHits = append(rep.PairRateHits, hits...)
	}
	return nil
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
