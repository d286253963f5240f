package replay

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events/testenv"
)

func TestProgressLine(t *testing.T) {
	for _, c := range []struct {
		n, total int64
		elapsed  time.Duration
		bar      bool
		last     bool
		want     string
	}{
		{50, 200, time.Second, false, false, "replay: 50/200 records (25.0%), 50 events/s, ETA 3s"},
		{50, 200, time.Second, true, false, "replay [#######-----------------------]  25.0% 50/200 records, 50 events/s, ETA 3s"},
		{200, 200, 2 * time.Second, true, false, "replay [##############################] 100.0% 200/200 records, 100 events/s, all read, applying the last batches"},
		{200, 200, 2 * time.Second, true, true, "replay [##############################] 100.0% 200/200 records, 100 events/s, ETA 0s"},
		{0, 0, 0, true, true, "replay [##############################] 100.0% 0/0 records, 0 events/s, ETA ?"},
		{0, 1000, time.Second, false, false, "replay: 0/1000 records (0.0%), 0 events/s, ETA ?"},
	} {
		if got := progressLine(c.n, c.total, c.elapsed, c.bar, c.last); got != c.want {
			t.Errorf("progressLine(%d, %d, %v, %v, %v)\n got %q\nwant %q", c.n, c.total, c.elapsed, c.bar, c.last, got, c.want)
		}
	}
}

// On a terminal the bar is redrawn in place (each draw starts at the line's start) and the last
// one ends the line.
func TestProgressBarRedraws(t *testing.T) {
	out := &testenv.SyncBuffer{}
	var done atomic.Int64
	done.Store(10)
	stop := progress(context.Background(), Config{Progress: out, ProgressBar: true}, time.Now(), 10, &done)
	time.Sleep(time.Second) // four redraws due; at least one needed
	stop()
	s := out.String()
	draws := strings.Count(s, "\r")
	if draws < 2 || !strings.HasPrefix(s, "\r") || !strings.HasSuffix(s, "\x1b[K\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("%d draws: %q", draws, s)
	}
}
