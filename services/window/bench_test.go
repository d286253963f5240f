package window

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/testenv"
)

// benchPairs is the number of live pairs in the benchmarks: CONVMETER_BENCH_PAIRS, default 1M.
func benchPairs(b *testing.B) int {
	if s := os.Getenv("CONVMETER_BENCH_PAIRS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1_000_000
}

func benchUser(i int) string { return fmt.Sprintf("5511%08d", i) }

// warm returns an engine with n live pairs, each with an open customer service window.
func warm(b *testing.B, n int, start int64) *Engine {
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.Apply(events.New(&events.AccountConfig{PhoneNumberID: "1001", WABAID: "w", PortfolioID: "p", TimeZone: "America/Sao_Paulo", Currency: "BRL"}), 0, nil); err != nil {
		b.Fatal(err)
	}
	var out []events.Event
	for i := 0; i < n; i++ {
		// Spread over an hour so the engine sees steadily advancing time.
		t := start + int64(i)*3600/int64(n)
		ev := events.New(&events.InboundMessage{PhoneNumberID: "1001", WaID: benchUser(i), WAMID: "wamid.in." + strconv.Itoa(i), MessageType: "text", Timestamp: events.UnixTime(t)})
		if out, err = e.Apply(ev, int64(i+1), out[:0]); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// traffic for live pairs: a template send, sent and delivered for pair i%n.
func benchEvents(i, n int, start int64) [3]events.Event {
	pairIdx := i % n
	t := start + 3600 + int64(i/n)*60 + int64(pairIdx)*3600/int64(n)
	w := "wamid.out." + strconv.Itoa(i)
	u := benchUser(pairIdx)
	c := templateCats[i%len(templateCats)]
	return [3]events.Event{
		events.New(&events.OutboundSend{PhoneNumberID: "1001", WaID: u, WAMID: w, Timestamp: events.UnixTime(t), Kind: events.KindTemplate, TemplateCategory: c}),
		events.New(&events.StatusUpdate{PhoneNumberID: "1001", RecipientID: u, WAMID: w, Status: events.StatusSent, Timestamp: events.UnixTime(t)}),
		events.New(&events.StatusUpdate{PhoneNumberID: "1001", RecipientID: u, WAMID: w, Status: events.StatusDelivered, Timestamp: events.UnixTime(t + 2)}),
	}
}

// BenchmarkApply measures apply throughput on pre-decoded events with benchPairs live pairs
// (PMP era: every delivered template yields a charge, a delivery and a dispatch).
func BenchmarkApply(b *testing.B) {
	n := benchPairs(b)
	start := at("2025-09-01T00:00:00Z")
	e := warm(b, n, start)
	const chunk = 300_000
	evs := make([]events.Event, 0, chunk)
	var out []events.Event
	var err error
	off := int64(n + 1)
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		evs = evs[:0]
		for i := done / 3; len(evs) < chunk && len(evs)+done < b.N+3; i++ {
			trio := benchEvents(i, n, start)
			evs = append(evs, trio[:]...)
		}
		if len(evs) > b.N-done {
			evs = evs[:b.N-done]
		}
		b.StartTimer()
		c0 := testenv.ProcessCPU()
		for _, ev := range evs {
			if out, err = e.Apply(ev, off, out[:0]); err != nil {
				b.Fatal(err)
			}
			off++
		}
		cpu += testenv.ProcessCPU() - c0
		done += len(evs)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// Events per second of the process's CPU time (all threads, the garbage collector's too): on a
	// machine shared with other work, wall time counts waiting for a core, this does not.
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "cpu-events/s")
	b.ReportMetric(float64(e.Pairs()), "live_pairs")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemoryPerPair reports resident heap per live pair: benchPairs pairs, each with an open
// window and one delivered template within the lateness (so its facts are still kept).
func BenchmarkMemoryPerPair(b *testing.B) {
	n := benchPairs(b)
	start := at("2025-09-01T00:00:00Z")
	for range b.N {
		before := heapInUse()
		e := warm(b, n, start)
		afterWindows := heapInUse()
		var out []events.Event
		var err error
		for i := 0; i < n; i++ {
			for _, ev := range benchEvents(i, n, start) {
				if out, err = e.Apply(ev, int64(n+i), out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(afterWindows-before)/float64(n), "bytes/pair(window)")
		b.ReportMetric(float64(after-before)/float64(n), "bytes/pair(window+template)")
		runtime.KeepAlive(e)
	}
}

// BenchmarkSnapshotRestore reports the seconds to snapshot and restore benchPairs live pairs
// (CONVMETER_BENCH_PAIRS=10000000 for the 10M figure).
func BenchmarkSnapshotRestore(b *testing.B) {
	n := benchPairs(b)
	e := warm(b, n, at("2025-09-01T00:00:00Z"))
	var buf bytes.Buffer
	for range b.N {
		buf.Reset()
		t0 := time.Now()
		if err := e.Snapshot(&buf); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		r, err := RestoreBytes(buf.Bytes(), Config{}) // as the aggregator restores
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if r.Pairs() != e.Pairs() {
			b.Fatalf("restored %d pairs of %d", r.Pairs(), e.Pairs())
		}
		b.ReportMetric(t1.Sub(t0).Seconds(), "snapshot_s")
		b.ReportMetric(t2.Sub(t1).Seconds(), "restore_s")
		b.ReportMetric(float64(buf.Len())/float64(n), "snapshot_bytes/pair")
	}
}

// BenchmarkBusyPair is one pair sent a template every 10 s whose sent status arrives after its
// delivered one (late by a second): every message recomputes the pair, which holds the facts of
// up to the lateness (72 h). An op is one message (send, delivered, late sent), averaged over a
// pair that grows to the sub-benchmark's messages (a fresh engine after each). Replaying each
// recompute from the base made this cubic: 0.61 ms a message over 1,000 messages, 50 ms over
// 10,000.
func BenchmarkBusyPair(b *testing.B) {
	verify := verifyRecompute
	verifyRecompute = nil // TestMain's check derives every recompute in full: not what is measured
	defer func() { verifyRecompute = verify }()
	for _, size := range []int{1000, 10000} {
		b.Run("messages="+strconv.Itoa(size), func(b *testing.B) {
			var st Stats
			for done := 0; done < b.N; done += size {
				s := busyPair(b, min(size, b.N-done)).Stats()
				st.Recomputes += s.Recomputes
				st.Replayed += s.Replayed
			}
			b.ReportMetric(float64(st.Replayed)/float64(max(st.Recomputes, 1)), "replayed/recompute")
		})
	}
}

// busyPair returns an engine that ran n messages of BenchmarkBusyPair's busy pair (the
// harness's number and user).
func busyPair(tb testing.TB, n int) *Engine {
	e, err := New(Config{})
	if err != nil {
		tb.Fatal(err)
	}
	var out []events.Event
	if out, err = e.Apply(events.New(accountConfig(testNumber, "UTC", 0)), 0, out); err != nil {
		tb.Fatal(err)
	}
	start := at("2025-09-01T00:00:00Z")
	off := int64(1)
	for i := range n {
		t := start + int64(i)*10
		w := "wamid.busy." + strconv.Itoa(i)
		for _, ev := range []events.Event{
			sendEvent(t, w, events.CategoryUtility),
			statusEvent(t+2, w, events.StatusDelivered, nil),
			statusEvent(t+1, w, events.StatusSent, nil),
		} {
			if out, err = e.Apply(ev, off, out[:0]); err != nil {
				tb.Fatal(err)
			}
			off++
		}
	}
	return e
}
