package replay

import (
	"context"
	"testing"
	"time"

	"github.com/convmeter/convmeter/services/loadgen"
	"github.com/convmeter/convmeter/services/window"
)

// On traffic that spans more than the lateness, windows expire, facts fold into the base and
// pairs are evicted: the engine's work per input event must stay bounded there too. A pair whose
// base still held an open window once made the engine maintain it at every stream advance until
// the cut passed it (2.9 maintains per event on a month of traffic). And a late fact replays the
// pair's facts from its checkpoint, where the last recompute's replay ended, when that still
// holds: from the base, a recompute here replayed 18.6 facts. This counts the work, it does not
// time it.
func TestEngineWorkOnLongTraffic(t *testing.T) {
	long := benchModel{name: "long", cfg: loadgen.Config{Seed: 7, WABAs: 1, Numbers: 2, UsersPerNumber: 2000,
		SessionsPerHour: 60, Duration: 10 * 24 * time.Hour}}
	evs := long.traffic(t, 0)
	x, err := NewPartition(0, "long", window.Config{}, 5000, discard{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range encodeAll(t, evs) {
		if err := x.Record(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	st := x.Engine().Stats()
	t.Logf("%+v", st)
	if days := float64(span(evs)) / 86400; days < 8 || st.Evicted == 0 {
		t.Fatalf("%.1f days of traffic, %d pairs evicted: the traffic does not reach past the lateness, the test would prove nothing", days, st.Evicted)
	}
	if per := float64(st.Maintained) / float64(st.Inputs); per > 0.6 {
		t.Errorf("%.2f pairs maintained per input event (%d for %d); want at most 0.6", per, st.Maintained, st.Inputs)
	}
	if st.Recomputes < 10_000 {
		t.Fatalf("%d recomputes: the traffic has too few late facts to tell", st.Recomputes)
	}
	if per := float64(st.Replayed) / float64(st.Recomputes); per > 10 {
		t.Errorf("%.1f facts replayed per recompute (%d for %d); want at most 10", per, st.Replayed, st.Recomputes)
	}
}
