package aggregator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkatest"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/events/producer"
	"github.com/convmeter/convmeter/events/testenv"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/redistest"
	"github.com/convmeter/convmeter/services/aggregator"
	"github.com/convmeter/convmeter/services/aggregator/internal/crosscheck"
	"github.com/convmeter/convmeter/services/loadgen"
	"github.com/convmeter/convmeter/services/projector/projectortest"
)

// TestDownstreamConsumerInPython reads what the aggregator wrote with no Go at all: kcat
// (librdkafka) fetches conversation-events as JSON lines, and events/examples/tally.py (Python's
// standard library) keeps every charge.v1 by id and undoes the ids each correction.v1 retracts,
// as the README's event catalogue tells consumers to. Its tally of lines and billable lines per
// WABA, month and category must equal the billing projection's totals over the same topic. The
// traffic must hold corrections that retract charges, or the test would not test them.
func TestDownstreamConsumerInPython(t *testing.T) {
	kcat := testenv.Tool(t, "scripts/services.sh installs it: apt-get install kcat", "kcat")
	python := testenv.Tool(t, ".ci/run installs it: apt-get install python3", "python3")
	brokers := kafkatest.Brokers(t)
	const parts = 4
	topics := testTopics(t, brokers, kafkatest.Name(t), parts)
	ctx := context.Background()
	g, err := loadgen.New(loadgen.Config{Seed: 3, WABAs: 2, Numbers: 4, UsersPerNumber: 300, SessionsPerHour: 200, Duration: 30 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for it, ok := g.Next(); ok; it, ok = g.Next() {
		evs = append(evs, it.Event)
	}
	pr, err := producer.New(ctx, brokers, producer.WithTopic(topics.MessageEvents))
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	_ = pr.Close()

	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ends, err := endOffsets(ctx, client, topics.MessageEvents, parts)
	if err != nil {
		t.Fatal(err)
	}
	group := kafkatest.Name(t)
	cfg := aggregator.Config{Brokers: brokers, Topics: topics, Group: group, Store: aggregator.NewMemStore(), MaxBatch: 2000, SessionTimeout: 6 * time.Second}
	runUntil(t, cfg, func() bool {
		got, err := committed(ctx, client, group, topics.MessageEvents, parts)
		return err == nil && sum(got) >= sum(ends)
	})

	// The reference: the billing projection over the output topic.
	outEnds, err := endOffsets(ctx, client, topics.ConversationEvents, parts)
	if err != nil {
		t.Fatal(err)
	}
	hist := make([][]events.Event, parts)
	months := map[string]bool{}
	retracted, charges := 0, map[string]bool{}
	for p := range parts {
		msgs, err := crosscheck.ReadPartition(ctx, client, topics.ConversationEvents, p, outEnds[p])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			ev, err := kafkax.FromMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			hist[p] = append(hist[p], ev)
			switch d := ev.Data.(type) {
			case *events.Charge:
				charges[ev.ID] = true
				months[d.WABAID+"|"+d.Month] = true
			case *events.Correction:
				for _, id := range d.Retracts {
					if charges[id] {
						retracted++
					}
				}
			}
		}
	}
	if retracted == 0 || len(charges) < 100 {
		t.Fatalf("%d charges, %d of them retracted by corrections: the traffic does not test what a consumer must undo", len(charges), retracted)
	}
	book, err := ratecard.Examples()
	if err != nil {
		t.Fatal(err)
	}
	rdb, prefix := redistest.Client(t)
	store, err := billing.NewStore(rdb, prefix, book, nil)
	if err != nil {
		t.Fatal(err)
	}
	projectortest.ApplyAll(t, store, hist, 2000)
	want := map[string]map[string]map[string]int64{}
	for wm := range months {
		waba, month, _ := strings.Cut(wm, "|")
		tt, err := store.Totals(ctx, waba, month)
		if err != nil {
			t.Fatal(err)
		}
		want[wm] = map[string]map[string]int64{}
		for c, b := range tt.ByCategory {
			want[wm][c] = map[string]int64{"lines": b.Lines, "billable": b.Billable}
		}
	}

	// The consumer with no Go in it.
	read := exec.Command(kcat, "-C", "-b", strings.Join(brokers, ","), "-t", topics.ConversationEvents, "-o", "beginning", "-e", "-q", "-J")
	consume := exec.Command(python, filepath.Join("..", "..", "events", "examples", "tally.py"))
	var out, readErr, consumeErr bytes.Buffer // one buffer each: each command copies its own stderr
	consume.Stdout, consume.Stderr, read.Stderr = &out, &consumeErr, &readErr
	if consume.Stdin, err = read.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := read.Start(); err != nil {
		t.Fatal(err)
	}
	if err := consume.Run(); err != nil {
		t.Fatalf("tally.py: %v\n%s", err, consumeErr.String())
	}
	if err := read.Wait(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, readErr.String())
	}
	var got map[string]map[string]map[string]int64
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("tally.py printed %q: %v", out.String(), err)
	}
	if len(got) != len(want) {
		t.Errorf("tally.py has %d WABA-months, billing %d", len(got), len(want))
	}
	for wm, cats := range want {
		for c, w := range cats {
			if g := got[wm][c]; g["lines"] != w["lines"] || g["billable"] != w["billable"] {
				t.Errorf("%s %s: tally.py %v, billing %v", wm, c, g, w)
			}
		}
		if len(got[wm]) != len(cats) {
			t.Errorf("%s: tally.py has categories %v, billing %v", wm, got[wm], cats)
		}
	}
	t.Logf("tally.py over kcat equals billing's totals: %d WABA-months, %d charges, %d retracted by corrections", len(want), len(charges), retracted)
}
