package window

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/events"
)

func seeds(t *testing.T) []int64 {
	if testing.Short() {
		return []int64{1, 2, 3}
	}
	out := make([]int64, 12)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

func encodeAll(t testing.TB, evs []events.Event) []byte {
	var buf []byte
	var err error
	for _, ev := range evs {
		buf, err = events.Encode(buf, ev)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, '\n')
	}
	return buf
}

func TestPropertyDeterminism(t *testing.T) {
	for _, seed := range seeds(t) {
		in := genTraffic(seed, 60, 12)
		a, _ := run(in)
		b, _ := run(in)
		if !bytes.Equal(encodeAll(t, a), encodeAll(t, b)) {
			t.Fatalf("seed %d: two runs over the same input differ", seed)
		}
		if len(a) < len(in)/4 {
			t.Fatalf("seed %d: suspiciously few outputs: %d for %d inputs", seed, len(a), len(in))
		}
	}
}

// The final outcome (outputs net of corrections) does not depend on the arrival order, as long
// as every event is within the allowed lateness (A11).
func TestPropertyOrderIndependence(t *testing.T) {
	for _, seed := range seeds(t) {
		in := genTraffic(seed, 60, 12)
		want, _ := run(in)
		shuffled := shuffleWithin(seed*7919, in, 30*hour)
		got, e := run(shuffled)
		if e.Stats().SetAside != 0 {
			t.Fatalf("seed %d: %d events set aside within the lateness", seed, e.Stats().SetAside)
		}
		if e.Stats().Recomputes == 0 {
			t.Fatalf("seed %d: the shuffle produced no out-of-order fact; the test proves nothing", seed)
		}
		diffOutcomes(t, seed, fingerprint(net(want)), fingerprint(net(got)))
	}
}

func diffOutcomes(t *testing.T, seed int64, want, got []string) {
	t.Helper()
	if strings.Join(want, "\n") == strings.Join(got, "\n") {
		return
	}
	w, g := map[string]bool{}, map[string]bool{}
	for _, x := range want {
		w[x] = true
	}
	for _, x := range got {
		g[x] = true
	}
	var missing, extra []string
	for _, x := range want {
		if !g[x] {
			missing = append(missing, x)
		}
	}
	for _, x := range got {
		if !w[x] {
			extra = append(extra, x)
		}
	}
	if len(missing) > 5 {
		missing = missing[:5]
	}
	if len(extra) > 5 {
		extra = extra[:5]
	}
	t.Fatalf("seed %d: outcomes differ (%d vs %d outputs)\nmissing:\n%s\nextra:\n%s", seed, len(want), len(got), strings.Join(missing, "\n"), strings.Join(extra, "\n"))
}

func TestPropertyDuplicatesAreNoOps(t *testing.T) {
	for _, seed := range seeds(t) {
		in := genTraffic(seed, 60, 12)
		want, _ := run(in)
		r := rand.New(rand.NewSource(seed))
		// Meta retries: a quarter of the events arrive again, 1 to 20 positions later in the log.
		later := map[int][]events.Event{}
		var dup []events.Event
		retried := 0
		for i, ev := range in {
			dup = append(dup, ev)
			dup = append(dup, later[i]...)
			delete(later, i)
			if ev.Type != events.TypeTick && ev.Type != events.TypeAccountConfig && r.Intn(4) == 0 {
				j := min(len(in)-1, i+1+r.Intn(20))
				later[j] = append(later[j], ev)
				retried++
			}
		}
		got, e := run(dup)
		if int(e.Stats().Duplicates) != retried {
			t.Fatalf("seed %d: %d retried events, %d detected as duplicates", seed, retried, e.Stats().Duplicates)
		}
		diffOutcomes(t, seed, fingerprint(net(want)), fingerprint(net(got)))
	}
}

// Conservation: under PMP every delivered template yields exactly one charge, and nothing is
// charged without a delivery (A1, A7).
func TestPropertyConservation(t *testing.T) {
	for _, seed := range seeds(t) {
		in := genTraffic(seed, 80, 12)
		out, _ := run(shuffleWithin(seed, in, 20*hour))
		checkConservation(t, in, net(out))
	}
}

func checkConservation(t testing.TB, in, out []events.Event) {
	t.Helper()
	delivered := map[string]bool{}
	for _, ev := range in {
		if s, ok := ev.Data.(*events.StatusUpdate); ok && (s.Status == events.StatusDelivered || s.Status == events.StatusRead || s.Status == events.StatusPlayed) {
			delivered[s.WAMID] = true
		}
	}
	charges := map[string]int{}
	for _, c := range of[*events.Charge](out) {
		if !delivered[c.WAMID] {
			t.Fatalf("charge without a delivery: %s", chargeLine(c))
		}
		charges[c.WAMID]++
	}
	for _, d := range of[*events.MessageDelivered](out) {
		if !delivered[d.WAMID] {
			t.Fatalf("delivery reported for %s that was never delivered", d.WAMID)
		}
		n := charges[d.WAMID]
		pmp := !strings.HasPrefix(d.Ours.PricingModel, "CBP")
		switch {
		case pmp && n != 1:
			t.Fatalf("PMP delivery %s (%s, %s) has %d charges, want exactly 1", d.WAMID, d.Kind, d.Ours.PricingModel, n)
		case n > 1:
			t.Fatalf("delivery %s has %d charges", d.WAMID, n)
		}
	}
	seen := map[string]int{}
	for _, d := range of[*events.MessageDelivered](out) {
		seen[d.WAMID]++
		if seen[d.WAMID] > 1 {
			t.Fatalf("message %s delivered twice", d.WAMID)
		}
	}
}

// Events later than the allowed lateness are set aside with a reason, never applied.
func TestTooLateIsSetAside(t *testing.T) {
	h := configured(t, "UTC")
	t0 := at("2025-09-01T00:00:00Z")
	h.tick(t0 + 80*hour)
	w := h.wamid("tpl")
	h.send(t0, w, events.CategoryMarketing)
	out := h.net()
	sa := of[*events.EventSetAside](out)
	if len(sa) != 1 || sa[0].Reason != events.SetAsideTooLate || int64(sa[0].InputTime) != t0 {
		t.Fatalf("want one too_late set-aside, got %+v", sa)
	}
	if len(of[*events.MessageDispatched](out)) != 0 {
		t.Fatal("a too-late event was applied")
	}
}

// The pair cache is invisible: with one slot (every other pair's event writes the cached pair
// back and decodes its own), two (one set of two ways), three (rounded up to one set of four),
// eight (two sets of four ways, where the least recently used pair of a set makes room) or
// 65,536 (no pair ever leaves the cache), outputs and snapshots are byte-identical to the
// default's.
func TestPropertyPairCacheIsInvisible(t *testing.T) {
	for _, seed := range seeds(t) {
		in := shuffleWithin(seed, genTraffic(seed, 40, 10), 20*hour)
		var want, wantSnap []byte
		for _, slots := range []int{0, 1, 2, 3, 8, 1 << 16} {
			e, err := New(Config{CachePairs: slots})
			if err != nil {
				t.Fatal(err)
			}
			if want := ceilPow2(max(slots, 1)); slots > 0 && len(e.cache.slots) != want {
				t.Fatalf("CachePairs %d: %d slots, want %d", slots, len(e.cache.slots), want)
			}
			var out []events.Event
			for i, ev := range in {
				if out, err = e.Apply(ev, int64(i), out); err != nil {
					t.Fatal(err)
				}
				// Pairs counts without writing back; after a flush the table alone holds them all.
				if n := e.Pairs(); i%7 == 0 || i == len(in)/2 {
					e.flush() // a flush mid-stream changes nothing either
					if e.pairs.Len() != n {
						t.Fatalf("seed %d, %d slots, event %d: Pairs %d, %d in the table after a flush", seed, slots, i, n, e.pairs.Len())
					}
				}
			}
			var snap bytes.Buffer
			if err := e.Snapshot(&snap); err != nil {
				t.Fatal(err)
			}
			got := encodeAll(t, out)
			if want == nil {
				want, wantSnap = got, snap.Bytes()
				continue
			}
			if !bytes.Equal(got, want) || !bytes.Equal(snap.Bytes(), wantSnap) {
				t.Fatalf("seed %d: %d cache slots change the outputs or the snapshot", seed, slots)
			}
		}
	}
}
