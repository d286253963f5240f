package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/producer"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/ingest"
	"github.com/convmeter/convmeter/services/loadgen"
)

func noEnv(string) string { return "" }

// capture runs the command with reports going to a buffer.
func capture(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	old := reportOut
	reportOut = &out
	defer func() { reportOut = old }()
	code := run(args, noEnv, &errb)
	return code, out.String(), errb.String()
}

// TestReplayCommand: generated traffic in Kafka; a first replay with -promote builds the live
// namespace; a second replay equals it (exit 0); a replay with an edited rate card differs
// (exit 1).
func TestReplayCommand(t *testing.T) {
	r := newReplayRig(t, loadgen.Config{Seed: 5, Numbers: 2, UsersPerNumber: 100, Duration: time.Hour, SessionsPerHour: 100}, 0)
	kp, base := r.prefix, r.args
	code, out, errs := capture(t, append(base, "-prefix", kp+"a:", "-promote")...)
	if code != 0 || !strings.Contains(out, "DIFFERENT") {
		t.Fatalf("bootstrap with -promote: exit %d\n%s\n%s", code, out, errs)
	}
	// The GC floor is for the rebuild: the comparison runs under -gc-percent.
	gcPercent := 0
	beforeCompare = func() { gcPercent = debug.SetGCPercent(-1); debug.SetGCPercent(gcPercent) }
	defer func() { beforeCompare = nil }()
	code, out, errs = capture(t, append(base, "-prefix", kp+"b:", "-json", "-gc-percent", "300")...)
	if code != 0 || !strings.Contains(out, `"line_diffs": 0`) || !strings.Contains(errs, "events/s") {
		t.Fatalf("replay of the live run: exit %d\n%s\n%s", code, out, errs)
	}
	if gcPercent != 300 {
		t.Errorf("GOGC %d while comparing, want -gc-percent 300 (the floor stopped)", gcPercent)
	}
	cards := editedCards(t)
	code, out, errs = capture(t, append(base, "-prefix", kp+"c:", "-ratecards", cards)...)
	if code != 1 || !strings.Contains(out, "DIFFERENT") || !strings.Contains(out, "0.0107") {
		t.Fatalf("replay with an edited card: exit %d\n%s\n%s", code, out, errs)
	}
	code, _, errs = capture(t, append(base, "-prefix", kp+"c:")...)
	if code != 1 || !strings.Contains(errs, "not empty") {
		t.Fatalf("replay into a used namespace: exit %d\n%s", code, errs)
	}
}

// replayRig is a 2-partition message-events topic holding loadgen traffic, a Redis key prefix,
// and the replay command's arguments for them (live namespace prefix+"live:").
type replayRig struct {
	brokers []string
	url     string
	rdb     *redis.Client
	prefix  string
	events  int
	args    []string
}

// newReplayRig publishes the traffic of cfg (at most max events; 0: all of it).
func newReplayRig(t *testing.T, cfg loadgen.Config, max int) *replayRig {
	t.Helper()
	r := &replayRig{brokers: kafkatest.Brokers(t), url: redistest.URL(t)}
	r.rdb, r.prefix = redistest.Client(t)
	tp := kafkatest.Name(t)
	topic := kafkax.PrefixedTopics(tp).MessageEvents
	ctx := context.Background()
	if err := kafkax.EnsureTopics(ctx, r.brokers, kafkax.TopicSpec{Name: topic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), r.brokers, topic) })
	m, err := loadgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for max <= 0 || len(evs) < max {
		it, ok := m.Next()
		if !ok {
			break
		}
		evs = append(evs, it.Event)
	}
	pr, err := producer.New(ctx, r.brokers, producer.WithTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	_ = pr.Close()
	r.events = len(evs)
	r.args = []string{"replay", "-brokers", strings.Join(r.brokers, ","), "-redis", r.url, "-topic-prefix", tp, "-live-prefix", r.prefix + "live:"}
	return r
}

// editedCards copies the example cards with India marketing of 2025-07 at 0.015 instead of 0.0107.
func editedCards(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "..", "projections", "ratecard", "examples")
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Replace(b, []byte("rate,India,marketing,,0.0107\n"), []byte("rate,India,marketing,,0.015\n"), 1)
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAuditCommand(t *testing.T) {
	td := filepath.Join("..", "..", "audit", "testdata")
	// The export has two bad lines: the whole report, and exit 3 so a script notices.
	code, out, errs := capture(t, "audit", filepath.Join(td, "month.jsonl"), "-accounts", filepath.Join(td, "accounts.json"))
	if code != exitBadInput || !strings.Contains(out, "LEDGER 102290129340398 2025-08 (USD): 6 lines, 3 billable, 1 unpriced") ||
		!strings.Contains(out, "2 bad") || !strings.Contains(errs, "2 bad lines or elements") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	// The progress goes to standard error, counted against the file's 21 lines (one blank).
	if !strings.Contains(errs, "audit: 21/21 lines (100.0%)") || strings.Contains(out, "lines/s") {
		t.Fatalf("progress:\n%s", errs)
	}
	linesCSV := filepath.Join(t.TempDir(), "lines.csv")
	code, out, _ = capture(t, "audit", "-json", "-allow-bad", "-lines-csv", linesCSV, "-accounts", filepath.Join(td, "accounts.json"), filepath.Join(td, "month.jsonl"))
	if code != 0 || !strings.Contains(out, `"bad_lines"`) {
		t.Fatalf("json, -allow-bad: exit %d\n%s", code, out)
	}
	// -lines-csv: a header and a row per settled line of the report's months.
	var rep struct {
		Ledger []struct {
			Totals struct {
				Total struct {
					Lines int `json:"lines"`
				} `json:"total"`
			} `json:"totals"`
		} `json:"ledger"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, m := range rep.Ledger {
		lines += m.Totals.Total.Lines
	}
	f, err := os.Open(linesCSV)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || lines == 0 || len(rows) != lines+1 || rows[0][0] != "event_id" {
		t.Fatalf("-lines-csv: %d rows (%v), want a header and the report's %d lines", len(rows), err, lines)
	}
	good := filepath.Join(t.TempDir(), "good.jsonl")
	if err := os.WriteFile(good, []byte(""), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := capture(t, "audit", "-accounts", filepath.Join(td, "accounts.json"), good); code != 0 {
		t.Fatalf("clean input: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, _ := capture(t, "audit", filepath.Join(td, "month.jsonl")); code != 2 {
		t.Fatalf("no -accounts: exit %d, want 2", code)
	}
}

// TestAuditFilesAndGzip audits the fixture export as one gzip-compressed file, and as two files
// (the first ending without a newline, the second compressed): the report is the single plain
// file's, with each bad line named by its file and its line there when there are several.
// A truncated gzip file is a bad input where it stops; standard input cannot be read twice.
func TestAuditFilesAndGzip(t *testing.T) {
	td := filepath.Join("..", "..", "audit", "testdata")
	accounts := filepath.Join(td, "accounts.json")
	whole, err := os.ReadFile(filepath.Join(td, "month.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(whole), "\n")
	const k = 9 // the first file: lines 1-9, the fixture's first bad line last, without its newline
	dir := t.TempDir()
	write := func(name, text string, gz bool) string {
		t.Helper()
		var b bytes.Buffer
		if gz {
			w := gzip.NewWriter(&b)
			_, _ = w.Write([]byte(text))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			b.WriteString(text)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	zipped := write("month.jsonl.gz", string(whole), true)
	day1 := write("day1.jsonl", strings.TrimSuffix(strings.Join(lines[:k], ""), "\n"), false)
	day2 := write("day2.jsonl", strings.Join(lines[k:], ""), false)
	day2z := write("day2.jsonl.gz", strings.Join(lines[k:], ""), true)

	report := func(args ...string) (map[string]any, string) {
		t.Helper()
		code, out, errs := capture(t, append([]string{"audit", "-json", "-allow-bad", "-accounts", accounts}, args...)...)
		if code != 0 {
			t.Fatalf("audit %v: exit %d\n%s\n%s", args, code, out, errs)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("audit %v: %v\n%s", args, err, out)
		}
		return r, errs
	}
	want, _ := report(filepath.Join(td, "month.jsonl"))
	got, errs := report(zipped)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("gzip-compressed export: the report differs from the plain file's")
	}
	if !strings.Contains(errs, "audit: 21 lines") { // not counted first: no total
		t.Errorf("progress of a gzip-compressed export:\n%s", errs)
	}

	// Two files: the same report but for the bad lines, which name their file and line.
	wantBad := want["bad_lines"].([]any)
	for _, files := range [][]string{{day1, day2}, {day1, day2z}} {
		got, errs := report(files...)
		gotBad := got["bad_lines"].([]any)
		delete(got, "bad_lines")
		rest := maps.Clone(want)
		delete(rest, "bad_lines")
		if !reflect.DeepEqual(got, rest) {
			t.Errorf("%v: the report differs from the single file's", files)
		}
		if len(gotBad) != len(wantBad) {
			t.Fatalf("%v: %d bad lines, want %d", files, len(gotBad), len(wantBad))
		}
		for i, g := range gotBad {
			w := maps.Clone(wantBad[i].(map[string]any))
			if line := int(w["line"].(float64)); line <= k {
				w["file"] = day1
			} else {
				w["file"], w["line"] = files[1], float64(line-k)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%v: bad line %d is %v, want %v", files, i, g, w)
			}
		}
		if files[1] == day2 && !strings.Contains(errs, "audit: 21/21 lines (100.0%)") {
			t.Errorf("progress over two plain files, counted first:\n%s", errs)
		}
	}
	code, out, _ := capture(t, "audit", "-allow-bad", "-accounts", accounts, day1, day2z)
	if code != 0 || !strings.Contains(out, day1+":9 ") || !strings.Contains(out, day2z+":1 ") {
		t.Errorf("text report of two files: exit %d; want the bad lines as %s:9 and %s:1\n%s", code, day1, day2z, out)
	}

	zb, err := os.ReadFile(zipped)
	if err != nil {
		t.Fatal(err)
	}
	cut := write("cut.jsonl.gz", "", false)
	if err := os.WriteFile(cut, zb[:len(zb)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	// A truncated gzip file is bad input: reported where its reading stopped, and the audit goes on
	// with the next file (exit 3, as for bad lines).
	code, out, errs = capture(t, "audit", "-accounts", accounts, cut, day2)
	if code != exitBadInput || !regexp.MustCompile(regexp.QuoteMeta(cut)+`:\d+ .*read: unexpected EOF`).MatchString(out) ||
		!strings.Contains(out, day2+":1 ") {
		t.Errorf("truncated gzip file, then a good one: exit %d, want %d, the read error and the second file's bad line\n%s\n%s", code, exitBadInput, out, errs)
	}
	if code, _, errs := capture(t, "audit", "-accounts", accounts, "-", day1, "-"); code != 2 || !strings.Contains(errs, "only once") {
		t.Errorf("standard input twice: exit %d, want 2\n%s", code, errs)
	}
}

// TestAuditWriteAccounts: without an accounts file, -write-accounts audits with none (the report
// lists the export's numbers as not in the accounts, their lines unpriced) and writes one to
// complete; completed, it prices the lines. With the complete accounts, it writes them unchanged.
func TestAuditWriteAccounts(t *testing.T) {
	td := filepath.Join("..", "..", "audit", "testdata")
	export := filepath.Join(td, "month.jsonl")
	written := filepath.Join(t.TempDir(), "accounts.json")
	code, out, errs := capture(t, "audit", "-allow-bad", "-write-accounts", written, export)
	if code != 0 || !strings.Contains(out, "NOT IN THE ACCOUNTS: 1 numbers") ||
		!regexp.MustCompile(`106540352242922 +15550783881 +102290129340398 +\d+`).MatchString(out) ||
		!strings.Contains(out, "account_not_configured") {
		t.Fatalf("audit without accounts: exit %d\n%s\n%s", code, out, errs)
	}
	var got []*events.AccountConfig
	b, err := os.ReadFile(written)
	if err == nil {
		err = json.Unmarshal(b, &got)
	}
	if err != nil || len(got) != 1 || *got[0] != (events.AccountConfig{PhoneNumberID: "106540352242922", DisplayPhoneNumber: "15550783881", WABAID: "102290129340398"}) {
		t.Fatalf("accounts written: %v\n%s", err, b)
	}

	// Completed, the file prices the lines and names no number as missing.
	got[0].PortfolioID, got[0].TimeZone, got[0].Currency, got[0].EffectiveFrom = "pf-1", "UTC", "USD", 1672531200
	if b, err = json.Marshal(got); err == nil {
		err = os.WriteFile(written, b, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again.json")
	code, out, errs = capture(t, "audit", "-allow-bad", "-accounts", written, "-write-accounts", again, export)
	if code != 0 || strings.Contains(out, "NOT IN THE ACCOUNTS") || strings.Contains(out, "account_not_configured") ||
		!strings.Contains(out, "LEDGER 102290129340398 2025-08 (USD): 6 lines, 3 billable") {
		t.Fatalf("audit with the completed accounts: exit %d\n%s\n%s", code, out, errs)
	}
	var same []*events.AccountConfig
	if b, err = os.ReadFile(again); err == nil {
		err = json.Unmarshal(b, &same)
	}
	if err != nil || len(same) != 1 || *same[0] != *got[0] {
		t.Fatalf("accounts written from complete ones: %v\n%s", err, b)
	}
	if code, _, errs := capture(t, "audit", export); code != 2 || !strings.Contains(errs, "-write-accounts") {
		t.Errorf("neither -accounts nor -write-accounts: exit %d, want 2 and a hint\n%s", code, errs)
	}
}

// countLines counts every line of a regular file, the last one with or without its newline,
// and leaves the file at its start; a pipe is not counted.
func TestCountLines(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		text string
		want int64
	}{{"", 0}, {"a\n", 1}, {"a\n\nb", 3}, {strings.Repeat("x\n", 3<<19), 3 << 19}} {
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		n, err := countLines(f)
		rest, rerr := io.ReadAll(f)
		f.Close()
		if err != nil || rerr != nil || n != c.want || string(rest) != c.text {
			t.Errorf("%.10q: %d lines (%v), then read %d bytes (%v); want %d lines, the whole file", c.text, n, err, len(rest), rerr, c.want)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if n, err := countLines(r); n != 0 || err != nil {
		t.Errorf("pipe: %d lines (%v), want 0: not counted", n, err)
	}
}

// TestLoadgenWebhook sends the model as signed webhooks to a stand-in endpoint that checks the
// signature and normalises every body.
func TestLoadgenWebhook(t *testing.T) {
	v, err := ingest.NewVerifier("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := v.Verify(r.Header.Get("X-Hub-Signature-256"), b); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		res, err := ingest.Normalize(b)
		if err != nil || len(res.Rejected) > 0 {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		got.Add(int64(len(res.Events)))
	}))
	defer srv.Close()
	env := func(k string) string {
		if k == envLoadgenSecret {
			return "s3cret"
		}
		return ""
	}
	var errb bytes.Buffer
	code := run([]string{"loadgen", "-mode", "webhook", "-url", srv.URL, "-speedup", "0", "-duration", "30m", "-numbers", "2",
		"-sessions-per-hour", "60", "-batch", "20"}, env, &errb)
	if code != 0 || got.Load() == 0 {
		t.Fatalf("exit %d, %d events\n%s", code, got.Load(), errb.String())
	}
}

// TestLoadgenKafka publishes the first 500 items of the model through the producer SDK.
func TestLoadgenKafka(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := kafkatest.Name(t)
	topic := kafkax.PrefixedTopics(tp).MessageEvents
	ctx := context.Background()
	if err := kafkax.EnsureTopics(ctx, brokers, kafkax.TopicSpec{Name: topic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kafkax.DeleteTopics(context.Background(), brokers, topic) })
	var errb bytes.Buffer
	code := run([]string{"loadgen", "-brokers", strings.Join(brokers, ","), "-topic-prefix", tp, "-speedup", "0", "-limit", "500",
		"-numbers", "3", "-wabas", "1"}, noEnv, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	var total int64
	for p := range 2 {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		_, last, err := conn.ReadOffsets()
		_ = conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		total += last
	}
	// 500 items, of which 3 account configs broadcast to both partitions: 503 records.
	if total != 503 {
		t.Fatalf("%d records in %s, want 503", total, topic)
	}
}

// TestLoadgenFileFeedsAudit writes the traffic model as a webhook export (file mode) and audits
// it: every line is a webhook the audit reads, the accounts file is the model's, and the ledger
// has lines. Misused flags are refused before anything is written.
func TestLoadgenFileFeedsAudit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "export.jsonl")
	var errb bytes.Buffer
	code := run([]string{"loadgen", "-mode", "file", "-out", out, "-limit", "400", "-duration", "2h", "-numbers", "2",
		"-sessions-per-hour", "120"}, noEnv, &errb)
	if code != 0 {
		t.Fatalf("loadgen: exit %d\n%s", code, errb.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != 400 {
		t.Fatalf("%d lines, want 400 (-limit counts webhook items, one per line)", n)
	}
	accounts := filepath.Join(dir, "export.accounts.json")
	code, rep, errs := capture(t, "audit", "-accounts", accounts, "-json", out)
	if code != 0 {
		t.Fatalf("audit: exit %d\n%s", code, errs)
	}
	if !strings.Contains(rep, `"lines": 400`) || !strings.Contains(rep, `"webhooks": 400`) || !strings.Contains(rep, `"bad_lines": null`) {
		t.Fatalf("audit report:\n%.2000s", rep)
	}
	if !strings.Contains(rep, `"billable": true`) {
		t.Fatalf("audit report has no billable ledger line:\n%.2000s", rep)
	}
	for _, args := range [][]string{
		{"loadgen", "-mode", "file"},
		{"loadgen", "-mode", "file", "-out", "-"},
		{"loadgen", "-mode", "file", "-out", out, "-accounts-out", out},
		{"loadgen", "-out", out},
	} {
		if code := run(args, noEnv, io.Discard); code == 0 {
			t.Errorf("%q: exit 0", args)
		}
	}
}
