package replay

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/producer"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/loadgen"
	"github.com/convmeter/convmeter/services/window"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func publish(t *testing.T, brokers []string, topic string, evs []events.Event) {
	t.Helper()
	ctx := context.Background()
	pr, err := producer.New(ctx, brokers, producer.WithTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	for i := 0; i < len(evs); i += 2000 {
		if err := pr.Publish(ctx, evs[i:min(i+2000, len(evs))]...); err != nil {
			t.Fatal(err)
		}
	}
}

// live builds the live namespace the way the deployed path does, but in memory: every partition
// read with a kafka.Reader (a different read path than Run), the aggregator's Processor, and the
// projections applied in small batches of varying size.
func live(t *testing.T, brokers []string, topic string, ns *Namespace, n int) {
	t.Helper()
	ctx := context.Background()
	for p := range n {
		_, end, err := kafkax.PartitionBounds(ctx, brokers, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		x, err := NewPartition(int32(p), topic, window.Config{}, 37+p*50, ns.Projections()...)
		if err != nil {
			t.Fatal(err)
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		for off := int64(0); off < end; off++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Record(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := x.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		_ = r.Close()
	}
}

func books(t testing.TB) *ratecard.Book {
	t.Helper()
	b, err := ratecard.Examples()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReplayEqualsLive: generated traffic (with a record that does not decode) produced to a
// topic, the live projections built from it, then a replay into a fresh namespace: no difference.
func TestReplayEqualsLive(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const n = 3
	topic := kafkatest.Topic(t, brokers, n)
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()

	m, err := loadgen.New(loadgen.Config{Seed: 11, Numbers: 4, UsersPerNumber: 300, Duration: 3 * time.Hour, SessionsPerHour: 120})
	if err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for _, it := range m.Items(0) {
		evs = append(evs, it.Event)
	}
	publish(t, brokers, topic, evs)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("junk"), Value: []byte(`{"v":1,"type":"nope`)}); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()

	liveNS, err := OpenNamespace(rdb, prefix+"live:", books(t), n, quiet())
	if err != nil {
		t.Fatal(err)
	}
	live(t, brokers, topic, liveNS, n)
	rebuilt, err := OpenNamespace(rdb, prefix+"rebuilt:", books(t), n, quiet())
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	var before []int64 // what BeforeRead was called with
	st, err := Run(ctx, Config{Brokers: brokers, Topic: topic, Progress: &progress, ProgressEvery: 50 * time.Millisecond,
		BeforeRead: func(records int64) { before = append(before, records) }}, rebuilt, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if st.DeadLetters != 1 || st.Records < int64(len(evs)) || st.Outputs == 0 {
		t.Fatalf("stats %+v, published %d events", st, len(evs))
	}
	if len(before) != 1 || before[0] != st.Records {
		t.Errorf("BeforeRead called with %v, want once with the %d records read", before, st.Records)
	}
	if !strings.Contains(progress.String(), "events/s, ETA") {
		t.Errorf("no progress line: %q", progress.String())
	}
	rep, err := Compare(ctx, rdb, liveNS, rebuilt, n, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_ = rep.WriteText(&out)
	if !rep.Equal() || rep.Billing.LinesLive == 0 || rep.RateLimit.EntriesLive == 0 {
		t.Fatalf("replay differs from live or compared nothing:\n%s", out.String())
	}
	if rep.Billing.LinesLive != rep.Billing.LinesRebuilt || rep.RateLimit.EntriesLive != rep.RateLimit.EntriesRebuilt {
		t.Fatalf("counts differ:\n%s", out.String())
	}
	t.Logf("%d records, %d outputs, %d lines, %d counter entries\n%s", st.Records, st.Outputs, rep.Billing.LinesLive,
		rep.RateLimit.EntriesLive, out.String())
}

// editedBook is the shipped example book with India marketing in the USD card of 2025-07-01
// changed from 0.0107 to 0.015.
func editedBook(t *testing.T) *ratecard.Book {
	t.Helper()
	dir := filepath.Join("..", "..", "projections", "ratecard", "examples")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	old := "rate,India,marketing,,0.0107\n"
	if !strings.Contains(files["usd-2025-07-01.csv"], old) {
		t.Fatal("example card changed: India marketing is no longer 0.0107")
	}
	files["usd-2025-07-01.csv"] = strings.Replace(files["usd-2025-07-01.csv"], old, "rate,India,marketing,,0.015\n", 1)
	b, err := ratecard.Parse(files)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handLog: one number of WABA w1 (UTC, USD); three marketing templates delivered on 2025-07-10,
// two to India (list 0.0107 each) and one to Brazil (0.0625).
func handLog() []events.Event {
	at := events.FromTime(time.Date(2025, 7, 10, 10, 0, 0, 0, time.UTC))
	evs := []events.Event{events.New(&events.AccountConfig{PhoneNumberID: "111", WABAID: "w1", PortfolioID: "pf1", TimeZone: "UTC",
		Currency: "USD", EffectiveFrom: at - 30*86400})}
	for i, user := range []string{"919800000001", "919800000002", "5511900000001"} {
		t := at + events.UnixTime(i*60)
		w := "wamid.hand." + user
		evs = append(evs,
			events.New(&events.OutboundSend{PhoneNumberID: "111", WABAID: "w1", WaID: user, WAMID: w, Timestamp: t,
				Kind: events.KindTemplate, TemplateCategory: events.CategoryMarketing}),
			events.New(&events.StatusUpdate{PhoneNumberID: "111", WABAID: "w1", RecipientID: user, WAMID: w,
				Status: events.StatusDelivered, Timestamp: t + 5}))
	}
	return evs
}

// handRig is the hand log published to a topic of n partitions, the live namespace and an empty
// namespace to rebuild it into (editedHand: applied live, and the rebuild priced with the edited
// rate card).
type handRig struct {
	ctx           context.Context
	rdb           redis.UniversalClient
	prefix, topic string
	brokers       []string
	live, rebuilt *Namespace
}

func editedHand(t *testing.T, n int) handRig {
	t.Helper()
	h := newHand(t, n, editedBook(t))
	live(t, h.brokers, h.topic, h.live, n)
	return h
}

// newHand publishes the hand log to a fresh topic of n partitions and opens the live namespace
// (the example cards; nothing applied yet) and the rebuilt one (priced with book).
func newHand(t *testing.T, n int, book *ratecard.Book) handRig {
	t.Helper()
	h := handRig{ctx: context.Background(), brokers: kafkatest.Brokers(t)}
	h.topic = kafkatest.Topic(t, h.brokers, n)
	rdb, prefix := redistest.Client(t)
	h.rdb, h.prefix = rdb, prefix
	publish(t, h.brokers, h.topic, handLog())
	var err error
	if h.live, err = OpenNamespace(rdb, prefix+"live:", books(t), n, quiet()); err != nil {
		t.Fatal(err)
	}
	if h.rebuilt, err = OpenNamespace(rdb, prefix+"rebuilt:", book, n, quiet()); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestReplayAfterRateCardEdit replays with an edited rate card: exactly the two India lines
// change, by hand: 0.0107 → 0.015 each, so the WABA-month goes from 2×0.0107+0.0625 = 0.0839
// to 2×0.015+0.0625 = 0.0925; the counters are unchanged. Then promotes the rebuilt namespace.
func TestReplayAfterRateCardEdit(t *testing.T) {
	h := editedHand(t, 1)
	ctx, rdb, prefix, brokers, topic, liveNS, rebuilt := h.ctx, h.rdb, h.prefix, h.brokers, h.topic, h.live, h.rebuilt
	if _, err := Promote(ctx, rdb, liveNS, rebuilt, 1); !errors.Is(err, ErrBehindLive) {
		t.Fatalf("promote of an empty namespace: %v, want ErrBehindLive", err)
	}
	if _, err := Run(ctx, Config{Brokers: brokers, Topic: topic}, rebuilt, quiet()); err != nil {
		t.Fatal(err)
	}
	rep, err := Compare(ctx, rdb, liveNS, rebuilt, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_ = rep.WriteText(&out)
	t.Log("\n" + out.String())
	if rep.Equal() {
		t.Fatal("edited card shows no difference")
	}
	if len(rep.Billing.Totals) != 1 {
		t.Fatalf("totals differences: %+v", rep.Billing.Totals)
	}
	tot := rep.Billing.Totals[0]
	if tot.WABA != "w1" || tot.Month != "2025-07" || tot.Live.AmountMicros != 83_900 || tot.Rebuilt.AmountMicros != 92_500 ||
		tot.Live.Lines != 3 || tot.Rebuilt.Lines != 3 {
		t.Fatalf("totals: %+v", tot)
	}
	if rep.Billing.LineDiffs != 2 || len(rep.Billing.Lines) != 2 {
		t.Fatalf("line differences: %+v", rep.Billing.Lines)
	}
	for _, l := range rep.Billing.Lines {
		want := []FieldDiff{{"amount", "0.0107", "0.015"}, {"list", "0.0107", "0.015"}}
		if l.Kind != "changed" || !strings.HasPrefix(l.WAMID, "wamid.hand.91") || len(l.Fields) != 2 || l.Fields[0] != want[0] || l.Fields[1] != want[1] {
			t.Fatalf("line difference %+v", l)
		}
	}
	if rep.RateLimit.Differences != 0 || len(rep.Billing.Reconciliation) != 0 {
		t.Fatalf("counters or reconciliation differ: %+v", rep.RateLimit)
	}

	n, err := Promote(ctx, rdb, liveNS, rebuilt, 1)
	if err != nil || n == 0 {
		t.Fatalf("promote: %d keys, %v", n, err)
	}
	promoted, err := OpenNamespace(rdb, prefix+"live:", editedBook(t), 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tt, err := promoted.Billing.Totals(ctx, "w1", "2025-07")
	if err != nil || tt.Total.AmountMicros != 92_500 {
		t.Fatalf("live after promote: %+v %v", tt.Total, err)
	}
	if empty, err := rebuilt.Empty(ctx, rdb); err != nil || !empty {
		t.Fatalf("rebuilt namespace not empty after promote: %v", err)
	}
	if hw, ok, err := promoted.RateLimit.HighWater(ctx, 0); err != nil || !ok || hw.Offset != 6 {
		t.Fatalf("promoted rate-limit high water %+v %v %v", hw, ok, err)
	}
}

// TestReplayTimeRange replays only the input events before 10:00:30 of the hand log (the first
// India delivery): in that range the ledger equals live; after it, the rebuilt ledger lacks the
// two later lines, and the report says so.
func TestReplayTimeRange(t *testing.T) {
	h := newHand(t, 1, books(t))
	ctx, rdb, brokers, topic, liveNS, rebuilt := h.ctx, h.rdb, h.brokers, h.topic, h.live, h.rebuilt
	live(t, brokers, topic, liveNS, 1)
	cut := events.FromTime(time.Date(2025, 7, 10, 10, 0, 30, 0, time.UTC))
	st, err := Run(ctx, Config{Brokers: brokers, Topic: topic, To: cut}, rebuilt, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 4 || st.Records != 7 {
		t.Fatalf("stats %+v: want 7 records, 4 skipped (two sends and two statuses after the cut)", st)
	}
	rep, err := Compare(ctx, rdb, liveNS, rebuilt, 1, 0, cut)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal() || rep.Billing.LinesLive != 1 || rep.Billing.LinesRebuilt != 1 || rep.RateLimit.Compared {
		t.Fatalf("in range: %+v", rep.Billing)
	}
	rep, err = Compare(ctx, rdb, liveNS, rebuilt, 1, cut, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Equal() || rep.Billing.LineDiffs != 2 || rep.Billing.Lines[0].Kind != "missing" || rep.Billing.Lines[1].Kind != "missing" {
		t.Fatalf("after the cut: %+v", rep.Billing)
	}
}

// TestPromoteFinishesAfterInterruption stops a promote after its first hash tag (as a crash
// would), checks that each partition's projection state is wholly one namespace's, and that
// Promote run again finishes the switch.
func TestPromoteFinishesAfterInterruption(t *testing.T) {
	h := editedHand(t, 2)
	ctx, rdb, prefix, brokers, topic, liveNS, rebuilt := h.ctx, h.rdb, h.prefix, h.brokers, h.topic, h.live, h.rebuilt
	if _, err := Run(ctx, Config{Brokers: brokers, Topic: topic}, rebuilt, quiet()); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("killed")
	switched := 0
	promoteHook = func(string) error {
		if switched == 1 {
			return crash
		}
		switched++
		return nil
	}
	defer func() { promoteHook = func(string) error { return nil } }()
	if _, err := Promote(ctx, rdb, liveNS, rebuilt, 2); !errors.Is(err, crash) {
		t.Fatalf("interrupted promote: %v", err)
	}
	if ok, err := Promoting(ctx, rdb, rebuilt); err != nil || !ok {
		t.Fatalf("no promote in progress after the interruption: %v", err)
	}
	if _, err := Drop(ctx, rdb, liveNS, rebuilt); err == nil || !strings.Contains(err.Error(), "finish it") {
		t.Fatalf("drop of a half-promoted namespace: %v, want refused", err)
	}
	// Every (projection, partition) has its high-water mark in exactly one namespace's keys, or
	// in both when not yet switched: never in neither.
	for i, lp := range liveNS.Projections() {
		for p := int32(0); p < 2; p++ {
			_, aok, err := lp.HighWater(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			_, bok, err := rebuilt.Projections()[i].HighWater(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if !aok && !bok {
				t.Fatalf("%s partition %d lost its high-water mark mid-promote", lp.Name(), p)
			}
		}
	}
	promoteHook = func(string) error { return nil }
	if _, err := Promote(ctx, rdb, liveNS, rebuilt, 2); err != nil {
		t.Fatalf("finishing the promote: %v", err)
	}
	if ok, err := Promoting(ctx, rdb, rebuilt); err != nil || ok {
		t.Fatalf("promote still marked in progress: %v", err)
	}
	if empty, err := rebuilt.Empty(ctx, rdb); err != nil || !empty {
		t.Fatalf("rebuilt namespace not empty after promote: %v", err)
	}
	promoted, err := OpenNamespace(rdb, prefix+"live:", editedBook(t), 2, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tt, err := promoted.Billing.Totals(ctx, "w1", "2025-07")
	if err != nil || tt.Total.AmountMicros != 92_500 || tt.Total.Lines != 3 {
		t.Fatalf("live after promote: %+v %v", tt.Total, err)
	}
	for _, pr := range promoted.Projections() {
		for p := int32(0); p < 2; p++ {
			if _, ok, err := pr.HighWater(ctx, p); err != nil || !ok {
				t.Fatalf("%s partition %d has no high-water mark after promote: %v", pr.Name(), p, err)
			}
		}
	}
}

// Each engine of a replay gets its share of the cache, and never less than a live engine's.
func TestCacheShare(t *testing.T) {
	for _, c := range []struct{ total, parts, want int }{
		{0, 1, DefaultCachePairs},
		{0, 4, DefaultCachePairs / 4},
		{1 << 20, 8, 1 << 17},
		{1000, 4, window.DefaultCachePairs},
		{0, 1 << 12, window.DefaultCachePairs},
		{-1, 0, DefaultCachePairs},
	} {
		if got := cacheShare(c.total, c.parts); got != c.want {
			t.Errorf("cacheShare(%d, %d) = %d, want %d", c.total, c.parts, got, c.want)
		}
	}
}

// TestResumeRefusesTruncatedLog: retention deleted records an interrupted replay had read (here
// DeleteRecords, as the broker's retention does): resuming it would rebuild a different state,
// so Rebuild refuses with ErrLogTruncated and applies nothing.
func TestResumeRefusesTruncatedLog(t *testing.T) {
	h := newHand(t, 1, books(t))
	ctx, rdb, brokers, topic, liveNS, target := h.ctx, h.rdb, h.brokers, h.topic, h.live, h.rebuilt
	cfg := Config{Brokers: brokers, Topic: topic}
	if _, err := Rebuild(ctx, rdb, cfg, liveNS, target, false, quiet()); err != nil {
		t.Fatal(err)
	}
	// As if it had been interrupted: not done, and nothing applied yet.
	m, _, err := ReadManifest(ctx, rdb, target)
	if err != nil {
		t.Fatal(err)
	}
	m.Done = false
	if err := writeManifest(ctx, rdb, target, m); err != nil {
		t.Fatal(err)
	}
	if _, err := Drop(ctx, rdb, liveNS, target); err != nil {
		t.Fatal(err)
	}
	if err := writeManifest(ctx, rdb, target, m); err != nil {
		t.Fatal(err)
	}

	kafkatest.DeleteRecords(t, brokers, topic, 0, 3)
	_, err = Rebuild(ctx, rdb, cfg, liveNS, target, true, quiet())
	if !errors.Is(err, ErrLogTruncated) || !strings.Contains(err.Error(), "now starts at offset 3, the replay started at 0") {
		t.Fatalf("resume over a truncated log: %v, want ErrLogTruncated naming the offsets", err)
	}
	if empty, err := target.Empty(ctx, rdb); err != nil || !empty {
		t.Fatalf("the refused resume wrote projection keys (empty %v, %v)", empty, err)
	}
}
