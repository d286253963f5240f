package dev_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/services/admission"
	"github.com/convmeter/convmeter/services/dashboard"
	"github.com/convmeter/convmeter/services/dev"
	"github.com/convmeter/convmeter/services/loadgen"
)

// instance is one dev.Run in the test process.
type instance struct {
	url  string
	stop context.CancelFunc
	done chan error
}

func start(t *testing.T, cfg dev.Config) *instance {
	t.Helper()
	ready := make(chan string, 1)
	cfg.Addr = "127.0.0.1:0"
	cfg.OnReady = func(url string) { ready <- url }
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{stop: cancel, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { in.done <- dev.Run(ctx, cfg, log) }()
	select {
	case in.url = <-ready:
	case err := <-in.done:
		cancel()
		t.Fatalf("dev.Run returned before serving: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("dev.Run did not serve within 60s")
	}
	t.Cleanup(func() { in.shutdown(t) })
	return in
}

func (in *instance) shutdown(t *testing.T) {
	t.Helper()
	if in.stop == nil {
		return
	}
	in.stop()
	in.stop = nil
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("dev.Run: %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Error("dev.Run did not stop within 45s")
	}
}

// testWriter sends the pipeline's warnings to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
}

// progressReady reads /dev/progress into v; false when it answers 503 (still starting). Any other
// failure ends the test.
func progressReady(t *testing.T, url string, v any) bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusServiceUnavailable:
		return false
	default:
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return true
}

// ledger is what the test compares between polls and runs: the overview and every WABA's totals
// for the month shown and the one before.
type ledger struct {
	Overview dashboard.Overview
	Totals   map[string]billing.Totals // "waba|month"
}

func (l ledger) lines() int64 {
	var n int64
	for _, t := range l.Totals {
		n += t.Total.Lines
	}
	return n
}

func readLedger(t *testing.T, base string) ledger {
	t.Helper()
	l := ledger{Totals: map[string]billing.Totals{}}
	getJSON(t, base+"dashboard/api/overview", &l.Overview)
	for _, w := range l.Overview.WABAs {
		for _, m := range w.Months[:2] {
			var tt billing.Totals
			getJSON(t, fmt.Sprintf("%sbilling/totals?waba=%s&month=%s", base, w.WABAID, m), &tt)
			l.Totals[w.WABAID+"|"+m] = tt
		}
	}
	return l
}

// settle polls until the pipeline reports it caught up (the finite simulation has been played,
// the aggregator and both projectors have applied everything) and the ledger is non-empty and
// the same on two polls; or, given want, until the ledger equals it. It fails after the deadline.
func settle(t *testing.T, base string, deadline time.Duration, want *ledger) ledger {
	t.Helper()
	end := time.Now().Add(deadline)
	var prev ledger
	for time.Now().Before(end) {
		cur := readLedger(t, base)
		if want != nil {
			if reflect.DeepEqual(cur.Totals, want.Totals) && cur.Overview.At == want.Overview.At {
				return cur
			}
		} else {
			// /dev/progress answers 503 while the pipeline is still starting (groups and offsets
			// not there yet): that is "not caught up", and polling goes on until the deadline.
			var pr dev.Progress
			if progressReady(t, base+"dev/progress", &pr) && pr.CaughtUp && cur.lines() > 0 && reflect.DeepEqual(cur, prev) {
				return cur
			}
		}
		prev = cur
		time.Sleep(2 * time.Second)
	}
	if want != nil {
		t.Fatalf("after %v the rebuilt ledger (%d lines, at %s) differs from the one before the restart (%d lines, at %s)",
			deadline, prev.lines(), prev.Overview.At, want.lines(), want.Overview.At)
	}
	t.Fatalf("no settled, non-empty ledger within %v (last: %d lines, at %s)", deadline, prev.lines(), prev.Overview.At)
	return ledger{}
}

// TestDevSimulate runs `convmeter dev --simulate` in process over a temporary data directory with
// a small finite simulation played as fast as the pipeline takes it, and checks that the API
// serves a non-empty, consistent ledger; that the dashboard, loaded in headless Chromium, renders
// exactly what the APIs answer; and that a restart rebuilds the same projections from the log.
func TestDevSimulate(t *testing.T) {
	if testing.Short() {
		t.Skip("whole pipeline in -short mode")
	}
	dir := t.TempDir()
	cfg := dev.Config{
		DataDir: dir, Simulate: true, Speedup: -1, Days: 1, Partitions: 2, SampleEvery: 500 * time.Millisecond,
		Model: loadgen.Config{WABAs: 2, Numbers: 3, UsersPerNumber: 300, SessionsPerHour: 150, Duration: 2 * time.Hour},
	}
	in := start(t, cfg)
	began := time.Now()
	second := cfg
	second.Addr = "127.0.0.1:0"
	if err := dev.Run(context.Background(), second, nil); err == nil || !strings.Contains(err.Error(), "another convmeter dev") {
		t.Errorf("a second dev.Run on the same data directory: %v; want the lock refused", err)
	}
	l := settle(t, in.url, 90*time.Second, nil)
	t.Logf("ledger settled after %v: %d lines, stream time %s", time.Since(began).Round(time.Millisecond), l.lines(), l.Overview.At)

	if l.Overview.AtSource != "stream" || len(l.Overview.Numbers) != 3 || len(l.Overview.WABAs) != 2 {
		t.Fatalf("overview: at from %q, %d numbers, %d WABAs; want stream, 3, 2", l.Overview.AtSource, len(l.Overview.Numbers), len(l.Overview.WABAs))
	}
	var billable int64
	var amount int64
	for k, tt := range l.Totals {
		billable += tt.Total.Billable
		amount += int64(tt.Total.AmountMicros)
		var byNumber int64
		for _, b := range tt.ByNumber {
			byNumber += b.Lines
		}
		if byNumber != tt.Total.Lines {
			t.Errorf("%s: lines by number sum to %d, total says %d", k, byNumber, tt.Total.Lines)
		}
	}
	if billable == 0 || amount <= 0 {
		t.Errorf("ledger of %d lines has %d billable and %d micros charged", l.lines(), billable, amount)
	}
	if l.Overview.WindowsOpen == 0 {
		t.Error("no service window open at the end of the simulation")
	}

	var pr dev.Progress
	getJSON(t, in.url+"dev/progress", &pr)
	if !pr.CaughtUp || pr.Published == 0 || pr.EventsIn < pr.Published || pr.EventsOut == 0 {
		t.Errorf("progress after settling: %+v; want caught up, events published, applied (at least as many, with ticks) and derived", pr)
	}

	// Admission's "now" under simulation is the simulation's now (the stream time, ahead of the
	// wall clock), not the wall clock.
	var ns admission.NumberStatus
	getJSON(t, in.url+"v1/limits/numbers/"+l.Overview.Numbers[0].PhoneNumberID, &ns)
	if ns.At != l.Overview.At {
		t.Errorf("admission without at answered at %s; want the stream time %s", ns.At, l.Overview.At)
	}

	// The charts' history: samples every 500ms; the newest, taken after the pipeline settled,
	// holds the settled ledger of the months shown.
	time.Sleep(time.Second)
	var hist []dashboard.Sample
	getJSON(t, in.url+"dashboard/api/history", &hist)
	var shown int64
	for _, w := range l.Overview.WABAs {
		shown += l.Totals[w.WABAID+"|"+w.Month].Total.Lines
	}
	if len(hist) < 2 || hist[len(hist)-1].Lines != shown || hist[len(hist)-1].At != l.Overview.At {
		t.Errorf("history: %d samples, newest %+v; want the settled %d lines at %d", len(hist), hist[len(hist)-1:], shown, l.Overview.At)
	}

	t.Run("dashboard in chromium", func(t *testing.T) { checkDashboard(t, in.url, l) })

	// Restart without simulating: the projections (in memory) are rebuilt from the log on disk.
	in.shutdown(t)
	cfg.Simulate = false
	in2 := start(t, cfg)
	began = time.Now()
	settle(t, in2.url, 90*time.Second, &l)
	t.Logf("restart rebuilt the same ledger in %v", time.Since(began).Round(time.Millisecond))
}

var checkRE = regexp.MustCompile(`(?s)<pre id="cm-check"[^>]*>(.*?)</pre>`)

// rendered is what the page writes into #cm-check.
type rendered struct {
	Errors  []string `json:"errors"`
	Renders int      `json:"renders"`
	At      int64    `json:"at"`
	Windows int64    `json:"windows_open"`
	Totals  map[string]struct {
		Month        string           `json:"month"`
		Lines        int64            `json:"lines"`
		Billable     int64            `json:"billable"`
		Unpriced     map[string]int64 `json:"unpriced"`
		AmountMicros int64            `json:"amount_micros"`
	} `json:"totals"`
	Numbers map[string]struct {
		WindowsOpen       int64  `json:"windows_open"`
		ConversationsOpen int64  `json:"conversations_open"`
		Lines             int64  `json:"lines"`
		Billable          int64  `json:"billable"`
		Unpriced          int64  `json:"unpriced"`
		AmountMicros      int64  `json:"amount_micros"`
		Scope             string `json:"scope"`
		Limit             int64  `json:"limit"`
		Used              int64  `json:"used"`
		Headroom          int64  `json:"headroom"`
	} `json:"numbers"`
}

func chromium(t *testing.T) string {
	return testenv.Tool(t, "apt-get install -y chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
}

// checkDashboard loads the page in headless Chromium and compares what its script rendered with
// the APIs' answers for the same moment.
func checkDashboard(t *testing.T, base string, l ledger) {
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000", "--dump-dom", base)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Logf("chromium stderr: %s", ee.Stderr)
		}
		t.Fatalf("chromium --dump-dom %s: %v", base, err)
	}
	m := checkRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no #cm-check element in the dumped page:\n%.2000s", out)
	}
	var r rendered
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &r); err != nil {
		t.Fatalf("#cm-check %q: %v", m[1], err)
	}
	if len(r.Errors) > 0 {
		t.Fatalf("the page reported errors: %q", r.Errors)
	}
	if r.Renders < 1 || r.At != int64(l.Overview.At) {
		t.Fatalf("page rendered %d times at %d; the API's moment is %d", r.Renders, r.At, l.Overview.At)
	}
	if r.Windows != l.Overview.WindowsOpen {
		t.Errorf("page: %d windows open, API: %d", r.Windows, l.Overview.WindowsOpen)
	}
	if len(r.Totals) != len(l.Overview.WABAs) || len(r.Numbers) != len(l.Overview.Numbers) {
		t.Fatalf("page shows %d WABAs and %d numbers, API %d and %d", len(r.Totals), len(r.Numbers), len(l.Overview.WABAs), len(l.Overview.Numbers))
	}
	var unpriced int64
	for _, w := range l.Overview.WABAs {
		got, want := r.Totals[w.WABAID], l.Totals[w.WABAID+"|"+w.Month]
		if got.Month != w.Month || got.Lines != want.Total.Lines || got.Billable != want.Total.Billable || got.AmountMicros != int64(want.Total.AmountMicros) {
			t.Errorf("WABA %s: page %+v, API %s: %+v", w.WABAID, got, w.Month, want.Total)
		}
		if len(got.Unpriced)+len(want.Unpriced) > 0 && !reflect.DeepEqual(got.Unpriced, want.Unpriced) {
			t.Errorf("WABA %s: page shows unpriced lines %v, API %v", w.WABAID, got.Unpriced, want.Unpriced)
		}
		unpriced += want.Total.Unpriced
	}
	// The simulation reaches Indonesia, which the shipped example cards do not price: the page
	// must show those lines as unpriced beside charges that leave them out.
	if unpriced == 0 {
		t.Error("the simulated ledger has no unpriced line: the test no longer checks how the page shows them")
	} else if !bytes.Contains(out, []byte("lines unpriced, not in the charges: ")) {
		t.Errorf("%d lines are unpriced and the page does not say so in a WABA's box", unpriced)
	}
	for _, n := range l.Overview.Numbers {
		got := r.Numbers[n.PhoneNumberID]
		var month string
		for _, w := range l.Overview.WABAs {
			if w.WABAID == n.WABAID {
				month = w.Month
			}
		}
		b := l.Totals[n.WABAID+"|"+month].ByNumber[n.PhoneNumberID]
		var st admission.NumberStatus
		getJSON(t, fmt.Sprintf("%sv1/limits/numbers/%s?at=%d", base, n.PhoneNumberID, r.At), &st)
		if got.WindowsOpen != n.Windows || got.ConversationsOpen != n.ConversationsTotal || got.Lines != b.Lines ||
			got.Billable != b.Billable || got.Unpriced != b.Unpriced || got.AmountMicros != int64(b.AmountMicros) {
			t.Errorf("number %s: page %+v; API windows %d, conversations %d, ledger %+v", n.PhoneNumberID, got, n.Windows, n.ConversationsTotal, b)
		}
		if got.Scope != string(st.Limit.Scope) || got.Limit != st.Limit.Limit || got.Used != st.Limit.Used || got.Headroom != st.Limit.Headroom {
			t.Errorf("number %s: page limit of %s %d used %d headroom %d; API %s, %d, %d, %d", n.PhoneNumberID, got.Scope, got.Limit, got.Used, got.Headroom,
				st.Limit.Scope, st.Limit.Limit, st.Limit.Used, st.Limit.Headroom)
		}
	}
	t.Logf("dashboard rendered %d WABAs and %d numbers at %d, equal to the APIs", len(r.Totals), len(r.Numbers), r.At)
}
