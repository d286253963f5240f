package window

import (
	"testing"

	"github.com/convmeter/convmeter/events"
)

// TestRecomputeStartsFromCheckpointWhileItHolds: a recompute replays the pair's facts from where
// the last one's quiet replay ended, unless what that replay read has changed since: the
// partition's settled messages (here another pair settles a wamid of this one, as malformed
// traffic can) or the account versions. TestMain checks every recompute against the full
// derivation from the base, so a checkpoint used when it no longer holds fails the test: without
// the settled check, the second case does.
func TestRecomputeStartsFromCheckpointWhileItHolds(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(h *harness, w1 string, t0 int64)
		want   uint64 // facts the second recompute replays
	}{
		{"unchanged", func(*harness, string, int64) {}, 3},
		{"settled elsewhere", func(h *harness, w1 string, t0 int64) { h.e.settled.add(w1, t0) }, 4},
		{"account version", func(h *harness, _ string, t0 int64) {
			h.apply(events.New(accountConfig(testNumber, "Asia/Kolkata", t0-3600)))
		}, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := configured(t, "UTC")
			t0 := pmpStart()
			w1, w2 := h.wamid("tpl"), h.wamid("tpl")
			h.send(t0, w1, events.CategoryMarketing)
			h.status(t0+10, w1, events.StatusDelivered, nil)
			h.send(t0+100, w2, events.CategoryMarketing)
			h.status(t0+110, w2, events.StatusDelivered, nil)
			h.status(t0+5, w1, events.StatusSent, nil) // late: replays the send of w1, then checkpoints there
			st := h.e.Stats()
			if st.Recomputes != 1 || st.Replayed != 1 {
				t.Fatalf("after the first late status: %d recomputes replaying %d facts, want 1 and 1", st.Recomputes, st.Replayed)
			}
			c.change(h, w1, t0)
			h.status(t0+105, w2, events.StatusSent, nil) // late: lands before w2's delivered, the 5th fact
			st2 := h.e.Stats()
			if st2.Recomputes != 2 {
				t.Fatalf("%d recomputes, want 2", st2.Recomputes)
			}
			if got := st2.Replayed - st.Replayed; got != c.want {
				t.Errorf("the second recompute replayed %d facts, want %d", got, c.want)
			}
		})
	}
}

// TestBusyPairRecomputesReplayAFew: a pair with hundreds of facts in the lateness, each message's
// sent status late, replays a few facts per recompute (from the base it replayed all of them:
// 750 on average for 500 messages). TestMain's check derives each recompute from the base, so
// the pair is kept short.
func TestBusyPairRecomputesReplayAFew(t *testing.T) {
	st := busyPair(t, 500).Stats()
	if st.Recomputes != 500 {
		t.Fatalf("%d recomputes, want one per message (500)", st.Recomputes)
	}
	if per := float64(st.Replayed) / float64(st.Recomputes); per > 4 {
		t.Errorf("%.1f facts replayed per recompute, want at most 4", per)
	}
}
