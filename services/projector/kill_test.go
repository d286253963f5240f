package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/projector/projectortest"
)

// The child process: the test binary re-executed with envChild set runs a billing projector until
// it is killed. Configuration comes in environment variables (this is a main, of sorts).
const (
	envChild    = "CONVMETER_PROJECTOR_CHILD"
	envBrokers  = "CHILD_BROKERS"
	envTopic    = "CHILD_TOPIC"
	envGroup    = "CHILD_GROUP"
	envRedis    = "CHILD_REDIS"
	envPrefix   = "CHILD_PREFIX"
	envThrottle = "CHILD_THROTTLE"
	cardsPath   = "../../projections/ratecard/examples"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func child() error {
	opt, err := redis.ParseURL(os.Getenv(envRedis))
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	book, err := ratecard.Load(cardsPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := billing.NewStore(rdb, os.Getenv(envPrefix), book, log)
	if err != nil {
		return err
	}
	throttle, _ := time.ParseDuration(os.Getenv(envThrottle))
	cfg := Config{
		Brokers: strings.Split(os.Getenv(envBrokers), ","), Topic: os.Getenv(envTopic), Group: os.Getenv(envGroup),
		MaxBatch: 1000, MaxWait: 100 * time.Millisecond, Parallel: 2,
		ReaderOptions: []kafkax.ReaderOption{kafkax.WithSessionTimeout(6 * time.Second)},
		OnBatch:       func(Stats) { time.Sleep(throttle) },
	}
	return Run(context.Background(), cfg, store, log)
}

// freshPrefix returns a key prefix of its own, deleted when the test ends.
func freshPrefix(t *testing.T, rdb *redis.Client) string {
	prefix := redistest.Prefix(t)
	t.Cleanup(func() { _, _ = redistest.DeletePrefix(context.Background(), rdb, prefix) })
	return prefix
}

var synthWABAs = []events.Account{
	{PhoneNumberID: "N0", WABAID: "W0", PortfolioID: "P", TimeZone: "Asia/Kolkata", Currency: "USD", Configured: true},
	{PhoneNumberID: "N1", WABAID: "W1", PortfolioID: "P", TimeZone: "America/Sao_Paulo", Currency: "USD", Configured: true},
	{PhoneNumberID: "N2", WABAID: "W2", PortfolioID: "Q", TimeZone: "UTC", Currency: "INR", Configured: true},
}

var synthMonths = [][2]string{{"W0", "2025-08"}, {"W1", "2025-08"}, {"W2", "2025-08"}, {"W0", "2024-03"}, {"W1", "2024-03"}, {"W2", "2024-03"}}

// synth generates n output events over the given partitions: charges (PMP utility, authentication
// and marketing in 2025-08, CBP-2023 service and marketing in 2024-03, so free tiers and volume
// tiers are crossed), every 50th a correction retracting an earlier charge of its partition.
func synth(n, partitions int) [][]events.Event {
	r := mrand.New(mrand.NewPCG(7, 7))
	out := make([][]events.Event, partitions)
	for i := 0; i < n; i++ {
		p := r.IntN(partitions)
		off := int64(len(out[p]))
		cause := &events.Cause{Partition: int32(p), Offset: off}
		if i%50 == 49 && off > 0 {
			victim := out[p][r.IntN(int(off))].ID
			out[p] = append(out[p], events.Event{ID: fmt.Sprintf("corr-%d", i), Type: events.TypeCorrection, Cause: cause,
				Data: &events.Correction{Retracts: []string{victim}, Reason: "synthetic"}})
			continue
		}
		acct := synthWABAs[r.IntN(len(synthWABAs))]
		rcpt := []string{"9198", "1650", "5511", "1809"}[r.IntN(4)] + fmt.Sprintf("%07d", r.IntN(1000))
		c := events.Charge{Unit: events.UnitMessage, PricingModel: events.ModelPMP, PricingType: events.PricingRegular, Billable: true,
			Reason: events.ReasonTemplateDelivered, Kind: events.KindTemplate, Recipient: rcpt,
			Category:    []events.Category{events.CategoryUtility, events.CategoryAuthentication, events.CategoryMarketing}[r.IntN(3)],
			DeliveredAt: events.UnixTime(1754524800 + r.IntN(86400*10))} // 2025-08-07 + up to 10 days
		acct.Month = "2025-08"
		if r.IntN(5) == 0 {
			acct.Month = "2024-03"
			c.Unit, c.PricingModel, c.Reason = events.UnitConversation, events.ModelCBP2023, events.ReasonConversationOpened
			c.Category = []events.Category{events.CategoryService, events.CategoryMarketing}[r.IntN(2)]
			c.DeliveredAt = events.UnixTime(1709856000 + r.IntN(86400*10)) // 2024-03-08 + up to 10 days
		}
		c.Account = acct
		c.User = rcpt
		out[p] = append(out[p], events.Event{ID: fmt.Sprintf("ev-%06d", i), Type: events.TypeCharge,
			Key: events.PairKey(acct.PhoneNumberID, rcpt, ""), Time: c.DeliveredAt, Cause: cause, Data: &c})
	}
	return out
}

func ledgerDump(t *testing.T, s *billing.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, wm := range synthMonths {
		tt, err := s.Totals(ctx, wm[0], wm[1])
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(tt)
		b.Write(j)
		b.WriteByte('\n')
		err = s.EachLine(ctx, wm[0], wm[1], func(l billing.Settled) error {
			j, _ := json.Marshal(l)
			b.Write(j)
			b.WriteByte('\n')
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func progress(ctx context.Context, s *billing.Store, partitions int) int64 {
	var n int64
	for p := 0; p < partitions; p++ {
		if c, ok, _ := s.HighWater(ctx, int32(p)); ok {
			n += c.Offset + 1
		}
	}
	return n
}

// TestKillNine: a billing projector in a child process, consuming 50k synthetic events (15k
// under the race detector) from real
// Kafka into real Redis, is killed with SIGKILL at random points and restarted; the ledger it ends
// with equals the one of an uninterrupted apply, and a second full run over the same events (a new
// consumer group) changes nothing.
func TestKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test in -short mode")
	}
	const partitions = 4
	total := 50_000
	if raceEnabled {
		total = 15_000
	}
	brokers := kafkatest.Brokers(t)
	redisURL := redistest.URL(t)
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	book, err := ratecard.Load(cardsPath)
	if err != nil {
		t.Fatal(err)
	}
	topic := kafkatest.Topic(t, brokers, partitions)
	hist := synth(total, partitions)
	projectortest.Publish(t, brokers, topic, hist)

	// Reference: the same events applied straight into a fresh prefix, no interruption.
	refPrefix := freshPrefix(t, rdb)
	ref, err := billing.NewStore(rdb, refPrefix, book, nil)
	if err != nil {
		t.Fatal(err)
	}
	projectortest.ApplyAll(t, ref, hist, 2000)
	want := ledgerDump(t, ref)

	prefix := freshPrefix(t, rdb)
	store, err := billing.NewStore(rdb, prefix, book, nil)
	if err != nil {
		t.Fatal(err)
	}
	group := kafkatest.Name(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"=1", envBrokers+"="+strings.Join(brokers, ","), envTopic+"="+topic,
			envGroup+"="+group, envRedis+"="+redisURL, envPrefix+"="+prefix, envThrottle+"=30ms")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kills := projectortest.KillAndFinish(t, projectortest.Kills{Start: start, Total: int64(total), Kills: 3, MaxPause: 400 * time.Millisecond,
		Progress: func() int64 { return progress(ctx, store, partitions) }})
	if got := ledgerDump(t, store); got != want {
		t.Fatalf("ledger after %d kills differs from the uninterrupted run (%d vs %d bytes)", kills, len(got), len(want))
	}

	// A second run over the same events, in process, with a new group: nothing changes.
	rctx, cancel := context.WithCancel(ctx)
	seen := 0
	err = Run(rctx, Config{Brokers: brokers, Topic: topic, Group: group + ".again", MaxBatch: 5000,
		ReaderOptions: []kafkax.ReaderOption{kafkax.WithSessionTimeout(6 * time.Second)},
		OnBatch: func(s Stats) {
			if seen += s.Events; seen >= total {
				cancel()
			}
		}}, store, nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if got := ledgerDump(t, store); got != want {
		t.Fatal("a second run over the same events changed the ledger")
	}
	tt, _ := store.Totals(ctx, "W0", "2024-03")
	t.Logf("W0 2024-03: %d lines, %s USD, free tier %+v", tt.Total.Lines, tt.Total.Amount, tt.FreeTier)
}
