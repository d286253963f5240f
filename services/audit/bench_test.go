package audit

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/services/loadgen"
)

// BenchmarkAudit audits a file of loadgen webhooks (one webhook per line; 20,000 lines, or
// CONVMETER_BENCH_AUDIT_LINES as scripts/bench.sh sets) as `convmeter audit` does (Open, then the
// text report printed to io.Discard) and reports lines/s and the heap the open audit holds per
// line read (live-B/line, after a GC: the embedded Redis and the report's small parts; the
// engine is gone by then). It also checks that the model's webhooks are all usable input.
func BenchmarkAudit(b *testing.B) {
	want := 20_000
	if n, err := strconv.Atoi(os.Getenv("CONVMETER_BENCH_AUDIT_LINES")); err == nil && n > 0 {
		want = n
	}
	file, accounts := loadgenFile(b, 3, want)
	lines := bytes.Count(file, []byte("\n"))
	book, err := ratecard.Examples()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		res, err := Open(context.Background(), Config{Accounts: accounts, Book: book}, bytes.NewReader(file), nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Lines != lines || len(res.BadLines) != 0 || len(res.Ledger) == 0 {
			b.Fatalf("lines %d of %d, %d bad, %d months", res.Lines, lines, len(res.BadLines), len(res.Ledger))
		}
		if err := res.WriteText(io.Discard); err != nil {
			b.Fatal(err)
		}
		took := time.Since(t0)
		b.StopTimer()
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		live := ms.HeapAlloc
		res.Close()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(lines)/took.Seconds(), "lines/s")
		b.ReportMetric(float64(int64(live)-int64(ms.HeapAlloc))/float64(lines), "live-B/line")
		b.StartTimer()
	}
}

// loadgenFile is the loadgen traffic model (8 numbers, 2 WABAs, 5,000 users each) as a webhook
// export: lines webhooks, one per line (fewer when the model ends first), and its accounts.
func loadgenFile(tb testing.TB, seed uint64, lines int) ([]byte, []*events.AccountConfig) {
	tb.Helper()
	m, err := loadgen.New(loadgen.Config{Seed: seed, Numbers: 8, WABAs: 2, UsersPerNumber: 5000, Duration: 1000 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	var file bytes.Buffer
	for n := 0; n < lines; {
		it, ok := m.Next()
		if !ok {
			break
		}
		if !it.Webhook {
			continue
		}
		body, err := loadgen.Webhook(it)
		if err != nil {
			tb.Fatal(err)
		}
		file.Write(body)
		file.WriteByte('\n')
		n++
	}
	return file.Bytes(), m.Accounts()
}
