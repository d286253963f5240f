package aggregator_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/producer"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/segmentio/kafka-go"
)

// BenchmarkKillRestore is the restart after a kill -9 with bench.pairs live pairs, on real
// processes, the real broker and Redis: one account config and bench.pairs inbound messages, each
// from a new user (one live pair each), over 4 partitions; `convmeter aggregator` (default
// snapshot policy: every 200,000 records of a partition) applies them all and commits, and is
// killed with SIGKILL. A new process then restores every partition from its last snapshot, reads
// the output tails, and replays the records after the snapshot, suppressing the outputs the
// killed process had written. It reports, from the new process's start: every partition
// restored (restored_s, from its log), and the tail replayed (caught_up_s, from its /metrics:
// input records applied = the records after the snapshots), with the tail's size; once for a
// restart with -instance, which removes the dead predecessor from the group, and once without,
// which waits out the killed member's session (6 s).
func BenchmarkKillRestore(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	_, snapPrefix := redistest.Client(b)
	const parts = 4
	prefix := kafkatest.Name(b)
	topics := testTopics(b, brokers, prefix, parts)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ctx := context.Background()

	pr, err := producer.New(ctx, brokers, producer.WithTopic(topics.MessageEvents))
	if err != nil {
		b.Fatal(err)
	}
	t0 := events.UnixTime(1_752_000_000)
	start := time.Now()
	if err := pr.PublishAccountConfig(ctx, &events.AccountConfig{PhoneNumberID: "106540352242922", WABAID: "waba", PortfolioID: "pf",
		TimeZone: "UTC", Currency: "USD", EffectiveFrom: t0 - 86400}); err != nil {
		b.Fatal(err)
	}
	const chunk = 10_000
	ms := make([]*events.InboundMessage, 0, chunk)
	for i := 0; i < *benchPairs; i++ {
		ms = append(ms, &events.InboundMessage{PhoneNumberID: "106540352242922", WaID: fmt.Sprintf("55%011d", i), WAMID: fmt.Sprintf("wamid.%d", i),
			MessageType: "text", Timestamp: t0 + events.UnixTime(i/1000)})
		if len(ms) == chunk || i == *benchPairs-1 {
			if err := pr.PublishInbound(ctx, ms...); err != nil {
				b.Fatal(err)
			}
			ms = ms[:0]
		}
	}
	_ = pr.Close()
	ends, err := endOffsets(ctx, client, topics.MessageEvents, parts)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("produced %d records %v in %v", sum(ends), ends, time.Since(start).Round(time.Millisecond))

	bin := binary(b, "convmeter")
	group := kafkatest.Name(b)
	// The first process and every restart but the last run as instance agg-0 (-instance): a
	// restart of the instance removes its dead predecessor from the group at once. The last
	// restart runs without: it waits out the killed member's session, as any process would
	// without an instance name.
	args := func(http string, instance bool) []string {
		a := []string{"aggregator", "-brokers", strings.Join(brokers, ","), "-redis", redistest.URL(b), "-topic-prefix", prefix,
			"-group", group, "-snapshot-prefix", snapPrefix, "-http", http, "-snapshot-interval", "1h", "-session-timeout", "6s"}
		if instance {
			a = append(a, "-instance", "agg-0")
		}
		return a
	}
	dir := b.TempDir()
	first := startChild(b, bin, args("", true), filepath.Join(dir, "first.log"))
	start = time.Now()
	waitCommitted(b, client, group, topics.MessageEvents, ends, 10*time.Minute)
	b.Logf("first process applied and committed everything in %v; %d snapshots taken", time.Since(start).Round(time.Millisecond),
		len(logLines(b, first.log, "snapshot done")))
	first.kill(b)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, instance := range []bool{true, false} {
			restart(b, bin, args, instance, filepath.Join(dir, fmt.Sprint("restart-", i, "-", instance, ".log")), ends)
		}
		if i == b.N-1 {
			break
		}
		b.StopTimer()
		// The next iteration's first restart would find a dead member without an instance name:
		// start and kill one with it, so it has a dead predecessor of its instance.
		c := startChild(b, bin, args("", true), filepath.Join(dir, fmt.Sprint("between-", i, ".log")))
		for len(logLines(b, c.log, "partition restored")) < parts {
			time.Sleep(10 * time.Millisecond)
		}
		c.kill(b)
		b.StartTimer()
	}
}

// restart starts one process after a kill, waits until it has restored every partition and
// replayed the records after the snapshots, reports both times, and kills it.
func restart(b *testing.B, bin string, args func(string, bool) []string, instance bool, logPath string, ends []int64) {
	parts := len(ends)
	addr := freeAddr(b)
	start := time.Now()
	c := startChild(b, bin, args(addr, instance), logPath)
	var tail int64 = -1
	var restored []map[string]any
	for {
		if tail < 0 {
			if restored = logLines(b, logPath, "partition restored"); len(restored) == parts {
				tail = 0
				for _, r := range restored {
					p, off := int(r["partition"].(float64)), int64(r["offset"].(float64))
					tail += ends[p] - off
				}
			}
		}
		if tail >= 0 && appliedInputs(b, "http://"+addr+"/metrics") == tail {
			break
		}
		select {
		case <-c.done:
			b.Fatalf("restarted aggregator exited: %v\n%s", c.err, tailFile(logPath, 20))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("restarted aggregator not caught up after 5 minutes; log:\n%s", tailFile(logPath, 20))
		}
	}
	caughtUp := time.Since(start)
	var restoredAt time.Time
	var took []string
	for _, r := range restored {
		at, err := time.Parse(time.RFC3339Nano, r["time"].(string))
		if err != nil {
			b.Fatal(err)
		}
		if at.After(restoredAt) {
			restoredAt = at
		}
		if d, ok := r["took"].(float64); ok { // slog's JSON writes durations in nanoseconds
			took = append(took, time.Duration(d).Round(time.Millisecond).String())
		}
	}
	how := "with -instance (dead predecessor removed)"
	unit := "instance"
	if !instance {
		how, unit = "without -instance (the killed member's session waited out)", "session"
	}
	b.ReportMetric(restoredAt.Sub(start).Seconds(), "restored_s("+unit+")")
	b.ReportMetric(caughtUp.Seconds(), "caught_up_s("+unit+")")
	b.ReportMetric(float64(tail), "tail_records")
	b.Logf("restart %s: %d live pairs; every partition restored %v after the process started (restores took %s); the tail of %d records replayed %v after it started",
		how, *benchPairs, restoredAt.Sub(start).Round(time.Millisecond), strings.Join(took, ", "), tail, caughtUp.Round(time.Millisecond))
	c.kill(b)
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// appliedInputs is the sum of convmeter_aggregator_events_in_total at url (-1 when unreachable).
func appliedInputs(tb testing.TB, url string) int64 {
	tb.Helper()
	res, err := httpClient.Get(url)
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	var n float64
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "convmeter_aggregator_events_in_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			tb.Fatalf("metrics line %q: %v", line, err)
		}
		n += v
	}
	return int64(n)
}
