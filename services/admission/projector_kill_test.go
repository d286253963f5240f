package admission

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/projections/ratelimit"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/projector"
	"github.com/convmeter/convmeter/services/projector/projectortest"
)

// The child process: this test binary re-executed with envRLChild set runs the rate-limit
// projection under services/projector until it is killed.
const (
	envRLChild   = "CONVMETER_RATELIMIT_CHILD"
	envRLBrokers = "RL_CHILD_BROKERS"
	envRLTopic   = "RL_CHILD_TOPIC"
	envRLGroup   = "RL_CHILD_GROUP"
	envRLRedis   = "RL_CHILD_REDIS"
	envRLNS      = "RL_CHILD_NS"
	rlParts      = 4
)

func TestMain(m *testing.M) {
	if os.Getenv(envRLChild) == "1" {
		if err := rlChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func rlChild() error {
	opt, err := redis.ParseURL(os.Getenv(envRLRedis))
	if err != nil {
		return err
	}
	store, err := ratelimit.NewStore(redis.NewClient(opt), ratelimit.WithNamespace(os.Getenv(envRLNS)), ratelimit.WithPartitions(rlParts))
	if err != nil {
		return err
	}
	cfg := projector.Config{Brokers: strings.Split(os.Getenv(envRLBrokers), ","), Topic: os.Getenv(envRLTopic),
		Group: os.Getenv(envRLGroup), MaxBatch: 2000, MaxWait: 100 * time.Millisecond,
		ReaderOptions: []kafkax.ReaderOption{kafkax.WithSessionTimeout(6 * time.Second)},
		OnBatch:       func(projector.Stats) { time.Sleep(20 * time.Millisecond) }}
	return projector.Run(context.Background(), cfg, store, nil)
}

// rlSynth: n output events per partition: deliveries in and out of the window, dispatch bursts,
// inbound messages and corrections retracting earlier outputs of the partition.
func rlSynth(n int) [][]events.Event {
	r := mrand.New(mrand.NewPCG(11, 12))
	out := make([][]events.Event, rlParts)
	for p := range out {
		t := events.UnixTime(1_761_955_200)
		for i := range n {
			t += events.UnixTime(r.IntN(30))
			cause := &events.Cause{Partition: int32(p), Offset: int64(i)}
			id := fmt.Sprintf("in-%d-%d/0", p, i)
			pn := fmt.Sprintf("n%d", r.IntN(3))
			a := events.Account{PhoneNumberID: pn, User: fmt.Sprintf("9198%04d", r.IntN(500)), PortfolioID: "pf1", Currency: "USD", Configured: true}
			var d events.Payload
			switch k := r.IntN(20); {
			case k < 7:
				d = &events.MessageDelivered{Account: a, WAMID: id, DeliveredAt: t, Kind: events.KindTemplate, InsideCSW: k == 0}
			case k < 14:
				d = &events.MessageDispatched{Account: a, WAMID: id, SentAt: t, Kind: events.KindTemplate}
			case k < 18:
				d = &events.WindowOpened{Account: a, WAMID: id, OpenedAt: t, ExpiresAt: t + ratelimit.Day}
			default:
				if i == 0 {
					d = &events.AccountConfig{PhoneNumberID: pn, PortfolioID: "pf1", WABAID: "w1", Currency: "USD", TimeZone: "UTC", MessagingLimitTier: "TIER_250"}
					break
				}
				d = &events.Correction{Key: pn + "/" + a.User, Retracts: []string{out[p][r.IntN(i)].ID}}
			}
			out[p] = append(out[p], events.Event{ID: id, Type: d.EventType(), Key: events.PairKey(pn, a.User, ""), Time: t, Cause: cause, Data: d})
		}
	}
	return out
}

// stateDump renders every key of a namespace, namespace stripped, sorted.
func stateDump(t *testing.T, rdb *redis.Client, ns string) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	iter := rdb.Scan(ctx, 0, ns+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		short := strings.TrimPrefix(k, ns)
		switch rdb.Type(ctx, k).Val() {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				if strings.HasSuffix(short, ":meta") && f == ratelimit.PositionField {
					continue // how far the projector read the log; the reference was applied directly
				}
				lines = append(lines, short+" "+f+"="+v)
			}
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				lines = append(lines, fmt.Sprintf("%s %v=%v", short, z.Member, z.Score))
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestProjectorKillNine: the rate-limit projection under services/projector, in a child process
// consuming a real Kafka topic into real Redis, is SIGKILLed at random points and restarted; its
// state equals an uninterrupted direct apply, and a second consumer group over the same topic
// changes nothing.
func TestProjectorKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test in -short mode")
	}
	n := 6000
	brokers := kafkatest.Brokers(t)
	redisURL := redistest.URL(t)
	rdb, ns := redistest.Client(t)
	ctx := context.Background()
	topic := kafkatest.Topic(t, brokers, rlParts)
	hist := rlSynth(n)
	projectortest.Publish(t, brokers, topic, hist)

	ref, err := ratelimit.NewStore(rdb, ratelimit.WithNamespace(ns+"ref:"), ratelimit.WithPartitions(rlParts))
	if err != nil {
		t.Fatal(err)
	}
	projectortest.ApplyAll(t, ref, hist, 1000)
	want := stateDump(t, rdb, ns+"ref:")

	live := ns + "live:"
	store, err := ratelimit.NewStore(rdb, ratelimit.WithNamespace(live), ratelimit.WithPartitions(rlParts))
	if err != nil {
		t.Fatal(err)
	}
	progress := func() int64 {
		var sum int64
		for p := range rlParts {
			if c, ok, _ := store.HighWater(ctx, int32(p)); ok {
				sum += c.Offset + 1
			}
		}
		return sum
	}
	group := kafkatest.Name(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envRLChild+"=1", envRLBrokers+"="+strings.Join(brokers, ","), envRLTopic+"="+topic,
			envRLGroup+"="+group, envRLRedis+"="+redisURL, envRLNS+"="+live)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	total := int64(n * rlParts)
	projectortest.KillAndFinish(t, projectortest.Kills{Start: start, Progress: progress, Total: total, Kills: 3, MaxPause: 200 * time.Millisecond})
	if got := stateDump(t, rdb, live); got != want {
		t.Fatalf("state after kills differs from the uninterrupted run (%d vs %d bytes)", len(got), len(want))
	}
	// A second consumer group over the same topic: nothing changes.
	rctx, cancel := context.WithCancel(ctx)
	seen := 0
	err = projector.Run(rctx, projector.Config{Brokers: brokers, Topic: topic, Group: group + ".again", MaxBatch: 5000,
		ReaderOptions: []kafkax.ReaderOption{kafkax.WithSessionTimeout(6 * time.Second)},
		OnBatch: func(s projector.Stats) {
			if seen += s.Events; seen >= int(total) {
				cancel()
			}
		}}, store, nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if got := stateDump(t, rdb, live); got != want {
		t.Fatal("a second run over the same events changed the state")
	}
}
