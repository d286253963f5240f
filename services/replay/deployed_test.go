package replay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/loadgen"
	"github.com/convmeter/convmeter/services/projector"
)

// TestReplayEqualsDeployedPath runs the deployed live path for real: the aggregator (consumer
// group, window engines, conversation-events and dead-letter topics) and one projector per
// projection (consumer groups on conversation-events), over generated traffic with a record that
// does not decode. A replay of the message-events topic into a fresh namespace then equals the
// live namespace once the live high-water marks reach the replay's.
func TestReplayEqualsDeployedPath(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const n = 2
	topics := kafkatest.Topics(t, brokers, n)
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()

	m, err := loadgen.New(loadgen.Config{Seed: 21, Numbers: 3, UsersPerNumber: 200, Duration: 2 * time.Hour, SessionsPerHour: 120})
	if err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for _, it := range m.Items(0) {
		evs = append(evs, it.Event)
	}
	publish(t, brokers, topics.MessageEvents, evs)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topics.MessageEvents, Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("junk"), Value: []byte("not an event")}); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()

	rebuilt, err := OpenNamespace(rdb, prefix+"rebuilt:", books(t), n, quiet())
	if err != nil {
		t.Fatal(err)
	}
	st, err := Run(ctx, Config{Brokers: brokers, Topic: topics.MessageEvents}, rebuilt, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if st.DeadLetters != 1 {
		t.Fatalf("replay stats %+v", st)
	}

	live, err := OpenNamespace(rdb, prefix+"live:", books(t), n, quiet())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	group := kafkatest.Name(t)
	g.Go(func() error {
		return aggregator.Run(gctx, aggregator.Config{Brokers: brokers, Topics: topics, Group: group + ".agg",
			Store: aggregator.NewMemStore(), MaxWait: 50 * time.Millisecond, SessionTimeout: 6 * time.Second}, quiet())
	})
	for _, p := range live.Projections() {
		g.Go(func() error {
			return projector.Run(gctx, projector.Config{Brokers: brokers, Topic: topics.ConversationEvents,
				Group: group + "." + p.Name(), MaxWait: 50 * time.Millisecond}, p, quiet())
		})
	}
	caughtUp := func() bool {
		for i, lp := range live.Projections() {
			rp := rebuilt.Projections()[i]
			for p := int32(0); p < n; p++ {
				a, aok, err := lp.HighWater(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				b, bok, err := rp.HighWater(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if aok != bok || a != b {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(90 * time.Second)
	for !caughtUp() {
		if time.Now().After(deadline) || gctx.Err() != nil {
			cancel()
			t.Fatalf("live path did not reach the replay's high-water marks: %v", g.Wait())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := g.Wait(); err != nil && gctx.Err() == nil {
		t.Fatal(err)
	}

	rep, err := Compare(ctx, rdb, live, rebuilt, n, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_ = rep.WriteText(&out)
	if !rep.Equal() || rep.Billing.LinesLive == 0 || rep.RateLimit.EntriesLive == 0 {
		t.Fatalf("replay differs from the deployed path:\n%s", out.String())
	}
	t.Logf("%d records replayed; live (aggregator + projectors) equals replay:\n%s", st.Records, out.String())
}
