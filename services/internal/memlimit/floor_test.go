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

// waitLimit waits for the memory limit to come within [lo, hi]: Floor moves it from a cleanup,
// which runs shortly after the collection.
func waitLimit(t *testing.T, what string, lo, hi int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := debug.SetMemoryLimit(-1)
		if l >= lo && l <= hi {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: memory limit %d MiB, want %d-%d MiB", what, l>>20, lo>>20, hi>>20)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var sink []byte

func TestFloor(t *testing.T) {
	gcPercent, limit := keepSettings(t)
	const floor = 256 << 20
	runtime.GC()
	stop := Floor(100, floor, 4<<30)

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
	func() {
		keep := make([][]byte, 200)
		for i := range keep {
			keep[i] = make([]byte, 1<<20)
		}
		runtime.GC()
		waitLimit(t, "with 200 MiB live at 100%", 380<<20, 440<<20)
		runtime.KeepAlive(keep)
	}()

	// Little live again: back to the floor.
	runtime.GC()
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
	keep := make([][]byte, 32) // 32 MiB live at 400% would want 160 MiB
	for i := range keep {
		keep[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	waitLimit(t, "live times 5 above the limit", 64<<20, 64<<20)
	runtime.KeepAlive(keep)
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
