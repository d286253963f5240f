package memlimit

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// keepSettings restores GOGC and the memory limit after the test.
func keepSettings(t *testing.T) (gcPercent int, limit int64) {
	t.Helper()
	gcPercent, limit = debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(gcPercent); debug.SetMemoryLimit(limit) })
	debug.SetGCPercent(100)
	return 100, limit
}

func numGC() uint32 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.NumGC
}

// waitLimit collects and waits for the memory limit to come within [lo, hi]: Floor moves it from
// a cleanup, which runs shortly after a collection.
func waitLimit(t *testing.T, what string, lo, hi int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		l := debug.SetMemoryLimit(-1)
		if l >= lo && l <= hi {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: memory limit %d MiB, want %d-%d MiB", what, l>>20, lo>>20, hi>>20)
		}
	}
}

// withLive runs f with mib MiB more live heap.
//
//go:noinline
func withLive(mib int, f func()) {
	keep := make([][]byte, mib)
	for i := range keep {
		keep[i] = make([]byte, 1<<20)
	}
	f()
	runtime.KeepAlive(keep)
}

var sink []byte

func TestFloor(t *testing.T) {
	gcPercent, limit := keepSettings(t)
	const floor = 256 << 20
	runtime.GC()
	stop := Floor(100, floor, 4<<30)
	t.Cleanup(stop)

	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GOGC %d under Floor, want off", got)
	}
	waitLimit(t, "at the start", floor, floor)

	// 64 MiB of garbage, well below the floor: no collection.
	n0 := numGC()
	for range 1024 {
		sink = make([]byte, 64<<10)
	}
	if n := numGC() - n0; n != 0 {
		t.Errorf("%d collections below the floor, want none", n)
	}

	// 200 MiB live: the next goal is live plus 100%, above the floor.
	withLive(200, func() { waitLimit(t, "with 200 MiB live at 100%", 380<<20, 440<<20) })
	// Little live again: back to the floor.
	waitLimit(t, "with little live", floor, floor)

	stop()
	if got := debug.SetGCPercent(gcPercent); got != gcPercent {
		t.Errorf("GOGC %d after stop, want %d back", got, gcPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("memory limit %d after stop, want %d back", got, limit)
	}
	runtime.GC() // a stopped Floor moves the limit no more
	time.Sleep(50 * time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("memory limit %d after a collection past stop, want %d", got, limit)
	}
}

func TestFloorCappedByLimit(t *testing.T) {
	keepSettings(t)
	stop := Floor(400, 1<<30, 64<<20) // the floor above the limit: the limit holds
	defer stop()
	waitLimit(t, "floor above the limit", 64<<20, 64<<20)
	// 32 MiB live at 400% would want 160 MiB.
	withLive(32, func() { waitLimit(t, "live times 5 above the limit", 64<<20, 64<<20) })
}

func TestFloorOff(t *testing.T) {
	gcPercent, limit := keepSettings(t)
	for _, c := range [][2]int64{{0, 1 << 30}, {1 << 30, 0}} {
		Floor(400, c[0], c[1])()
		if debug.SetGCPercent(gcPercent) != gcPercent || debug.SetMemoryLimit(-1) != limit {
			t.Errorf("Floor(400, %d, %d) changed the settings", c[0], c[1])
		}
	}
}

// TestFloorRuntimePercent: gcPercent 0 takes the GOGC in force, not a goal of the live heap
// itself (which would collect without end).
func TestFloorRuntimePercent(t *testing.T) {
	keepSettings(t)
	debug.SetGCPercent(300)
	stop := Floor(0, 64<<20, 4<<30)
	t.Cleanup(stop)
	// 100 MiB live at 300%: 400 MiB.
	withLive(100, func() { waitLimit(t, "100 MiB live at the runtime's 300%", 380<<20, 440<<20) })
	stop()
	if got := debug.SetGCPercent(100); got != 300 {
		t.Errorf("GOGC %d after stop, want 300 back", got)
	}

	debug.SetGCPercent(-1) // GOGC off: only the limit bounds the heap
	stop = Floor(0, 64<<20, 1<<30)
	t.Cleanup(stop)
	waitLimit(t, "GOGC off", 1<<30, 1<<30)
}
