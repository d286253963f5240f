package progress

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/testenv"
)

var replay = Config{Job: "replay", Unit: "records", Rate: "events/s", Finishing: "all read, applying the last batches"}

func TestLine(t *testing.T) {
	bar := replay
	bar.Bar = true
	audit := Config{Job: "audit", Unit: "lines", Rate: "lines/s"}
	for _, c := range []struct {
		c        Config
		n, total int64
		elapsed  time.Duration
		last     bool
		want     string
	}{
		{replay, 50, 200, time.Second, false, "replay: 50/200 records (25.0%), 50 events/s, ETA 3s"},
		{bar, 50, 200, time.Second, false, "replay [#######-----------------------]  25.0% 50/200 records, 50 events/s, ETA 3s"},
		{bar, 200, 200, 2 * time.Second, false, "replay [##############################] 100.0% 200/200 records, 100 events/s, all read, applying the last batches"},
		{bar, 200, 200, 2 * time.Second, true, "replay [##############################] 100.0% 200/200 records, 100 events/s, ETA 0s"},
		{bar, 0, 0, 0, true, "replay [##############################] 100.0% 0/0 records, 0 events/s, ETA ?"},
		{replay, 0, 1000, time.Second, false, "replay: 0/1000 records (0.0%), 0 events/s, ETA ?"},
		// Without Finishing, a job counted to the end still shows its ETA.
		{audit, 300, 300, 3 * time.Second, false, "audit: 300/300 lines (100.0%), 100 lines/s, ETA 0s"},
		// An unknown total (standard input): the count and the rate only.
		{audit, 300, -1, 3 * time.Second, false, "audit: 300 lines, 100 lines/s"},
	} {
		if got := Line(c.c, c.n, c.total, c.elapsed, c.last); got != c.want {
			t.Errorf("Line(%s bar=%v, %d, %d, %v, %v)\n got %q\nwant %q", c.c.Job, c.c.Bar, c.n, c.total, c.elapsed, c.last, got, c.want)
		}
	}
}

// On a terminal the bar is redrawn in place (each draw starts at the line's start) and the last
// one ends the line.
func TestBarRedraws(t *testing.T) {
	out := &testenv.SyncBuffer{}
	var done atomic.Int64
	done.Store(10)
	c := replay
	c.Out, c.Bar = out, true
	stop := Start(context.Background(), c, 10, &done)
	time.Sleep(time.Second) // four redraws due; at least one needed
	stop()
	s := out.String()
	draws := strings.Count(s, "\r")
	if draws < 2 || !strings.HasPrefix(s, "\r") || !strings.HasSuffix(s, "\x1b[K\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("%d draws: %q", draws, s)
	}
}

// Without a terminal, a line every Every, and a last one when the job stops.
func TestLinesEvery(t *testing.T) {
	out := &testenv.SyncBuffer{}
	var done atomic.Int64
	c := replay
	c.Out, c.Every = out, 100*time.Millisecond
	stop := Start(context.Background(), c, 10, &done)
	time.Sleep(600 * time.Millisecond) // five lines due; one needed
	done.Store(10)
	stop()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-1], "replay: 10/10 records (100.0%)") || strings.Contains(out.String(), "\r") {
		t.Fatalf("%q", out.String())
	}
	if stop := Start(context.Background(), Config{}, 10, &done); stop == nil {
		t.Fatal("no stop without an output")
	} else {
		stop()
	}
}
