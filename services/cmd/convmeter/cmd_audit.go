package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/services/audit"
	"github.com/convmeter/convmeter/services/internal/memlimit"
	"github.com/convmeter/convmeter/services/window"
)

func init() {
	commands["audit"] = command{
		summary: "offline audit of a webhook export (JSON lines): ledger, counters, reconciliation, bad lines; no Kafka, no Redis",
		parse:   parseAudit,
	}
}

// auditConfig is the audit command's configuration.
type auditConfig struct {
	Files     []string // read one after the other as one export; "-" = standard input
	Accounts  string
	RateCards []string
	Timeline  string
	Lateness  time.Duration
	JSON      bool
	LinesCSV  string // where to write every settled line as CSV ("": nowhere)
	// WriteAccounts is where to write the accounts with an entry to complete for every number of
	// the export they lack ("": nowhere).
	WriteAccounts string
	AllowBad      bool // exit 0 even when the input had bad lines
	GCPercent     int
	MemLimit      memlimit.Bytes
	Out           io.Writer
	In            io.Reader
	Progress      io.Writer // lines read, lines/s and the ETA while the audit reads (standard error)
}

func parseAudit(fs *flag.FlagSet, args []string, _ func(string) string) (runner, error) {
	c := auditConfig{Out: reportOut, In: os.Stdin, Progress: fs.Output()}
	var cards string
	fs.StringVar(&c.Accounts, "accounts", "", "accounts file: a JSON list of account.config.v1 payloads (required unless -write-accounts starts one)")
	fs.StringVar(&c.WriteAccounts, "write-accounts", "", "also write the accounts (-accounts, or none) with an entry for every number of the export they lack to this file: its id, display number and WABA from the webhooks; fill in portfolio_id, time_zone, currency and effective_from, then audit with it as -accounts")
	fs.StringVar(&cards, "ratecards", "", "rate-card files or directories, comma-separated (default: the shipped EXAMPLE cards)")
	fs.StringVar(&c.Timeline, "timeline", "", "pricing timeline file (default: the shipped timeline)")
	fs.DurationVar(&c.Lateness, "lateness", 72*time.Hour, "how late an event may arrive and still count")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	fs.StringVar(&c.LinesCSV, "lines-csv", "", "also write every settled ledger line of every WABA-month to this file as CSV (the columns of the API's /billing/lines.csv), for a spreadsheet")
	fs.BoolVar(&c.AllowBad, "allow-bad", false, "exit 0 when the input had bad lines (they are in the report either way; default: exit 3)")
	fs.IntVar(&c.GCPercent, "gc-percent", 0, "Go GC target (GOGC; 0: the runtime's, 100 unless GOGC says otherwise). The whole audit is in memory: 3M lines take 63 s and 3.3 GB at 100, 55 s and 4.3 GB at 200, 57 s and 8.5 GB at 400")
	memoryLimitFlag(fs, &c.MemLimit, "")
	// The files may come before, between or after the flags.
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for fs.NArg() > 0 {
		c.Files = append(c.Files, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, err
		}
	}
	if len(c.Files) == 0 {
		return nil, errors.New("usage: convmeter audit -accounts FILE [flags] WEBHOOKS.jsonl[.gz]... (- for standard input)")
	}
	if i := slices.Index(c.Files, "-"); i >= 0 && slices.Contains(c.Files[i+1:], "-") {
		return nil, errors.New("standard input (-) can be read only once")
	}
	if c.Accounts == "" && c.WriteAccounts == "" {
		return nil, errors.New("-accounts is required (without an accounts file, -write-accounts FILE audits with none and writes one to complete)")
	}
	c.RateCards = splitList(cards)
	return func(ctx context.Context, log *slog.Logger) error { return runAudit(ctx, c, log) }, nil
}

func runAudit(ctx context.Context, c auditConfig, log *slog.Logger) error {
	setMemory(log, c.GCPercent, c.MemLimit)
	var accounts []*events.AccountConfig
	if c.Accounts != "" {
		var err error
		if accounts, err = audit.LoadAccounts(c.Accounts); err != nil {
			return err
		}
	}
	book, err := loadBook(c.RateCards)
	if err != nil {
		return err
	}
	cfg := audit.Config{Accounts: accounts, Book: book, Engine: window.Config{Lateness: c.Lateness}}
	if c.Timeline != "" {
		if cfg.Engine.Timeline, err = window.LoadTimeline(c.Timeline); err != nil {
			return err
		}
	}
	cfg.Progress, cfg.ProgressBar = c.Progress, isTerminal(c.Progress)
	inputs := make([]audit.Input, 0, len(c.Files))
	for _, name := range c.Files {
		in, lines, closeIn, err := openAuditInput(name, c.In)
		if err != nil {
			return err
		}
		defer closeIn()
		inputs = append(inputs, in)
		if lines < 0 || cfg.TotalLines < 0 {
			cfg.TotalLines = -1 // one input that cannot be counted first: the total is unknown
		} else {
			cfg.TotalLines += lines
		}
	}
	cfg.TotalLines = max(cfg.TotalLines, 0)
	rep, err := audit.OpenInputs(ctx, cfg, inputs, log)
	if err != nil {
		return err
	}
	defer rep.Close()
	if err := writeReport(c.Out, rep, c.JSON); err != nil {
		return err
	}
	if c.LinesCSV != "" {
		if err := writeLinesCSV(c.LinesCSV, rep); err != nil {
			return err
		}
	}
	if c.WriteAccounts != "" {
		b, err := json.MarshalIndent(rep.AccountsTemplate(accounts), "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.WriteAccounts, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write accounts: %w", err)
		}
		log.Info("audit: accounts written", "file", c.WriteAccounts, "accounts", len(accounts)+len(rep.Unconfigured),
			"to_complete", len(rep.Unconfigured))
	}
	if len(rep.BadLines) > 0 {
		log.Warn("audit: input had bad lines or elements", "bad", len(rep.BadLines))
		if !c.AllowBad {
			// The report is complete for what could be read; a script must still see that part
			// of the input was not.
			return exitError{code: exitBadInput, err: fmt.Errorf("%d bad lines or elements (listed in the report; -allow-bad to exit 0)", len(rep.BadLines))}
		}
	}
	return nil
}

// openAuditInput opens one input of the audit: a file, or "-" for standard input, of JSON lines,
// gzip-compressed or not (told by the gzip magic bytes, not by the name). lines is its number of
// lines when it can be counted before the audit reads it (an uncompressed regular file), else -1.
func openAuditInput(name string, stdin io.Reader) (audit.Input, int64, func(), error) {
	in, closeIn := audit.Input{Name: name, R: stdin}, func() {}
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return in, 0, nil, fmt.Errorf("open webhooks: %w", err)
		}
		in.R, closeIn = f, func() { _ = f.Close() }
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			var magic [2]byte
			if n, _ := f.ReadAt(magic[:], 0); n < 2 || !isGzip(magic[:]) {
				lines, err := countLines(f)
				if err != nil {
					closeIn()
					return in, 0, nil, fmt.Errorf("count the lines of %s: %w", name, err)
				}
				return in, lines, closeIn, nil
			}
		}
	}
	br := bufio.NewReader(in.R)
	if magic, _ := br.Peek(2); !isGzip(magic) {
		in.R = br
		return in, -1, closeIn, nil
	}
	gz, err := gzip.NewReader(br)
	if err != nil {
		closeIn()
		return in, 0, nil, fmt.Errorf("open webhooks %s: %w", name, err)
	}
	in.R = gz
	return in, -1, closeIn, nil
}

// writeLinesCSV writes the audit's settled lines to path as CSV.
func writeLinesCSV(path string, rep *audit.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("lines CSV: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = rep.WriteCSV(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("lines CSV %s: %w", path, err)
	}
	return nil
}

// isGzip reports whether b starts as a gzip stream does.
func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// reportOut is where replay and audit print their reports (standard output; tests replace it).
var reportOut io.Writer = os.Stdout

// countLines counts the lines of f, the last one with or without its newline, and seeks back to
// the start: the audit's progress then has a share and an ETA. It reads the file once more (a
// month's 3.5 GB export: 0.9 s when the file is cached, against 4 minutes of audit); a file
// that is not a regular one (a pipe) is not counted: 0.
func countLines(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	var n int64
	last := byte('\n')
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if last != '\n' {
		n++
	}
	_, err = f.Seek(0, io.SeekStart)
	return n, err
}
