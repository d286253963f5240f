package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/services/dashboard"
	"github.com/convmeter/convmeter/services/dev"
)

func TestDevAndAPIArguments(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dev", "extra"}, "unexpected arguments"},
		{[]string{"dev", "-speedup", "0"}, "speedup must not be 0"},
		{[]string{"dev", "-sim-days", "-1"}, "sim-days must not be negative"},
		{[]string{"dev", "-sim-wabas", "5", "-sim-numbers", "2"}, "-sim-wabas <= -sim-numbers"},
		{[]string{"dev", "-ratecards", "/nonexistent/cards"}, "nonexistent"},
		{[]string{"api"}, "set -partitions"},
		{[]string{"api", "-partitions", "4"}, "no Redis"},
	} {
		var stderr bytes.Buffer
		if code := run(tc.args, noEnv, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestDevSurvivesKill runs `convmeter dev --simulate` as a process of its own, kills it (SIGKILL)
// while it simulates, and starts it again on the same data directory without simulating. The
// restart must not be refused (the dead process's lock on the directory went with it); the log
// on disk must hold at least every ledger line the killed process had shown; and `convmeter
// replay` against the restarted dev's broker and Redis must find the projections it rebuilt
// equal to the engine's own re-derivation of the log (exit 0): nothing lost or counted twice
// across the kill, whatever the aggregator had written of its outputs when it died.
func TestDevSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("whole pipeline in -short mode")
	}
	dir, port := t.TempDir(), freePort(t)
	base := "http://127.0.0.1:" + port + "/"
	args := []string{"dev", "-data", dir, "-addr", "127.0.0.1:" + port, "-partitions", "2",
		"-sim-numbers", "3", "-sim-wabas", "2", "-sim-sessions", "400", "-speedup", "-1"}

	first := startChild(t, "dev --simulate", append(args, "-simulate")...)
	var shown int64
	waitFor(t, first, 90*time.Second, "the simulation to show 500 ledger lines", func() bool {
		var pr dev.Progress
		shown = devLines(t, base)
		return shown >= 500 && progressOf(base, &pr) && pr.Simulating
	})
	first.kill()
	t.Logf("killed dev while it simulated, with %d ledger lines shown", shown)

	second := startChild(t, "dev after the kill", args...)
	var lines int64
	var pr dev.Progress
	waitFor(t, second, 90*time.Second, "the restarted dev to rebuild a settled ledger", func() bool {
		prev := lines
		lines = devLines(t, base)
		return progressOf(base, &pr) && pr.CaughtUp && !pr.Simulating && lines > 0 && lines == prev
	})
	if lines < shown {
		t.Fatalf("the restarted dev rebuilt %d ledger lines from the log; the killed one had shown %d", lines, shown)
	}
	// The aggregator re-derived what the killed process had written (dev keeps no snapshot
	// across restarts) and wrote none of it again; the progress line says so.
	if pr.Suppressed == 0 {
		t.Errorf("progress after the restart: %+v; want the outputs derived again and not written (suppressed) counted", pr)
	}
	brokers, redisAddr := devAddrs(t, second)
	code, out, errs := capture(t, "replay", "-brokers", brokers, "-redis", "redis://"+redisAddr)
	if code != 0 || !strings.Contains(out, ": EQUAL") {
		t.Fatalf("replay of the log against the restarted dev's projections: exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("after the kill: %d ledger lines rebuilt (%d shown before), equal to a replay of the log", lines, shown)
}

// startChild runs the command args in a process of its own (the test binary as convmeter), killed
// at the end of the test.
func startChild(t *testing.T, name string, args ...string) *composeProc {
	t.Helper()
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	pr := startProc(t, name, os.Args[0], []string{"-test.run=^$"}, append(os.Environ(), envChildArgs+"="+string(b)))
	t.Cleanup(pr.kill)
	return pr
}

// waitFor polls ok every half second until it holds, failing the test after d or when pr exits.
func waitFor(t *testing.T, pr *composeProc, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !ok(); time.Sleep(500 * time.Millisecond) {
		if pr.exited() || time.Now().After(end) {
			t.Fatalf("no %s within %v (exited: %v, %v)\n%s", what, d, pr.exited(), pr.err, logs(map[string]*composeProc{"dev": pr}))
		}
	}
}

// progressOf reads dev's /dev/progress into pr; false while it is not served yet (the process
// starting, or the pipeline not ready: 503).
func progressOf(base string, pr *dev.Progress) bool {
	resp, err := http.Get(base + "dev/progress")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(pr) == nil
}

// devLines is the number of ledger lines the dashboard's months hold (0 while the API does not
// answer yet).
func devLines(t *testing.T, base string) int64 {
	t.Helper()
	resp, err := http.Get(base + "dashboard/api/overview")
	if err != nil {
		return 0
	}
	var ov dashboard.Overview
	err = json.NewDecoder(resp.Body).Decode(&ov)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0
	}
	var n int64
	for _, w := range ov.WABAs {
		var tt billing.Totals
		getJSON(t, base+"billing/totals?waba="+w.WABAID+"&month="+w.Month, &tt)
		n += tt.Total.Lines
	}
	return n
}

// devAddrs reads the embedded broker's and Redis's addresses from dev's log.
func devAddrs(t *testing.T, pr *composeProc) (brokers, redisAddr string) {
	t.Helper()
	for _, line := range strings.Split(pr.log.String(), "\n") {
		var rec struct {
			Msg     string   `json:"msg"`
			Brokers []string `json:"brokers"`
			Redis   string   `json:"redis"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "dev: embedded broker and redis up" {
			return strings.Join(rec.Brokers, ","), rec.Redis
		}
	}
	t.Fatalf("no broker and redis addresses in dev's log:\n%s", pr.log.String())
	return "", ""
}
