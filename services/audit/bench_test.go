package audit

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/services/loadgen"
)

// BenchmarkAudit audits a file of loadgen webhooks (one webhook per line; 20,000 lines, or
// CONVMETER_BENCH_AUDIT_LINES as scripts/bench.sh sets) and reports lines/s. It also checks that
// the model's webhooks are all usable input.
func BenchmarkAudit(b *testing.B) {
	want := 20_000
	if n, err := strconv.Atoi(os.Getenv("CONVMETER_BENCH_AUDIT_LINES")); err == nil && n > 0 {
		want = n
	}
	m, err := loadgen.New(loadgen.Config{Seed: 3, Numbers: 8, WABAs: 2, UsersPerNumber: 5000, Duration: 1000 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	var file bytes.Buffer
	lines := 0
	for lines < want {
		it, ok := m.Next()
		if !ok {
			break
		}
		if !it.Webhook {
			continue
		}
		body, err := loadgen.Webhook(it)
		if err != nil {
			b.Fatal(err)
		}
		file.Write(body)
		file.WriteByte('\n')
		lines++
	}
	book, err := ratecard.Examples()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		rep, err := Run(context.Background(), Config{Accounts: m.Accounts(), Book: book}, bytes.NewReader(file.Bytes()), nil)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Lines != lines || len(rep.BadLines) != 0 || len(rep.Ledger) == 0 {
			b.Fatalf("lines %d of %d, %d bad, %d months", rep.Lines, lines, len(rep.BadLines), len(rep.Ledger))
		}
		b.ReportMetric(float64(lines)/time.Since(t0).Seconds(), "lines/s")
	}
}
