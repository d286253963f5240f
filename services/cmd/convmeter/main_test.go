package main

import (
	"bytes"
	"flag"
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
