// Package projectortest is the kill -9 harness the projection tests share: publish a history to
// its partitions, apply it straight into a reference, and run a projector child process that is
// killed with SIGKILL at random points and restarted until it has applied everything. Each test
// keeps its own child program (which projection, which store) and its own comparison of state.
package projectortest

import (
	"context"
	mrand "math/rand/v2"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/projections"
)

// Publish writes hist[p] to partition p of topic, in order.
func Publish(t testing.TB, brokers []string, topic string, hist [][]events.Event) {
	t.Helper()
	w, err := kafkax.NewWriter(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for p, evs := range hist {
		msgs := make([]kafka.Message, 0, len(evs))
		for _, e := range evs {
			m, err := kafkax.ToMessage(e)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, kafkax.ToPartition(m, p))
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
}

// ApplyAll applies hist[p] to partition p of proj in batches of size, without interruption: the
// reference a killed run must end equal to.
func ApplyAll(t testing.TB, proj projections.Projection, hist [][]events.Event, size int) {
	t.Helper()
	for p, evs := range hist {
		for i := 0; i < len(evs); i += size {
			if err := proj.Apply(context.Background(), projections.Batch{Partition: int32(p), Events: evs[i:min(i+size, len(evs))]}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Kills configures KillAndFinish.
type Kills struct {
	Start    func() *exec.Cmd // starts the child projector (cmd.Start done)
	Progress func() int64     // events applied so far (the sum of high-water offsets + 1)
	Total    int64            // events in the topic
	Kills    int              // SIGKILLs at most (fewer if the child finishes first)
	MaxPause time.Duration    // a kill comes up to this long after the child's first progress
}

// KillAndFinish starts the child, waits until it applies something, kills it with SIGKILL after a
// random pause, and repeats up to k.Kills times; then it runs a last child until Progress reaches
// Total (within 3 minutes) and kills that one too. It returns the number of kills made mid-run.
func KillAndFinish(t testing.TB, k Kills) int {
	t.Helper()
	r := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 0
	for kills < k.Kills {
		cmd := k.Start()
		before := k.Progress()
		deadline := time.Now().Add(60 * time.Second)
		for k.Progress() == before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(r.Int64N(int64(k.MaxPause) + 1)))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
		got := k.Progress()
		t.Logf("kill %d: SIGKILL after applying %d of %d events", kills, got, k.Total)
		if got >= k.Total {
			break
		}
	}
	cmd := k.Start()
	deadline := time.Now().Add(3 * time.Minute)
	for k.Progress() < k.Total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if got := k.Progress(); got < k.Total {
		t.Fatalf("restarted projector did not reach the end of the topic (%d of %d)", got, k.Total)
	}
	return kills
}
