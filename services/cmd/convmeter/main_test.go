package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestUnknownCommandAndUsage(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"frobnicate"}, env(nil), &out); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{`unknown command "frobnicate"`, "aggregator", "clock"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestAggregatorNeedsBrokersAndRedis(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"aggregator"}, env(nil), &out); code != 2 || !strings.Contains(out.String(), "no brokers") {
		t.Fatalf("exit %d, output %q: want 2 and a message about brokers", code, out.String())
	}
	out.Reset()
	if code := run([]string{"aggregator", "-brokers", "b:9092"}, env(nil), &out); code != 2 || !strings.Contains(out.String(), "snapshot store") {
		t.Fatalf("exit %d, output %q: want 2 and a message about the snapshot store", code, out.String())
	}
}

func TestParseAggregatorFromEnvAndFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c aggregatorConfig
	r, err := parseAggregatorInto(&c, fs, []string{"-max-batch", "7", "-snapshot-interval", "5s", "-http", ""},
		env(map[string]string{envBrokers: "a:1, b:2", envRedisURL: "redis://x:6379/0", envTopicPrefix: "pre"}))
	if err != nil || r == nil {
		t.Fatal(err)
	}
	if strings.Join(c.Brokers, "|") != "a:1|b:2" || c.RedisURL != "redis://x:6379/0" || c.TopicPrefix != "pre" ||
		c.MaxBatch != 7 || c.SnapshotInterval != 5*time.Second || c.HTTPAddr != "" || c.SnapshotEvery != 200_000 {
		t.Fatalf("config %+v", c)
	}
}

func TestParseClock(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	if _, err := parseClock(fs, []string{"-interval", "0s"}, env(map[string]string{envBrokers: "a:1"})); err == nil {
		t.Fatal("interval 0 accepted")
	}
}

// A command that returned is never exited later: the shutdown grace is armed by a signal only.
// (It used to be armed by the command's return too, and os.Exit(1) took a test binary that ran
// on past the grace after calling run in-process.)
func TestNoExitAfterReturn(t *testing.T) {
	old := shutdownGrace
	shutdownGrace = 10 * time.Millisecond
	defer func() { shutdownGrace = old }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	var stderr bytes.Buffer
	if code := run([]string{"healthcheck", srv.URL}, noEnv, &stderr); code != 0 {
		t.Fatalf("healthcheck: exit %d\n%s", code, stderr.String())
	}
	time.Sleep(20 * shutdownGrace) // the process would be gone by now
}

// piecesReport writes its text in many small pieces, as a table writer does.
type piecesReport struct{ n int }

func (r piecesReport) WriteText(w io.Writer) error {
	for i := range r.n {
		if _, err := fmt.Fprintf(w, "cell %d\t", i); err != nil {
			return err
		}
	}
	return nil
}

// countingWriter counts the writes that reach it; it fails every write once failing is set.
type countingWriter struct {
	bytes.Buffer
	writes  int
	failing bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.failing {
		return 0, errors.New("disk full")
	}
	return w.Buffer.Write(p)
}

// writeReport writes through a buffer: a report made of 100,000 small writes reaches the file in
// a few large ones, whole; a failing file fails the command.
func TestWriteReportBuffers(t *testing.T) {
	var want strings.Builder
	if err := (piecesReport{100_000}).WriteText(&want); err != nil {
		t.Fatal(err)
	}
	var w countingWriter
	if err := writeReport(&w, piecesReport{100_000}, false); err != nil {
		t.Fatal(err)
	}
	if w.String() != want.String() {
		t.Fatalf("wrote %d bytes, want %d", w.Len(), want.Len())
	}
	if most := want.Len()/(64<<10) + 1; w.writes > most {
		t.Errorf("%d writes for %d bytes, want at most %d", w.writes, w.Len(), most)
	}
	for _, n := range []int{1, 100_000} { // fails in the final flush, and while writing
		if err := writeReport(&countingWriter{failing: true}, piecesReport{n}, false); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("report of %d pieces to a failing file: %v", n, err)
		}
	}
}

// -memory-limit takes a byte count with a unit; anything else stops the command with usage (2).
func TestMemoryLimitFlag(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c aggregatorConfig
	if _, err := parseAggregatorInto(&c, fs, []string{"-memory-limit", "6GiB"},
		env(map[string]string{envBrokers: "a:1", envRedisURL: "redis://x:6379/0"})); err != nil || c.MemoryLimit != 6<<30 {
		t.Fatalf("-memory-limit 6GiB: %v, limit %d", err, c.MemoryLimit)
	}
	for _, cmd := range [][]string{{"aggregator", "-memory-limit"}, {"replay", "-memory-limit"}, {"audit", "-memory-limit"}, {"replay", "-gc-floor"}} {
		var out bytes.Buffer
		if code := run([]string{cmd[0], cmd[1], "lots"}, env(map[string]string{envBrokers: "a:1", envRedisURL: "redis://x:6379/0"}), &out); code != 2 || !strings.Contains(out.String(), "not a byte count") {
			t.Errorf("%s %s lots: exit %d, output %q: want 2 and what a byte count is", cmd[0], cmd[1], code, out.String())
		}
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	if _, err := parseReplay(fs, []string{"-gc-floor", "1GiB"}, env(map[string]string{envBrokers: "a:1", envRedisURL: "redis://x:6379/0"})); err != nil {
		t.Fatal(err)
	}
	if f := fs.Lookup("gc-floor"); f.DefValue != "4GiB" || f.Value.String() != "1GiB" {
		t.Errorf("replay -gc-floor: default %s, set %s; want 4GiB and 1GiB", f.DefValue, f.Value)
	}
}
