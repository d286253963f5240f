package memlimit

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultFloor is the heap a batch job may grow to before its first collection (Floor), unless
// that is more than half its memory limit.
const DefaultFloor = 4 << 30

// Floor runs the collector for a batch job: none until the Go heap reaches floor bytes, then as
// GOGC=gcPercent would (0 or less: the GOGC in force; off: only at limit), and never above
// limit. After each cycle the next one is due at
//
//	min(limit, max(floor, live + live*gcPercent/100))
//
// bytes of Go memory, where live is what the cycle found live. It does that with GOGC off and the
// soft memory limit set to that goal, moved after every cycle.
//
// Why: a replay allocates about 1.9 KB per record, most of it garbage a batch later, while its
// live heap (the engines' pairs, the batches in flight) grows slowly. At GOGC 400 from the start
// the collector runs a cycle each time the heap has grown fivefold, and its mark phase is long
// (0.65 s on 600 MB live, with a quarter of the CPUs) and slows every pointer write meanwhile.
// `convmeter replay` of 1M records (2-core VM): 232k-240k records/s under a 4 GiB floor, with no
// collection; 203k-213k at GOGC 400 from the start, with 4-5.
//
// It returns the function that stops moving the limit and restores GOGC and the memory limit in
// force before (once: later calls do nothing). floor <= 0 or limit <= 0 changes nothing (the
// stop function is then a no-op).
func Floor(gcPercent int, floor, limit int64) (stop func()) {
	if floor <= 0 || limit <= 0 {
		return func() {}
	}
	prevPct := debug.SetGCPercent(-1)
	if gcPercent <= 0 { // the runtime's (GOGC); off leaves the limit alone to bound the heap
		gcPercent = prevPct
	}
	t := &floorTuner{pct: int64(gcPercent), floor: min(floor, limit), limit: limit}
	t.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	prevLimit := debug.SetMemoryLimit(t.goal())
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.stopped {
			t.stopped = true
			debug.SetGCPercent(prevPct)
			debug.SetMemoryLimit(prevLimit)
		}
	}
}

type floorTuner struct {
	pct, floor, limit int64
	// mu orders the cleanup's move of the limit with stop's restore.
	mu      sync.Mutex
	stopped bool
	sample  []metrics.Sample
}

// goal is the next cycle's due size: see Floor.
func (t *floorTuner) goal() int64 {
	if t.pct < 0 {
		return t.limit
	}
	metrics.Read(t.sample)
	var live int64
	if v := t.sample[0].Value; v.Kind() == metrics.KindUint64 {
		live = int64(min(v.Uint64(), uint64(t.limit)))
	}
	return min(t.limit, max(t.floor, live+live/100*t.pct))
}

// sentinel is what arm attaches its cleanup to: big enough not to be a tiny allocation, whose
// cleanups may wait for unrelated objects.
type sentinel [32]byte

// arm moves the limit after the next collection: the cleanup of an object nothing references
// runs after the cycle that found it unreachable, and arms the next.
func (t *floorTuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *floorTuner) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return
		}
		debug.SetMemoryLimit(t.goal())
		t.arm()
	}, t)
}
